"""A database that cannot answer for a moment (a restart, a failover, a dropped connection) costs the request a
503 with Retry-After, not a 500: the browser or script tries again, and a vote, being idempotent, is then
recorded once. Nothing was written: the failed transaction was rolled back. The next request reconnects
(CONN_HEALTH_CHECKS)."""
import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        message = _("The server cannot reach its database for a moment. Please try again in a few seconds.")
        if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "") \
                or request.content_type == "application/json":
            response = JsonResponse({"detail": message, "code": "database_unavailable"}, status=503)
        else:
            # No messages: reading them could load a session, from the database that is not answering.
            response = render(request, "database_unavailable.html", {"message": message, "messages": ()}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
