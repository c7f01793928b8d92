"""RPM version ordering (`rpmvercmp`) over `[epoch:]version[-release]`."""
from __future__ import annotations

import re

from registry_policies.scanning.versions.errors import InvalidVersion

_SEGMENT = re.compile(r"(~|\^|\d+|[A-Za-z]+)")


def rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    sa, sb = _SEGMENT.findall(a), _SEGMENT.findall(b)
    while sa or sb:
        xa, xb = (sa[0] if sa else None), (sb[0] if sb else None)
        if xa == "~" or xb == "~":
            if xa != "~":
                return 1
            if xb != "~":
                return -1
        elif xa == "^" or xb == "^":
            if xa is None:
                return -1
            if xb is None:
                return 1
            if xa != "^":
                return 1
            if xb != "^":
                return -1
        elif xa is None or xb is None:
            return -1 if xa is None else 1
        elif xa.isdigit() != xb.isdigit():
            return 1 if xa.isdigit() else -1
        elif xa.isdigit():
            ia, ib = int(xa), int(xb)
            if ia != ib:
                return -1 if ia < ib else 1
        elif xa != xb:
            return -1 if xa < xb else 1
        sa, sb = sa[1:], sb[1:]
    return 0


def parse(evr: str) -> tuple[int, str, str]:
    text = evr.strip()
    epoch = 0
    if ":" in text:
        epoch_text, text = text.split(":", 1)
        if not epoch_text.isdigit():
            raise InvalidVersion(f"bad epoch in {evr!r}")
        epoch = int(epoch_text)
    version, _, release = text.partition("-")
    if not version:
        raise InvalidVersion(f"not an RPM version: {evr!r}")
    return epoch, version, release


def compare(a: str, b: str) -> int:
    ea, va, ra = parse(a)
    eb, vb, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    result = rpmvercmp(va, vb)
    if result or not ra or not rb:
        return result
    return rpmvercmp(ra, rb)
