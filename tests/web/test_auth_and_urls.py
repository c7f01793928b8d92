"""Sign in and out, and the namespace catch-alls never shadowing the site's other paths."""
import pytest
from django.urls import resolve

pytestmark = pytest.mark.django_db


def test_sign_in_page_and_failed_login_shows_clear_error(client, make_user):
    make_user("alice")
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and 'name="password"' in response.content.decode()
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html and "Please enter a correct username and password" in html
    assert "_auth_user_id" not in client.session


def test_sign_in_then_sign_out(client, make_user):
    make_user("alice")
    credentials = {"username": "alice", "password": "pw-alice-123!", "next": "/"}
    response = client.post("/accounts/login/", credentials)
    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/").content.decode()
    assert 'action="/accounts/logout/"' in html and "Sign out" in html
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/")["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", [
    "/admin/", "/accounts/login/", "/api/schema/", "/api/docs/", "/settings/tokens/", "/repositories/new/",
    "/organizations/new/",
])
def test_fixed_paths_win_over_namespace_pages(path):
    assert resolve(path).url_name not in ("namespace", "repository")


@pytest.mark.parametrize("path", ["/api/", "/v2/", "/auth/", "/static/", "/settings/", "/repositories/",
                                  "/organizations/", "/api/nothing/", "/v2/x/", "/static/x/", "/auth/token/",
                                  "/admin/x/y/"])
def test_reserved_top_level_names_are_never_namespaces(client, path):
    try:
        match = resolve(path)
    except Exception:  # Resolver404: nothing answers, which is right
        return
    assert match.app_name != "web", f"{path} resolved to {match.view_name}"


def test_repository_named_like_a_tab_or_keyword_still_resolves(world):
    assert resolve("/acme/settings/").url_name == "repository"
    assert resolve("/acme/settings/settings/").url_name == "repository-settings"
    assert resolve("/acme/-/teams/new/").url_name == "team-create"
