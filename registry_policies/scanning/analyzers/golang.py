"""Go modules compiled into ELF executables, from the binary's build info.

The `.go.buildinfo` data starts with the 14-byte magic `\\xff Go buildinf:`, a
pointer size byte and a flags byte. With flag 2 (Go >= 1.18) the Go version and
the module info follow the 32-byte header inline as varint-prefixed strings;
otherwise two pointers (at 16 and 16+ptrsize) address Go string headers, which
are mapped to file offsets through the ELF program headers.
"""
from __future__ import annotations

import json
import struct

from registry_policies.scanning.components import Component, make_purl
from registry_policies.scanning.layers import FileView, Want

MAGIC = b"\xff Go buildinf:"
ELF_MAGIC = b"\x7fELF"
BIN_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "usr/local/go/bin",
            "go/bin", "root/go/bin", "app", "ko-app", "opt/*/bin", "usr/libexec/*")
PATTERNS = (*(f"{d}/*" for d in BIN_DIRS), "*")
MODINFO_START_LEN = 16  # sentinels Go wraps module info in since 1.13


class BuildInfoError(ValueError):
    pass


def _uvarint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            break
    raise BuildInfoError("bad varint")


def _elf_reader(data: bytes) -> tuple[str, int, list[tuple[int, int, int]]]:
    """Byte order, pointer size and PT_LOAD segments (vaddr, offset, filesz) of an ELF file."""
    if not data.startswith(ELF_MAGIC) or len(data) < 64:
        raise BuildInfoError("not an ELF file")
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
    segments = []
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + phentsize > len(data):
            break
        if is64:
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(order + "IIQQQQ", data, at)
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(order + "IIIII", data, at)
        if p_type == 1:
            segments.append((p_vaddr, p_offset, p_filesz))
    return order, 8 if is64 else 4, segments


def _read_at_vaddr(data: bytes, segments: list[tuple[int, int, int]], vaddr: int, size: int) -> bytes:
    for start, offset, filesz in segments:
        if start <= vaddr and vaddr + size <= start + filesz:
            return data[offset + vaddr - start: offset + vaddr - start + size]
    raise BuildInfoError(f"address {vaddr:#x} is outside the file")


def read_build_info(data: bytes) -> tuple[str, str]:
    """(Go version, module info text) of a Go binary; BuildInfoError when there is none."""
    at = data.find(MAGIC)
    if at < 0 or at + 32 > len(data):
        raise BuildInfoError("no Go build info")
    ptr_size, flags = data[at + 14], data[at + 15]
    if flags & 2:
        length, position = _uvarint(data, at + 32)
        version = data[position:position + length]
        length, position = _uvarint(data, position + length)
        modinfo = data[position:position + length]
    else:
        order, _, segments = _elf_reader(data)
        order = ">" if flags & 1 else order
        word = order + ("Q" if ptr_size == 8 else "I")

        def read_string(pointer_at: int) -> bytes:
            header_addr, = struct.unpack_from(word, data, pointer_at)
            header = _read_at_vaddr(data, segments, header_addr, 2 * ptr_size)
            string_addr, length = struct.unpack_from(order + ("QQ" if ptr_size == 8 else "II"), header)
            if length > 1 << 24:
                raise BuildInfoError("implausible string length")
            return _read_at_vaddr(data, segments, string_addr, length)

        version = read_string(at + 16)
        modinfo = read_string(at + 16 + ptr_size)
    if len(modinfo) >= 33 and modinfo[-17:-16] == b"\n":
        modinfo = modinfo[MODINFO_START_LEN:-MODINFO_START_LEN]
    return version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace")


def reduce_binary(_path: str, data: bytes) -> bytes | None:
    """Keep only the build info of a Go binary (nothing for other files)."""
    try:
        version, modinfo = read_build_info(data)
    except (BuildInfoError, struct.error):
        return None
    return json.dumps({"go": version, "modinfo": modinfo}).encode()


def go_semver(version: str) -> str:
    """"go1.22.1" -> "v1.22.1", "go1.21" -> "v1.21.0" (how OSV names Go's stdlib versions)."""
    bare = version.removeprefix("go").split(" ")[0].split("-")[0]
    parts = bare.split(".")
    while len(parts) < 3:
        parts.append("0")
    return "v" + ".".join(parts[:3])


def parse_modinfo(modinfo: str) -> list[tuple[str, str]]:
    """(module path, version) of each dependency, replacements (`=>`) applied."""
    modules: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] == "dep" and len(fields) >= 3:
            modules.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3 and modules:
            modules[-1] = (fields[1], fields[2])
    return modules


class GoBinaryAnalyzer:
    name = "golang"
    wants: tuple[Want, ...] = tuple(Want(p, prefilter=lambda head: head.startswith(ELF_MAGIC), reduce=reduce_binary,
                       prefilter_bytes=4) for p in PATTERNS)

    def analyze(self, files: FileView) -> list[Component]:
        components = []
        paths = sorted({path for pattern in PATTERNS for path in files.matching(pattern)})
        for path in paths:
            data = files.get(path) or b""
            if not data.startswith(b'{"go":'):
                continue
            info = json.loads(data)
            layer = files.layer_of(path)
            modules = parse_modinfo(info["modinfo"])
            if info["go"].startswith("go"):
                modules.append(("stdlib", go_semver(info["go"])))
            for module, version in modules:
                if not version or version == "(devel)":
                    continue
                namespace, _, name = module.rpartition("/")
                components.append(Component(
                    name=module, version=version, type="golang",
                    purl=make_purl("golang", name, version, namespace=namespace or None),
                    layer_digest=layer, path=path,
                ))
        return components
