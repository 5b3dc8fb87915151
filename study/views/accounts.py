"""Researcher accounts beyond Django's own login/logout/password views (webapp/urls.py includes those under
/accounts/ with the site's templates): invite links made by a superuser, joining through one, and open
sign-up when settings.RESEARCHER_SIGNUP_OPEN allows it."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from study.errors import InvalidInput
from study.services.researchers import invite_make, invite_read, researcher_sign_up


class InviteForm(forms.Form):
    email = forms.EmailField(required=False, help_text="Optional: filled in for them on the sign-up form.")


class ResearcherSignupForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Needed only to reset a forgotten password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


def _superuser(user) -> bool:
    return user.is_active and user.is_superuser


@user_passes_test(_superuser)
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    link = None
    if request.method == "POST" and form.is_valid():
        token = invite_make(email=form.cleaned_data["email"], invited_by=request.user)
        link = request.build_absolute_uri(reverse("study:account-join", args=[token]))
    return render(request, "study/accounts/invite.html",
                  {"form": form, "link": link, "days": settings.RESEARCHER_INVITE_DAYS},
                  status=400 if request.method == "POST" and not form.is_valid() else 200)


def _signup(request: HttpRequest, *, email: str = "", heading: str) -> HttpResponse:
    form = ResearcherSignupForm(request.POST or None, initial={"email": email})
    if request.method == "POST" and form.is_valid():
        user = researcher_sign_up(form=form)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Create your first study, or look around the demo.")
        return redirect("study:researcher-study-list")
    return render(request, "study/accounts/signup.html", {"form": form, "heading": heading},
                  status=400 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    try:
        payload = invite_read(token)
    except InvalidInput as error:
        return render(request, "study/accounts/invite_invalid.html", {"message": error.message}, status=400)
    return _signup(request, email=payload.get("email", ""), heading="Join EmoStudy as a researcher")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.RESEARCHER_SIGNUP_OPEN:
        raise Http404("sign-up is by invitation")
    return _signup(request, heading="Create a researcher account")
