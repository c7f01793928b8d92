"""Each analyzer on realistic package data, read through real layers."""
import io

from registry_policies.scanning.analyzers.apk import ApkAnalyzer
from registry_policies.scanning.analyzers.dpkg import DpkgAnalyzer, copyright_licenses
from registry_policies.scanning.analyzers.golang import GoBinaryAnalyzer, read_build_info
from registry_policies.scanning.analyzers.java import JavaAnalyzer
from registry_policies.scanning.analyzers.npm import NpmAnalyzer
from registry_policies.scanning.analyzers.python import PythonAnalyzer
from registry_policies.scanning.analyzers.rpm import RpmAnalyzer, RpmHeaderError, parse_header
from registry_policies.scanning.layers import FileView, ReadLimits, WantSet, read_layer_into
from tests.scanning.builders import (
    ALPINE_OS_RELEASE,
    APK_INSTALLED,
    go_binary,
    jar_bytes,
    layer,
    package_json,
    python_metadata,
    rpm_header,
    rpmdb_sqlite,
)


def view_of(analyzer, *layers: dict) -> FileView:  # type: ignore[no-untyped-def]
    view = FileView()
    for number, files in enumerate(layers, start=1):
        read_layer_into(view, io.BytesIO(layer(files)), digest=f"sha256:layer{number}",
                        wants=WantSet(analyzer.wants), limits=ReadLimits())
    return view


def by_name(components: list) -> dict:  # type: ignore[type-arg]
    return {c.name: c for c in components}


def test_apk_packages_with_origin_license_and_installing_layer() -> None:
    analyzer = ApkAnalyzer()
    first_two = APK_INSTALLED.split("\n\n")[:2]
    view = view_of(analyzer, {"etc/os-release": ALPINE_OS_RELEASE, "lib/apk/db/installed": "\n\n".join(first_two)},
                   {"lib/apk/db/installed": APK_INSTALLED})
    found = by_name(analyzer.analyze(view))
    assert set(found) == {"musl", "libcrypto3", "busybox"}
    crypto = found["libcrypto3"]
    assert (crypto.version, crypto.source_name, crypto.licenses) == ("3.1.2-r0", "openssl", ["Apache-2.0"])
    assert crypto.distro == "alpine:v3.18"
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.2-r0?arch=x86_64&distro=alpine-3.18&upstream=openssl"
    assert found["musl"].layer_digest == "sha256:layer1"
    assert found["busybox"].layer_digest == "sha256:layer2"  # added by the upper layer
    assert found["busybox"].licenses == ["GPL-2.0-only"]


def test_dpkg_status_d_and_dep5_copyright() -> None:
    analyzer = DpkgAnalyzer()
    status = ("Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n"
              "Status: install ok installed\n\nPackage: removed\nVersion: 1.0\nStatus: deinstall ok config-files\n")
    distroless = "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
    copyright_text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                      "Upstream-Name: OpenSSL\n\nFiles: *\nCopyright: 1998-2023 The OpenSSL Authors\n"
                      "License: Apache-2.0\n\nFiles: debian/*\nCopyright: 2023 Debian\n"
                      "License: GPL-2+ or BSD-3-clause\n"
                      "\nLicense: Apache-2.0\n Apache License Version 2.0 text...\n")
    view = view_of(analyzer, {"var/lib/dpkg/status": status, "var/lib/dpkg/status.d/tzdata": distroless,
                              "var/lib/dpkg/status.d/tzdata.md5sums": "abc  usr/share/zoneinfo/UTC\n",
                              "usr/share/doc/libssl3/copyright": copyright_text,
                              "etc/os-release": 'ID=debian\nVERSION_ID="12"\n'})
    found = by_name(analyzer.analyze(view))
    assert set(found) == {"libssl3", "tzdata"}
    ssl = found["libssl3"]
    assert (ssl.source_name, ssl.source_version) == ("openssl", "3.0.11-1~deb12u2")
    assert ssl.licenses == ["Apache-2.0", "GPL-2.0-or-later OR BSD-3-Clause"]
    assert ssl.purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"
    assert found["tzdata"].path == "var/lib/dpkg/status.d/tzdata"


