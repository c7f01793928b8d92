"""Alpine package version ordering, a port of apk-tools' version.c (2.x).

`1.2.3a_rc1_p2-r4`: dot-separated numbers (after the first, leading zeros make a
component compare as a fraction), one optional letter, `_suffix[N]` parts
(alpha < beta < pre < rc < none < cvs < svn < git < hg < p) and `-rN`.
"""
from __future__ import annotations

from registry_policies.scanning.versions.errors import InvalidVersion

INVALID, DIGIT_OR_ZERO, DIGIT, LETTER, SUFFIX, SUFFIX_NO, REVISION_NO, END = -1, 0, 1, 2, 3, 4, 5, 6
PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    @property
    def rest(self) -> str:
        return self.text[self.pos:]


def _next_token(kind: int, cur: _Cursor) -> int:
    rest = cur.rest
    new = INVALID
    if not rest:
        new = END
    elif kind in (DIGIT, DIGIT_OR_ZERO) and rest[0].islower() and rest[0].isascii():
        new = LETTER
    elif kind == LETTER and rest[0].isdigit():
        new = DIGIT
    elif kind == SUFFIX and rest[0].isdigit():
        new = SUFFIX_NO
    else:
        if rest[0] == ".":
            new = DIGIT_OR_ZERO
        elif rest[0] == "_":
            new = SUFFIX
        elif rest[0] == "-" and rest[1:2] == "r":
            new = REVISION_NO
            cur.pos += 1
        cur.pos += 1
    if new < kind and not ((new == DIGIT_OR_ZERO and kind == DIGIT)
                           or (new == SUFFIX and kind == SUFFIX_NO)
                           or (new == DIGIT and kind == LETTER)):
        new = INVALID
    return new


def _get_token(kind: int, cur: _Cursor) -> tuple[int, int]:
    """(value, next kind) of the token at the cursor, which is of `kind`."""
    rest = cur.rest
    if not rest:
        return 0, END
    value = 0
    length = 0
    next_kind = INVALID
    if kind == DIGIT_OR_ZERO and rest[0] == "0":
        while length < len(rest) and rest[length] == "0":
            length += 1
        next_kind = DIGIT
        value = -length
    elif kind in (DIGIT, DIGIT_OR_ZERO, SUFFIX_NO, REVISION_NO):
        while length < len(rest) and rest[length].isdigit():
            value = value * 10 + int(rest[length])
            length += 1
    elif kind == LETTER:
        value = ord(rest[0])
        length = 1
    elif kind == SUFFIX:
        for index, suffix in enumerate(PRE_SUFFIXES):
            if rest.startswith(suffix):
                value, length = index - len(PRE_SUFFIXES), len(suffix)
                break
        else:
            for index, suffix in enumerate(POST_SUFFIXES):
                if rest.startswith(suffix):
                    value, length = index, len(suffix)
                    break
            else:
                return -1, INVALID
    else:
        return -1, INVALID
    cur.pos += length
    if not cur.rest:
        return value, END
    if next_kind != INVALID:
        return value, next_kind
    return value, _next_token(kind, cur)


def validate(version: str) -> None:
    cur = _Cursor(version)
    kind = DIGIT
    if not version or not version[0].isdigit():
        raise InvalidVersion(f"not an Alpine version: {version!r}")
    while kind not in (END, INVALID):
        _, kind = _get_token(kind, cur)
    if kind == INVALID:
        raise InvalidVersion(f"not an Alpine version: {version!r}")


def compare(a: str, b: str) -> int:
    validate(a)
    validate(b)
    ca, cb = _Cursor(a), _Cursor(b)
    at = bt = DIGIT
    av = bv = 0
    while at == bt and at not in (END, INVALID) and av == bv:
        av, at = _get_token(at, ca)
        bv, bt = _get_token(bt, cb)
    if av != bv:
        return -1 if av < bv else 1
    if at == bt:
        return 0
    if at == SUFFIX and _get_token(SUFFIX, _Cursor(ca.rest))[0] < 0:
        return -1
    if bt == SUFFIX and _get_token(SUFFIX, _Cursor(cb.rest))[0] < 0:
        return 1
    if at > bt:
        return -1
    if bt > at:
        return 1
    return 0
