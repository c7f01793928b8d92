"""The criteria engine: parsing/validation of rules and their evaluation over a tag's facts (no DB)."""
import pickle

import pytest
from django.core.exceptions import ValidationError
from rest_framework.serializers import as_serializer_error

from registry_policies.policies.criteria import (
    OPERATORS_BY_FIELD,
    InvalidRules,
    Operator,
    Outcome,
    Rule,
    RuleField,
    describe,
    parse_rule,
    parse_rules,
)
from registry_policies.policies.evaluation import Evaluation, evaluate, evaluate_rule
from registry_policies.policies.facts import UNSCANNED, Component, StaticImageFacts
from registry_policies.policies.license_match import license_ids, normalize_license

MATCH, NO_MATCH, PENDING = Outcome.MATCH, Outcome.NO_MATCH, Outcome.PENDING


def rule(field, operator, *values, severity=None):
    data = {"field": field, "operator": operator, "values": list(values)}
    if severity is not None:
        data["severity"] = severity
    return parse_rule(data)


def facts(*components, **counts):
    return StaticImageFacts(scanned=True, components=components, vulnerability_counts=counts)


def comp(name, *licenses, version="1.0"):
    return Component(name=name, version=version, type="deb", licenses=list(licenses))


def outcome(r, *, tag="v1.2.3", f=None):
    return evaluate_rule(r, tag_name=tag, facts=f if f is not None else facts()).outcome


def codes(exc, key):
    return [error.code for error in exc.error_dict[key]]


# ---------------------------------------------------------------------------------------- tag_name


@pytest.mark.parametrize(
    ("operator", "values", "tag", "expected"),
    [
        ("equals", ["v1.2.3"], "v1.2.3", MATCH),
        ("equals", ["v1.2"], "v1.2.3", NO_MATCH),
        ("equals", ["V1.2.3"], "v1.2.3", NO_MATCH),  # tag names are case-sensitive
        ("starts_with", ["v1."], "v1.2.3", MATCH),
        ("starts_with", ["1."], "v1.2.3", NO_MATCH),
        ("starts_with", ["V"], "v1.2.3", NO_MATCH),
        ("starts_with", ["v1.2.3"], "v1.2.3", MATCH),  # a whole tag starts with itself
        ("ends_with", ["-stable"], "1.0-stable", MATCH),
        ("ends_with", ["-STABLE"], "1.0-stable", NO_MATCH),
        ("ends_with", ["stable-"], "1.0-stable", NO_MATCH),
        ("contains", ["rc"], "2.0-rc1", MATCH),
        ("contains", ["RC"], "2.0-rc1", NO_MATCH),
        ("contains", ["beta"], "2.0-rc1", NO_MATCH),
        ("one_of", ["latest", "stable"], "stable", MATCH),
        ("one_of", ["latest", "stable"], "Stable", NO_MATCH),
        ("one_of", ["latest", "stable"], "stable2", NO_MATCH),  # whole-name comparison, not substring
        ("one_of", ["latest"], "latest", MATCH),
        ("not_one_of", ["latest", "dev"], "v1", MATCH),
        ("not_one_of", ["latest", "dev"], "dev", NO_MATCH),
        ("not_one_of", ["latest", "dev"], "DEV", MATCH),
    ],
)
def test_tag_name_operators(operator, values, tag, expected):
    assert outcome(rule("tag_name", operator, *values), tag=tag) == expected


def test_tag_name_rule_never_waits_for_a_scan():
    assert outcome(rule("tag_name", "equals", "v1"), tag="v1", f=UNSCANNED) == MATCH
    assert outcome(rule("tag_name", "equals", "v1"), tag="v2", f=UNSCANNED) == NO_MATCH


def test_tag_name_explanations_say_what_was_compared():
    good = evaluate_rule(rule("tag_name", "starts_with", "v"), tag_name="v1", facts=UNSCANNED)
    bad = evaluate_rule(rule("tag_name", "starts_with", "v"), tag_name="x1", facts=UNSCANNED)
    assert good.explanation == "Tag 'v1' starts with 'v'."
    assert bad.explanation == "Tag 'x1' does not start with 'v'."


