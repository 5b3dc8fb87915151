"""Adding researchers: `manage.py add_researcher`, invite links signed with SECRET_KEY (no table needed), and
sign-up (through an invite, or open when settings.RESEARCHER_SIGNUP_OPEN allows it)."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import signing
from django.db import transaction

from study.errors import InvalidInput
from study.selectors.researchers import RESEARCHERS_GROUP

INVITE_SALT = "emostudy.researcher-invite"


def researcher_group() -> Group:
    group, _ = Group.objects.get_or_create(name=RESEARCHERS_GROUP)
    return group


@transaction.atomic
def researcher_add(*, username: str, email: str = "", password: str | None = None):
    """Create a researcher account, or make an existing user a researcher. Returns (user, created).

    Without a password a new account gets an unusable one (set it with changepassword or a reset mail).
    """
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
    else:
        if email and not user.email:
            user.email = email.strip()
        if password:
            user.set_password(password)
        user.save()
    user.groups.add(researcher_group())
    return user, created


@transaction.atomic
def researcher_sign_up(*, form):
    """Save a validated sign-up form (django UserCreationForm) as a researcher account."""
    user = form.save()
    user.groups.add(researcher_group())
    return user


def invite_make(*, email: str = "", invited_by=None) -> str:
    """A signed invite token; it expires after settings.RESEARCHER_INVITE_DAYS."""
    return signing.dumps({"email": email.strip(), "by": getattr(invited_by, "pk", None)}, salt=INVITE_SALT,
                         compress=True)


def invite_read(token: str) -> dict:
    """The invite's payload, or InvalidInput when the token is forged, damaged or expired."""
    days = settings.RESEARCHER_INVITE_DAYS
    try:
        return signing.loads(token, salt=INVITE_SALT, max_age=days * 24 * 3600)
    except signing.SignatureExpired:
        raise InvalidInput(f"this invite link has expired (links are valid for {days} days); ask for a new one") from None
    except signing.BadSignature:
        raise InvalidInput("this invite link is not valid; check that it was copied whole") from None
