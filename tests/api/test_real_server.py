"""The API over real HTTP against the product as `make run` serves it (gunicorn): the administrator
creates a user (tests/servers.py relies on it), Bearer tokens and Basic (password or token) work,
revoked tokens stop working, and failed sign-ins are audited with the caller's address."""

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_tokens_and_basic_authenticate_over_real_http(registry_server):
    server = registry_server
    username, password = server.create_user("carol")

    me = server.api("GET", "me/", auth=(username, password))
    assert me.status_code == 200, me.text
    assert (me.json()["username"], me.json()["namespace"]) == ("carol", "carol")
    assert (
        server.api(
            "POST",
            "users/",
            auth=(username, password),
            json={"username": "mallory", "password": "a-Long-unusual-pass-42"},
        ).status_code
        == 403
    )

    created = server.api("POST", "tokens/", auth=(username, password), json={"name": "ci"})
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}

    with_bearer = requests.get(f"{server.url}/api/v1/me/", headers=bearer, timeout=10)
    assert with_bearer.status_code == 200
    assert with_bearer.json()["username"] == "carol"
    assert server.api("GET", "me/", auth=(username, secret)).status_code == 200
    repository = requests.post(
        f"{server.url}/api/v1/repositories/",
        headers=bearer,
        timeout=10,
        json={"namespace": "carol", "name": "app", "visibility": "public"},
    )
    assert repository.status_code == 201, repository.text
    assert requests.get(f"{server.url}/api/v1/repositories/carol/app/", timeout=10).json()["role"] == "read"

    listed = server.api("GET", "tokens/", auth=(username, password)).json()["results"]
    assert "token" not in listed[0]
    assert listed[0]["last_used_at"] is not None

    revoked = requests.delete(
        f"{server.url}/api/v1/tokens/{created.json()['id']}/", headers=bearer, timeout=10
    )
    assert revoked.status_code == 204
    assert requests.get(f"{server.url}/api/v1/me/", headers=bearer, timeout=10).status_code == 401
    assert server.api("GET", "me/", auth=(username, secret)).status_code == 401

    failed = server.api("GET", "me/", auth=(username, "wrong-password"))
    assert failed.status_code == 401
    events = server.api("GET", "audit-events/", params={"action": "auth.sign_in_failed"}).json()["results"]
    assert events and events[0]["source_ip"] == "127.0.0.1"
    assert events[0]["details"]["username"] == "carol"