def test_free_form_copyright_gives_no_license() -> None:
    assert copyright_licenses("This is the Debian prepackaged version of ...\nGPL\n") == []


def test_rpm_sqlite_database_headers() -> None:
    headers = [
        rpm_header({1000: "bash", 1001: "5.1.8", 1002: "6.el9", 1014: "GPLv3+", 1022: "x86_64",
                    1044: "bash-5.1.8-6.el9.src.rpm"}),
        rpm_header({1000: "openssl-libs", 1001: "3.0.7", 1002: "24.el9", 1003: 1,
                    1014: "ASL 2.0", 1022: "x86_64", 1044: "openssl-3.0.7-24.el9.src.rpm"}),
        rpm_header({1000: "gpg-pubkey", 1001: "fd431d51", 1002: "4ae0493b"}),
        b"\x00\x00\x00\x09\x00\x00\x00\x10garbage",
    ]
    analyzer = RpmAnalyzer()
    view = view_of(analyzer, {"var/lib/rpm/rpmdb.sqlite": rpmdb_sqlite(headers),
                              "etc/os-release": 'ID="rocky"\nVERSION_ID="9.3"\n'})
    found = by_name(analyzer.analyze(view))
    assert set(found) == {"bash", "openssl-libs"}
    assert (found["bash"].version, found["bash"].licenses) == ("5.1.8-6.el9", ["GPL-3.0-or-later"])
    ssl = found["openssl-libs"]
    assert (ssl.version, ssl.source_name, ssl.source_version) == ("1:3.0.7-24.el9", "openssl", "3.0.7-24.el9")
    assert ssl.licenses == ["Apache-2.0"]
    assert ssl.purl == "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rocky-9.3&epoch=1"
    assert any("package #4" in note for note in view.notes)


def test_rpm_header_out_of_bounds_is_rejected() -> None:
    import pytest

    with pytest.raises(RpmHeaderError):
        parse_header(b"\x00\x00\xff\xff\x00\x00\x00\x10" + b"\0" * 32)


def test_python_dist_info_and_egg_info_licenses() -> None:
    site = "usr/local/lib/python3.12/site-packages"
    analyzer = PythonAnalyzer()
    view = view_of(analyzer, {
        f"{site}/PyYAML-5.3.1.dist-info/METADATA": python_metadata("PyYAML", "5.3.1", license_field="MIT"),
        f"{site}/requests-2.28.0.dist-info/METADATA": python_metadata(
            "requests", "2.28.0", license_field="Apache 2.0",
            classifiers=("License :: OSI Approved :: Apache Software License",)),
        f"{site}/attrs-23.1.0.dist-info/METADATA": python_metadata(
            "attrs", "23.1.0", license_field="Long text\n        spanning lines",
            classifiers=("License :: OSI Approved :: MIT License",)),
        f"{site}/newpkg-1.0.dist-info/METADATA": python_metadata("newpkg", "1.0", expression="MIT OR Apache-2.0"),
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info": python_metadata("six", "1.16.0", license_field="MIT"),
        f"{site}/legacy.egg-info/PKG-INFO": python_metadata("Legacy_Pkg", "0.9", license_field="GPLv2+"),
    })
    found = by_name(analyzer.analyze(view))
    assert found["PyYAML"].purl == "pkg:pypi/pyyaml@5.3.1"
    assert found["PyYAML"].licenses == ["MIT"]
    assert found["requests"].licenses == ["Apache-2.0"]
    assert found["attrs"].licenses == ["MIT"]  # multi-line License field: classifiers instead
    assert found["newpkg"].licenses == ["MIT OR Apache-2.0"]
    assert found["six"].type == "pypi"
    assert found["Legacy_Pkg"].licenses == ["GPL-2.0-or-later"]
    assert found["Legacy_Pkg"].purl == "pkg:pypi/legacy-pkg@0.9"


