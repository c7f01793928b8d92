"""License names found in packages -> SPDX license expressions.

Contract of `normalize_license(text)`: returns an SPDX expression string (ids in
their canonical case, `AND`/`OR`/`WITH` upper case), or None for nothing /
UNKNOWN / NOASSERTION. Debian DEP-5 short names (`GPL-2+`, `Expat`), common
free-text names (`Apache License, Version 2.0`, `MIT License`) and Python
trove classifiers are mapped; a word that is no SPDX id is kept as
`LicenseRef-<word>`, so nothing is silently dropped.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from license_expression import ExpressionError, Licensing, get_spdx_licensing

EMPTY = {"", "unknown", "noassertion", "none", "n/a", "undefined", "see license", "see license file"}

# lower-case name -> SPDX id
ALIASES: dict[str, str] = {
    # Debian DEP-5 short names (https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/)
    "expat": "MIT", "gpl-1": "GPL-1.0-only", "gpl-2": "GPL-2.0-only", "gpl-3": "GPL-3.0-only",
    "lgpl-2": "LGPL-2.0-only", "lgpl-2.1": "LGPL-2.1-only", "lgpl-3": "LGPL-3.0-only",
    "agpl-3": "AGPL-3.0-only", "gfdl-1.2": "GFDL-1.2-only", "gfdl-1.3": "GFDL-1.3-only",
    "gfdl-niv-1.3": "GFDL-1.3-no-invariants-only", "apache-2": "Apache-2.0", "mpl-1.1": "MPL-1.1",
    "mpl-2": "MPL-2.0", "artistic": "Artistic-1.0-Perl", "artistic-2": "Artistic-2.0",
    "python": "PSF-2.0", "psf": "PSF-2.0", "zope": "ZPL-2.1", "cc0": "CC0-1.0", "bsd-2": "BSD-2-Clause",
    "bsd-3": "BSD-3-Clause", "bsd-4": "BSD-4-Clause", "epl-1": "EPL-1.0", "openssl": "OpenSSL",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later", "bzip2-1.0.6": "bzip2-1.0.6",
    # common free-text names (npm, PyPI, Maven, rpm)
    "mit license": "MIT", "the mit license": "MIT", "mit/x11": "MIT", "x11": "X11",
    "apache 2": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache-2.0 license": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0", "the apache software license, version 2.0": "Apache-2.0",
    "the apache license, version 2.0": "Apache-2.0", "apache software license": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0", "apache license": "Apache-2.0", "asl 2.0": "Apache-2.0",
    "apachev2": "Apache-2.0", "isc license": "ISC", "isc license (iscl)": "ISC", "iscl": "ISC",
    "mozilla public license 2.0": "MPL-2.0", "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "mpl 2.0": "MPL-2.0", "eclipse public license 1.0": "EPL-1.0", "eclipse public license - v 1.0": "EPL-1.0",
    "eclipse public license 2.0": "EPL-2.0", "eclipse public license - v 2.0": "EPL-2.0",
    "eclipse public license 2.0 (epl-2.0)": "EPL-2.0", "the unlicense": "Unlicense",
    "the unlicense (unlicense)": "Unlicense", "public domain": "LicenseRef-public-domain",
    "python software foundation license": "PSF-2.0", "zope public license": "ZPL-2.1",
    "gplv2": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later", "gplv3": "GPL-3.0-only", "gplv3+": "GPL-3.0-or-later",
    "lgplv2": "LGPL-2.0-only", "lgplv2+": "LGPL-2.0-or-later", "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later", "lgplv2.1": "LGPL-2.1-only", "lgplv2.1+": "LGPL-2.1-or-later",
    "agplv3": "AGPL-3.0-only", "agplv3+": "AGPL-3.0-or-later", "gpl": "LicenseRef-GPL", "lgpl": "LicenseRef-LGPL",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "gnu library or lesser general public license (lgpl)": "LicenseRef-LGPL",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "bsd license": "LicenseRef-BSD", "bsd": "LicenseRef-BSD", "new bsd license": "BSD-3-Clause",
    "simplified bsd license": "BSD-2-Clause", "3-clause bsd license": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause", "bsd 2-clause": "BSD-2-Clause", "bsd-3-clause license": "BSD-3-Clause",
    "cddl + gplv2 with classpath exception": "CDDL-1.0 OR GPL-2.0-only WITH Classpath-exception-2.0",
}
# GNU families whose `+` means "or later" in SPDX ids
_OR_LATER = re.compile(r"^((?:A|L)?GPL|GFDL)-(\d(?:\.\d)?)(?:\.0)?(?:-only)?$", re.IGNORECASE)
_TOKEN = re.compile(r"(\(|\)|\s+(?:and|or|with)\s+|\s*&\s*|\s*\|\s*)", re.IGNORECASE)
_CLASSIFIER = re.compile(r"^License\s*::\s*(?:OSI Approved\s*::\s*)?(.+)$", re.IGNORECASE)


@functools.cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


def _ref(word: str) -> str:
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.]+", "-", word).strip("-") or "unknown")


@functools.lru_cache(maxsize=4096)
def _normalize_id(name: str) -> str:
    """One license (no operators) -> an SPDX id or a LicenseRef."""
    word = name.strip().strip('"').strip()
    lower = word.lower()
    if lower in ALIASES:
        return ALIASES[lower]
    if lower.endswith(("+", " or later", " or-later")) and lower != "+":
        base = re.sub(r"(\+| or[ -]later)$", "", word).strip()
        base_id = _normalize_id(base)
        match = _OR_LATER.match(base_id) or _OR_LATER.match(base)
        if match:
            family, number = match.group(1).upper(), match.group(2)
            return f"{family}-{number if '.' in number else number + '.0'}-or-later"
        return base_id if base_id.startswith("LicenseRef-") else f"{base_id}+"
    match = _OR_LATER.match(word)
    if match and "." not in match.group(2) and not lower.endswith(".0"):
        return f"{match.group(1).upper()}-{match.group(2)}.0-only"
    if " " not in word:
        try:
            parsed = _licensing().parse(word, validate=False)
        except ExpressionError:
            parsed = None
        if parsed is not None and not _licensing().unknown_license_keys(parsed):
            return str(parsed)
    if lower.startswith("licenseref-"):
        return _ref(word[len("licenseref-"):])
    return _ref(word)


def normalize_license(text: str | None) -> str | None:
    """A license string as found in a package -> an SPDX expression (see module doc)."""
    if text is None:
        return None
    text = " ".join(str(text).split())
    classifier = _CLASSIFIER.match(text)
    if classifier:
        text = classifier.group(1).strip()
    if text.lower() in EMPTY:
        return None
    if text.lower() in ALIASES:
        return ALIASES[text.lower()]
    parts = [p for p in _TOKEN.split(text) if p is not None and p != ""]
    rendered: list[str] = []
    for part in parts:
        stripped = part.strip().lower()
        if part in ("(", ")"):
            rendered.append(part)
        elif stripped in ("and", "&"):
            rendered.append(" AND ")
        elif stripped in ("or", "|"):
            rendered.append(" OR ")
        elif stripped == "with":
            rendered.append(" WITH ")
        elif part.strip():
            rendered.append(_normalize_id(part))
    expression = "".join(rendered).strip()
    try:
        parsed = _licensing().parse(expression, validate=False, simple=False)
    except ExpressionError:
        return _ref(text) if len(parts) == 1 else expression
    return str(parsed) if parsed is not None else None


def normalize_licenses(texts: Iterable[str | None]) -> list[str]:
    """Each text normalized, empty ones dropped, duplicates removed, order kept."""
    seen: dict[str, None] = {}
    for text in texts:
        normalized = normalize_license(text)
        if normalized:
            seen.setdefault(normalized, None)
    return list(seen)


def license_ids(expression: str) -> list[str]:
    """The license ids (and exception ids) named by an expression, for criteria like "license is one of"."""
    return [t for t in re.split(r"[\s()]+", expression) if t and t.upper() not in ("AND", "OR", "WITH")]
