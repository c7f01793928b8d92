"""One real-browser walk through the self-service pages (Playwright + Debian chromium)."""
from pathlib import Path

import pytest

from registry_policies.tenancy.access import Role, repository_role
from tests.tools import require_tool

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
def browser_page(monkeypatch):
    """A chromium page (1280×900). Playwright's sync API runs an event loop in this thread, so Django
    must be told that ORM calls from the test itself are fine."""
    chromium = require_tool("chromium")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


@pytest.mark.e2e
def test_user_sets_up_an_organization_repository_grant_and_token(live_server, make_user, browser_page,
                                                                   tmp_path: Path):
    from playwright.sync_api import expect

    page = browser_page
    user = make_user("dana", password="dana-pass-1234!")
    make_user("erin")

    # Sign in: the dashboard sends us to the sign-in page first.
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    page.get_by_label("Password").fill("dana-pass-1234!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # An organization, then a team on its page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New organization").click()
    page.get_by_label("Name").fill("acme")
    page.get_by_role("button", name="Create organization").click()
    expect(page).to_have_url(f"{live_server.url}/acme/")
    team_form = page.get_by_role("form", name="Create a team")
    team_form.get_by_label("Name").fill("devs")
    team_form.get_by_role("button", name="Create team").click()
    expect(page).to_have_url(f"{live_server.url}/acme/-/teams/devs/")
    page.get_by_role("form", name="Add a team member").get_by_label("Username").fill("erin")
    page.get_by_role("button", name="Add to team").click()
    expect(page.get_by_role("table")).to_contain_text("erin")

    # A private repository in the organization.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New repository").click()
    page.get_by_label("Namespace").select_option("acme")
    page.get_by_label("Name", exact=True).fill("api")
    page.get_by_label("Private").check()
    page.get_by_label("Description").fill("The public API service")
    page.get_by_role("button", name="Create repository").click()
    expect(page).to_have_url(f"{live_server.url}/acme/api/")
    expect(page.get_by_text("No tags yet")).to_be_visible()
    expect(page.locator("#push-commands")).to_contain_text("/acme/api:latest")
    page.screenshot(path=str(tmp_path / "repository.png"), full_page=True)

    # Grant the team write on it.
    page.get_by_role("navigation", name="Repository").get_by_role("link", name="Permissions").click()
    page.get_by_label("or a team").select_option("devs")
    page.get_by_label("Role", exact=True).select_option("write")
    page.get_by_role("button", name="Grant").click()
    expect(page.get_by_role("table")).to_contain_text("acme/devs")
    expect(page.get_by_role("table")).to_contain_text("write")
    page.screenshot(path=str(tmp_path / "permissions.png"), full_page=True)

    # An access token: shown once, never in the list.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Access tokens").click()
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Token “ci” created")).to_be_visible()
    secret = page.locator("#new-token").input_value()
    assert secret.startswith("rpat_")
    expect(page.locator("#docker-login")).to_contain_text("-u dana")
    page.screenshot(path=str(tmp_path / "token.png"), full_page=True)
    page.get_by_role("link", name="Done — back to my tokens").click()
    expect(page.get_by_role("table")).to_contain_text("ci")
    assert secret not in page.content()
    page.screenshot(path=str(tmp_path / "tokens.png"), full_page=True)

    # Sign out.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/settings/tokens/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    from registry_policies.repositories.models import Repository

    repository = Repository.objects.select_related("namespace").get(namespace__name="acme", name="api")
    assert repository.visibility == "private"
    assert repository_role(user.__class__.objects.get(username="erin"), repository) == Role.WRITE
