"""Personal access tokens: list, create (the secret is shown once), revoke.

The secret is rendered in the response to the POST that created it and stored nowhere (not in
the session, not in a cache); the page is marked `no-store`. Reloading re-posts the form, which
fails as a duplicate name, so the secret is never shown again.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services as accounts
from accounts.models import PersonalAccessToken
from registry_policies.web.forms import TokenCreateForm, apply_service_errors
from registry_policies.web.views.common import current_user, registry_host


@never_cache
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """`/settings/tokens/`: the caller's tokens (never their secrets) and the form creating one."""
    form = TokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = accounts.create_token(user=current_user(request), name=form.cleaned_data["name"],
                                                  expires_at=form.expires_at, request=request)
        except ValidationError as error:
            apply_service_errors(form, error, aliases={"expires_at": "expires_on"})
        else:
            return render(request, "web/token_created.html", {
                "token": token, "secret": secret, "registry_host": registry_host(),
            })
    tokens = PersonalAccessToken.objects.filter(user=current_user(request))
    return render(request, "web/tokens.html", {"form": form, "tokens": tokens})


@require_POST
@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the caller's own tokens (anyone else's answers 404)."""
    token = get_object_or_404(PersonalAccessToken, pk=pk, user=current_user(request))
    accounts.revoke_token(token=token, actor=current_user(request), request=request)
    messages.success(request, f"Token “{token.name}” revoked. Clients using it can no longer sign in.")
    return redirect("web:tokens")
