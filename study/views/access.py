"""Who may open researcher pages: `researcher_required` (study.selectors.researchers defines a researcher)."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseForbidden
from django.template.loader import render_to_string

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
