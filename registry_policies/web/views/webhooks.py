"""The Webhooks tab of a repository (admin role only; readers get 403, others 404): the list with
each webhook's last delivery, the form (event checkboxes from the catalogue, URL, optional
secret, CA certificate under "Advanced", enabled), the secret shown once after creation or
rotation, the delivery log with "Redeliver", "Send test" and delete.

Every form works without JavaScript. The secret is never stored in the session or a message:
the page answering the POST that created (or rotated) it is the only one that shows it.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_POST, require_safe

from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import Role
from registry_policies.web.views.common import current_user, forbidden, repository_context, repository_or_404
from registry_policies.webhooks import selectors, services
from registry_policies.webhooks.event_types import CATALOGUE
from registry_policies.webhooks.models import Webhook, WebhookDelivery

ADMIN_ONLY = "You need the admin role on {repository} to manage its webhooks."
DELIVERIES_PAGE_SIZE = 25


class WebhookForm(forms.Form):
    """The fields of a webhook; `webhooks.services` validates them (errors land on their field)."""

    url = forms.CharField(label="Payload URL", max_length=2000,
                          widget=forms.URLInput(attrs={"placeholder": "https://ci.example.com/hooks/registry"}),
                          help_text="Receives a signed JSON POST for every event chosen below.")
    events = forms.MultipleChoiceField(
        label="Events", widget=forms.CheckboxSelectMultiple,
        choices=[(name, format_html("<code>{}</code> — {}", name, event.description))
                 for name, event in CATALOGUE.items()])
    secret = forms.CharField(label="Secret", required=False, strip=True,
                             widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
                             help_text="whsec_<base64>. Leave empty to have one generated (shown once).")
    rotate_secret = forms.BooleanField(label="Generate a new secret", required=False,
                                       help_text="The new secret is shown once after saving.")
    ca_certificate = forms.CharField(label="CA certificate (PEM)", required=False,
                                     widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
                                     help_text="Only for an https receiver whose certificate a private CA signed.")
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True,
                                 help_text="A disabled webhook receives nothing (Send test still works).")

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["secret"].help_text = "Leave empty to keep the current secret."
        else:
            del self.fields["rotate_secret"]

    def place(self, error: ValidationError) -> None:
        """Put a service's ValidationError on the fields it names."""
        for field, problems in error.message_dict.items():
            self.add_error(field if field in self.fields else None, problems)


def _administered(request: HttpRequest, namespace: str, name: str) -> tuple[Repository, Role] | HttpResponse:
    repository, role = repository_or_404(request, namespace, name)
    if not services.may_manage_webhook(current_user(request), repository=repository):
        return forbidden(request, ADMIN_ONLY.format(repository=repository.full_name))
    return repository, role


def _with_last_status(webhooks: QuerySet[Webhook]) -> QuerySet[Webhook]:
    newest = WebhookDelivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at", "-id")
    return webhooks.annotate(last_delivery_status=Subquery(newest.values("status")[:1]),
                             last_delivery_at=Subquery(newest.values("created_at")[:1]))


def _webhook_or_404(repository: Repository, pk: int) -> Webhook:
    webhook = selectors.repository_webhooks(repository).filter(pk=pk).first()
    if webhook is None:
        raise Http404("No such webhook.")
    return webhook


def _tab(repository: Repository) -> HttpResponse:
    return redirect("web:repository-webhooks", namespace=repository.namespace.name, name=repository.name)


def _detail(repository: Repository, webhook: Webhook) -> HttpResponse:
    return redirect("web:webhook-detail", namespace=repository.namespace.name, name=repository.name, pk=webhook.pk)