# ---------------------------------------------------------------------------------- component_name

IMAGE = facts(comp("openssl", "Apache-2.0"), comp("libc6", "LGPL-2.1-or-later"), comp("PyYAML", "MIT"))


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("equals", ["openssl"], MATCH),
        ("equals", ["open"], NO_MATCH),
        ("equals", ["pyyaml"], MATCH),  # component names compare case-insensitively
        ("equals", ["OPENSSL"], MATCH),
        ("starts_with", ["lib"], MATCH),
        ("starts_with", ["ssl"], NO_MATCH),
        ("ends_with", ["ssl"], MATCH),
        ("ends_with", ["lib"], NO_MATCH),
        ("contains", ["bc"], MATCH),
        ("contains", ["YAM"], MATCH),
        ("contains", ["zlib"], NO_MATCH),
        ("one_of", ["zlib", "libc6"], MATCH),
        ("one_of", ["zlib", "bash"], NO_MATCH),
        ("one_of", ["libc"], NO_MATCH),  # whole-name comparison
        ("not_one_of", ["zlib", "bash"], MATCH),
        ("not_one_of", ["zlib", "libc6"], NO_MATCH),  # one component is in the list: fails
        ("not_one_of", ["PYYAML"], NO_MATCH),
    ],
)
def test_component_name_operators(operator, values, expected):
    assert outcome(rule("component_name", operator, *values), f=IMAGE) == expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("equals", NO_MATCH), ("starts_with", NO_MATCH), ("ends_with", NO_MATCH), ("contains", NO_MATCH),
     ("one_of", NO_MATCH), ("not_one_of", MATCH)],
)
def test_component_name_on_an_image_without_components(operator, expected):
    assert outcome(rule("component_name", operator, "x"), f=facts()) == expected


def test_component_name_of_an_index_considers_every_child_through_its_facts():
    # The facts of an index carry the union of its children's components.
    index = facts(comp("busybox", version="1.36"), comp("musl", version="1.2"))
    assert outcome(rule("component_name", "equals", "musl"), f=index) == MATCH
    assert outcome(rule("component_name", "not_one_of", "musl"), f=index) == NO_MATCH


def test_component_name_explanations_name_the_component():
    hit = evaluate_rule(rule("component_name", "starts_with", "open"), tag_name="t", facts=IMAGE)
    miss = evaluate_rule(rule("component_name", "equals", "zlib"), tag_name="t", facts=IMAGE)
    excluded = evaluate_rule(rule("component_name", "not_one_of", "libc6"), tag_name="t", facts=IMAGE)
    assert hit.explanation == "Component 'openssl' 1.0 starts with 'open'."
    assert miss.explanation == "No component name equals 'zlib' (3 components)."
    assert excluded.explanation == "Component 'libc6' 1.0 is one of 'libc6'."


# --------------------------------------------------------------------------------- vulnerabilities

COUNTS = facts(critical=2, major=5, minor=10)


@pytest.mark.parametrize(
    ("operator", "severity", "value", "expected"),
    [
        ("gte", "critical", "2", MATCH),
        ("gte", "critical", "3", NO_MATCH),
        ("gt", "critical", "1", MATCH),
        ("gt", "critical", "2", NO_MATCH),
        ("eq", "major", "5", MATCH),
        ("eq", "major", "4", NO_MATCH),
        ("ne", "major", "4", MATCH),
        ("ne", "major", "5", NO_MATCH),
        ("lte", "minor", "10", MATCH),
        ("lte", "minor", "9", NO_MATCH),
        ("lt", "minor", "11", MATCH),
        ("lt", "minor", "10", NO_MATCH),
        ("eq", "all", "17", MATCH),  # all = critical + major + minor
        ("lt", "all", "17", NO_MATCH),
        ("gte", "all", "17", MATCH),
        ("lte", "critical", "0", NO_MATCH),
    ],
)
def test_vulnerability_operators(operator, severity, value, expected):
    assert outcome(rule("vulnerabilities", operator, value, severity=severity), f=COUNTS) == expected


