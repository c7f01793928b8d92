"""Forms of the Pruning tab and of a namespace's policies page. They only parse; validation is
`policies.pruning.save_policy` / `policies.services.save_policy` (errors placed by the same
`promotion_forms.place_errors` as the Promotions tab, which reuses its rule rows)."""
from typing import Any

from django import forms

from registry_policies.policies.models import PruningPolicy


class PruningForm(forms.Form):
    """Everything of a pruning policy but the rules (blank numbers: not set)."""

    keep_latest = forms.IntegerField(required=False, label="Keep the newest",
                                     help_text="Keep this many most recently pushed matching tags.")
    older_than_days = forms.IntegerField(required=False, label="Pushed more than … days ago")
    not_pulled_days = forms.IntegerField(required=False, label="Not pulled for … days",
                                         help_text="A tag never pulled counts from its push.")
    schedule = forms.ChoiceField(choices=PruningPolicy.Schedule.choices, initial=PruningPolicy.Schedule.DAILY)
    repository_filter = forms.CharField(required=False, max_length=255, label="Repository filter",
                                        help_text="Namespace policies: a regular expression the repository "
                                                  "name must fully match (RE2); empty: every repository.")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, with_filter: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_filter:
            del self.fields["repository_filter"]

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.setdefault("repository_filter", "")
        return data


class NamespacePromotionForm(forms.Form):
    """A namespace-wide promotion policy (rules are the rule rows)."""

    target = forms.CharField(required=False, max_length=300, label="Target repository",
                             help_text='A repository "ns/name" or a template such as "qa/{name}" (the same '
                                       "repository name in another namespace).")
    repository_filter = forms.CharField(required=False, max_length=255, label="Repository filter",
                                        help_text="A regular expression the repository name must fully match "
                                                  "(RE2); empty: every repository, also those created later.")
    tag_template = forms.CharField(required=False, max_length=128, label="Tag template",
                                   help_text="Empty keeps the source tag (tokens as on the Promotions tab).")
    enabled = forms.BooleanField(required=False, initial=True)
