"""Login throttling: django-axes in front of every password login that carries an HTTP request.

Why a subclass: axes refuses `authenticate()` calls without a request (management commands, the test
client's login); such calls come from no client, so there is nothing to throttle and they pass through. A
DRF view (/api/token/) hands its own Request wrapper to `authenticate`; axes must mark the underlying
Django request, which its middleware turns into the 429 lockout answer.
"""
from __future__ import annotations

import ipaddress

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings


class ThrottledLoginBackend(AxesStandaloneBackend):
    """Refuses (before the password is checked) a login from a client locked out by too many failures."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        http_request = getattr(request, "_request", request)
        try:
            return super().authenticate(http_request, username, password, **kwargs)
        except AxesBackendPermissionDenied:
            http_request.axes_locked_out = True  # the middleware answers 429 (axes flags only DRF's wrapper)
            raise


def client_ip(request) -> str | None:
    """The address failures are counted against: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the
    X-Forwarded-For entry those proxies appended (the client cannot forge entries to the right of it)."""
    request = getattr(request, "_request", request)
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        try:
            return str(ipaddress.ip_address(forwarded[-proxies]))
        except ValueError:
            pass  # a broken header: count against the proxy's own address rather than fail the login
    return request.META.get("REMOTE_ADDR") or None
