"""What an analyzer finds: one installed package (OS or language)."""
from __future__ import annotations

from dataclasses import dataclass, field

from packageurl import PackageURL

# Component type -> purl type (they coincide except for Python).
PURL_TYPES = {"deb": "deb", "apk": "apk", "rpm": "rpm", "pypi": "pypi", "npm": "npm",
              "golang": "golang", "maven": "maven"}


@dataclass
class Component:
    """An installed package.

    `distro` is "debian:12" / "alpine:v3.19" / "" and selects the OSV ecosystem
    release; `source_name`/`source_version` name the source package OS
    vulnerability data is keyed by; `layer_digest` is the layer it was found in.
    """

    name: str
    version: str
    type: str
    purl: str = ""
    licenses: list[str] = field(default_factory=list)
    source_name: str = ""
    source_version: str = ""
    layer_digest: str = ""
    distro: str = ""
    path: str = ""

    def key(self) -> tuple[str, str, str]:
        return (self.type, self.name, self.version)


def make_purl(ctype: str, name: str, version: str, *, namespace: str | None = None,
              qualifiers: dict[str, str] | None = None) -> str:
    """A package URL (purl spec) for a component; empty qualifiers are dropped."""
    quals = {k: v for k, v in (qualifiers or {}).items() if v}
    return PackageURL(type=PURL_TYPES[ctype], namespace=namespace or None, name=name,
                      version=version or None, qualifiers=quals or None).to_string()
