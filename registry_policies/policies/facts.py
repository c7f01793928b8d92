"""Image facts: what the criteria engine may know about the image(s) a tag points at.

The criteria engine (:mod:`registry_policies.policies.criteria`) reads scan data only through the
:class:`ImageFacts` protocol, so it stays pure and testable. Scanning provides a database-backed
implementation later; tests and dry runs use :class:`StaticImageFacts`.

Contract of every implementation:

- ``scanned`` is true only when *every* image of the tag (every child of an index) has a finished
  scan. While it is false, ``components`` and ``vulnerability_counts`` are not consulted.
- ``components`` is the union of the components of every image of the tag.
- ``vulnerability_counts`` maps ``critical``/``major``/``minor`` to non-negative counts; a missing
  key means 0. The pseudo-severity ``all`` is never stored: it is the sum (see
  :func:`vulnerability_count`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, runtime_checkable


class Severity(StrEnum):
    """Severity bands of a vulnerability (CVSS base score bands, see spec section 6)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"


SEVERITY_NAMES: frozenset[str] = frozenset(band.value for band in Severity)

ALL_SEVERITIES = "all"
"""Pseudo-severity accepted by vulnerability rules: the sum over every band."""


@dataclass(frozen=True, slots=True)
class Component:
    """One software component found in an image (a package, a library, a module)."""

    name: str
    version: str = ""
    type: str = ""
    licenses: Sequence[str] = ()

    def __post_init__(self) -> None:
        # Freeze the license list so a Component is truly immutable (and hashable).
        object.__setattr__(self, "licenses", tuple(self.licenses))


@runtime_checkable
class ImageFacts(Protocol):
    """Read-only view of the scan data of a tag (see the module docstring for the contract)."""

    @property
    def scanned(self) -> bool: ...

    @property
    def components(self) -> Sequence[Component]: ...

    @property
    def vulnerability_counts(self) -> Mapping[str, int]: ...


@dataclass(frozen=True, slots=True)
class StaticImageFacts:
    """Plain-value :class:`ImageFacts` implementation.

    Raises ``ValueError`` for an unknown severity key or a negative count.
    """

    scanned: bool = True
    components: Sequence[Component] = ()
    vulnerability_counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts = dict(self.vulnerability_counts)
        for key, value in counts.items():
            if key not in SEVERITY_NAMES:
                raise ValueError(f"Unknown severity {key!r}; expected one of {_severity_names()}.")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Vulnerability count for {key!r} must be a non-negative integer.")
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "vulnerability_counts", MappingProxyType(counts))


UNSCANNED: ImageFacts = StaticImageFacts(scanned=False)
"""Facts of a tag whose images are not all scanned yet: scan-dependent rules stay pending."""


def vulnerability_count(facts: ImageFacts, severity: str) -> int:
    """Number of vulnerabilities of ``severity`` (``critical``, ``major``, ``minor`` or ``all``).

    ``all`` is the sum of the three bands. Raises ``ValueError`` for any other severity.
    """
    counts = facts.vulnerability_counts
    if severity == ALL_SEVERITIES:
        return sum(counts.get(band.value, 0) for band in Severity)
    if severity not in SEVERITY_NAMES:
        raise ValueError(f"Unknown severity {severity!r}; expected one of {_severity_names()} or 'all'.")
    return counts.get(severity, 0)


def combine_facts(children: Iterable[ImageFacts]) -> StaticImageFacts:
    """Facts of an index from the facts of its children.

    Scanned only if there is at least one child and every child is scanned. Components are the
    union of the children's components (duplicates across platforms kept once); vulnerability counts
    are summed per band (an implementation that knows vulnerability ids may deduplicate instead).
    """
    children = list(children)
    if not children or not all(child.scanned for child in children):
        return StaticImageFacts(scanned=False)
    components: dict[Component, None] = {}
    counts = dict.fromkeys((band.value for band in Severity), 0)
    for child in children:
        components.update(dict.fromkeys(child.components))
        for band in Severity:
            counts[band.value] += child.vulnerability_counts.get(band.value, 0)
    return StaticImageFacts(scanned=True, components=tuple(components), vulnerability_counts=counts)


def _severity_names() -> str:
    return ", ".join(band.value for band in Severity)
