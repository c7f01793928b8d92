"""Each ecosystem's version ordering, with the cases that trip naive comparisons."""
import pytest

from registry_policies.scanning.versions import InvalidVersion, compare


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0~rc1", "1.0", -1),            # ~ sorts before the end of the string
    ("1.0~~", "1.0~", -1),
    ("1.0~~a", "1.0~~", 1),
    ("1:1.0", "2.0", 1),               # epochs first
    ("1.0-1", "1.0-1+deb12u1", -1),    # security update revision
    ("1.0a", "1.0+", -1),              # letters before non-letters
    ("1.0", "1.00", 0),
    ("1.0-1~bpo11+1", "1.0-1", -1),    # backports are older
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("1:1.2.13.dfsg-1", "1:1.3.dfsg-1", -1),
    ("1.2.13.dfsg-1", "1:0.1", -1),
    ("7.88.1-10+deb12u5", "7.88.1-10", 1),
])
def test_dpkg_order(a: str, b: str, expected: int) -> None:
    assert sign(compare("debian", a, b)) == expected
    assert sign(compare("debian", b, a)) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.2.3-r0", "1.2.3-r1", -1),
    ("1.36.1-r15", "1.36.1-r2", 1),    # revisions are numbers
    ("1.2_rc1", "1.2", -1),            # pre-release suffixes
    ("1.2_alpha1", "1.2_beta", -1),
    ("1.2_p1", "1.2", 1),              # post-release suffix
    ("1.2a", "1.2", 1),                # letter
    ("1.2.1", "1.2a", 1),
    ("3.0.8-r3", "3.0.10-r0", -1),
    ("1.01", "1.1", -1),               # leading zero: fractional
    ("3.1.2-r0", "3.1.2-r0", 0),
])
def test_apk_order(a: str, b: str, expected: int) -> None:
    assert sign(compare("alpine", a, b)) == expected
    assert sign(compare("alpine", b, a)) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0rc1", "1.0", -1),
    ("1.0.post1", "1.0", 1),
    ("1.0.dev1", "1.0a1", -1),
    ("1!0.5", "2.0", 1),
    ("2.0", "2.0.0", 0),
    ("1.0+local", "1.0", 1),
])
def test_pep440_order(a: str, b: str, expected: int) -> None:
    assert sign(compare("pypi", a, b)) == expected


@pytest.mark.parametrize(("ecosystem", "a", "b", "expected"), [
    ("npm", "1.0.0-alpha", "1.0.0-alpha.1", -1),
    ("npm", "1.0.0-alpha.beta", "1.0.0-beta", -1),
    ("npm", "1.0.0-2", "1.0.0-11", -1),            # numeric identifiers compare as numbers
    ("npm", "1.0.0-rc.1", "1.0.0", -1),
    ("npm", "10.0.0", "9.9.9", 1),
    ("npm", "1.0.0+build.5", "1.0.0", 0),
    ("go", "v1.2.3", "1.2.3", 0),
    ("go", "v0.0.0-20210101120000-abcdef123456", "v0.0.0-20220101120000-abcdef123456", -1),
    ("go", "v0.0.0-20210101120000-abcdef123456", "0.1.0", -1),  # pseudo-versions precede releases
    ("go", "v2.0.0+incompatible", "v2.0.0", 0),
    ("go", "v1.22.1", "1.22.0", 1),
])
def test_semver_order(ecosystem: str, a: str, b: str, expected: int) -> None:
    assert sign(compare(ecosystem, a, b)) == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1", "1.0", 0),
    ("1.0.0", "1", 0),
    ("1-snapshot", "1", -1),
    ("1-alpha", "1-beta", -1),
    ("1-beta", "1-milestone", -1),
    ("1-milestone", "1-rc", -1),
    ("1-rc", "1-cr", 0),
    ("1-rc", "1-snapshot", -1),
    ("1-ga", "1", 0),
    ("1-final", "1", 0),
    ("1", "1-sp", -1),
    ("1.0-alpha1", "1.0-a1", 0),
    ("2.0.0.RELEASE", "2.0.0", 0),
    ("1.0-sp", "1.0.1", -1),
    ("1-1", "1", 1),
    ("2.17.1", "2.15.0", 1),
    ("2.9.10.8", "2.9.10", 1),
    ("1.0-foo", "1.0-sp", 1),        # unknown qualifiers after known ones
    ("1.0-alpha", "1.0-foo", -1),
])
def test_maven_order(a: str, b: str, expected: int) -> None:
    assert sign(compare("maven", a, b)) == expected
    assert sign(compare("maven", b, a)) == -expected


@pytest.mark.parametrize(("ecosystem", "version"), [
    ("debian", "a1.0"), ("debian", "1:"), ("debian", "x:1.0"), ("alpine", "1.2-x"), ("alpine", "abc"),
    ("pypi", "not a version"), ("npm", "1.2"), ("go", "latest"), ("maven", ""),
])
def test_invalid_versions_raise(ecosystem: str, version: str) -> None:
    with pytest.raises(InvalidVersion):
        compare(ecosystem, version, "1.0.0" if ecosystem not in ("debian", "alpine") else "1.0")
