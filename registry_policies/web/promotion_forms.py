"""Forms of the Promotions tab: a policy (target, template, enabled) and its rule rows.

They only parse: a rule row becomes the API shape `{field, operator, values, severity}` (values
comma separated), a blank row (no field chosen) or a removed one is skipped. Validation belongs to
`policies.services.save_policy`; `place_errors` puts its messages next to the row and field they
name, using the criteria engine's per-rule errors.
"""
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseFormSet, formset_factory

from registry_policies.policies import criteria
from registry_policies.policies.models import Promotion
from registry_policies.policies.tag_templates import SAMPLE_SOURCE_TAG
from registry_policies.repositories.models import Repository

RULES_PREFIX = "rules"
FIELD_CHOICES = [("", "— no rule —"), *((str(f), str(label).capitalize()) for f, label in
                                        criteria.FIELD_LABELS.items())]
OPERATOR_CHOICES = [
    ("Names and licenses", [(str(op), criteria.OPERATOR_LABELS[op]) for op in criteria.NAME_OPERATORS]),
    ("Tag names", [(str(op), criteria.OPERATOR_LABELS[op]) for op in criteria.PATTERN_OPERATORS]),
    ("Vulnerability counts", [(str(op), criteria.OPERATOR_LABELS[op]) for op in criteria.COUNT_OPERATORS]),
]
SEVERITY_CHOICES = [("", "—"), *((severity, severity) for severity in criteria.RULE_SEVERITIES)]
TEMPLATE_HELP = ("Empty keeps the source tag. Tokens: %n (the source tag) and the promotion time in UTC: "
                 "%Y %m %d %H %M %S %f %y %j %W %A %a %w %B %b %I %p %Z, e.g. %n-%Y%m%d.")


class PolicyForm(forms.Form):
    """Everything but the rules. All optional here: the service says what is missing."""

    target = forms.CharField(required=False, label="Target repository",
                             help_text="Repositories you may push to. The image is promoted there.")
    tag_template = forms.CharField(required=False, max_length=128, label="Tag template", help_text=TEMPLATE_HELP)
    sample_tag = forms.CharField(required=False, max_length=128, label="Preview with source tag",
                                 initial=SAMPLE_SOURCE_TAG)
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled",
                                 help_text="A disabled policy is not evaluated on pushes.")

    def __init__(self, *args: Any, targets: list[Repository], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "— choose a repository —"), *((r.full_name, r.full_name) for r in targets)]
        current = self["target"].value()
        if current and current not in {value for value, _label in choices}:
            choices.append((current, current))  # keep what was chosen so the error shows next to it
        self.fields["target"].widget = forms.Select(choices=choices)

    def template_and_sample(self) -> tuple[str, str]:
        """The template and preview tag as typed (bound or initial), for the live preview."""
        return (str(self["tag_template"].value() or "").strip(),
                str(self["sample_tag"].value() or "").strip() or SAMPLE_SOURCE_TAG)


class RuleForm(forms.Form):
    """One rule row."""

    field = forms.ChoiceField(choices=FIELD_CHOICES, required=False, label="Field")
    operator = forms.ChoiceField(choices=OPERATOR_CHOICES, required=False, label="Operator")
    severity = forms.ChoiceField(choices=SEVERITY_CHOICES, required=False, label="Severity",
                                 help_text="Vulnerabilities only.")
    values = forms.CharField(required=False, max_length=5000, label="Values",
                             help_text="Comma separated; a number for vulnerabilities; one regular expression "
                                       "(whole tag) for \"matches\"; a version range such as >=1.2.0 <2.0.0 "
                                       "or ^1.4 for \"is a version in\".")

    def is_blank(self) -> bool:
        return not self.cleaned_data.get("field") or bool(self.cleaned_data.get("DELETE"))

    def rule(self) -> dict[str, Any]:
        """The row in the API shape (severity only kept for vulnerabilities rows)."""
        data = self.cleaned_data
        operator, text = data.get("operator", ""), data.get("values", "")
        if operator in criteria.PATTERN_OPERATORS:  # one operand, which may itself contain commas
            values = [text.strip()] if text.strip() else []
        else:
            values = [v.strip() for v in text.split(",") if v.strip()]
        rule: dict[str, Any] = {"field": data["field"], "operator": operator, "values": values}
        if data["field"] == criteria.RuleField.VULNERABILITIES:
            rule["severity"] = data.get("severity") or None
        return rule


