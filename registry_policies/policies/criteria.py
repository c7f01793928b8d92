"""The criteria engine shared by promotion and push-mirror policies (spec sections 5 and 8a).

Pure: no database, no clock. A policy's rules are parsed from their API/JSON shape with
:func:`parse_rules` (which validates and normalizes) and evaluated against a tag with
:func:`evaluate`, reading scan data through :class:`~registry_policies.policies.facts.ImageFacts`.

Matching semantics:

- ``tag_name``: case-sensitive string comparison with the tag name; also ``matches`` (a regular
  expression that must match the whole tag, run on RE2) and ``semver_in`` (an npm-style version
  range; tags that are not semantic versions never match). See :mod:`.operators`.
- ``component_name``: case-insensitive (package ecosystems disagree on case); matches when *some*
  component matches, except ``not_one_of``, which matches when *no* component is in the list.
- ``vulnerabilities``: compares the number of vulnerabilities of ``severity`` (``all`` = the sum of
  critical, major and minor) with the single integer value.
- ``license_name``: case-insensitive; a component has a license when its license expression
  contains that id (``MIT OR Apache-2.0`` contains ``mit`` and ``apache-2.0``; ``GPL-2.0`` and
  ``GPL-2.0-only`` are the same id, as are ``GPL-2.0+`` and ``GPL-2.0-or-later``). ``one_of``
  matches when some component has one of the licenses, ``not_one_of`` when none has any.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import ValidationError

from registry_policies.policies.facts import (
    ALL_SEVERITIES,
    Severity,
)
from registry_policies.policies.operators import (
    COUNT_OPERATORS,
    LIST_OPERATORS,
    NAME_OPERATORS,
    OPERATOR_LABELS,
    PATTERN_OPERATORS,
    TAG_OPERATORS,
    InvalidOperand,
    Operator,
    compile_pattern,
    parse_range,
)

__all__ = [
    "COUNT_OPERATORS", "NAME_OPERATORS", "OPERATOR_LABELS", "PATTERN_OPERATORS", "TAG_OPERATORS", "Operator",
    "Rule", "RuleField", "Outcome", "InvalidRules", "parse_rule", "parse_rules", "describe",
]


class RuleField(StrEnum):
    TAG_NAME = "tag_name"
    COMPONENT_NAME = "component_name"
    VULNERABILITIES = "vulnerabilities"
    LICENSE_NAME = "license_name"


class Outcome(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    PENDING = "pending"


OPERATORS_BY_FIELD: Mapping[RuleField, tuple[Operator, ...]] = {
    RuleField.TAG_NAME: TAG_OPERATORS,
    RuleField.COMPONENT_NAME: NAME_OPERATORS,
    RuleField.VULNERABILITIES: COUNT_OPERATORS,
    RuleField.LICENSE_NAME: (Operator.ONE_OF, Operator.NOT_ONE_OF),
}
SCAN_FIELDS: frozenset[RuleField] = frozenset(
    {RuleField.COMPONENT_NAME, RuleField.VULNERABILITIES, RuleField.LICENSE_NAME}
)
RULE_SEVERITIES: tuple[str, ...] = (*(band.value for band in Severity), ALL_SEVERITIES)

FIELD_LABELS: Mapping[RuleField, str] = {
    RuleField.TAG_NAME: "tag name", RuleField.COMPONENT_NAME: "component name",
    RuleField.VULNERABILITIES: "vulnerabilities", RuleField.LICENSE_NAME: "license",
}

MAX_VALUES = 100
MAX_VALUE_LENGTH = 255
RULE_KEYS: frozenset[str] = frozenset({"field", "operator", "values", "severity"})
NON_FIELD_ERRORS_KEY = "non_field_errors"
"""Key of :attr:`InvalidRules.by_rule` for an item that is not a rule at all (DRF's name)."""

_INTEGER = re.compile(r"-?[0-9]+")


# --------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    """One criterion. Construction validates and normalizes (strips values, canonical counts).

    Raises :class:`~django.core.exceptions.ValidationError` keyed by ``field``, ``operator``,
    ``values`` or ``severity`` when invalid. Prefer :func:`parse_rule` for untrusted input.
    """

    field: RuleField
    operator: Operator
    values: tuple[str, ...]
    severity: str | None = None

    def __post_init__(self) -> None:
        field, operator, values, severity = _normalize(
            {"field": self.field, "operator": self.operator, "values": self.values, "severity": self.severity}
        )
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "severity", severity)

    @property
    def needs_scan(self) -> bool:
        """True when the rule reads scan data (and so waits until the tag is scanned)."""
        return self.field in SCAN_FIELDS

    def to_dict(self) -> dict[str, object]:
        """The API/JSON shape: ``{field, operator, values: [...], severity}`` (severity may be None)."""
        return {"field": str(self.field), "operator": str(self.operator),
                "values": list(self.values), "severity": self.severity}

    def __str__(self) -> str:
        return describe(self)


def describe(rule: Rule) -> str:
    """Human-readable rule, e.g. ``tag name starts with 'v'`` or ``critical vulnerabilities ≤ 0``."""
    label = OPERATOR_LABELS[rule.operator]
    if rule.field is RuleField.VULNERABILITIES:
        return f"{rule.severity} vulnerabilities {label} {rule.values[0]}"
    return f"{FIELD_LABELS[rule.field]} {label} {quote_all(rule.values)}"


def parse_rule(data: object) -> Rule:
    """Validate one rule in its API shape and return it normalized.

    Raises ``ValidationError`` whose ``message_dict`` is keyed by the offending key (``field``,
    ``operator``, ``values``, ``severity``, or an unknown key), or a plain ``ValidationError``
    when ``data`` is not a mapping. Each error carries a ``code`` (e.g. ``unknown_operator``).
    """
    if not isinstance(data, Mapping):
        raise ValidationError("A rule must be an object with field, operator and values.", code="invalid")
    field, operator, values, severity = _normalize(data)
    return Rule(field=field, operator=operator, values=values, severity=severity)


class InvalidRules(ValidationError):
    """Raised by :func:`parse_rules`.

    Its ``message_dict`` is ``{field_name: ["rules[0].operator: …", …]}`` (what DRF and forms show);
    ``by_rule`` keeps the structure: ``{0: {"operator": ["…"]}}``, and :attr:`nested` renders it as
    ``{"rules": {"0": {"operator": ["…"]}}}`` (DRF's ListField error shape).
    """

    def __init__(self, field_name: str, by_rule: Mapping[int, Mapping[str, list[str]]],
                 flat: list[ValidationError]) -> None:
        super().__init__({field_name: flat})
        self.field_name = field_name
        self.by_rule: dict[int, dict[str, list[str]]] = {i: dict(errors) for i, errors in by_rule.items()}

    def __reduce__(self) -> tuple[type[InvalidRules], tuple[object, ...]]:
        # Exception pickling re-calls the class with self.args, which do not match our __init__.
        return (type(self), (self.field_name, self.by_rule, self.error_dict[self.field_name]))

    @property
    def nested(self) -> dict[str, dict[str, dict[str, list[str]]]]:
        return {self.field_name: {str(index): errors for index, errors in self.by_rule.items()}}


def parse_rules(data: object, *, field_name: str = "rules") -> list[Rule]:
    """Validate a list of rules (API shape) and return them normalized, in order.

    Raises :class:`InvalidRules` listing every problem of every rule, each message naming its
    place (``rules[2].values: …``), or naming ``field_name`` itself when ``data`` is not a list.
    """
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        message = f"{field_name}: must be a list of rules."
        raise InvalidRules(field_name, {}, [ValidationError(message, code="invalid")])
    rules: list[Rule] = []
    by_rule: dict[int, dict[str, list[str]]] = {}
    flat: list[ValidationError] = []
    for index, item in enumerate(data):
        try:
            rules.append(parse_rule(item))
        except ValidationError as exc:
            errors = _errors_by_key(exc)
            by_rule[index] = {key: [_text(e) for e in errs] for key, errs in errors.items()}
            for key, errs in errors.items():
                place = f"{field_name}[{index}]" + (f".{key}" if key != NON_FIELD_ERRORS_KEY else "")
                flat += [ValidationError(f"{place}: {_text(e)}", code=e.code) for e in errs]
    if flat:
        raise InvalidRules(field_name, by_rule, flat)
    return rules


def _errors_by_key(exc: ValidationError) -> dict[str, list[ValidationError]]:
    if hasattr(exc, "error_dict"):
        return {key: list(errors) for key, errors in exc.error_dict.items()}
    return {NON_FIELD_ERRORS_KEY: list(exc.error_list)}


def _text(error: ValidationError) -> str:
    message = str(error.message)
    return message % error.params if error.params else message


# ----------------------------------------------------------------------------------- validation


_Problems = dict[str, list[ValidationError]]
_Normalized = tuple[RuleField, Operator, tuple[str, ...], str | None]


def _normalize(data: Mapping[str, object]) -> _Normalized:
    """Validate and normalize the four parts of a rule, collecting every problem before raising."""
    problems: _Problems = {}
    for key in data:
        if key not in RULE_KEYS:
            _add(problems, str(key), "Unknown key; a rule has field, operator, values and severity.",
                 "unknown_key")
    field = _parse_field(data.get("field"), problems)
    operator = _parse_operator(data.get("operator"), field, problems)
    severity = _parse_severity(data.get("severity"), field, problems)
    values = _parse_values(data.get("values"), field, operator, problems)
    if problems or field is None or operator is None or values is None:
        raise ValidationError(problems)
    return field, operator, values, severity


def _add(problems: _Problems, key: str, message: str, code: str) -> None:
    problems.setdefault(key, []).append(ValidationError(message, code=code))


def _required_text(raw: object, key: str, problems: _Problems) -> str | None:
    """The stripped string, or None after recording why it is missing or not a string."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        _add(problems, key, "This field is required.", "required")
        return None
    if not isinstance(raw, str):
        _add(problems, key, "Must be a string.", "invalid")
        return None
    return raw.strip()


def _parse_field(raw: object, problems: _Problems) -> RuleField | None:
    text = _required_text(raw, "field", problems)
    if text is None:
        return None
    if text not in RuleField.__members__.values():
        _add(problems, "field", f"Unknown field {text!r}; expected one of {_names(RuleField)}.",
             "unknown_field")
        return None
    return RuleField(text)


def _parse_operator(raw: object, field: RuleField | None, problems: _Problems) -> Operator | None:
    text = _required_text(raw, "operator", problems)
    if text is None:
        return None
    if text not in Operator.__members__.values():
        _add(problems, "operator", f"Unknown operator {text!r}; expected one of {_names(Operator)}.",
             "unknown_operator")
        return None
    operator = Operator(text)
    if field is not None and operator not in OPERATORS_BY_FIELD[field]:
        allowed = ", ".join(OPERATORS_BY_FIELD[field])
        _add(problems, "operator", f"Operator {text!r} does not apply to {field}; use one of {allowed}.",
             "operator_not_for_field")
        return None
    return operator


def _parse_severity(raw: object, field: RuleField | None, problems: _Problems) -> str | None:
    if field is not RuleField.VULNERABILITIES:
        absent = raw is None or (isinstance(raw, str) and not raw.strip())
        if not absent and field is not None:
            _add(problems, "severity", f"Only vulnerabilities rules take a severity, not {field} rules.",
                 "severity_not_allowed")
        return None
    text = _required_text(raw, "severity", problems)
    if text is not None and text not in RULE_SEVERITIES:
        expected = ", ".join(RULE_SEVERITIES)
        _add(problems, "severity", f"Unknown severity {text!r}; expected one of {expected}.",
             "unknown_severity")
        return None
    return text


def _parse_values(raw: object, field: RuleField | None, operator: Operator | None,
                  problems: _Problems) -> tuple[str, ...] | None:
    if raw is None:
        _add(problems, "values", "This field is required.", "required")
        return None
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        _add(problems, "values", "Must be a list of strings.", "invalid")
        return None
    values = _clean_strings(raw, problems)
    if values is None:
        return None
    if not values:
        _add(problems, "values", "Give at least one value.", "empty")
        return None
    if operator is None:
        return values
    if operator in LIST_OPERATORS:
        if len(values) > MAX_VALUES:
            _add(problems, "values", f"At most {MAX_VALUES} values.", "too_many_values")
            return None
        return tuple(dict.fromkeys(values))  # drop duplicates, keep order
    if len(values) != 1:
        _add(problems, "values", f"Operator {operator!s} takes exactly one value, not {len(values)}.",
             "too_many_values")
        return None
    if field is RuleField.VULNERABILITIES:
        return _parse_count(values[0], problems)
    if operator in (Operator.MATCHES, Operator.SEMVER_IN):
        return _parse_operand(operator, values[0], problems)
    return values


def _parse_operand(operator: Operator, text: str, problems: _Problems) -> tuple[str, ...] | None:
    """A `matches` pattern must compile on RE2; a `semver_in` range must parse."""
    try:
        if operator is Operator.MATCHES:
            compile_pattern(text)
        else:
            parse_range(text)
    except InvalidOperand as exc:
        code = "invalid_pattern" if operator is Operator.MATCHES else "invalid_range"
        _add(problems, "values", str(exc), code)
        return None
    return (text,)


def _clean_strings(raw: Sequence[object], problems: _Problems) -> tuple[str, ...] | None:
    """Each item stripped; None after recording every non-string, empty or too long item."""
    cleaned: list[str] = []
    ok = True
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, str):
            kind = type(item).__name__
            _add(problems, "values", f"Value {position} must be a string, not {kind}.", "invalid")
            ok = False
        elif not item.strip():
            _add(problems, "values", f"Value {position} is empty.", "blank")
            ok = False
        elif len(item.strip()) > MAX_VALUE_LENGTH:
            _add(problems, "values", f"Value {position} is longer than {MAX_VALUE_LENGTH} characters.",
                 "too_long")
            ok = False
        else:
            cleaned.append(item.strip())
    return tuple(cleaned) if ok else None


def _parse_count(text: str, problems: _Problems) -> tuple[str, ...] | None:
    if not _INTEGER.fullmatch(text):
        _add(problems, "values", f"{text!r} is not a whole number of vulnerabilities.", "not_integer")
        return None
    if text.startswith("-"):
        _add(problems, "values", "A number of vulnerabilities cannot be negative.", "negative")
        return None
    return (str(int(text)),)


def _names(enum: type[StrEnum]) -> str:
    return ", ".join(member.value for member in enum)


def quote_all(values: Iterable[str]) -> str:
    return ", ".join(repr(value) for value in values)
