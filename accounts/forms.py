"""Sign-in forms (the site's and the admin's) that check the password through the throttled
`accounts.services.authenticate_password`."""
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from accounts.services import authenticate_password
from accounts.throttling import SignInLocked


class ThrottledSignInMixin:
    """Replaces AuthenticationForm.clean: a lock is a form error (code "locked"), never a sign-in."""

    locked: SignInLocked | None = None

    def clean(self) -> dict[str, Any]:
        form: Any = self
        username = form.cleaned_data.get("username")
        password = form.cleaned_data.get("password")
        if username is not None and password:
            try:
                form.user_cache = authenticate_password(username=username, password=password, request=form.request)
            except SignInLocked as locked:
                self.locked = locked
                raise forms.ValidationError(locked.message, code="locked") from None
            if form.user_cache is None:
                raise form.get_invalid_login_error()
            form.confirm_login_allowed(form.user_cache)
        return dict(form.cleaned_data)


class SignInForm(ThrottledSignInMixin, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignInMixin, AdminAuthenticationForm):
    pass
