"""Who is a researcher, and how one becomes one.

A researcher is an active user who is a superuser or a member of the "researchers" group; `is_staff` (the
admin site) is neither needed nor enough. Researchers are added by a superuser (`manage.py add_researcher`
or an invite link signed with SECRET_KEY), or sign up themselves when RESEARCHER_SIGNUP_OPEN is on.
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.db import transaction
from django.http import HttpResponseForbidden
from django.template.loader import render_to_string

from study.errors import InvalidInput

RESEARCHERS_GROUP = "researchers"
INVITE_SALT = "emostudy.researcher-invite"


def is_researcher(user) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.groups.filter(name=RESEARCHERS_GROUP).exists()


def researcher_required(view):
    """Anonymous visitors go to the site's login page; a logged-in non-researcher gets a 403 page that says why."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_researcher(request.user):
            return HttpResponseForbidden(render_to_string("study/accounts/not_researcher.html", request=request))
        return view(request, *args, **kwargs)

    return wrapper


def researcher_group() -> Group:
    group, _ = Group.objects.get_or_create(name=RESEARCHERS_GROUP)
    return group


@transaction.atomic
def researcher_add(*, username: str, email: str = "", password: str | None = None):
    """Create a researcher account, or make an existing user a researcher. Returns (user, created)."""
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise InvalidInput("a username of 1 to 150 characters is needed")
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        user = User(username=username, email=email.strip())
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    elif email and not user.email:
        user.email = email.strip()
        user.save(update_fields=["email"])
    user.groups.add(researcher_group())
    return user, created


def invite_make(*, email: str = "", invited_by=None) -> str:
    """A signed invite token (no table needed); it expires after RESEARCHER_INVITE_DAYS."""
    return signing.dumps({"email": email.strip(), "by": getattr(invited_by, "pk", None)}, salt=INVITE_SALT,
                         compress=True)


def invite_read(token: str) -> dict:
    """The invite's payload, or InvalidInput when the token is forged, damaged or expired."""
    max_age = settings.RESEARCHER_INVITE_DAYS * 24 * 3600
    try:
        return signing.loads(token, salt=INVITE_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidInput(f"this invite link has expired (links are valid for {settings.RESEARCHER_INVITE_DAYS} "
                           "days); ask for a new one") from None
    except signing.BadSignature:
        raise InvalidInput("this invite link is not valid; check that it was copied whole") from None
