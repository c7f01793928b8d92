"""A node that loses its database answers 503 in each caller's format (never a stack trace), says so
on /-/readyz, and recovers by itself when the database is back.

The outage is real: the server reaches PostgreSQL through a TCP proxy in this test, which is cut
(open connections closed, new ones refused) and then restored. SQLite is a
file in the node's own data dir, so both CI passes run it against PostgreSQL.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import requests

from tests.faults.proxy import DatabaseProxy
from tests.faults.test_database_outage_during_push import _postgres
from tests.servers import RunningServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxied_server(tmp_path_factory, monkeypatch) -> Iterator[tuple[RunningServer, DatabaseProxy]]:  # type: ignore[no-untyped-def]
    base = _postgres()  # both CI passes: an unreachable PostgreSQL fails under CI=true
    parsed = urlparse(base)
    proxy = DatabaseProxy((parsed.hostname or "127.0.0.1", parsed.port or 5432))
    netloc = f"{parsed.username or 'postgres'}@127.0.0.1:{proxy.port}"
    monkeypatch.setenv("DATABASE_URL", parsed._replace(netloc=netloc).geturl())  # the server's database too
    server = RunningServer.start(tmp_path_factory.mktemp("outage"), with_worker=False)
    yield server, proxy
    if not proxy.listening:
        proxy.restore()  # stop() drops the server's database through the proxy
    server.stop()
    proxy.cut()


def sign_in(server: RunningServer) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{server.url}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    done = session.post(f"{server.url}/accounts/login/", timeout=10, allow_redirects=False,
                        data={"username": server.admin_username, "password": server.admin_password,
                              "csrfmiddlewaretoken": token[1]}, headers={"Referer": f"{server.url}/accounts/login/"})
    assert done.status_code == 302, done.text
    return session


def assert_no_trace(response: requests.Response) -> None:
    for word in ("Traceback", "OperationalError", "psycopg", "File \""):
        assert word not in response.text


def test_a_node_without_its_database_answers_503_and_recovers(proxied_server) -> None:  # type: ignore[no-untyped-def]
    server, proxy = proxied_server
    browser = sign_in(server)
    owner = server.admin_username
    created = server.api("POST", "repositories/", json={"namespace": owner, "name": "app", "visibility": "private"})
    assert created.status_code == 201, created.text
    token = requests.get(f"{server.url}/auth/token?service=registry_policies&scope=repository:{owner}/app:pull",
                         auth=server.admin_auth, timeout=10).json()["token"]
    tags_url, bearer = f"{server.url}/v2/{owner}/app/tags/list", {"Authorization": f"Bearer {token}"}
    assert requests.get(tags_url, headers=bearer, timeout=10).json() == {"name": f"{owner}/app", "tags": []}
    assert server.api("GET", "repositories/").status_code == 200
    assert browser.get(f"{server.url}/", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/-/readyz", timeout=10).status_code == 200

    proxy.cut()
    registry = requests.get(tags_url, headers=bearer, timeout=30)
    assert registry.status_code == 503, registry.text
    assert registry.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert registry.headers["Retry-After"] and registry.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert_no_trace(registry)
    api = server.api("GET", "repositories/")
    assert api.status_code == 503 and set(api.json()) == {"detail"}
    assert_no_trace(api)
    page = browser.get(f"{server.url}/", timeout=30)
    assert page.status_code == 503 and "text/html" in page.headers["Content-Type"]
    assert "Temporarily unavailable" in page.text
    assert_no_trace(page)
    ready = requests.get(f"{server.url}/-/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unavailable" and "database" in ready.json()["failed"]
    assert_no_trace(ready)
    assert requests.get(f"{server.url}/-/healthz", timeout=10).status_code == 200  # the process still answers

    proxy.restore()
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/-/readyz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    # Every thread of both workers held a connection the cut broke: none of them may fail now.
    for _ in range(40):
        assert requests.get(tags_url, headers=bearer, timeout=10).json() == {"name": f"{owner}/app", "tags": []}
        assert server.api("GET", "repositories/").status_code == 200
    assert browser.get(f"{server.url}/", timeout=10).status_code == 200  # the session survived in the database
