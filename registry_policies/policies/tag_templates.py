"""Tag templates: the name a promoted or mirrored tag gets in the target (spec section 5).

An empty template keeps the source tag. Otherwise tokens are replaced: ``%n`` by the source tag,
``%%`` by a literal ``%``, and the time tokens ``%A %a %w %d %B %b %m %Y %y %H %I %p %M %S %f %Z
%j %W`` by the promotion time in UTC, with their strftime meanings and C-locale names (whatever
the process locale). Any other ``%x`` and a trailing lone ``%`` are invalid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import ValidationError

TAG_PATTERN = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
"""A valid tag (OCI distribution spec), matched with ``fullmatch``."""
MAX_TAG_LENGTH = 128

SAMPLE_SOURCE_TAG = "1.0-stable"
SAMPLE_TIME = datetime(2024, 9, 25, 13, 45, 30, 123456, tzinfo=UTC)
"""A Wednesday in September, afternoon: the longest day and month names and a PM hour."""

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")

_TIME_TOKENS: Mapping[str, Callable[[datetime], str]] = {
    "A": lambda t: _DAYS[t.weekday()],
    "a": lambda t: _DAYS[t.weekday()][:3],
    "w": lambda t: str(t.isoweekday() % 7),
    "d": lambda t: f"{t.day:02d}",
    "B": lambda t: _MONTHS[t.month - 1],
    "b": lambda t: _MONTHS[t.month - 1][:3],
    "m": lambda t: f"{t.month:02d}",
    "Y": lambda t: f"{t.year:04d}",
    "y": lambda t: f"{t.year % 100:02d}",
    "H": lambda t: f"{t.hour:02d}",
    "I": lambda t: f"{(t.hour - 1) % 12 + 1:02d}",
    "p": lambda t: "AM" if t.hour < 12 else "PM",
    "M": lambda t: f"{t.minute:02d}",
    "S": lambda t: f"{t.second:02d}",
    "f": lambda t: f"{t.microsecond:06d}",
    "Z": lambda t: "UTC",
    "j": lambda t: f"{t.timetuple().tm_yday:03d}",
    "W": lambda t: f"{(t.timetuple().tm_yday - 1 + 7 - t.weekday()) // 7:02d}",
}
TOKENS: tuple[str, ...] = ("%n", "%%", *(f"%{letter}" for letter in _TIME_TOKENS))
"""Every token a template may use."""


class TagTemplateError(ValueError):
    """Base of the errors below; ``reason`` is a sentence for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidTemplate(TagTemplateError):
    """The template itself is malformed (unknown token or lone ``%``)."""


class InvalidRenderedTag(TagTemplateError):
    """The template rendered to something that is not a valid tag; ``tag`` is what it rendered."""

    def __init__(self, tag: str, reason: str) -> None:
        super().__init__(f"The rendered tag {tag!r} is not a valid tag: {reason}.")
        self.tag = tag
        self.problem = reason


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a valid tag (:data:`TAG_PATTERN`), or None when it is valid."""
    if TAG_PATTERN.fullmatch(tag):
        return None
    if not tag:
        return "it is empty"
    if len(tag) > MAX_TAG_LENGTH:
        return f"it is {len(tag)} characters long; a tag has at most {MAX_TAG_LENGTH}"
    if not re.fullmatch(r"[a-zA-Z0-9_]", tag[0]):
        return f"it starts with {tag[0]!r}; a tag starts with a letter, a digit or '_'"
    bad = sorted({char for char in tag if not re.fullmatch(r"[a-zA-Z0-9._-]", char)})
    if bad:
        shown = ", ".join(repr(char) for char in bad)
        return f"it contains {shown}; a tag has only letters, digits, '.', '_' and '-'"
    return "it does not match the tag pattern"  # unreachable: the checks above cover the pattern


def render_tag(template: str, *, source_tag: str, now: datetime) -> str:
    """The tag ``template`` gives for ``source_tag`` at time ``now`` (converted to UTC).

    Raises :class:`InvalidTemplate` for a malformed template, :class:`InvalidRenderedTag` when the
    result is not a valid tag, and ``ValueError`` when ``now`` is naive (an ambiguous time).
    """
    tag = expand_template(template, source_tag=source_tag, now=now)
    problem = tag_problem(tag)
    if problem is not None:
        raise InvalidRenderedTag(tag, problem)
    return tag


def expand_template(template: str, *, source_tag: str, now: datetime) -> str:
    """Replace the tokens of ``template`` (empty: ``source_tag``) without checking the result is a tag.

    Raises :class:`InvalidTemplate` for a malformed template and ``ValueError`` for a naive ``now``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime.")
    if not template:
        return source_tag
    return _substitute(template, source_tag=source_tag, now=now.astimezone(UTC))


def validate_template(template: str) -> None:
    """Raise ``ValidationError({"tag_template": [...]})`` unless ``template`` is usable.

    Usable: only known tokens, and rendering the sample (source tag ``1.0-stable`` at a fixed time)
    gives a valid tag. Error codes: ``invalid_token``, ``invalid_tag``.
    """
    try:
        render_tag(template, source_tag=SAMPLE_SOURCE_TAG, now=SAMPLE_TIME)
    except InvalidTemplate as exc:
        raise ValidationError({"tag_template": [ValidationError(exc.reason, code="invalid_token")]})
    except InvalidRenderedTag as exc:
        raise ValidationError({"tag_template": [ValidationError(exc.reason, code="invalid_tag")]})


@dataclass(frozen=True, slots=True)
class Preview:
    """Live preview of a template: the rendered ``tag``, or the ``error`` saying why there is none."""

    tag: str | None
    error: str | None


def preview(template: str, source_tag: str, *, now: datetime | None = None) -> Preview:
    """Render ``template`` for ``source_tag`` at ``now`` (default: the current time); never raises."""
    try:
        return Preview(render_tag(template, source_tag=source_tag, now=now or datetime.now(UTC)), None)
    except TagTemplateError as exc:
        return Preview(None, exc.reason)


def _substitute(template: str, *, source_tag: str, now: datetime) -> str:
    parts: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char != "%":
            parts.append(char)
            index += 1
            continue
        if index + 1 == len(template):
            raise InvalidTemplate("The template ends with a lone '%'; write '%%' for a literal '%'.")
        parts.append(_token(template[index + 1], source_tag=source_tag, now=now))
        index += 2
    return "".join(parts)


def _token(letter: str, *, source_tag: str, now: datetime) -> str:
    if letter == "n":
        return source_tag
    if letter == "%":
        return "%"
    render = _TIME_TOKENS.get(letter)
    if render is None:
        raise InvalidTemplate(f"Unknown token '%{letter}'; known tokens: {' '.join(TOKENS)}.")
    return render(now)
