"""The pipeline view in a real browser (Playwright + Debian chromium): the inline SVG renders with
its boxes and edges, and clicking a node opens that repository's page."""
import pytest

from registry_policies.policies import services
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from tests.web.test_browser import browser_page  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.e2e
def test_pipeline_svg_renders_and_a_node_link_navigates(live_server, make_user, browser_page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    olga = make_user("olga", password="olga-pass-1234!", is_superuser=True)
    spaces = {name: tenancy.create_organization(name=name, owner=olga).namespace for name in ("dev", "qa", "prod")}
    dev, qa, prod = (create_repository(namespace=spaces[n], name="website", actor=olga, visibility="public")
                     for n in ("dev", "qa", "prod"))
    services.save_policy(author=olga, source=dev, target=qa,
                         rules=[{"field": "tag_name", "operator": "ends_with", "values": ["-stable"]}])
    services.save_policy(author=olga, source=qa, target=prod, rules=[])

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("olga-pass-1234!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.goto(f"{live_server.url}/qa/website/promotions/")
    svg = page.locator("#pipeline-svg")
    expect(svg).to_be_visible()
    box = svg.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 30
    expect(svg.locator("rect")).to_have_count(3)
    expect(svg.locator("g.pipeline-edge")).to_have_count(2)
    expect(svg.locator("text.pipeline-edge-label").first).to_have_text("tag name ends with '-stable'")
    # Left to right: dev, then qa, then prod.
    xs = [svg.locator(f'a[data-repository="{name}"] rect').bounding_box()["x"]
          for name in ("dev/website", "qa/website", "prod/website")]
    assert xs == sorted(xs) and len(set(xs)) == 3
    svg.screenshot(path=str(tmp_path / "pipeline.png"))
    svg.locator('a[data-repository="prod/website"]').click()
    expect(page).to_have_url(f"{live_server.url}/prod/website/")
    expect(page).to_have_title("prod/website · registry_policies")
    expect(page.locator("#push-commands")).to_contain_text("/prod/website:latest")

    page.goto(f"{live_server.url}/dev/")
    expect(page.locator('#pipeline-svg a[data-repository="qa/website"]')).to_be_visible()
