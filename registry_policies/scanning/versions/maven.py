"""Maven version ordering, a port of Maven's ComparableVersion (3.x).

Versions split on `.`, `-` and digit/letter transitions into integers,
qualifiers and sub-lists (after `-` or a transition); trailing "null" items (0,
"", ga, final, release) are dropped; qualifiers order alpha < beta < milestone
< rc = cr < snapshot < "" = ga = final = release < sp < any other (lexically);
`a1`/`b1`/`m1` abbreviate alpha/beta/milestone.
"""
from __future__ import annotations

from typing import Union

from registry_policies.scanning.versions.errors import InvalidVersion

QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
RELEASE_INDEX = str(QUALIFIERS.index(""))

Item = Union[int, str, "ListItem"]


class ListItem(list):  # type: ignore[type-arg]
    pass


def _comparable_qualifier(qualifier: str) -> str:
    qualifier = ALIASES.get(qualifier, qualifier)
    if qualifier in QUALIFIERS:
        return str(QUALIFIERS.index(qualifier))
    return f"{len(QUALIFIERS)}-{qualifier}"


def _string_item(value: str, followed_by_digit: bool) -> str:
    if followed_by_digit and len(value) == 1:
        value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
    return ALIASES.get(value, value)


def _parse_item(text: str, followed_by_digit: bool = False) -> Item:
    if text.isdigit():
        return int(text)
    return _string_item(text, followed_by_digit)


def _is_null(item: Item) -> bool:
    if isinstance(item, ListItem):
        return not item
    if isinstance(item, int):
        return item == 0
    return _comparable_qualifier(item) == RELEASE_INDEX


def _normalize(items: ListItem) -> None:
    for index in range(len(items) - 1, -1, -1):
        if _is_null(items[index]):
            del items[index]
        elif not isinstance(items[index], ListItem):
            break


def parse(version: str) -> ListItem:
    text = version.strip().lower()
    if not text or any(c.isspace() for c in text):
        raise InvalidVersion(f"not a Maven version: {version!r}")
    root = current = ListItem()
    stack = [root]
    is_digit = False
    start = 0
    for i, char in enumerate(text):
        if char == ".":
            current.append(0 if i == start else _parse_item(text[start:i]))
            start = i + 1
        elif char == "-":
            current.append(0 if i == start else _parse_item(text[start:i]))
            start = i + 1
            sub = ListItem()
            current.append(sub)
            current = sub
            stack.append(sub)
        elif char.isdigit():
            if not is_digit and i > start:
                current.append(_string_item(text[start:i], True))
                start = i
                sub = ListItem()
                current.append(sub)
                current = sub
                stack.append(sub)
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(_parse_item(text[start:i]))
                start = i
                sub = ListItem()
                current.append(sub)
                current = sub
                stack.append(sub)
            is_digit = False
    if len(text) > start:
        current.append(_parse_item(text[start:]))
    while stack:
        _normalize(stack.pop())
    return root


def _compare(left: Item | None, right: Item | None) -> int:
    if left is None:
        return 0 if right is None else -_compare(right, None)
    if isinstance(left, int):
        if right is None:
            return 0 if left == 0 else 1
        if isinstance(right, int):
            return (left > right) - (left < right)
        return 1  # an integer is newer than a qualifier or a list
    if isinstance(left, str) and not isinstance(left, ListItem):
        if right is None:
            a, b = _comparable_qualifier(left), RELEASE_INDEX
            return (a > b) - (a < b)
        if isinstance(right, (int, ListItem)):
            return -1
        a, b = _comparable_qualifier(left), _comparable_qualifier(right)
        return (a > b) - (a < b)
    # left is a list
    if right is None:
        return 0 if not left else _compare(left[0], None)
    if isinstance(right, int):
        return -1
    if not isinstance(right, ListItem):
        return 1
    for index in range(max(len(left), len(right))):
        l_item = left[index] if index < len(left) else None
        r_item = right[index] if index < len(right) else None
        result = _compare(l_item, r_item)
        if result:
            return result
    return 0


def compare(a: str, b: str) -> int:
    return _compare(parse(a), parse(b))
