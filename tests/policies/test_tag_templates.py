"""Tag templates: tokens, UTC, validation on save and the reason a rendered tag is refused (no DB)."""
import locale
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from registry_policies.policies.tag_templates import (
    TOKENS,
    InvalidRenderedTag,
    InvalidTemplate,
    Preview,
    TagTemplateError,
    expand_template,
    preview,
    render_tag,
    tag_problem,
    validate_template,
)

# Thursday 2024-02-29 (a leap day, day 060), 15:04:05.000123 UTC
NOW = datetime(2024, 2, 29, 15, 4, 5, 123, tzinfo=UTC)


def render(template, *, source_tag="1.0-stable", now=NOW):
    return render_tag(template, source_tag=source_tag, now=now)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("%A", "Thursday"),
        ("%a", "Thu"),
        ("%w", "4"),
        ("%d", "29"),
        ("%B", "February"),
        ("%b", "Feb"),
        ("%m", "02"),
        ("%Y", "2024"),
        ("%y", "24"),
        ("%H", "15"),
        ("%I", "03"),
        ("%p", "PM"),
        ("%M", "04"),
        ("%S", "05"),
        ("%f", "000123"),
        ("%Z", "UTC"),
        ("%j", "060"),
        ("%W", "09"),  # 2024 starts on a Monday, so week 01 starts on January 1st
    ],
)
def test_each_time_token(token, expected):
    assert render(f"x{token}") == f"x{expected}"


def test_source_tag_token():
    assert render("%n") == "1.0-stable"
    assert render("%n-%n", source_tag="v1") == "v1-v1"


def test_empty_template_keeps_the_source_tag():
    assert render("") == "1.0-stable"
    assert render("", source_tag="latest") == "latest"


def test_literal_text_and_typical_template():
    assert render("%n-%Y%m%d-%H%M%S") == "1.0-stable-20240229-150405"
    assert render("prod") == "prod"
    assert render("release_%y.%m") == "release_24.02"


def test_double_percent_is_a_literal_percent():
    assert expand_template("a%%b", source_tag="t", now=NOW) == "a%b"
    assert expand_template("%%n", source_tag="t", now=NOW) == "%n"  # %% first, then a plain "n"
    # ... which is never allowed in a tag, so rendering it fails with the reason:
    with pytest.raises(InvalidRenderedTag) as exc:
        render("a%%b")
    assert exc.value.tag == "a%b" and "'%'" in exc.value.reason


def test_aware_non_utc_time_is_converted_to_utc():
    paris = datetime(2024, 1, 1, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 2023-12-31 23:30 UTC
    assert render("%Y%m%d%H%M-%A-%Z", now=paris) == "202312312330-Sunday-UTC"
    minus_five = datetime(2024, 6, 30, 22, 0, tzinfo=timezone(timedelta(hours=-5)))  # 2024-07-01 03:00 UTC
    assert render("%B%d-%I%p", now=minus_five) == "July01-03AM"


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        render("%Y", now=datetime(2024, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2023, 1, 1, 0, 0, tzinfo=UTC),  # a Sunday: %w 0, %W 00
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # leap-year day 366
        datetime(2021, 1, 4, 12, 0, tzinfo=UTC),  # noon: 12 PM
        datetime(2021, 7, 5, 0, 0, tzinfo=UTC),  # midnight: 12 AM
        datetime(1999, 3, 15, 9, 8, 7, 654321, tzinfo=UTC),
    ],
)
def test_time_tokens_agree_with_strftime_in_the_c_locale(moment):
    template = "-".join(t for t in TOKENS if t not in ("%n", "%%"))
    with time_locale("C"):
        expected = moment.strftime(template)
    assert render(template, now=moment) == expected


def test_names_do_not_depend_on_the_process_locale():
    # Use a non-English locale when the machine has one; C.UTF-8 always exists.
    for name in ("fr_FR.UTF-8", "de_DE.UTF-8", "es_ES.UTF-8", "C.UTF-8"):
        try:
            with time_locale(name):
                assert render("%A-%a-%B-%b-%p") == "Thursday-Thu-February-Feb-PM"
            return
        except locale.Error:
            continue
    pytest.fail("no usable locale at all")


@contextmanager
def time_locale(name):
    previous = locale.setlocale(locale.LC_TIME)
    locale.setlocale(locale.LC_TIME, name)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_TIME, previous)