def test_npm_packages_scoped_nested_and_license_forms() -> None:
    analyzer = NpmAnalyzer()
    app = "app/node_modules"
    view = view_of(analyzer, {
        f"{app}/lodash/package.json": package_json("lodash", "4.17.15", "MIT"),
        f"{app}/minimist/package.json": package_json("minimist", "1.2.5", {"type": "MIT", "url": "x"}),
        f"{app}/@scope/ansi-regex/package.json": package_json("@scope/ansi-regex", "4.1.0", "(MIT OR CC0-1.0)"),
        f"{app}/lodash/node_modules/inner/package.json": package_json("inner", "0.1.0"),
        f"{app}/lodash/lib/package.json": package_json("not-a-package", "9.9.9"),
        f"{app}/broken/package.json": "{not json",
    })
    found = by_name(analyzer.analyze(view))
    assert set(found) == {"lodash", "minimist", "@scope/ansi-regex", "inner"}
    assert found["minimist"].licenses == ["MIT"]
    assert found["@scope/ansi-regex"].purl == "pkg:npm/%40scope/ansi-regex@4.1.0"
    assert found["@scope/ansi-regex"].licenses == ["MIT OR CC0-1.0"]
    assert any("broken/package.json" in note for note in view.notes)


def test_go_build_info_inline_format_with_replacements() -> None:
    binary = go_binary("go1.21.1", "example.com/app",
                       [("github.com/spf13/cobra", "v1.8.0"),
                        ("golang.org/x/sys", "v0.0.0-20210630005230-0f9fa26af87c"),
                        ("golang.org/x/net", "v0.10.0")],
                       replaces={"golang.org/x/net": ("golang.org/x/net", "v0.17.0")})
    version, modinfo = read_build_info(binary)
    assert version == "go1.21.1"
    assert modinfo.startswith("path\texample.com/app")
    analyzer = GoBinaryAnalyzer()
    view = view_of(analyzer, {"usr/local/bin/app": binary, "usr/bin/not-go": b"\x7fELF" + b"\0" * 200,
                              "usr/bin/script": "#!/bin/sh\necho hi\n"})
    found = by_name(analyzer.analyze(view))
    assert set(found) == {"github.com/spf13/cobra", "golang.org/x/sys", "golang.org/x/net", "stdlib"}
    assert found["golang.org/x/net"].version == "v0.17.0"
    assert found["stdlib"].version == "v1.21.1"
    assert found["github.com/spf13/cobra"].purl == "pkg:golang/github.com/spf13/cobra@v1.8.0"
    assert view.paths() == ["usr/local/bin/app"]  # only the build info of Go binaries is kept
    assert len(view.get("usr/local/bin/app") or b"") < 1000


def test_java_pom_properties_in_jars_and_nested_jars() -> None:
    inner = jar_bytes("com.fasterxml.jackson.core", "jackson-databind", "2.12.6",
                      license_name="The Apache Software License, Version 2.0")
    boot = jar_bytes("com.example", "app", "1.0.0", nested={"BOOT-INF/lib/jackson-databind-2.12.6.jar": inner})
    analyzer = JavaAnalyzer()
    view = view_of(analyzer, {
        "opt/app/app.jar": boot,
        "usr/share/java/log4j-core.jar": jar_bytes("org.apache.logging.log4j", "log4j-core", "2.14.1",
                                                   license_name="Apache License, Version 2.0"),
        "opt/app/not-a-jar.jar": "plain text",
    })
    found = by_name(analyzer.analyze(view))
    assert set(found) == {"com.example:app", "com.fasterxml.jackson.core:jackson-databind",
                          "org.apache.logging.log4j:log4j-core"}
    jackson = found["com.fasterxml.jackson.core:jackson-databind"]
    assert jackson.purl == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.12.6"
    assert jackson.licenses == ["Apache-2.0"]
    assert jackson.path == "opt/app/app.jar!/BOOT-INF/lib/jackson-databind-2.12.6.jar"