def test_missing_severity_counts_are_zero():
    partial = facts(major=3)
    assert outcome(rule("vulnerabilities", "eq", "0", severity="critical"), f=partial) == MATCH
    assert outcome(rule("vulnerabilities", "eq", "3", severity="all"), f=partial) == MATCH
    assert outcome(rule("vulnerabilities", "lte", "0", severity="all"), f=facts()) == MATCH


def test_vulnerability_explanation_gives_the_count():
    at_most_none = rule("vulnerabilities", "lte", "0", severity="critical")
    result = evaluate_rule(at_most_none, tag_name="t", facts=COUNTS)
    assert result.explanation == "2 critical vulnerabilities, which is not ≤ 0."


# ------------------------------------------------------------------------------------ license_name

LICENSED = facts(
    comp("curl", "curl"),
    comp("requests", "Apache-2.0"),
    comp("six", "MIT OR Apache-2.0"),
    comp("readline", "GPL-3.0-or-later"),
    comp("unlicensed"),
)


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("one_of", ["Apache-2.0"], MATCH),
        ("one_of", ["apache-2.0"], MATCH),  # case-insensitive
        ("one_of", ["MIT"], MATCH),  # found inside "MIT OR Apache-2.0"
        ("one_of", ["mit"], MATCH),
        ("one_of", ["BSD-3-Clause", "curl"], MATCH),
        ("one_of", ["BSD-3-Clause"], NO_MATCH),
        ("one_of", ["GPL-3.0"], NO_MATCH),  # GPL-3.0 means -only, not -or-later
        ("one_of", ["GPL-3.0+"], MATCH),  # "+" is the old spelling of -or-later
        ("one_of", ["Apache"], NO_MATCH),  # ids match whole, not as substrings
        ("not_one_of", ["GPL-3.0-or-later"], NO_MATCH),
        ("not_one_of", ["gpl-3.0-or-later", "AGPL-3.0"], NO_MATCH),
        ("not_one_of", ["AGPL-3.0", "SSPL-1.0"], MATCH),
        ("not_one_of", ["MIT"], NO_MATCH),  # six is dual-licensed, its expression contains MIT
        ("not_one_of", ["GPL"], MATCH),  # "GPL" is not the id GPL-3.0-or-later
    ],
)
def test_license_operators(operator, values, expected):
    assert outcome(rule("license_name", operator, *values), f=LICENSED) == expected


def test_license_rules_on_components_without_licenses():
    bare = facts(comp("a"), comp("b"))
    assert outcome(rule("license_name", "one_of", "MIT"), f=bare) == NO_MATCH
    assert outcome(rule("license_name", "not_one_of", "MIT"), f=bare) == MATCH


def test_license_words_match_case_insensitively_with_collapsed_whitespace():
    words = facts(comp("tzdata", "Public Domain"), comp("x", "MIT OR Public  Domain"))
    assert outcome(rule("license_name", "one_of", "public domain"), f=words) == MATCH
    assert outcome(rule("license_name", "one_of", "PUBLIC   DOMAIN"), f=words) == MATCH
    assert outcome(rule("license_name", "one_of", "domain"), f=words) == NO_MATCH


def test_license_value_may_be_a_whole_expression():
    assert outcome(rule("license_name", "one_of", "mit or apache-2.0"), f=LICENSED) == MATCH


def test_any_license_of_a_component_counts():
    multi = facts(comp("pkg", "BSD-2-Clause", "Zlib"))
    assert outcome(rule("license_name", "one_of", "zlib"), f=multi) == MATCH
    assert outcome(rule("license_name", "not_one_of", "ZLIB"), f=multi) == NO_MATCH


