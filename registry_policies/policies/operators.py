"""The operators of policy rules and how each one compares: strings, regular expressions,
semantic-version ranges and counts. Pure functions; the rule model, validation and evaluation
live in :mod:`registry_policies.policies.criteria`.

- String operators (``equals`` … ``not_one_of``) compare exactly (callers fold case where a field
  is case-insensitive).
- ``matches`` takes a regular expression that must match the *whole* tag. Patterns run on RE2
  (``google-re2``), whose matching time is linear in the tag's length whatever the pattern, so a
  hostile pattern cannot stall a worker; RE2 has no backreferences or lookaround, and saving a
  pattern that uses them fails with RE2's reason.
- ``semver_in`` takes an npm-style range (``>=1.2.0 <2.0.0``, ``^1.4``, ``~2.1``, ``1.x``,
  ``1.2.0 - 1.4.0``, ``||`` alternatives), parsed by ``node-semver``. A tag is a version when it
  is a strict semantic version, with or without a leading ``v`` (``1.4.2``, ``v2.0.0-rc.1``); tags
  that are not versions never match. Pre-releases match only ranges that name a pre-release of the
  same major.minor.patch (npm's rule: ``>=1.2.0 <2.0.0`` excludes ``2.0.0-rc.1`` and ``1.5.0-beta``).
- Count operators (``gte`` … ``lt``) compare integers.
"""
from __future__ import annotations

import operator as op
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache

import nodesemver
import re2


class Operator(StrEnum):
    EQUALS = "equals"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    CONTAINS = "contains"
    ONE_OF = "one_of"
    NOT_ONE_OF = "not_one_of"
    MATCHES = "matches"
    SEMVER_IN = "semver_in"
    GTE = "gte"
    GT = "gt"
    EQ = "eq"
    NE = "ne"
    LTE = "lte"
    LT = "lt"


NAME_OPERATORS: tuple[Operator, ...] = (
    Operator.EQUALS, Operator.STARTS_WITH, Operator.ENDS_WITH, Operator.CONTAINS,
    Operator.ONE_OF, Operator.NOT_ONE_OF,
)
PATTERN_OPERATORS: tuple[Operator, ...] = (Operator.MATCHES, Operator.SEMVER_IN)
"""Operators whose single value is a pattern or range (never split on commas)."""
TAG_OPERATORS: tuple[Operator, ...] = (*NAME_OPERATORS, *PATTERN_OPERATORS)
COUNT_OPERATORS: tuple[Operator, ...] = (
    Operator.GTE, Operator.GT, Operator.EQ, Operator.NE, Operator.LTE, Operator.LT,
)
LIST_OPERATORS: frozenset[Operator] = frozenset({Operator.ONE_OF, Operator.NOT_ONE_OF})

OPERATOR_LABELS: Mapping[Operator, str] = {
    Operator.EQUALS: "equals", Operator.STARTS_WITH: "starts with", Operator.ENDS_WITH: "ends with",
    Operator.CONTAINS: "contains", Operator.ONE_OF: "is one of", Operator.NOT_ONE_OF: "is not one of",
    Operator.MATCHES: "matches", Operator.SEMVER_IN: "is a version in",
    Operator.GTE: "≥", Operator.GT: ">", Operator.EQ: "=",
    Operator.NE: "≠", Operator.LTE: "≤", Operator.LT: "<",
}
NEGATED_LABELS: Mapping[Operator, str] = {
    Operator.EQUALS: "does not equal", Operator.STARTS_WITH: "does not start with",
    Operator.ENDS_WITH: "does not end with", Operator.CONTAINS: "does not contain",
    Operator.ONE_OF: "is not one of", Operator.NOT_ONE_OF: "is one of",
    Operator.MATCHES: "does not match", Operator.SEMVER_IN: "is not a version in",
}

_COMPARISONS: Mapping[Operator, Callable[[int, int], bool]] = {
    Operator.GTE: op.ge, Operator.GT: op.gt, Operator.EQ: op.eq,
    Operator.NE: op.ne, Operator.LTE: op.le, Operator.LT: op.lt,
}

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 1 << 20  # a pattern whose automaton needs more than 1 MiB is refused on save
_RE2_OPTIONS.log_errors = False


class InvalidOperand(ValueError):
    """A pattern or range that cannot be used; the message says why, for the user."""


# ------------------------------------------------------------------------------------ strings


def text_matches(operator: Operator, subject: str, values: Sequence[str]) -> bool:
    """Whether ``subject`` satisfies a string operator (exact, case as given)."""
    if operator is Operator.EQUALS:
        return subject == values[0]
    if operator is Operator.STARTS_WITH:
        return subject.startswith(values[0])
    if operator is Operator.ENDS_WITH:
        return subject.endswith(values[0])
    if operator is Operator.CONTAINS:
        return values[0] in subject
    if operator is Operator.ONE_OF:
        return subject in values
    if operator is Operator.NOT_ONE_OF:
        return subject not in values
    raise ValueError(f"{operator} is not a string operator")


# ------------------------------------------------------------------------------------- regex


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re2._Regexp:
    """The compiled RE2 pattern (cached per process); InvalidOperand when RE2 refuses it."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        raise InvalidOperand(f"{pattern!r} is not a regular expression RE2 accepts ({exc}); "
                             "lookaround and backreferences are not supported.") from exc


def pattern_matches(pattern: str, subject: str) -> bool:
    """Whether the whole of ``subject`` matches ``pattern`` (linear time)."""
    return compile_pattern(pattern).fullmatch(subject) is not None


# ------------------------------------------------------------------------------------ semver


@lru_cache(maxsize=4096)
def parse_range(text: str) -> nodesemver.Range:
    """The parsed npm-style range (cached); InvalidOperand when it is not one."""
    if nodesemver.valid_range(text, loose=False) is None:
        raise InvalidOperand(f"{text!r} is not a version range; write e.g. '>=1.2.0 <2.0.0', '^1.4' or '~2.1'.")
    return nodesemver.make_range(text, loose=False)


def version_of_tag(tag: str) -> str | None:
    """The semantic version a tag names (``v1.4.2`` → ``1.4.2``), or None when it names none."""
    candidate = tag[1:] if tag[:1] in ("v", "V") else tag
    return nodesemver.valid(candidate, loose=False)


@lru_cache(maxsize=4096)
def _semver_of_tag(tag: str) -> nodesemver.SemVer | None:
    """The parsed version of a tag (cached: one push is checked against many ranges)."""
    version = version_of_tag(tag)
    return None if version is None else nodesemver.make_semver(version, loose=False)


def version_in_range(tag: str, range_text: str) -> bool:
    """Whether ``tag`` is a semantic version inside ``range_text``; non-versions never are."""
    version = _semver_of_tag(tag)
    if version is None:
        return False
    return bool(parse_range(range_text).test(version))


# ------------------------------------------------------------------------------------ counts


def compare_count(operator: Operator, count: int, limit: int) -> bool:
    return _COMPARISONS[operator](count, limit)