@pytest.mark.parametrize("template", ["%x", "%n-%q", "%c", "%D", "%N", "% n", "%é"])
def test_unknown_token_is_invalid(template):
    with pytest.raises(InvalidTemplate, match="Unknown token"):
        render(template)


@pytest.mark.parametrize("template", ["%", "v1-%", "%n%"])
def test_trailing_lone_percent_is_invalid(template):
    with pytest.raises(InvalidTemplate, match="lone '%'"):
        render(template)


@pytest.mark.parametrize(
    ("template", "source_tag", "reason"),
    [
        ("%n:x", "v1", "it contains ':'"),
        ("my tag", "v1", "it contains ' '"),
        ("%n/x", "v1", "it contains '/'"),
        ("-%n", "v1", "it starts with '-'"),
        (".%n", "v1", "it starts with '.'"),
        ("%n-%n", "x" * 64, "it is 129 characters long; a tag has at most 128"),
        ("v1-é", "v1", "it contains 'é'"),
        ("é", "v1", "it starts with 'é'"),
    ],
)
def test_rendered_tag_that_is_not_a_tag_fails_with_the_reason(template, source_tag, reason):
    with pytest.raises(InvalidRenderedTag) as exc:
        render(template, source_tag=source_tag)
    assert exc.value.problem.startswith(reason)
    assert reason in exc.value.reason and repr(exc.value.tag) in exc.value.reason
    assert isinstance(exc.value, TagTemplateError) and isinstance(exc.value, ValueError)


def test_longest_valid_tag_renders():
    assert render("%n", source_tag="a" * 128) == "a" * 128


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("", "it is empty"),
        ("latest", None),
        ("_x", None),
        ("1.0-RC_2", None),
        ("a" * 128, None),
        ("a" * 129, "it is 129 characters long; a tag has at most 128"),
        ("a:b", "it contains ':'; a tag has only letters, digits, '.', '_' and '-'"),
        ("a b:c", "it contains ' ', ':'; a tag has only letters, digits, '.', '_' and '-'"),
        ("-a", "it starts with '-'; a tag starts with a letter, a digit or '_'"),
    ],
)
def test_tag_problem(tag, problem):
    assert tag_problem(tag) == problem


@pytest.mark.parametrize(
    "template",
    ["", "%n", "%n-%Y%m%d-%H%M%S", "prod", "-".join(TOKENS[2:]), "%A%a%w%d%B%b%m%Y%y%H%I%p%M%S%f%Z%j%W"],
)
def test_valid_templates_pass_validation(template):
    validate_template(template)


@pytest.mark.parametrize(
    ("template", "code", "fragment"),
    [
        ("%n-%x", "invalid_token", "Unknown token '%x'"),
        ("%n-%", "invalid_token", "lone '%'"),
        ("%n:%Y", "invalid_tag", "it contains ':'"),
        ("%n %Y", "invalid_tag", "it contains ' '"),
        ("-%n", "invalid_tag", "it starts with '-'"),
        ("100%%", "invalid_tag", "it contains '%'"),
        ("x" * 129, "invalid_tag", "at most 128"),
    ],
)
def test_invalid_templates_fail_validation_naming_tag_template(template, code, fragment):
    with pytest.raises(ValidationError) as exc:
        validate_template(template)
    assert list(exc.value.message_dict) == ["tag_template"]
    assert [e.code for e in exc.value.error_dict["tag_template"]] == [code]
    assert fragment in exc.value.message_dict["tag_template"][0]


def test_validation_renders_the_sample_source_tag():
    with pytest.raises(ValidationError) as exc:
        validate_template("%n:%n")
    assert "'1.0-stable:1.0-stable'" in exc.value.message_dict["tag_template"][0]


def test_preview_shows_the_tag_or_why_not():
    assert preview("%n-%Y", "v1", now=NOW) == Preview(tag="v1-2024", error=None)
    assert preview("", "v1", now=NOW) == Preview(tag="v1", error=None)
    bad_token = preview("%n-%q", "v1", now=NOW)
    assert bad_token.tag is None and "Unknown token '%q'" in (bad_token.error or "")
    bad_tag = preview("%n:x", "v1", now=NOW)
    assert bad_tag.tag is None and "it contains ':'" in (bad_tag.error or "")


def test_preview_defaults_to_the_current_utc_time():
    before = datetime.now(UTC).year
    result = preview("%Y", "v1")
    assert result.tag in {str(before), str(before + 1)}