@pytest.mark.parametrize(
    ("expression", "contained"),
    [
        ("MIT", {"mit"}),
        ("MIT OR Apache-2.0", {"mit", "apache-2.0", "mit or apache-2.0"}),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", {"mit", "apache-2.0", "bsd-3-clause"}),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", {"gpl-2.0-or-later", "classpath-exception-2.0"}),
        ("GPL-2.0-only", {"gpl-2.0"}),
        ("LGPL-2.1+", {"lgpl-2.1-or-later"}),
        ("mit and isc", {"mit", "isc"}),
    ],
)
def test_license_ids_of_an_expression(expression, contained):
    assert contained <= license_ids(expression)
    assert "or" not in license_ids(expression) and "and" not in license_ids(expression)


def test_normalize_license_applies_spdx_aliases():
    assert normalize_license(" GPL-2.0-only ") == normalize_license("gpl-2.0") == "gpl-2.0"
    assert normalize_license("GPL-2.0+") == normalize_license("GPL-2.0-or-later")
    assert normalize_license("GPL-2.0-or-later") != normalize_license("GPL-2.0")


def test_license_explanations_name_component_and_expression():
    hit = evaluate_rule(rule("license_name", "not_one_of", "MIT"), tag_name="t", facts=LICENSED)
    assert hit.explanation == "Component 'six' 1.0 has license 'MIT OR Apache-2.0', which is one of 'MIT'."


# ------------------------------------------------------------------------------ pending and overall

SCAN_RULES = [
    rule("component_name", "equals", "openssl"),
    rule("vulnerabilities", "lte", "0", severity="critical"),
    rule("license_name", "not_one_of", "GPL-3.0"),
]


@pytest.mark.parametrize("scan_rule", SCAN_RULES, ids=lambda r: str(r.field))
def test_rules_needing_scan_data_are_pending_until_scanned(scan_rule):
    result = evaluate_rule(scan_rule, tag_name="v1", facts=UNSCANNED)
    assert result.outcome == PENDING
    assert "scanned" in result.explanation
    assert scan_rule.needs_scan


def test_pending_even_when_unscanned_facts_claim_components_or_counts():
    # Partial data (some children scanned) must not decide anything.
    partial = StaticImageFacts(scanned=False, components=[comp("openssl")],
                               vulnerability_counts={"critical": 9})
    assert evaluate(SCAN_RULES, tag_name="v1", facts=partial).outcome == PENDING


def test_no_rules_match_every_tag():
    evaluation = evaluate([], tag_name="anything", facts=UNSCANNED)
    assert evaluation == Evaluation(outcome=MATCH, results=())
    assert evaluation.matched and evaluation.reason == "No rules: every tag matches."


def test_all_rules_must_match():
    rules = [rule("tag_name", "starts_with", "v"), rule("component_name", "equals", "openssl")]
    assert evaluate(rules, tag_name="v1", facts=IMAGE).outcome == MATCH
    assert evaluate(rules, tag_name="x1", facts=IMAGE).outcome == NO_MATCH
    assert evaluate(rules, tag_name="v1", facts=facts(comp("zlib"))).outcome == NO_MATCH


def test_failing_tag_name_rule_beats_pending_scan_rules():
    rules = [*SCAN_RULES, rule("tag_name", "equals", "release")]
    evaluation = evaluate(rules, tag_name="dev", facts=UNSCANNED)
    assert evaluation.outcome == NO_MATCH
    assert [r.outcome for r in evaluation.results] == [PENDING, PENDING, PENDING, NO_MATCH]
    assert evaluation.reason == "Tag 'dev' does not equal 'release'."


def test_matching_tag_name_with_unscanned_image_is_pending():
    rules = [rule("tag_name", "equals", "release"), *SCAN_RULES]
    evaluation = evaluate(rules, tag_name="release", facts=UNSCANNED)
    assert evaluation.outcome == PENDING and evaluation.pending and not evaluation.matched
    assert [r.outcome for r in evaluation.results] == [MATCH, PENDING, PENDING, PENDING]
    assert evaluation.reason.count("Waiting for every image") == 3


def test_once_scanned_the_same_policy_decides():
    rules = [rule("tag_name", "equals", "release"), *SCAN_RULES]
    clean = facts(comp("openssl", "Apache-2.0"), critical=0, major=1)
    dirty = facts(comp("openssl", "Apache-2.0"), critical=1)
    assert evaluate(rules, tag_name="release", facts=clean).outcome == MATCH
    assert evaluate(rules, tag_name="release", facts=dirty).outcome == NO_MATCH


