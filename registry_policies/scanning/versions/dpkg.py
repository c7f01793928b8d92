"""Debian version ordering, as dpkg's `verrevcmp` (lib/dpkg/version.c).

`[epoch:]upstream[-revision]`: epochs compare as integers; upstream and revision
alternate non-digit parts (letters < non-letters, `~` before everything, even the
end of the string) and digit parts (numerically).
"""
from __future__ import annotations

import re

from registry_policies.scanning.versions.errors import InvalidVersion

_VALID_UPSTREAM = re.compile(r"^[0-9][A-Za-z0-9.+~:-]*$")
_VALID_REVISION = re.compile(r"^[A-Za-z0-9.+~]*$")


def parse(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision); InvalidVersion when dpkg would reject it."""
    text = version.strip()
    epoch = 0
    if ":" in text:
        epoch_text, text = text.split(":", 1)
        if not epoch_text.isdigit():
            raise InvalidVersion(f"bad epoch in {version!r}")
        epoch = int(epoch_text)
    upstream, revision = (text.rsplit("-", 1) if "-" in text else (text, ""))
    if not upstream or not _VALID_UPSTREAM.match(upstream) or not _VALID_REVISION.match(revision):
        raise InvalidVersion(f"not a Debian version: {version!r}")
    if "-" in text and not revision:
        raise InvalidVersion(f"empty revision in {version!r}")
    return epoch, upstream, revision


def _order(char: str) -> int:
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare(a: str, b: str) -> int:
    ea, ua, ra = parse(a)
    eb, ub, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return verrevcmp(ua, ub) or verrevcmp(ra, rb)
