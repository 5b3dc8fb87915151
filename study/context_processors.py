"""Template context every page may need: whether researchers may sign up themselves."""
from django.conf import settings


def site(request) -> dict:
    return {"signup_open": settings.RESEARCHER_SIGNUP_OPEN}