def test_results_keep_rule_order_and_unpack_as_triples_for_display():
    rules = [rule("tag_name", "equals", "v1"), rule("vulnerabilities", "eq", "0", severity="all")]
    evaluation = evaluate(rules, tag_name="v1", facts=facts())
    assert [r.rule for r in evaluation.results] == rules
    for r, result_outcome, explanation in evaluation.results:
        assert isinstance(r, Rule) and result_outcome == MATCH and explanation
    assert evaluation.reason.startswith("All rules match: ")


def test_evaluation_to_dict_for_a_dry_run_response():
    rules = [rule("tag_name", "equals", "v1"), rule("license_name", "one_of", "MIT")]
    assert evaluate(rules, tag_name="v1", facts=UNSCANNED).to_dict() == {
        "outcome": "pending",
        "reason": "Waiting for every image of the tag to be scanned (license is one of 'MIT').",
        "rules": [
            {"rule": {"field": "tag_name", "operator": "equals", "values": ["v1"], "severity": None},
             "outcome": "match", "explanation": "Tag 'v1' equals 'v1'."},
            {"rule": {"field": "license_name", "operator": "one_of", "values": ["MIT"], "severity": None},
             "outcome": "pending",
             "explanation": "Waiting for every image of the tag to be scanned (license is one of 'MIT')."},
        ],
    }


def test_evaluate_accepts_any_iterable_of_rules():
    assert evaluate(iter([rule("tag_name", "equals", "a")]), tag_name="a", facts=UNSCANNED).matched


# ------------------------------------------------------------------------------------------ parsing


def test_parse_rule_returns_a_normalized_frozen_rule():
    parsed = parse_rule({"field": " tag_name ", "operator": "one_of ", "values": [" a ", "b", "a"]})
    assert parsed == Rule(field=RuleField.TAG_NAME, operator=Operator.ONE_OF, values=("a", "b"))
    assert parsed.severity is None and not parsed.needs_scan
    with pytest.raises(AttributeError):
        parsed.values = ("c",)  # type: ignore[misc]


def test_parse_rule_normalizes_counts_and_severity():
    parsed = parse_rule(vuln([" 007 "], operator="lt", severity=" major "))
    assert parsed.values == ("7",) and parsed.severity == "major"


@pytest.mark.parametrize("empty_severity", [None, "", "  "])
def test_blank_severity_is_absent_for_other_fields(empty_severity):
    data = {"field": "license_name", "operator": "one_of", "values": ["MIT"], "severity": empty_severity}
    assert parse_rule(data).severity is None


def test_to_dict_round_trips():
    for original in [*SCAN_RULES, rule("tag_name", "not_one_of", "a", "b")]:
        assert parse_rule(original.to_dict()) == original
    assert SCAN_RULES[1].to_dict() == {"field": "vulnerabilities", "operator": "lte", "values": ["0"],
                                       "severity": "critical"}


def test_describe_reads_like_the_spec():
    assert describe(rule("tag_name", "starts_with", "v")) == "tag name starts with 'v'"
    assert str(rule("component_name", "not_one_of", "a", "b")) == "component name is not one of 'a', 'b'"
    assert describe(rule("vulnerabilities", "gte", "1", severity="all")) == "all vulnerabilities ≥ 1"
    assert describe(rule("license_name", "one_of", "MIT")) == "license is one of 'MIT'"


@pytest.mark.parametrize("field", list(RuleField))
def test_every_operator_valid_for_a_field_parses(field):
    for operator in OPERATORS_BY_FIELD[field]:
        severity = "all" if field is RuleField.VULNERABILITIES else None
        value = "1" if field is RuleField.VULNERABILITIES else "x"
        assert rule(field.value, operator.value, value, severity=severity).operator is operator


