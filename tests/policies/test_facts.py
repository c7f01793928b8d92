"""Image facts: the plain implementation, vulnerability counts and the facts of an index (no DB)."""
import pytest

from registry_policies.policies.facts import (
    UNSCANNED,
    Component,
    ImageFacts,
    StaticImageFacts,
    combine_facts,
    vulnerability_count,
)


def test_static_facts_satisfy_the_protocol():
    assert isinstance(StaticImageFacts(), ImageFacts)
    assert isinstance(UNSCANNED, ImageFacts)
    assert UNSCANNED.scanned is False and not UNSCANNED.components


def test_static_facts_are_immutable_and_copy_their_inputs():
    components = [Component("a", licenses=["MIT"])]
    counts = {"critical": 1}
    facts = StaticImageFacts(components=components, vulnerability_counts=counts)
    components.append(Component("b"))
    counts["critical"] = 5
    assert facts.components == (Component("a", licenses=("MIT",)),)
    assert facts.vulnerability_counts == {"critical": 1}
    with pytest.raises(TypeError):
        facts.vulnerability_counts["major"] = 1  # type: ignore[index]
    assert hash(facts.components[0]) == hash(Component("a", licenses=["MIT"]))


@pytest.mark.parametrize(
    ("counts", "message"),
    [({"high": 1}, "Unknown severity"), ({"all": 3}, "Unknown severity"), ({"minor": -1}, "non-negative"),
     ({"minor": 1.5}, "non-negative"), ({"minor": True}, "non-negative")],
)
def test_static_facts_reject_bad_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        StaticImageFacts(vulnerability_counts=counts)


@pytest.mark.parametrize(
    ("severity", "expected"), [("critical", 1), ("major", 0), ("minor", 4), ("all", 5)]
)
def test_vulnerability_count_all_is_the_sum_and_missing_bands_are_zero(severity, expected):
    facts = StaticImageFacts(vulnerability_counts={"critical": 1, "minor": 4})
    assert vulnerability_count(facts, severity) == expected


def test_vulnerability_count_rejects_unknown_severity():
    with pytest.raises(ValueError, match="Unknown severity"):
        vulnerability_count(StaticImageFacts(), "high")


def test_index_facts_are_the_union_of_its_children():
    amd64 = StaticImageFacts(components=[Component("libc6", "2.36"), Component("openssl", "3.0")],
                             vulnerability_counts={"critical": 1, "major": 2})
    arm64 = StaticImageFacts(components=[Component("libc6", "2.36"), Component("qemu-user", "7.2")],
                             vulnerability_counts={"critical": 1, "minor": 3})
    index = combine_facts([amd64, arm64])
    assert index.scanned
    assert [c.name for c in index.components] == ["libc6", "openssl", "qemu-user"]
    assert dict(index.vulnerability_counts) == {"critical": 2, "major": 2, "minor": 3}


def test_index_is_unscanned_until_every_child_is_scanned():
    scanned = StaticImageFacts(components=[Component("a")])
    assert combine_facts([scanned, UNSCANNED]).scanned is False
    assert combine_facts([scanned, UNSCANNED]).components == ()
    assert combine_facts([]).scanned is False
    assert combine_facts(iter([scanned])).scanned is True
