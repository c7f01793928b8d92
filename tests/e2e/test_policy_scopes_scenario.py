"""Policy scopes and pruning end to end: a real server with the django-q2 worker cluster, skopeo
pushes. A namespace-wide policy dev/* → qa/{name} promotes pushes to a repository created after
the policy; a namespace pruning policy keeps the two newest promoted tags right after each push; an
age-based pruning run (ages set through Tag.pushed_at) deletes what is old and reports it."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.distribution.images import make_image
from tests.e2e.test_promotion_scenario import Scenario, ok, poll
from tests.servers import RunningServer
from tests.tools import require_tool

pytestmark = pytest.mark.e2e

STABLE = [{"field": "tag_name", "operator": "matches", "values": [r"\d+\.\d+-stable"]}]


def test_namespace_policy_promotes_into_new_repository_and_pruning_keeps_the_newest(
        registry_server_with_worker: RunningServer, tmp_path: Path) -> None:
    server = registry_server_with_worker
    scenario = Scenario(server, require_tool("skopeo"), tmp_path)
    admin = scenario.admin
    policy = ok(server.api("POST", "namespaces/dev/promotion-policies/", json={
        "rules": STABLE, "target_repository": "qa/{name}", "repository_filter": "(web|shop).*"}))
    assert policy["scope"] == "namespace" and policy["target_repository"] == "qa/{name}"
    keep = ok(server.api("POST", "namespaces/qa/pruning-policies/", json={
        "keep_latest": 2, "schedule": "never", "repository_filter": "shop"}))
    assert keep["scope"] == "namespace"
    # Repositories created after the policy.
    for namespace in ("dev", "qa"):
        ok(server.api("POST", "repositories/", json={"namespace": namespace, "name": "shop",
                                                     "visibility": "private"}))

    for version in ("1.0", "1.1", "1.2"):
        scenario.push(admin, f"dev/shop:{version}-stable", make_image(layers=1))
        poll(f"qa/shop:{version}-stable", lambda v=version: f"{v}-stable" in scenario.registry_tags("qa/shop"))
    scenario.push(admin, "dev/shop:1.3-beta", make_image(layers=1))
    poll("pruning after the last promotion", lambda: scenario.registry_tags("qa/shop") == ["1.1-stable", "1.2-stable"],
         timeout=30)
    assert sorted(scenario.registry_tags("dev/shop")) == ["1.0-stable", "1.1-stable", "1.2-stable", "1.3-beta"]
    runs = ok(server.api("GET", f"namespaces/qa/pruning-policies/{keep['id']}/runs/"), 200)
    assert sum(run["tags_deleted"] for run in runs) == 1
    assert {entry["tag"] for run in runs for entry in run["deleted"]} == {"1.0-stable"}

    # Age-based pruning of dev/shop: 1.0-stable and 1.3-beta are made old, 1.3-beta was pulled lately.
    server.manage("shell", "--no-imports", "-c", (
        "from datetime import timedelta; from django.utils import timezone; "
        "from registry_policies.repositories.models import Tag; "
        "old = timezone.now() - timedelta(days=60); "
        "Tag.objects.filter(repository__name='shop', repository__namespace__name='dev', "
        "name__in=['1.0-stable', '1.3-beta']).update(pushed_at=old); "
        "Tag.objects.filter(repository__namespace__name='dev', name='1.3-beta')"
        ".update(last_pulled_at=timezone.now())"))
    prune = ok(server.api("POST", "repositories/dev/shop/pruning-policies/", json={
        "older_than_days": 30, "not_pulled_days": 7}))
    dry = ok(server.api("POST", f"repositories/dev/shop/pruning-policies/{prune['id']}/dry-run/"), 200)
    assert [item["tag"] for item in dry["repositories"][0]["prune"]] == ["1.0-stable"]
    run = ok(server.api("POST", f"repositories/dev/shop/pruning-policies/{prune['id']}/run/"), 200)
    assert (run["status"], run["tags_deleted"]) == ("succeeded", 1)
    assert sorted(scenario.registry_tags("dev/shop")) == ["1.1-stable", "1.2-stable", "1.3-beta"]
    inspected = scenario.inspect(admin, "dev/shop:1.0-stable")
    assert inspected.returncode != 0 and "manifest unknown" in inspected.stderr.lower()
    events = ok(server.api("GET", "audit-events/", params={"action": "pruning.succeeded"}), 200)
    assert events["count"] >= 1
