"""The `matches` (RE2, whole tag) and `semver_in` (npm-style ranges) tag operators: validation on
save, evaluation, and their way through the service, the API and the Promotions form."""
import pytest
from django.core.exceptions import ValidationError

from registry_policies.policies import services
from registry_policies.policies.criteria import parse_rule, parse_rules
from registry_policies.policies.evaluation import evaluate_rule
from registry_policies.policies.facts import UNSCANNED
from registry_policies.policies.models import Promotion
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.web.promotion_forms import rule_formset
from tests.factories import push_image


def tag_rule(operator: str, value: str):
    return parse_rule({"field": "tag_name", "operator": operator, "values": [value]})


def matched(rule, tag: str) -> bool:
    return evaluate_rule(rule, tag_name=tag, facts=UNSCANNED).outcome == "match"


@pytest.mark.parametrize(("pattern", "tag", "expected"), [
    (r"v[0-9]+\.[0-9]+\.[0-9]+", "v1.4.2", True),
    (r"v[0-9]+\.[0-9]+\.[0-9]+", "v1.4.2-rc1", False),  # the whole tag must match
    (r"v[0-9]+\.[0-9]+\.[0-9]+", "xv1.4.2", False),
    (r"release-(dev|qa)", "release-qa", True),
    (r"[a-z]+-[0-9]{8}", "nightly-20261204", True),
    (r"[a-z]+-[0-9]{8}", "Nightly-20261204", False),  # case-sensitive, as tag names are
])
def test_matches_needs_the_whole_tag_to_match(pattern, tag, expected):
    assert matched(tag_rule("matches", pattern), tag) is expected


def test_matches_explains_itself_both_ways():
    rule = tag_rule("matches", r"v[0-9]+")
    assert evaluate_rule(rule, tag_name="v1", facts=UNSCANNED).explanation == "Tag 'v1' matches 'v[0-9]+'."
    assert "does not match" in evaluate_rule(rule, tag_name="latest", facts=UNSCANNED).explanation


def test_hostile_pattern_runs_in_linear_time_and_still_answers():
    # Catastrophic for a backtracking engine: (a+)+$ on "aaaa…!" takes 2^n steps there.
    rule = tag_rule("matches", r"(a+)+b")
    assert matched(rule, "a" * 127 + "!") is False
    assert matched(rule, "a" * 127 + "b") is True


@pytest.mark.parametrize(("pattern", "why"), [
    (r"(a)\1", "not a regular expression RE2 accepts"),      # backreference
    (r"(?=v)v1", "not a regular expression RE2 accepts"),    # lookahead
    (r"v[0-9", "not a regular expression RE2 accepts"),      # unbalanced
])
def test_invalid_or_unsupported_pattern_is_refused_naming_values(pattern, why):
    with pytest.raises(ValidationError) as caught:
        tag_rule("matches", pattern)
    assert list(caught.value.message_dict) == ["values"]
    assert why in caught.value.message_dict["values"][0]
    assert caught.value.error_dict["values"][0].code == "invalid_pattern"


def test_pattern_that_needs_too_much_memory_is_refused():
    with pytest.raises(ValidationError, match="RE2"):
        tag_rule("matches", "(" + "a{1,50}" * 30 + "){1,50}")


@pytest.mark.parametrize(("range_text", "tag", "expected"), [
    (">=1.2.0 <2.0.0", "1.4.2", True),
    (">=1.2.0 <2.0.0", "v1.4.2", True),       # a leading v is allowed
    (">=1.2.0 <2.0.0", "2.0.0", False),
    (">=1.2.0 <2.0.0", "1.1.9", False),
    (">=1.2.0 <2.0.0", "2.0.0-rc.1", False),  # a pre-release is below 2.0.0 but npm excludes it
    (">=2.0.0-rc.0 <3.0.0", "v2.0.0-rc.1", True),
    ("^1.4", "1.9.0", True),
    ("^1.4", "1.3.0", False),
    ("~2.1", "2.1.7", True),
    ("~2.1", "2.2.0", False),
    ("1.x || >=3.0.0", "3.1.0", True),
    ("^1.4", "latest", False),                # not a version: never matches
    ("^1.4", "1.4", False),                   # two parts are not a semantic version
    ("^1.4", "1.4.2-stable", False),          # pre-release, see above
    ("*", "stable", False),
])
def test_semver_in_matches_versions_inside_the_range(range_text, tag, expected):
    assert matched(tag_rule("semver_in", range_text), tag) is expected


@pytest.mark.parametrize("bad", ["banana", ">=1.2.0 <", "^^1"])
def test_invalid_range_is_refused_naming_values(bad):
    with pytest.raises(ValidationError) as caught:
        tag_rule("semver_in", bad)
    assert caught.value.error_dict["values"][0].code == "invalid_range"
    assert "is not a version range" in caught.value.message_dict["values"][0]


@pytest.mark.parametrize("operator", ["matches", "semver_in"])
def test_new_operators_are_for_tag_names_only_and_take_one_value(operator):
    with pytest.raises(ValidationError) as wrong_field:
        parse_rule({"field": "component_name", "operator": operator, "values": ["x"]})
    assert wrong_field.value.error_dict["operator"][0].code == "operator_not_for_field"
    with pytest.raises(ValidationError) as two:
        parse_rule({"field": "tag_name", "operator": operator, "values": ["1", "2"]})
    assert two.value.error_dict["values"][0].code == "too_many_values"


def test_round_trip_keeps_the_operand_verbatim():
    rules = parse_rules([{"field": "tag_name", "operator": "semver_in", "values": [" >=1.2.0 <2.0.0 "]},
                         {"field": "tag_name", "operator": "matches", "values": ["v[0-9]{1,3}"]}])
    assert [rule.to_dict()["values"] for rule in rules] == [[">=1.2.0 <2.0.0"], ["v[0-9]{1,3}"]]
    assert str(rules[0]) == "tag name is a version in '>=1.2.0 <2.0.0'"


# -- through the service, the API and the page ----------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_semver_policy_promotes_only_releases_in_range(make_user):
    alice = make_user("alice")
    dev = create_repository(namespace=alice.namespace, name="dev", actor=alice)
    qa = create_repository(namespace=alice.namespace, name="qa", actor=alice)
    services.save_policy(author=alice, source=dev, target=qa, rules=[
        {"field": "tag_name", "operator": "semver_in", "values": ["^1.4"]},
        {"field": "tag_name", "operator": "matches", "values": [r"v[0-9.]+"]},
    ])
    for tag in ["v1.4.2", "v1.9.0", "v2.0.0", "1.5.0", "v1.5.0-rc.1", "latest"]:
        push_image(dev, tag, actor=alice)
    assert sorted(Tag.objects.filter(repository=qa).values_list("name", flat=True)) == ["v1.4.2", "v1.9.0"]
    assert Promotion.objects.filter(status="succeeded").count() == 2


def test_form_keeps_a_pattern_with_commas_as_one_value():
    data = {"rules-TOTAL_FORMS": "2", "rules-INITIAL_FORMS": "0",
            "rules-0-field": "tag_name", "rules-0-operator": "matches", "rules-0-values": "v[0-9]{1,3}",
            "rules-1-field": "tag_name", "rules-1-operator": "one_of", "rules-1-values": "a, b"}
    formset = rule_formset(data)
    assert formset.is_valid()
    rules, _rows = formset.rules()
    assert [rule["values"] for rule in rules] == [["v[0-9]{1,3}"], ["a", "b"]]
