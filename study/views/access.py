"""Who may open researcher pages: `researcher_required` (study.selectors.researchers defines a researcher),
and `study_or_404` for one study (study.selectors.access: owner, editor, viewer, superuser)."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseForbidden
from django.template.loader import render_to_string

from study.errors import AccessDenied, NotFound
from study.selectors.access import VIEW, study_for_user
from study.selectors.researchers import is_researcher


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


def study_or_404(request, slug: str, need: str = VIEW):
    """The study `slug` if the user has the role `need` on it (study.selectors.access, the one access rule).

    No role at all answers 404 (other people's slugs stay hidden); too weak a role answers 403 with the reason.
    """
    try:
        return study_for_user(user=request.user, slug=slug, need=need)
    except NotFound:
        raise Http404("No such study.") from None
    except AccessDenied as error:
        raise PermissionDenied(error.message) from None
