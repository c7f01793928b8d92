"""License matching for the `license_name` criterion: SPDX ids compared case-insensitively, whole ids
only (``MIT`` is in ``MIT OR Apache-2.0`` but not in ``MIT-0``)."""
import re

_LICENSE_SPLIT = re.compile(r"[\s()]+")
_LICENSE_OPERATORS = frozenset({"and", "or", "with"})


def normalize_license(name: str) -> str:
    """Comparable form of a license id or name: casefolded, whitespace collapsed, and the SPDX
    aliases ``X-only`` → ``X`` and ``X+`` → ``X-or-later`` applied."""
    text = " ".join(name.casefold().split())
    if text.endswith("-only"):
        return text.removesuffix("-only")
    if text.endswith("+"):
        return text.removesuffix("+") + "-or-later"
    return text


def license_ids(expression: str) -> frozenset[str]:
    """Normalized ids an SPDX expression (or free-text license) contains.

    ``"(MIT OR Apache-2.0) AND BSD-3-Clause"`` → ``{mit, apache-2.0, bsd-3-clause, <whole>}``;
    words between operators stay together (``"MIT OR Public Domain"`` contains ``public domain``).
    """
    ids = {normalize_license(expression)}
    segment: list[str] = []
    for token in [*_LICENSE_SPLIT.split(expression.casefold()), "or"]:
        if not token:
            continue
        if token in _LICENSE_OPERATORS:
            if segment:
                ids.add(normalize_license(" ".join(segment)))
            segment = []
        else:
            segment.append(token)
    return frozenset(ids)
