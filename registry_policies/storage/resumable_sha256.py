"""A SHA-256 hasher whose state can be exported to bytes and continued in another process.

Why: an upload session's chunks may reach different processes and nodes, and hashlib cannot hand
its state over, so the bytes would have to be read and hashed again at completion. CNCF
distribution keeps Go's marshalled SHA-256 state with the upload; this module does the same with
the system libcrypto's documented low-level API (`SHA256_Init/Update/Final` on the public
`SHA256_CTX`: h[8], Nl, Nh, data[16] as 32-bit words, then num and md_len: 112 bytes), called
through ctypes, which releases the GIL for each call (the body hasher thread overlaps with the
socket reads as hashlib did) and runs the same SHA-NI code as hashlib.

An exported state is `FORMAT`, a NUL, the 112 context bytes and an 8-byte BLAKE2b check of both.
`restore` refuses (`StateRefused`) a state of another format (another byte order or context size),
a damaged one, one that is not a SHA-256 context (`md_len` 32, `num` < 64) or whose byte count is
not the offset the caller expects. Where libcrypto or those symbols are missing (OpenSSL may drop
the deprecated API one day) or its context does not behave as laid out above (checked once, on a
larger scratch buffer, before any context of ours is used), `available()` is False and callers
fall back to hashlib and hashing again from the staged bytes: slower, never a wrong digest.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import sys
from typing import Any

CTX_SIZE = 112
FORMAT = f"openssl-sha256-ctx/{'le' if sys.byteorder == 'little' else 'be'}/{CTX_SIZE}"
_CHECK_SIZE = 8
_COPY_PIECE = 1024 * 1024  # read-only buffers are copied in pieces of this size
_LIBRARIES = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.3.dylib")


class StateRefused(ValueError):
    """An exported state that cannot be continued here (foreign, damaged or at another offset)."""


class _Ctx(ctypes.Structure):
    _fields_ = [("h", ctypes.c_uint32 * 8), ("Nl", ctypes.c_uint32), ("Nh", ctypes.c_uint32),
                ("data", ctypes.c_uint32 * 16), ("num", ctypes.c_uint), ("md_len", ctypes.c_uint)]


def _load(name: str) -> Any | None:
    try:
        lib = ctypes.CDLL(name)
        init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_void_p], ctypes.c_int
    update.argtypes, update.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int
    final.argtypes, final.restype = [ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int
    return lib


def _behaves(lib: Any) -> bool:
    """The context is the documented 112 bytes: a scratch buffer past it stays untouched, the
    counters sit where `_Ctx` says, and a known vector hashes right after a copy of the bytes."""
    scratch = ctypes.create_string_buffer(b"\xa5" * 256, 256)
    message = b"resumable" * 11  # 99 bytes: one block hashed, 35 pending
    if lib.SHA256_Init(scratch) != 1 or lib.SHA256_Update(scratch, message, len(message)) != 1:
        return False
    raw = scratch.raw
    ctx = _Ctx.from_buffer_copy(raw[:CTX_SIZE])
    if raw[CTX_SIZE:256] != b"\xa5" * (256 - CTX_SIZE) or (ctx.md_len, ctx.num, ctx.Nl, ctx.Nh) != (32, 35, 792, 0):
        return False
    out = ctypes.create_string_buffer(32)
    return bool(lib.SHA256_Final(out, ctypes.byref(ctx)) == 1 and out.raw == hashlib.sha256(message).digest())


@functools.cache
def _lib() -> Any | None:
    """libcrypto, found once per process: the usual names first (already loaded by hashlib, so
    cheap), then `find_library`, which may run ldconfig."""
    for name in (*_LIBRARIES, None):
        name = name or ctypes.util.find_library("crypto")
        lib = _load(name) if name else None
        if lib is not None:
            return lib if _behaves(lib) else None
    return None


def available() -> bool:
    """Whether resumable hashers work here (libcrypto found, with the API and context layout)."""
    return _lib() is not None


class ResumableSha256:
    """hashlib-like (`update`, `copy`, `digest`, `hexdigest`) plus `export` and `restore`.
    `update` takes bytes or any C-contiguous buffer; writable ones (bytearray, their memoryviews)
    are hashed in place, read-only views in 1 MiB copies. Not for concurrent use by two threads."""

    name = "sha256"
    digest_size = 32
    block_size = 64

    def __init__(self, ctx: _Ctx | None = None) -> None:
        lib = _lib()
        if lib is None:
            raise RuntimeError("libcrypto's SHA256_* API is not usable here; check available() first")
        self._lib = lib
        if ctx is None:
            ctx = _Ctx()
            lib.SHA256_Init(ctypes.byref(ctx))
        self._ctx = ctx

    @property
    def hashed_bytes(self) -> int:
        return ((self._ctx.Nh << 32) | self._ctx.Nl) // 8

    def update(self, data: Any) -> None:
        if isinstance(data, bytes):
            self._update(data, len(data))
            return
        view = memoryview(data)
        if not view.c_contiguous:
            raise BufferError("update() needs a C-contiguous buffer")
        view = view.cast("B")
        if not view.nbytes:
            return
        if not view.readonly:
            array = (ctypes.c_char * view.nbytes).from_buffer(view)
            try:
                self._update(array, view.nbytes)
            finally:
                del array  # ends its export of the caller's buffer now, not at some later collection
            return
        for start in range(0, view.nbytes, _COPY_PIECE):
            piece = bytes(view[start:start + _COPY_PIECE])
            self._update(piece, len(piece))

    def _update(self, pointer: Any, size: int) -> None:
        if size and self._lib.SHA256_Update(ctypes.byref(self._ctx), pointer, size) != 1:
            raise RuntimeError("SHA256_Update failed")

    def copy(self) -> ResumableSha256:
        return ResumableSha256(_Ctx.from_buffer_copy(self._ctx))

    def digest(self) -> bytes:
        ctx = _Ctx.from_buffer_copy(self._ctx)
        out = ctypes.create_string_buffer(32)
        if self._lib.SHA256_Final(out, ctypes.byref(ctx)) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()

    def export(self) -> bytes:
        """The state as bytes `restore` accepts in any process of this format."""
        body = FORMAT.encode() + b"\0" + bytes(self._ctx)
        return body + hashlib.blake2b(body, digest_size=_CHECK_SIZE).digest()

    @classmethod
    def restore(cls, state: bytes | memoryview, *, size: int) -> ResumableSha256:
        """The hasher exported as `state`, which must have hashed exactly `size` bytes.
        Raises StateRefused otherwise, or when resumable hashers are not available here."""
        state = bytes(state)
        body, check = state[:-_CHECK_SIZE], state[-_CHECK_SIZE:]
        tag, _, raw = body.partition(b"\0")
        if tag != FORMAT.encode():
            raise StateRefused(f"state format {tag[:40]!r} is not {FORMAT!r}")
        if len(raw) != CTX_SIZE or hashlib.blake2b(body, digest_size=_CHECK_SIZE).digest() != check:
            raise StateRefused("state is damaged")
        if not available():
            raise StateRefused("resumable SHA-256 is not available here")
        ctx = _Ctx.from_buffer_copy(raw)
        hasher = cls(ctx)
        if ctx.md_len != 32 or ctx.num >= 64 or hasher.hashed_bytes != size or ctx.num != size % 64:
            raise StateRefused(f"state is not a SHA-256 context at offset {size}")
        return hasher
