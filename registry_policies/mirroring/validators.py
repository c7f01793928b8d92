"""Validation of what users type into mirrors: remote repository names, tag filters, intervals.

Every error is a ValidationError keyed by the field it is about, so forms, the API and the
services report it next to the right input.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from django.core.exceptions import ValidationError

from registry_policies.policies import criteria

REGEX_PREFIX = "regex:"
MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_FILTER_LENGTH = 500
# The OCI distribution spec's repository name (path components separated by "/").
_REMOTE_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def normalize_remote_repository(value: str, *, field: str = "remote_repository") -> str:
    """The repository path on the remote registry (``team/app``, ``library/nginx``): lowercase
    components separated by ``/``, at most 255 characters. Leading/trailing slashes are dropped."""
    text = (value or "").strip().strip("/")
    if not text:
        raise ValidationError({field: "Enter the repository on the remote registry, e.g. team/website."})
    if "://" in text or ":" in text or "@" in text:
        raise ValidationError({field: "Give only the repository path (e.g. team/website), without the registry "
                                      "host, a tag or a digest."})
    if len(text) > 255 or not _REMOTE_REPOSITORY.match(text):
        raise ValidationError({field: f"{text!r} is not a valid repository name: lowercase letters and digits, "
                                      "separated by '.', '_', '__' or '-', with '/' between components."})
    return text


def normalize_rules(value: Any, *, field: str = "rules") -> list[dict[str, Any]]:
    """`value` parsed with the criteria engine and returned in its stored shape: a list of
    ``{field, operator, values[, severity]}`` dicts. InvalidRules (a ValidationError on `field`)."""
    if value is None:
        value = []
    rules = criteria.parse_rules(value, field_name=field)
    stored = []
    for rule in rules:
        data = rule.to_dict()
        if data.get("severity") is None:
            data.pop("severity", None)
        stored.append(data)
    return stored


def normalize_tag_filter(value: str, *, field: str = "tag_filter") -> str:
    """A glob (``v1.*``, ``*-stable``; empty means every tag) or ``regex:<pattern>`` (Python
    syntax, matched against the whole tag). The regex is compiled to check it."""
    text = (value or "").strip()
    if len(text) > MAX_FILTER_LENGTH:
        raise ValidationError({field: f"The tag filter is longer than {MAX_FILTER_LENGTH} characters."})
    if text.startswith(REGEX_PREFIX):
        pattern = text[len(REGEX_PREFIX):]
        if not pattern:
            raise ValidationError({field: "Write a regular expression after 'regex:'."})
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValidationError({field: f"Not a valid regular expression: {error}."}) from None
    return text


def tag_matches(tag_filter: str, tag: str) -> bool:
    """Whether `tag` passes the (normalised) filter: empty matches every tag; ``regex:`` must match
    the whole tag; otherwise a case-sensitive glob (``*``, ``?``, ``[…]``)."""
    if not tag_filter:
        return True
    if tag_filter.startswith(REGEX_PREFIX):
        return re.fullmatch(tag_filter[len(REGEX_PREFIX):], tag) is not None
    return fnmatch.fnmatchcase(tag, tag_filter)


def validate_interval(value: int, *, field: str = "interval_seconds") -> int:
    """Polling interval in seconds: at least 60 (one poll a minute), at most a week."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({field: "Enter a whole number of seconds."})
    if value < MIN_INTERVAL_SECONDS:
        raise ValidationError({field: f"The interval must be at least {MIN_INTERVAL_SECONDS} seconds."})
    if value > MAX_INTERVAL_SECONDS:
        raise ValidationError({field: f"The interval must be at most {MAX_INTERVAL_SECONDS} seconds (a week)."})
    return value