@pytest.mark.parametrize(
    ("field", "operator"),
    [
        ("tag_name", "gte"),
        ("component_name", "lt"),
        ("vulnerabilities", "equals"),
        ("vulnerabilities", "one_of"),
        ("license_name", "equals"),
        ("license_name", "contains"),
        ("license_name", "starts_with"),
        ("license_name", "eq"),
    ],
)
def test_operator_not_valid_for_the_field_is_rejected(field, operator):
    data = {"field": field, "operator": operator, "values": ["1"]}
    if field == "vulnerabilities":
        data["severity"] = "all"
    with pytest.raises(ValidationError) as exc:
        parse_rule(data)
    assert codes(exc.value, "operator") == ["operator_not_for_field"]
    assert field in exc.value.message_dict["operator"][0]


def vuln(values, **extra):
    return {"field": "vulnerabilities", "operator": "gte", "values": values, "severity": "all", **extra}


INVALID = [
    # (data, key, code)
    ({"field": "tag", "operator": "equals", "values": ["a"]}, "field", "unknown_field"),
    ({"field": "Tag_Name", "operator": "equals", "values": ["a"]}, "field", "unknown_field"),
    ({"operator": "equals", "values": ["a"]}, "field", "required"),
    ({"field": "  ", "operator": "equals", "values": ["a"]}, "field", "required"),
    ({"field": 3, "operator": "equals", "values": ["a"]}, "field", "invalid"),
    ({"field": "tag_name", "operator": "is", "values": ["a"]}, "operator", "unknown_operator"),
    ({"field": "tag_name", "values": ["a"]}, "operator", "required"),
    ({"field": "tag_name", "operator": ""}, "values", "required"),
    ({"field": "tag_name", "operator": "equals"}, "values", "required"),
    ({"field": "tag_name", "operator": "equals", "values": []}, "values", "empty"),
    ({"field": "tag_name", "operator": "equals", "values": "v1"}, "values", "invalid"),
    ({"field": "tag_name", "operator": "equals", "values": {"a": 1}}, "values", "invalid"),
    ({"field": "tag_name", "operator": "equals", "values": [""]}, "values", "blank"),
    ({"field": "tag_name", "operator": "equals", "values": ["   "]}, "values", "blank"),
    ({"field": "tag_name", "operator": "one_of", "values": ["a", " "]}, "values", "blank"),
    ({"field": "tag_name", "operator": "equals", "values": [None]}, "values", "invalid"),
    ({"field": "tag_name", "operator": "equals", "values": ["a", "b"]}, "values", "too_many_values"),
    ({"field": "tag_name", "operator": "one_of", "values": list("x" * 101)}, "values", "too_many_values"),
    ({"field": "tag_name", "operator": "equals", "values": ["x" * 256]}, "values", "too_long"),
    ({"field": "tag_name", "operator": "equals", "values": ["a"], "severity": "all"}, "severity",
     "severity_not_allowed"),
    ({"field": "license_name", "operator": "one_of", "values": ["MIT"], "severity": "all"}, "severity",
     "severity_not_allowed"),
    ({"field": "tag_name", "operator": "equals", "value": ["a"]}, "value", "unknown_key"),
    (vuln(["1"], severity=None), "severity", "required"),
    (vuln(["1"], severity=""), "severity", "required"),
    (vuln(["1"], severity="high"), "severity", "unknown_severity"),
    (vuln(["1"], severity="Critical"), "severity", "unknown_severity"),
    (vuln(["1"], severity=1), "severity", "invalid"),
    (vuln(["-1"]), "values", "negative"),
    (vuln(["1.5"]), "values", "not_integer"),
    (vuln(["one"]), "values", "not_integer"),
    (vuln(["+1"]), "values", "not_integer"),
    (vuln(["1_000"]), "values", "not_integer"),
    (vuln(["²"]), "values", "not_integer"),
    (vuln([1]), "values", "invalid"),
    (vuln(["1", "2"]), "values", "too_many_values"),
    (vuln(["1"], operator="one_of"), "operator", "operator_not_for_field"),
]


