"""The form of the Mirrors tab: one form for both directions.

It only parses: the remote (an existing integration, or inline registry URL, username, password
and CA), what to mirror (remote repository; rules and tag template to push; tag filter and
interval to pull). Rule rows are the Promotions tab's (`promotion_forms.rule_formset`).
Validation belongs to the mirroring services; `place_errors` puts their messages next to the
fields they name.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from registry_policies.integrations.models import Integration
from registry_policies.policies import criteria
from registry_policies.web.promotion_forms import TEMPLATE_HELP

NEW_INTEGRATION = ""
DIRECTIONS = [("push", "Push to a remote registry"), ("pull", "Pull from a remote registry")]
# Service field → form field.
ALIASES = {"url": "registry_url", "secret": "password", "name": "integration_name", "namespace": "integration"}


class MirrorForm(forms.Form):
    direction = forms.ChoiceField(choices=DIRECTIONS, initial="push", widget=forms.RadioSelect,
                                  label="Mirror direction")
    integration = forms.ChoiceField(required=False, label="Remote registry",
                                    help_text="A saved integration, or a new one from the fields below.")
    registry_url = forms.CharField(required=False, max_length=500, label="Registry URL",
                                   widget=forms.URLInput(attrs={"placeholder": "https://registry.example.com"}))
    username = forms.CharField(required=False, max_length=255, label="Username",
                               widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(required=False, strip=False, label="Password or access token",
                               widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
                               help_text="Write-only: stored encrypted, never shown again.")
    integration_name = forms.CharField(required=False, max_length=100, label="Save as integration named",
                                       help_text="Push mirrors keep new remotes as integrations; default: the host.")
    ca_certificate = forms.CharField(required=False, label="CA certificate (PEM)",
                                     widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false",
                                                                  "placeholder": "-----BEGIN CERTIFICATE-----"}),
                                     help_text="Only for a remote whose TLS certificate is signed by a private CA.")
    remote_repository = forms.CharField(required=False, max_length=255, label="Remote repository",
                                        widget=forms.TextInput(attrs={"placeholder": "team/website"}))
    tag_template = forms.CharField(required=False, max_length=128, label="Tag template (push)",
                                   help_text=TEMPLATE_HELP)
    tag_filter = forms.CharField(required=False, max_length=500, label="Tag filter (pull)",
                                 help_text="A glob such as v1.* or *-stable (empty: every tag), or regex:<pattern>.")
    interval_seconds = forms.IntegerField(required=False, initial=3600, label="Poll interval in seconds (pull)",
                                          help_text="At least 60.")
    remove_deleted_tags = forms.BooleanField(
        required=False, initial=False, label="Remove tags deleted on the remote (pull)",
        help_text="Off by default. Only tags this mirror created and that pass the tag filter are removed when "
                  "the remote no longer lists them; tags promoted or pushed here are never touched.")
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    def __init__(self, *args: Any, integrations: list[Integration], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._integrations = {str(integration.pk): integration for integration in integrations}
        self.fields["integration"].choices = [  # type: ignore[attr-defined]
            (NEW_INTEGRATION, "— a new remote (fields below) —"),
            *((key, f"{integration} — {integration.url}") for key, integration in self._integrations.items())]

    def clean_integration(self) -> Integration | None:
        return self._integrations.get(self.cleaned_data.get("integration") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("integration") is None and not (data.get("registry_url") or "").strip():
            self.add_error("registry_url", "Enter the registry URL, or choose a saved integration above.")
        if data.get("interval_seconds") is None:
            data["interval_seconds"] = 3600
        return data

    @property
    def chosen_direction(self) -> str:
        return str(self["direction"].value() or "push")

    def default_integration_name(self) -> str:
        name = (self.cleaned_data.get("integration_name") or "").strip()
        return name or (urlsplit(self.cleaned_data.get("registry_url", "")).netloc or "remote")[:100]


def place_errors(error: ValidationError, *, form: MirrorForm, rows: Sequence[forms.Form],
                 rules: list[dict[str, Any]]) -> None:
    """Put a service's errors next to the fields (and rule rows) they name."""
    messages = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    for key, texts in messages.items():
        name = ALIASES.get(key, key)
        if key == "rules" and _place_rule_errors(rules, rows):
            continue
        form.add_error(name if name in form.fields else None, texts)


def _place_rule_errors(rules: list[dict[str, Any]], rows: Sequence[forms.Form]) -> bool:
    try:
        criteria.parse_rules(rules)
    except criteria.InvalidRules as invalid:
        for index, problems in invalid.by_rule.items():
            if index >= len(rows):
                return False
            for key, problem in problems.items():
                rows[index].add_error(key if key in rows[index].fields else None, problem)
        return bool(invalid.by_rule)
    return False
