"""manage.py import_vulnerabilities: directories and all.zip files, idempotent, incremental, robust."""
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from registry_policies.scanning.importer import import_vulnerabilities
from registry_policies.scanning.models import OsvAffected, OsvVulnerability
from registry_policies.scanning.severity import band_for, score_vector
from tests.scanning.conftest import OSV_DIR

pytestmark = pytest.mark.django_db


def run_command(path: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_vulnerabilities", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_directory_tree_skips_malformed_records_with_reasons() -> None:
    out, err = run_command(OSV_DIR)
    assert "created 18, updated 0, unchanged 0, malformed 3" in out
    assert "BAD-NO-MODIFIED.json: skipped malformed record: 'modified' is not an RFC 3339 timestamp" in err
    assert "BAD-EVENT.json: skipped malformed record: affected[0].ranges[0] has a bad event" in err
    assert "BAD-JSON.json: skipped malformed record:" in err
    assert OsvVulnerability.objects.count() == 18
    assert not OsvVulnerability.objects.filter(pk__startswith="BAD").exists()


def test_ecosystems_and_names_are_normalized() -> None:
    run_command(OSV_DIR)
    zlib = OsvAffected.objects.get(vulnerability_id="DEBIAN-CVE-2023-45853")
    assert (zlib.ecosystem, zlib.ecosystem_release, zlib.raw_ecosystem, zlib.package_name) == \
        ("debian", "12", "Debian:12", "zlib")
    openssl = OsvAffected.objects.get(vulnerability_id="ALPINE-CVE-2023-5363")
    assert (openssl.ecosystem, openssl.ecosystem_release) == ("alpine", "v3.18")
    assert OsvAffected.objects.get(vulnerability_id="PYSEC-2021-142").ecosystem == "pypi"
    assert set(OsvAffected.objects.filter(vulnerability_id="GO-2023-2102").values_list("ecosystem", flat=True)) \
        == {"go"}


def test_scores_from_vectors_words_and_aliases() -> None:
    run_command(OSV_DIR)
    log4j = OsvVulnerability.objects.get(pk="GHSA-jfh8-c2jp-5v3q")
    assert log4j.cvss_score == 10.0
    assert log4j.cvss_vector.startswith("CVSS:3.1/")
    assert OsvVulnerability.objects.get(pk="GHSA-j8r2-6x86-q33q").cvss_score == 6.1
    minimist = OsvVulnerability.objects.get(pk="GHSA-xvch-5gv4-984h")  # only database_specific.severity
    assert (minimist.cvss_score, minimist.severity_label) == (9.5, "CRITICAL")
    # the Debian record has no score of its own: the upstream CVE record's is used
    assert OsvVulnerability.objects.get(pk="DEBIAN-CVE-2023-45853").cvss_score == 9.8
    assert OsvVulnerability.objects.get(pk="GO-2022-0493").cvss_score is None


def test_reimport_is_idempotent_and_incremental(tmp_path: Path) -> None:
    run_command(OSV_DIR)
    out, _ = run_command(OSV_DIR)
    assert "created 0, updated 0, unchanged 18, malformed 3" in out
    record = json.loads((OSV_DIR / "npm" / "GHSA-p6mc-m468-83gw.json").read_text())
    record["modified"] = "2025-02-01T00:00:00Z"
    record["affected"][0]["ranges"][0]["events"][1] = {"fixed": "4.17.20"}
    (tmp_path / "GHSA-p6mc-m468-83gw.json").write_text(json.dumps(record))
    out, _ = run_command(tmp_path)
    assert "created 0, updated 1, unchanged 0, malformed 0" in out
    affected = OsvAffected.objects.get(vulnerability_id="GHSA-p6mc-m468-83gw")
    assert affected.ranges[0]["events"][1] == {"fixed": "4.17.20"}
    assert OsvAffected.objects.filter(vulnerability_id="GHSA-p6mc-m468-83gw").count() == 1


def test_published_per_ecosystem_zip_files(tmp_path: Path) -> None:
    for ecosystem in ("Maven", "Go"):
        (tmp_path / ecosystem).mkdir()
        with zipfile.ZipFile(tmp_path / ecosystem / "all.zip", "w") as archive:
            for path in sorted((OSV_DIR / ecosystem).glob("*.json")):
                archive.write(path, path.name)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    reports: list[str] = []
    stats = import_vulnerabilities(tmp_path, report=reports.append)
    assert (stats.created, stats.malformed) == (4, 0)
    assert any("broken.zip: not a readable zip file" in line for line in reports)
    assert OsvVulnerability.objects.filter(pk__in=["GO-2023-2102", "GHSA-jfh8-c2jp-5v3q"]).count() == 2


def test_missing_path_is_a_command_error(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not exist"):
        run_command(tmp_path / "nope")


@pytest.mark.parametrize(("vector", "score"), [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", 5.5),
    ("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3),
    ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
    ("CVSS:3.1/AV:X/garbage", None),
])
def test_cvss_base_scores(vector: str, score: float | None) -> None:
    kind = "CVSS_V2" if vector.startswith("AV:") else "CVSS_V3"
    assert score_vector(kind, vector) == score


def test_severity_bands_are_configurable(settings) -> None:  # type: ignore[no-untyped-def]
    assert [band_for(s) for s in (9.8, 7.0, 6.9, 4.0, 3.9)] == ["critical", "critical", "major", "major", "minor"]
    settings.SCAN_SEVERITY_BANDS = {"critical": 9.0, "major": 7.0}
    assert [band_for(s) for s in (9.8, 7.5, 6.9)] == ["critical", "major", "minor"]