@pytest.mark.parametrize(("data", "key", "code"), INVALID)
def test_invalid_rule_is_rejected_naming_the_key(data, key, code):
    with pytest.raises(ValidationError) as exc:
        parse_rule(data)
    assert code in codes(exc.value, key)


def test_every_problem_of_a_rule_is_reported_at_once():
    with pytest.raises(ValidationError) as exc:
        parse_rule({"field": "tag_name", "operator": "gte", "values": [], "severity": "all", "extra": 1})
    assert set(exc.value.message_dict) == {"operator", "values", "severity", "extra"}


@pytest.mark.parametrize("not_a_rule", [None, "tag_name", ["tag_name", "equals"], 3])
def test_non_mapping_rule_is_rejected(not_a_rule):
    with pytest.raises(ValidationError) as exc:
        parse_rule(not_a_rule)
    assert not hasattr(exc.value, "error_dict") and exc.value.code == "invalid"


def test_constructing_a_rule_directly_validates_and_normalizes():
    assert Rule(field=RuleField.TAG_NAME, operator=Operator.EQUALS, values=(" v1 ",)).values == ("v1",)
    with pytest.raises(ValidationError) as exc:
        Rule(field=RuleField.TAG_NAME, operator=Operator.GTE, values=("1",))
    assert "operator" in exc.value.message_dict


# ------------------------------------------------------------------------------------- parse_rules


def test_parse_rules_keeps_order():
    data = [rule.to_dict() for rule in SCAN_RULES]
    assert parse_rules(data) == SCAN_RULES
    assert parse_rules([]) == []


def test_parse_rules_names_each_problem_by_index_and_key():
    data = [
        {"field": "tag_name", "operator": "equals", "values": ["ok"]},
        {"field": "tag_name", "operator": "gte", "values": ["1"]},
        {"field": "vulnerabilities", "operator": "gte", "values": ["-2"], "severity": "all"},
        "nonsense",
    ]
    with pytest.raises(InvalidRules) as exc:
        parse_rules(data)
    error = exc.value
    assert isinstance(error, ValidationError)
    messages = error.message_dict["rules"]
    assert [m.split(":")[0] for m in messages] == ["rules[1].operator", "rules[2].values", "rules[3]"]
    assert set(error.by_rule) == {1, 2, 3}
    assert error.by_rule[2] == {"values": ["A number of vulnerabilities cannot be negative."]}
    assert list(error.nested["rules"]) == ["1", "2", "3"]
    assert "operator" in error.nested["rules"]["1"]
    assert "non_field_errors" in error.nested["rules"]["3"]
    assert [e.code for e in error.error_dict["rules"]] == ["operator_not_for_field", "negative", "invalid"]


def test_parse_rules_field_name_is_configurable():
    with pytest.raises(InvalidRules) as exc:
        parse_rules([{}], field_name="criteria")
    assert all(m.startswith("criteria[0].") for m in exc.value.message_dict["criteria"])


@pytest.mark.parametrize("not_a_list", [None, "rules", {"field": "tag_name"}, 5])
def test_parse_rules_rejects_a_non_list(not_a_list):
    with pytest.raises(InvalidRules) as exc:
        parse_rules(not_a_list)
    assert exc.value.message_dict == {"rules": ["rules: must be a list of rules."]}


def test_invalid_rules_render_as_drf_field_errors():
    with pytest.raises(InvalidRules) as exc:
        parse_rules([{"field": "tag_name", "operator": "equals", "values": []}])
    assert as_serializer_error(exc.value) == {"rules": ["rules[0].values: Give at least one value."]}


def test_invalid_rules_survive_pickling():
    with pytest.raises(InvalidRules) as exc:
        parse_rules([{"field": "nope"}])
    copy = pickle.loads(pickle.dumps(exc.value))
    assert copy.message_dict == exc.value.message_dict and copy.by_rule == exc.value.by_rule


def test_messages_with_percent_signs_are_not_formatted():
    with pytest.raises(InvalidRules) as exc:
        parse_rules([{"field": "%s %(x)s", "operator": "equals", "values": ["a"]}])
    assert "'%s %(x)s'" in exc.value.message_dict["rules"][0]