class BaseRuleFormSet(BaseFormSet):  # type: ignore[type-arg]  # not subscriptable at run time
    def rules(self) -> tuple[list[dict[str, Any]], list[RuleForm]]:
        """The rules of the non-blank rows, and those rows (same order) to put errors on."""
        rows = [form for form in self.forms if form.is_valid() and not form.is_blank()]
        return [row.rule() for row in rows], rows


def rule_formset(data: Any = None, *, initial: list[dict[str, Any]] | None = None,
                 blank_rows: int = 1) -> BaseRuleFormSet:
    """Rule rows: the `initial` rules plus `blank_rows` empty ones (bound to `data` when posted)."""
    factory = formset_factory(RuleForm, formset=BaseRuleFormSet, extra=blank_rows, can_delete=True)
    formset = factory(data, initial=initial, prefix=RULES_PREFIX)
    return formset  # type: ignore[return-value]


def with_one_more_row(data: Any) -> Any:
    """A copy of posted formset data announcing one more (blank) row: the no-JS "add a row"."""
    copy = data.copy()
    key = f"{RULES_PREFIX}-TOTAL_FORMS"
    try:
        copy[key] = str(min(int(copy.get(key, "0")) + 1, 50))
    except ValueError:
        copy[key] = "1"
    return copy


def initial_rows(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored rules as row initial data (values joined with commas)."""
    return [{"field": rule["field"], "operator": rule["operator"], "severity": rule.get("severity") or "",
             "values": ", ".join(rule["values"])} for rule in rules]


def place_errors(error: ValidationError, *, form: PolicyForm, rules: list[dict[str, Any]],
                 rows: list[RuleForm]) -> None:
    """Put the service's errors next to what they name: `target_repository` on the target,
    `tag_template` on the template, each rule's problems on its row's fields."""
    messages: dict[str, list[str]] = error.message_dict if hasattr(error, "error_dict") else {
        "__all__": error.messages}
    for key, texts in messages.items():
        if key == "rules":
            if not _place_rule_errors(rules=rules, rows=rows):
                form.add_error(None, texts)  # a problem with the list as a whole
        elif key == "target_repository":
            form.add_error("target", texts)
        elif key in form.fields:
            form.add_error(key, texts)
        else:
            form.add_error(None, texts)


def _place_rule_errors(*, rules: list[dict[str, Any]], rows: list[RuleForm]) -> bool:
    """Errors of each rule on its row; False when the engine names no single rule."""
    try:
        criteria.parse_rules(rules)
    except criteria.InvalidRules as invalid:
        for index, problems in invalid.by_rule.items():
            for key, problem in problems.items():
                rows[index].add_error(key if key in rows[index].fields else None, problem)
        return bool(invalid.by_rule)
    return False


class DryRunForm(forms.Form):
    tag = forms.CharField(max_length=128, label="Tag of this repository",
                          widget=forms.TextInput(attrs={"list": "source-tags", "autocomplete": "off"}),
                          help_text="What would the policy do to this tag now? Nothing is changed.")


class HistoryFilterForm(forms.Form):
    """Filters of the promotion history (a GET form); every one optional."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Promotion.Status.choices])
    policy = forms.IntegerField(required=False, min_value=1, label="Policy #")
    tag = forms.CharField(required=False, max_length=128, label="Source tag")

    def filters(self) -> dict[str, Any]:
        """The valid filters as `policies.selectors.promotions_of` takes them."""
        if not self.is_valid():
            return {}
        return {key: value for key, value in self.cleaned_data.items() if value not in (None, "")}
