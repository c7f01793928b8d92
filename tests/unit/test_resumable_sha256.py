"""The resumable SHA-256 hasher (storage/resumable_sha256.py) against hashlib: every way a body can
be cut and every buffer type the upload path hands it, its state continued in another process, and
states it must refuse (another format, damaged, not at the expected offset)."""
from __future__ import annotations

import array
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from registry_policies.storage import resumable_sha256
from registry_policies.storage.resumable_sha256 import FORMAT, ResumableSha256, StateRefused

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def test_libcrypto_api_is_usable_on_this_machine():
    """The product's fast path; on a machine without it uploads still work, but hash twice."""
    assert resumable_sha256.available()
    assert f"openssl-sha256-ctx/{'le' if sys.byteorder == 'little' else 'be'}/112" == FORMAT


@pytest.mark.parametrize("cuts", [[], [0], [1], [63], [64], [65], [0, 0, 1, 63, 64, 65, 127, 128, 129],
                                  [64 * k for k in range(1, 40)], [3, 5, 7, 11, 13, 1000, 4096]])
def test_digest_matches_hashlib_at_block_boundaries(cuts):
    data = os.urandom(sum(cuts) + 77)
    hasher, reference, start = ResumableSha256(), hashlib.sha256(), 0
    for size in [*cuts, 77]:
        piece = data[start:start + size]
        hasher.update(piece)
        reference.update(piece)
        start += size
        assert hasher.hexdigest() == reference.hexdigest()  # hexdigest leaves the hasher usable
        assert hasher.hashed_bytes == start
    assert hasher.digest() == hashlib.sha256(data).digest()


def test_random_splits_of_every_buffer_type_match_hashlib():
    rng = random.Random(15)
    data = bytearray(os.urandom(9 * MiB + 123))
    for _ in range(5):
        hasher, start = ResumableSha256(), 0
        while start < len(data):
            size = rng.choice([0, 1, 63, 64, 65, rng.randrange(1, 3 * MiB)])
            end = min(start + size, len(data))
            kind = rng.randrange(4)
            if kind == 0:
                hasher.update(bytes(data[start:end]))
            elif kind == 1:
                hasher.update(memoryview(data)[start:end])  # what body.hashed_chunks hands over
            elif kind == 2:
                hasher.update(memoryview(bytes(data[start:end])))  # read-only: copied in pieces
            else:
                hasher.update(bytearray(data[start:end]))
            start = end
        assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    data.append(0)  # no buffer export of `data` is left behind (a bytearray cannot resize with one)


def test_large_buffers_and_other_item_formats():
    big = bytearray(os.urandom(64 * MiB + 1))
    hasher = ResumableSha256()
    hasher.update(memoryview(big))
    assert hasher.hexdigest() == hashlib.sha256(big).hexdigest()
    words = array.array("I", range(1000))
    hasher = ResumableSha256()
    hasher.update(words)
    assert hasher.hexdigest() == hashlib.sha256(words).hexdigest()
    with pytest.raises(BufferError):
        ResumableSha256().update(memoryview(big)[::2])
    with pytest.raises(TypeError):
        ResumableSha256().update("text")  # type: ignore[arg-type]


def test_copy_is_independent():
    hasher = ResumableSha256()
    hasher.update(b"a" * 100)
    twin = hasher.copy()
    twin.update(b"b")
    assert hasher.hexdigest() == hashlib.sha256(b"a" * 100).hexdigest()
    assert twin.hexdigest() == hashlib.sha256(b"a" * 100 + b"b").hexdigest()


_CHILD = """
import sys
from registry_policies.storage.resumable_sha256 import ResumableSha256
state, size = bytes.fromhex(sys.argv[1]), int(sys.argv[2])
hasher = ResumableSha256.restore(state, size=size) if state else ResumableSha256()
hasher.update(sys.stdin.buffer.read())
print(hasher.export().hex(), hasher.hexdigest())
"""


def _in_child(state: bytes, size: int, data: bytes) -> tuple[bytes, str]:
    result = subprocess.run([sys.executable, "-c", _CHILD, state.hex(), str(size)], input=data, cwd=ROOT,
                            capture_output=True, check=True)
    exported, hexdigest = result.stdout.decode().split()
    return bytes.fromhex(exported), hexdigest


def test_state_continues_in_another_process_and_back():
    data = os.urandom(5 * MiB + 65)
    first, second, third = data[:2 * MiB + 1], data[2 * MiB + 1:4 * MiB + 63], data[4 * MiB + 63:]
    state, _ = _in_child(b"", 0, first)
    here = ResumableSha256.restore(state, size=len(first))
    here.update(second)
    state, hexdigest = _in_child(here.export(), len(first) + len(second), third)
    assert hexdigest == hashlib.sha256(data).hexdigest()
    assert ResumableSha256.restore(state, size=len(data)).hexdigest() == hexdigest


def _reseal(body: bytes) -> bytes:
    """A state with a valid check over `body` (so that the context checks themselves are tested)."""
    return body + hashlib.blake2b(body, digest_size=8).digest()


def test_foreign_damaged_and_misplaced_states_are_refused():
    hasher = ResumableSha256()
    hasher.update(b"x" * 1000)
    state = hasher.export()
    assert ResumableSha256.restore(state, size=1000).hexdigest() == hashlib.sha256(b"x" * 1000).hexdigest()
    ctx_start = len(FORMAT) + 1
    body = state[:-8]
    other_order = FORMAT.replace("/le/", "/be/") if "/le/" in FORMAT else FORMAT.replace("/be/", "/le/")
    refused = {
        "empty": b"",
        "go's marshalled sha256": b"sha\x03" + bytes(100),
        "other byte order": _reseal(other_order.encode() + body[len(FORMAT):]),
        "other context size": _reseal(FORMAT.replace("/112", "/120").encode() + body[len(FORMAT):] + bytes(8)),
        "truncated": state[:-1],
        "bit flipped in h": state[:ctx_start] + bytes([state[ctx_start] ^ 1]) + state[ctx_start + 1:],
        "md_len of sha224": _reseal(body[:-4] + (28).to_bytes(4, sys.byteorder)),
        "num past a block": _reseal(body[:-8] + (64).to_bytes(4, sys.byteorder) + body[-4:]),
    }
    accepted = []
    for name, bad in refused.items():
        try:
            ResumableSha256.restore(bad, size=1000)
        except StateRefused:
            continue
        accepted.append(name)
    assert accepted == []
    for size in (999, 1001, 1000 + 64, 0):  # a state taken at another offset than the session's
        with pytest.raises(StateRefused):
            ResumableSha256.restore(state, size=size)


def test_a_library_without_the_api_is_not_used():
    """What `available()` relies on where OpenSSL dropped the deprecated API or is absent."""
    assert resumable_sha256._load("libc.so.6") is None  # loads, but has no SHA256_Init
    assert resumable_sha256._load("libcrypto-does-not-exist.so") is None
