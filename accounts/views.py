"""The sign-in page: Django's LoginView with the throttled form; a lock answers 429."""
from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from accounts.forms import SignInForm


class SignInView(auth_views.LoginView):
    authentication_form = SignInForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "locked", None) is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.locked.retry_after)
        return response
