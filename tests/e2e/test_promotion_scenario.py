"""The scenario users come for, end to end: a real server (gunicorn), the real django-q2 worker
cluster and skopeo. An administrator sets up two organizations and a promotion policy through the
API; a developer pushes; the image shows up in QA under the rendered tag, and each team sees only
its own repository."""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.distribution.conftest import Account
from tests.distribution.images import Image, make_image, write_layout
from tests.distribution.test_clients import run
from tests.servers import RunningServer
from tests.tools import require_tool

pytestmark = pytest.mark.e2e

POLL_SECONDS = 20.0
STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]


def poll(what: str, check: Callable[[], Any], *, timeout: float = POLL_SECONDS) -> Any:
    """`check()` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ok(response: requests.Response, status: int = 201) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.url}: {response.text}"
    return response.json() if response.content else None


class Scenario:
    """The world of the scenario, set up through the API by the administrator."""

    def __init__(self, server: RunningServer, skopeo: str, tmp_path: Path) -> None:
        self.server, self.skopeo, self.tmp_path = server, skopeo, tmp_path
        self.dev1 = Account(*server.create_user("dev1"))
        self.qa1 = Account(*server.create_user("qa1"))
        self.admin = Account(*server.admin_auth)
        for org, team, member in (("dev", "developers", self.dev1), ("qa", "testers", self.qa1)):
            ok(server.api("POST", "organizations/", json={"name": org}))
            ok(server.api("POST", f"organizations/{org}/members/", json={"username": member.username,
                                                                         "role": "member"}))
            ok(server.api("POST", f"organizations/{org}/teams/", json={"name": team}))
            ok(server.api("POST", f"organizations/{org}/teams/{team}/members/", json={"username": member.username}))
            ok(server.api("POST", "repositories/", json={"namespace": org, "name": "website",
                                                         "visibility": "private"}))
        ok(server.api("POST", "repositories/dev/website/permissions/", json={"team": "dev/developers",
                                                                            "role": "write"}))
        ok(server.api("POST", "repositories/qa/website/permissions/", json={"team": "qa/testers", "role": "read"}))

    def push(self, account: Account, reference: str, image: Image) -> None:
        """`skopeo copy` of `image` from an OCI layout to `reference` (e.g. dev/website:1.4-stable)."""
        tag = reference.rsplit(":", 1)[1]
        layout = write_layout(self.tmp_path / f"layout-{tag}", tag=tag, image=image)
        run(self.skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", account.creds, f"oci:{layout}:{tag}",
            f"docker://{self.server.host_port}/{reference}")

    def inspect(self, account: Account, reference: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.skopeo, "inspect", "--tls-verify=false", "--creds", account.creds,
                               f"docker://{self.server.host_port}/{reference}"],
                              capture_output=True, text=True, timeout=60)

    def registry_tags(self, repository: str) -> list[str]:
        """Tags of `repository` as the administrator sees them through /v2/ (Basic auth)."""
        response = requests.get(f"{self.server.url}/v2/{repository}/tags/list", auth=self.server.admin_auth,
                                timeout=10)
        assert response.status_code == 200, response.text
        return list(response.json().get("tags") or [])

    def promotions(self, repository: str, **filters: str) -> list[dict[str, Any]]:
        return list(ok(self.server.api("GET", f"repositories/{repository}/promotions/", params=filters),
                       200)["results"])

    def task_succeeded(self, name: str) -> bool:
        """Did the worker cluster finish the task named `name` (e.g. a policy evaluation)?"""
        code = ("from django_q.models import Success; "
                f"print(Success.objects.filter(name={name!r}).exists())")
        output = self.server.manage("shell", "--no-imports", "-c", code).stdout.split()
        return bool(output) and output[-1] == "True"


@pytest.fixture
def scenario(registry_server_with_worker: RunningServer, tmp_path: Path) -> Scenario:
    return Scenario(registry_server_with_worker, require_tool("skopeo"), tmp_path)


def test_developer_push_is_promoted_to_qa_and_each_team_sees_only_its_repository(scenario: Scenario,
                                                                                 tmp_path: Path):
    server, dev1, qa1 = scenario.server, scenario.dev1, scenario.qa1
    policy = ok(server.api("POST", "repositories/dev/website/promotion-policies/", json={
        "rules": STABLE, "target_repository": "qa/website", "tag_template": "%n-%Y%m%d", "enabled": True}))
    assert policy["author"] == "root" and policy["source_repository"] == "dev/website"

    beta, stable = make_image(layers=2), make_image(layers=2)
    scenario.push(dev1, "dev/website:1.5-beta", beta)
    scenario.push(dev1, "dev/website:1.4-stable", stable)
    pushed_at = datetime.now(UTC)

    # The worker promotes 1.4-stable under the rendered template, within seconds.
    expected = {f"1.4-stable-{day:%Y%m%d}" for day in (pushed_at - timedelta(minutes=1), pushed_at)}
    promoted = poll("the promoted tag in qa/website",
                    lambda: [t for t in scenario.registry_tags("qa/website") if t in expected])
    assert len(promoted) == 1
    target_tag = promoted[0]
    poll("the evaluation of 1.5-beta", lambda: scenario.task_succeeded("policies:dev/website:1.5-beta"))
    assert scenario.registry_tags("qa/website") == [target_tag]  # 1.5-beta was not promoted

    # The QA user pulls it: the very same manifest.
    inspected = scenario.inspect(qa1, f"qa/website:{target_tag}")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == stable.manifest.digest
    out = tmp_path / "pulled"
    run(scenario.skopeo, "copy", "--src-tls-verify=false", "--src-creds", qa1.creds,
        f"docker://{server.host_port}/qa/website:{target_tag}", f"oci:{out}:pulled")
    assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == stable.manifest.digest
    for layer in stable.layers:
        assert (out / "blobs" / "sha256" / layer.digest.split(":")[1]).read_bytes() == layer.data

    # Neither team sees the other's repository, on the registry or in the API.
    assert scenario.inspect(dev1, f"qa/website:{target_tag}").returncode != 0
    assert scenario.inspect(qa1, "dev/website:1.4-stable").returncode != 0
    assert server.api("GET", "repositories/qa/website/", auth=dev1.auth).status_code == 404
    assert server.api("GET", "repositories/dev/website/", auth=qa1.auth).status_code == 404
    assert server.api("GET", "repositories/dev/website/promotions/", auth=qa1.auth).status_code == 404

    # The promotions API shows the evaluation; the non-matching tag left no record.
    history = scenario.promotions("dev/website")
    assert [(p["source_tag"], p["status"], p["target_repository"], p["target_tag"], p["digest"], p["trigger"])
            for p in history] == [("1.4-stable", "succeeded", "qa/website", target_tag, stable.manifest.digest,
                                   "push")]
    assert history[0]["policy"] == policy["id"] and history[0]["finished_at"]
    developer_view = ok(server.api("GET", "repositories/dev/website/promotions/", auth=dev1.auth), 200)
    assert developer_view["count"] == 1


def test_policy_errors_and_an_author_who_lost_write_on_the_target(scenario: Scenario):
    server, dev1 = scenario.server, scenario.dev1
    url = "repositories/dev/website/promotion-policies/"
    body = {"rules": STABLE, "target_repository": "qa/website", "tag_template": "", "enabled": True}

    # A developer with write on an organization repository may not create policies there.
    refused = server.api("POST", url, auth=dev1.auth, json=body)
    assert refused.status_code == 403, refused.text
    # Bad input names its field, for everyone.
    bad_operator = server.api("POST", url, json={**body, "rules": [{"field": "tag_name", "operator": "gte",
                                                                    "values": ["1"]}]})
    assert bad_operator.status_code == 400 and "rules[0].operator" in bad_operator.json()["rules"][0]
    bad_template = server.api("POST", url, json={**body, "tag_template": "%n-%q"})
    assert bad_template.status_code == 400 and "tag_template" in bad_template.json()
    missing = server.api("POST", url, json={**body, "target_repository": "qa/nothing"})
    assert missing.status_code == 400 and missing.json()["target_repository"] == [
        "There is no repository 'qa/nothing'."]
    assert ok(server.api("GET", url), 200)["count"] == 0

    # Delegated "manage policies" and write on the target: dev1 authors a policy.
    ok(server.api("POST", "namespaces/dev/permissions/", json={"user": "dev1", "role": "manage_policies"}))
    hidden = server.api("POST", url, auth=dev1.auth, json=body)
    assert hidden.status_code == 400 and "qa/website" in hidden.json()["target_repository"][0]
    ok(server.api("POST", "repositories/qa/website/permissions/", json={"user": "dev1", "role": "write"}))
    policy = ok(server.api("POST", url, auth=dev1.auth, json={
        **body, "rules": [{"field": "tag_name", "operator": "starts_with", "values": ["rc"]}]}))
    assert policy["author"] == "dev1"

    # dev1 loses write on the target; the next matching push pauses the policy with the reason.
    revoked = server.api("DELETE", "repositories/qa/website/permissions/", params={"user": "dev1"})
    assert revoked.status_code == 204, revoked.text
    scenario.push(dev1, "dev/website:rc1", make_image())
    failed = poll("the failed promotion",
                  lambda: scenario.promotions("dev/website", status="failed", policy=str(policy["id"])))
    assert failed[0]["source_tag"] == "rc1"
    assert "may no longer push to qa/website" in failed[0]["reason"]
    paused = ok(server.api("GET", f"{url}{policy['id']}/"), 200)
    assert "may no longer push to qa/website" in paused["paused_reason"] and paused["is_active"] is False
    assert "rc1" not in scenario.registry_tags("qa/website")
