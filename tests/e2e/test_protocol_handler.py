"""`/v2/` requests run only `REGISTRY_MIDDLEWARE` (core/protocol_handler.py): on a real gunicorn node
they get no session, CSRF or Vary: Cookie, still get Content-Length and the security headers, and
pages keep the whole middleware (sessions, CSRF)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from django.test import override_settings

from registry_policies.core.protocol_handler import RegistryProtocolHandler, is_protocol_path
from tests.servers import RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer.start(tmp_path_factory.mktemp("protocol"), with_worker=False)
    yield running
    running.stop()


def test_protocol_answers_skip_sessions_and_csrf_but_keep_length_and_security_headers(server: RunningServer) -> None:
    cookies = {"sessionid": "not-a-session", "csrftoken": "x" * 32}
    for method, path in (("GET", "/v2/"), ("GET", "/v2/nobody/nothing/tags/list"),
                         ("POST", "/v2/nobody/nothing/blobs/uploads/")):
        response = requests.request(method, server.url + path, cookies=cookies, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert "Set-Cookie" not in response.headers, path
        assert "Cookie" not in response.headers.get("Vary", ""), path
        assert response.headers["Content-Length"] == str(len(response.content)), path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    username, password = server.create_user("proto")
    authorized = requests.get(server.url + "/v2/", auth=(username, password), timeout=10)
    assert authorized.status_code == 200 and "Set-Cookie" not in authorized.headers


def test_pages_keep_sessions_and_csrf(server: RunningServer) -> None:
    page = requests.get(server.url + "/accounts/login/", timeout=10)
    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    refused = requests.post(server.url + "/accounts/login/", data={"username": "a", "password": "b"}, timeout=10)
    assert refused.status_code == 403  # no CSRF token: the pages' middleware still runs


def test_protocol_paths() -> None:
    assert is_protocol_path("/v2/") and is_protocol_path("/v2") and is_protocol_path("/v2/a/b/tags/list")
    assert not is_protocol_path("/v2x") and not is_protocol_path("/api/v1/v2/") and not is_protocol_path("/")


def test_registry_middleware_must_be_part_of_middleware(settings) -> None:  # type: ignore[no-untyped-def]
    before = list(settings.MIDDLEWARE)
    with override_settings(REGISTRY_MIDDLEWARE=[*settings.REGISTRY_MIDDLEWARE, "example.Unknown"]), \
            pytest.raises(ValueError, match="example.Unknown"):
        RegistryProtocolHandler()
    RegistryProtocolHandler()
    assert list(settings.MIDDLEWARE) == before  # the swap while building is undone
    assert "django.contrib.sessions.middleware.SessionMiddleware" in before
