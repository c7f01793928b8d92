"""Layer reading: compression by magic bytes, stream mode, whiteouts, links and limits."""
import io
import os

import pytest

from registry_policies.scanning.errors import ScanError
from registry_policies.scanning.layers import FileView, ReadLimits, Want, WantSet, read_layer_into
from tests.scanning.builders import Symlink, compress, layer, tar_bytes

WANTS = WantSet([Want("etc/*.conf"), Want("**/site-packages/*.dist-info/METADATA"), Want("opt/data/*")])
LIMITS = ReadLimits()


def apply(view: FileView, data: bytes, digest: str, limits: ReadLimits = LIMITS) -> str:
    return read_layer_into(view, io.BytesIO(data), digest=digest, wants=WANTS, limits=limits)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_each_compression_is_detected_from_magic_bytes(compression: str) -> None:
    view = FileView()
    detected = apply(view, layer({"etc/a.conf": "a=1", "etc/other.txt": "x"}, compression), "sha256:l1")
    assert detected == compression
    assert view.get("etc/a.conf") == b"a=1"
    assert view.get("etc/other.txt") is None  # not wanted: never kept
    assert view.layer_of("etc/a.conf") == "sha256:l1"


def test_multi_frame_zstd_and_multi_member_gzip_are_read_whole() -> None:
    tar = tar_bytes({"etc/a.conf": "a" * 5000, "etc/b.conf": "b"})
    for data in (compress(tar[:1024], "zstd") + compress(tar[1024:], "zstd"),
                 compress(tar[:1024], "gzip") + compress(tar[1024:], "gzip")):
        view = FileView()
        apply(view, data, "sha256:l1")
        assert view.get("etc/b.conf") == b"b"


def test_whiteout_in_upper_layer_deletes_file_of_lower_layer() -> None:
    view = FileView()
    apply(view, layer({"etc/a.conf": "a", "etc/b.conf": "b"}), "sha256:l1")
    apply(view, layer({"etc/.wh.a.conf": ""}), "sha256:l2")
    assert view.get("etc/a.conf") is None
    assert view.get("etc/b.conf") == b"b"


def test_whiteout_of_directory_deletes_its_subtree() -> None:
    view = FileView()
    site = "usr/lib/python3/site-packages"
    apply(view, layer({f"{site}/foo-1.0.dist-info/METADATA": "Name: foo", f"{site}/bar-2.0.dist-info/METADATA": "x"}),
          "sha256:l1")
    apply(view, layer({f"{site}/.wh.foo-1.0.dist-info": ""}), "sha256:l2")
    assert view.paths() == [f"{site}/bar-2.0.dist-info/METADATA"]


def test_opaque_directory_hides_lower_entries_but_keeps_its_own_layer() -> None:
    view = FileView()
    apply(view, layer({"opt/data/old": "1", "opt/data/keep": "2", "etc/x.conf": "x"}), "sha256:l1")
    apply(view, layer({"opt/data/.wh..wh..opq": "", "opt/data/new": "3"}), "sha256:l2")
    assert view.paths() == ["etc/x.conf", "opt/data/new"]


def test_file_recreated_after_whiteout_in_a_later_layer_is_back() -> None:
    view = FileView()
    apply(view, layer({"etc/a.conf": "1"}), "sha256:l1")
    apply(view, layer({"etc/.wh.a.conf": ""}), "sha256:l2")
    apply(view, layer({"etc/a.conf": "3"}), "sha256:l3")
    assert view.get("etc/a.conf") == b"3"
    assert view.layer_of("etc/a.conf") == "sha256:l3"


def test_symlinks_resolve_to_collected_files() -> None:
    view = FileView()
    apply(view, layer({"opt/data/real": "payload", "usr/share": None, "usr/share/doc": Symlink("../../opt/data")}),
          "sha256:l1")
    assert view.get("usr/share/doc/real") == b"payload"


def test_unknown_compression_is_a_scan_error_naming_the_layer() -> None:
    with pytest.raises(ScanError, match=r"sha256:l1: unknown compression"):
        apply(FileView(), os.urandom(2048), "sha256:l1")


def test_xz_is_reported_as_unsupported() -> None:
    import lzma
    with pytest.raises(ScanError, match="unsupported compression xz"):
        apply(FileView(), lzma.compress(tar_bytes({"etc/a.conf": "a"})), "sha256:l1")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_corrupt_compressed_data_is_a_scan_error(compression: str) -> None:
    data = bytearray(layer({"etc/a.conf": os.urandom(20000).hex()}, compression))
    for i in range(40, len(data) - 40, 97):
        data[i] ^= 0xFF
    with pytest.raises(ScanError, match="sha256:bad"):
        apply(FileView(), bytes(data), "sha256:bad")


def test_truncated_layer_is_a_scan_error() -> None:
    data = layer({"etc/a.conf": os.urandom(50000).hex()})
    with pytest.raises(ScanError, match="sha256:cut"):
        apply(FileView(), data[: len(data) // 2], "sha256:cut")


def test_wanted_file_over_the_size_limit_is_a_scan_error_naming_it() -> None:
    limits = ReadLimits(max_file_bytes=1000)
    with pytest.raises(ScanError, match=r"etc/big.conf .*per-file limit"):
        apply(FileView(), layer({"etc/big.conf": "x" * 5000}), "sha256:l1", limits)


def test_large_unwanted_files_are_skipped_without_being_kept() -> None:
    view = FileView()
    apply(view, layer({"var/big.bin": os.urandom(3 * 1024 * 1024), "etc/a.conf": "a"}), "sha256:l1",
          ReadLimits(max_file_bytes=1000))
    assert view.paths() == ["etc/a.conf"]


def test_decompression_bomb_is_stopped_by_the_ratio_guard() -> None:
    bomb = layer({"var/zeros": b"\0" * (64 * 1024 * 1024)}, "zstd")
    limits = ReadLimits(max_ratio=100, ratio_after_bytes=4 * 1024 * 1024)
    with pytest.raises(ScanError, match="decompression ratio above 100:1"):
        apply(FileView(), bomb, "sha256:bomb", limits)


def test_layer_budget_is_enforced() -> None:
    data = layer({"var/random": os.urandom(2 * 1024 * 1024)})
    with pytest.raises(ScanError, match="SCAN_MAX_LAYER_BYTES"):
        apply(FileView(), data, "sha256:big", ReadLimits(max_layer_bytes=1024 * 1024))
