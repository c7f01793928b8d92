"""Evaluating a policy's rules on one tag (spec section 5): every rule must match; a rule that needs
scan data waits (``pending``) until every image of the tag is scanned. Pure: no database, no clock;
scan data is read through :class:`~registry_policies.policies.facts.ImageFacts`. Matching semantics
per field are described in :mod:`.criteria`, per operator in :mod:`.operators`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from registry_policies.policies.criteria import OPERATOR_LABELS, Operator, Outcome, Rule, RuleField, quote_all
from registry_policies.policies.facts import Component, ImageFacts, vulnerability_count
from registry_policies.policies.license_match import license_ids, normalize_license
from registry_policies.policies.operators import (
    NEGATED_LABELS,
    compare_count,
    pattern_matches,
    text_matches,
    version_in_range,
)

# ----------------------------------------------------------------------------------- evaluation


class RuleResult(NamedTuple):
    """How one rule fared, with a sentence for the dry-run display."""

    rule: Rule
    outcome: Outcome
    explanation: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Overall outcome of a policy's rules on one tag, with every rule's result in rule order."""

    outcome: Outcome
    results: tuple[RuleResult, ...]

    @property
    def matched(self) -> bool:
        return self.outcome is Outcome.MATCH

    @property
    def pending(self) -> bool:
        return self.outcome is Outcome.PENDING

    @property
    def reason(self) -> str:
        """One line saying why: the rules that failed (no_match) or wait (pending), or a summary."""
        if not self.results:
            return "No rules: every tag matches."
        deciding = [r.explanation for r in self.results if r.outcome is self.outcome]
        if self.outcome is Outcome.MATCH:
            return "All rules match: " + "; ".join(deciding)
        return "; ".join(deciding)

    def to_dict(self) -> dict[str, object]:
        """JSON shape for a dry run: ``{outcome, reason, rules: [{rule, outcome, explanation}]}``."""
        return {
            "outcome": str(self.outcome),
            "reason": self.reason,
            "rules": [{"rule": r.rule.to_dict(), "outcome": str(r.outcome), "explanation": r.explanation}
                      for r in self.results],
        }


def evaluate(rules: Iterable[Rule], *, tag_name: str, facts: ImageFacts) -> Evaluation:
    """Evaluate every rule (all must match) on the tag ``tag_name`` whose scan data is ``facts``.

    A rule needing scan data is ``pending`` while ``facts.scanned`` is false. Overall: ``no_match``
    if any rule fails (a failing rule can never be rescued by a scan), else ``pending`` if any rule
    waits, else ``match``. No rules: ``match``.
    """
    results = tuple(evaluate_rule(rule, tag_name=tag_name, facts=facts) for rule in rules)
    outcomes = {result.outcome for result in results}
    if Outcome.NO_MATCH in outcomes:
        overall = Outcome.NO_MATCH
    elif Outcome.PENDING in outcomes:
        overall = Outcome.PENDING
    else:
        overall = Outcome.MATCH
    return Evaluation(outcome=overall, results=results)


def evaluate_rule(rule: Rule, *, tag_name: str, facts: ImageFacts) -> RuleResult:
    """Evaluate one rule; see :func:`evaluate`."""
    if rule.needs_scan and not facts.scanned:
        explanation = f"Waiting for every image of the tag to be scanned ({rule})."
        return RuleResult(rule, Outcome.PENDING, explanation)
    if rule.field is RuleField.TAG_NAME:
        matched, explanation = _tag_name(rule, tag_name)
    elif rule.field is RuleField.COMPONENT_NAME:
        matched, explanation = _component_name(rule, facts.components)
    elif rule.field is RuleField.VULNERABILITIES:
        matched, explanation = _vulnerabilities(rule, facts)
    else:
        matched, explanation = _license_name(rule, facts.components)
    return RuleResult(rule, Outcome.MATCH if matched else Outcome.NO_MATCH, explanation)


def _tag_name_matches(rule: Rule, tag_name: str) -> bool:
    if rule.operator is Operator.MATCHES:
        return pattern_matches(rule.values[0], tag_name)
    if rule.operator is Operator.SEMVER_IN:
        return version_in_range(tag_name, rule.values[0])
    return text_matches(rule.operator, tag_name, rule.values)


def tag_name_rejects(rules: Iterable[Rule], tag_name: str) -> bool:
    """Whether some tag-name rule fails on ``tag_name`` (then :func:`evaluate` says ``no_match``),
    decided without scan data or explanations: the fast path when one push meets many policies."""
    return any(rule.field is RuleField.TAG_NAME and not _tag_name_matches(rule, tag_name) for rule in rules)


def _tag_name(rule: Rule, tag_name: str) -> tuple[bool, str]:
    matched = _tag_name_matches(rule, tag_name)
    verb = OPERATOR_LABELS[rule.operator] if matched else NEGATED_LABELS[rule.operator]
    return matched, f"Tag {tag_name!r} {verb} {quote_all(rule.values)}."


def _component_name(rule: Rule, components: Sequence[Component]) -> tuple[bool, str]:
    values = [value.casefold() for value in rule.values]
    wanted = quote_all(rule.values)
    if rule.operator is Operator.NOT_ONE_OF:
        hit = _first(components, lambda c: c.name.casefold() in values)
        if hit is None:
            return True, f"No component is one of {wanted}."
        return False, f"Component {_show(hit)} is one of {wanted}."
    hit = _first(components, lambda c: text_matches(rule.operator, c.name.casefold(), values))
    label = OPERATOR_LABELS[rule.operator]
    if hit is None:
        return False, f"No component name {label} {wanted} ({len(components)} components)."
    return True, f"Component {_show(hit)} {label} {wanted}."


def _vulnerabilities(rule: Rule, facts: ImageFacts) -> tuple[bool, str]:
    assert rule.severity is not None  # guaranteed by validation
    count = vulnerability_count(facts, rule.severity)
    matched = compare_count(rule.operator, count, int(rule.values[0]))
    relation = "is" if matched else "is not"
    label = OPERATOR_LABELS[rule.operator]
    return matched, f"{count} {rule.severity} vulnerabilities, which {relation} {label} {rule.values[0]}."


def _license_name(rule: Rule, components: Sequence[Component]) -> tuple[bool, str]:
    wanted_ids = {normalize_license(value) for value in rule.values}
    wanted = quote_all(rule.values)
    found: tuple[Component, str] | None = None
    for component in components:
        license_expression = next((lic for lic in component.licenses if license_ids(lic) & wanted_ids), None)
        if license_expression is not None:
            found = (component, license_expression)
            break
    if rule.operator is Operator.ONE_OF:
        if found is None:
            return False, f"No component has license {wanted}."
        return True, f"Component {_show(found[0])} has license {found[1]!r}, one of {wanted}."
    if found is None:
        return True, f"No component has license {wanted}."
    return False, f"Component {_show(found[0])} has license {found[1]!r}, which is one of {wanted}."


# -------------------------------------------------------------------------------------- helpers


def _first(components: Sequence[Component], predicate: Callable[[Component], bool]) -> Component | None:
    return next((component for component in components if predicate(component)), None)


def _show(component: Component) -> str:
    return f"{component.name!r}" + (f" {component.version}" if component.version else "")