@login_required
@require_safe
def webhooks(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """`/<namespace>/<name>/webhooks/`: the repository's webhooks and the form to add one."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, role = found
    context = repository_context(repository, role, "webhooks",
                                 webhooks=_with_last_status(selectors.repository_webhooks(repository)),
                                 form=WebhookForm(initial={"enabled": True}))
    return render(request, "web/repository/webhooks.html", context)


@login_required
@require_POST
def webhook_create(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    """POST `…/webhooks/new/`: create; the answer shows the secret once (or the form with errors)."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, role = found
    form = WebhookForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            webhook = services.create_webhook(
                actor=current_user(request), repository=repository, url=data["url"], events=data["events"],
                secret=data["secret"] or None, ca_certificate=data["ca_certificate"], enabled=data["enabled"],
                request=request)
        except ValidationError as error:
            form.place(error)
        else:
            return render(request, "web/repository/webhooks_secret.html", repository_context(
                repository, role, "webhooks", webhook=webhook, secret=str(webhook.secret), created=True),
                status=201)
    context = repository_context(repository, role, "webhooks",
                                 webhooks=_with_last_status(selectors.repository_webhooks(repository)), form=form)
    return render(request, "web/repository/webhooks.html", context, status=400)


@login_required
def webhook_edit(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """`…/webhooks/<id>/edit/`: change a webhook; an empty secret keeps the current one."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, role = found
    webhook = _webhook_or_404(repository, pk)
    if request.method == "POST":
        form = WebhookForm(request.POST, editing=True)
        if form.is_valid():
            data = form.cleaned_data
            changes = {key: data[key] for key in ("url", "events", "ca_certificate", "enabled")}
            if data["secret"]:
                changes["secret"] = data["secret"]
            try:
                actor = current_user(request)
                webhook = services.update_webhook(webhook=webhook, actor=actor, changes=changes, request=request)
                if data["rotate_secret"] and not data["secret"]:
                    webhook = services.rotate_webhook_secret(webhook=webhook, actor=actor, request=request)
                    return render(request, "web/repository/webhooks_secret.html", repository_context(
                        repository, role, "webhooks", webhook=webhook, secret=str(webhook.secret), created=False))
            except ValidationError as error:
                form.place(error)
            else:
                messages.success(request, f"Webhook #{webhook.pk} saved.")
                return _detail(repository, webhook)
    else:
        form = WebhookForm(editing=True, initial={"url": webhook.url, "events": webhook.events,
                                                  "ca_certificate": webhook.ca_certificate,
                                                  "enabled": webhook.enabled})
    return render(request, "web/repository/webhooks_form.html",
                  repository_context(repository, role, "webhooks", webhook=webhook, form=form),
                  status=400 if form.is_bound else 200)


@login_required
@require_safe
def webhook_detail(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """`…/webhooks/<id>/`: the webhook and its deliveries (newest first, paginated), each with
    its attempts, and the Send test / Redeliver / Delete buttons."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, role = found
    webhook = _webhook_or_404(repository, pk)
    deliveries = selectors.deliveries_of(webhook).prefetch_related("attempt_log")
    page = Paginator(deliveries, DELIVERIES_PAGE_SIZE).get_page(request.GET.get("page"))
    context = repository_context(repository, role, "webhooks", webhook=webhook, page=page,
                                 deliveries=page.object_list,
                                 event_choices=[(name, CATALOGUE[name].description) for name in webhook.events])
    return render(request, "web/repository/webhooks_detail.html", context)


@login_required
@require_POST
def webhook_test(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """POST `…/webhooks/<id>/test/`: queue a sample event (`event_type`, default the first subscribed)."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, _ = found
    webhook = _webhook_or_404(repository, pk)
    try:
        delivery = services.send_test(webhook=webhook, actor=current_user(request),
                                      event_type=request.POST.get("event_type") or None, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Test {delivery.event_type} event queued (delivery #{delivery.pk}: "
                                  f"{delivery.get_status_display().lower()}).")
    return _detail(repository, webhook)


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, namespace: str, name: str, pk: int, delivery_pk: int) -> HttpResponse:
    """POST `…/webhooks/<id>/deliveries/<delivery>/redeliver/`: send it again."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, _ = found
    webhook = _webhook_or_404(repository, pk)
    delivery = selectors.deliveries_of(webhook).filter(pk=delivery_pk).first()
    if delivery is None:
        raise Http404("No such delivery.")
    again = services.redeliver(delivery=delivery, actor=current_user(request), request=request)
    messages.success(request, f"Delivery #{delivery.pk} sent again as #{again.pk} "
                              f"({again.get_status_display().lower()}).")
    return _detail(repository, webhook)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, namespace: str, name: str, pk: int) -> HttpResponse:
    """POST `…/webhooks/<id>/delete/`: delete the webhook and its delivery log."""
    found = _administered(request, namespace, name)
    if isinstance(found, HttpResponse):
        return found
    repository, _ = found
    webhook = _webhook_or_404(repository, pk)
    services.delete_webhook(webhook=webhook, actor=current_user(request), request=request)
    messages.success(request, f"Webhook #{pk} deleted.")
    return _tab(repository)
