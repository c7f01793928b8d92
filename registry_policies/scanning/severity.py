"""CVSS scores of OSV records and the severity bands of the product.

Bands come from `settings.SCAN_SEVERITY_BANDS` (default `{"critical": 7.0,
"major": 4.0}`: critical >= 7.0, major >= 4.0, minor below). A vulnerability
without any score falls in `settings.SCAN_UNKNOWN_SEVERITY` (default "minor").
"""
from __future__ import annotations

from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError
from django.conf import settings

DEFAULT_BANDS = {"critical": 7.0, "major": 4.0}
# database_specific.severity words -> a representative score inside the matching CVSS band
WORD_SCORES = {"CRITICAL": 9.5, "HIGH": 8.0, "IMPORTANT": 8.0, "MODERATE": 5.5, "MEDIUM": 5.5, "LOW": 2.5,
               "NEGLIGIBLE": 0.5, "UNIMPORTANT": 0.5}
SEVERITIES = ("critical", "major", "minor")


def band_for(score: float | None) -> str:
    """"critical", "major" or "minor" for a CVSS base score (None: SCAN_UNKNOWN_SEVERITY)."""
    if score is None:
        return str(getattr(settings, "SCAN_UNKNOWN_SEVERITY", "minor"))
    bands = {**DEFAULT_BANDS, **getattr(settings, "SCAN_SEVERITY_BANDS", {})}
    if score >= float(bands["critical"]):
        return "critical"
    if score >= float(bands["major"]):
        return "major"
    return "minor"


def score_vector(kind: str, vector: str) -> float | None:
    """Base score of a CVSS vector (v2, v3.0/3.1, v4) or a plain number; None if it cannot be read."""
    vector = vector.strip()
    try:
        return max(0.0, min(10.0, float(vector)))
    except ValueError:
        pass
    try:
        if vector.startswith("CVSS:3"):
            return float(CVSS3(vector).base_score)
        if vector.startswith("CVSS:4"):
            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V2" or vector.startswith(("AV:", "(AV:")):
            return float(CVSS2(vector).base_score)
    except (CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return None


def record_score(record: dict[str, Any]) -> tuple[float | None, str, str]:
    """(score, vector, severity word) of an OSV record: CVSS v3 first, then v4, v2, then the
    database_specific severity word (record level, then per affected package)."""
    entries = list(record.get("severity") or [])
    for affected in record.get("affected") or []:
        if isinstance(affected, dict):
            entries += list(affected.get("severity") or [])
    preference = {"CVSS_V3": 0, "CVSS_V4": 1, "CVSS_V2": 2}
    entries = sorted((e for e in entries if isinstance(e, dict) and isinstance(e.get("score"), str)),
                     key=lambda e: preference.get(str(e.get("type")), 3))
    word = _severity_word(record)
    for entry in entries:
        score = score_vector(str(entry.get("type", "")), entry["score"])
        if score is not None:
            return score, entry["score"], word
    if word.upper() in WORD_SCORES:
        return WORD_SCORES[word.upper()], "", word
    return None, "", word


def _severity_word(record: dict[str, Any]) -> str:
    specific = record.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        return str(specific["severity"])
    for affected in record.get("affected") or []:
        if isinstance(affected, dict):
            for key in ("ecosystem_specific", "database_specific"):
                value = affected.get(key)
                if isinstance(value, dict) and isinstance(value.get("severity"), str):
                    return str(value["severity"])
    return ""
