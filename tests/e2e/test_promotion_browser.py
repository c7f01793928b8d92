"""A real browser (Playwright + Debian chromium) through the Promotions tab: create a policy with two
rule rows and a live template preview, push two tags, see the history and the promoted tag.
Tasks run synchronously in-process here (pytest-django's live_server)."""
from pathlib import Path

import pytest

from registry_policies.policies.models import PromotionPolicy
from registry_policies.repositories.models import Repository, Tag
from registry_policies.repositories.services import create_repository
from tests.factories import push_image
from tests.web.test_browser import browser_page  # noqa: F401  (the chromium page fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture
def repositories(make_user) -> tuple[Repository, Repository]:
    alice = make_user("alice", password="alice-pass-1234!")
    return (create_repository(namespace=alice.namespace, name="dev", actor=alice),
            create_repository(namespace=alice.namespace, name="qa", actor=alice))


def test_user_creates_a_policy_in_the_promotions_tab_and_sees_the_promotion(live_server, browser_page,  # noqa: F811
                                                                           repositories, tmp_path: Path):
    from playwright.sync_api import expect

    dev, qa = repositories
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/alice/dev/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-pass-1234!")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/alice/dev/")

    # The Promotions tab, then a new policy.
    page.get_by_role("navigation", name="Repository").get_by_role("link", name="Promotions").click()
    expect(page.get_by_text("No promotion policies yet.")).to_be_visible()
    page.get_by_role("link", name="New policy").click()
    expect(page.get_by_role("heading", name="New promotion policy")).to_be_visible()

    # Rule 1: tag name ends with "stable". Rule 2 in a row added with the button: starts with "1.".
    page.get_by_label("Rule 1 field").select_option("tag_name")
    page.get_by_label("Rule 1 operator").select_option("ends_with")
    page.get_by_label("Rule 1 values").fill("stable")
    page.get_by_role("button", name="Add a rule row").click()
    page.get_by_label("Rule 2 field").select_option("tag_name")
    expect(page.get_by_label("Rule 2 severity")).to_be_disabled()  # only for vulnerabilities
    page.get_by_label("Rule 2 operator").select_option("starts_with")
    page.get_by_label("Rule 2 values").fill("1.")
    page.get_by_role("button", name="Add a rule row").click()  # a third row, removed again
    page.get_by_label("Rule 3 field").select_option("tag_name")
    page.get_by_label("Rule 3 operator").select_option("contains")
    page.get_by_label("Rule 3 values").fill("never")
    page.get_by_role("row").filter(has=page.get_by_label("Rule 3 values")).get_by_role("button", name="Remove").click()
    expect(page.get_by_label("Rule 3 values")).to_be_hidden()
    page.get_by_label("Target repository").select_option("alice/qa")

    # The template preview follows typing; an invalid template says why.
    template = page.get_by_label("Tag template")
    template.fill("%n-%q")
    expect(page.locator("#template-preview")).to_contain_text("Unknown token '%q'")
    template.fill("%n-promoted")
    expect(page.locator("#template-preview")).to_have_text("1.0-stable-promoted")
    page.screenshot(path=str(tmp_path / "policy-form.png"), full_page=True)
    page.get_by_role("button", name="Create policy").click()

    expect(page).to_have_url(f"{live_server.url}/alice/dev/promotions/")
    policy = PromotionPolicy.objects.get()
    policies = page.get_by_role("table", name="Promotion policies")
    expect(policies).to_contain_text("tag name ends with 'stable'")
    expect(policies).to_contain_text("tag name starts with '1.'")
    expect(policies).to_contain_text("alice/qa")
    expect(policies).not_to_contain_text("never")
    assert policy.rules.count() == 2 and policy.tag_template == "%n-promoted"

    # Two pushes (in-process, as a client's push would): one matches, one does not.
    stable = push_image(dev, "1.4-stable", actor=policy.author)
    push_image(dev, "1.5-beta", actor=policy.author)
    page.reload()
    history = page.get_by_role("table", name="Promotion history")
    expect(history).to_contain_text("Succeeded")
    expect(history).to_contain_text("1.4-stable")
    expect(history).to_contain_text("alice/qa:1.4-stable-promoted")
    expect(history).not_to_contain_text("1.5-beta")
    page.screenshot(path=str(tmp_path / "history.png"), full_page=True)

    # The dry run explains why 1.5-beta was not promoted.
    page.get_by_role("link", name=f"Dry run policy #{policy.pk}").click()
    page.get_by_label("Tag of this repository").fill("1.5-beta")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_text("no match", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Rule results")).to_contain_text("does not end with 'stable'")

    # The target's Tags tab says where its tag came from.
    page.goto(f"{live_server.url}/alice/qa/")
    expect(page.get_by_text(f"by policy #{policy.pk}")).to_be_visible()
    expect(page.locator("body")).to_contain_text("promoted from alice/dev:1.4-stable")
    promoted = Tag.objects.get(repository=qa)
    assert (promoted.name, promoted.manifest_id) == ("1.4-stable-promoted", stable.pk)
