"""The outbound rule (core/outbound.py) on every surface that makes the server send requests:
integrations, pull mirrors and webhooks refuse link-local/metadata targets for everyone and
loopback for non-administrators when saved (400 naming `url`, nothing stored), again at run time
for the object's owner (recorded on the run or delivery), on every redirect hop, and Connect
tells a non-administrator nothing about what listens where."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from registry_policies.core import events, outbound
from registry_policies.integrations.models import Integration
from registry_policies.mirroring import services as mirroring
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from registry_policies.webhooks import services as webhooks
from registry_policies.webhooks.models import Webhook, WebhookDelivery
from tests.mirroring.fakes import FakeRegistry
from tests.remotes import Reply, ScriptedRequest, ScriptedServer, free_port
from tests.remotes import push_image as push_remote
from tests.webhooks.conftest import Receiver, _start

pytestmark = pytest.mark.django_db(transaction=True)
LOOPBACK = "a loopback address (only administrators may use it)"
PULL = "/api/v1/repositories/alice/app/pull-mirror/"
HOOKS = "/api/v1/repositories/alice/app/webhooks/"


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def deny_loopback(settings: Any) -> None:
    """The production default: loopback only for administrators."""
    settings.OUTBOUND_ALLOW_LOOPBACK = False


@pytest.fixture
def people(make_user: Any) -> dict[str, Any]:
    alice, root = make_user("alice"), make_user("root", is_superuser=True)
    app = create_repository(namespace=alice.namespace, name="app", actor=alice)
    return {"alice": alice, "root": root, "app": app}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made, running = _start(Receiver)
    yield made
    running.stop()


def save_everywhere(client: APIClient, url: str) -> dict[str, Any]:
    """Try `url` as an integration, a pull mirror and a webhook; the three responses."""
    return {
        "integration": client.post("/api/v1/integrations/", {"name": "remote", "url": url}, format="json"),
        "pull_mirror": client.put(PULL, {"url": url, "remote_repository": "upstream/app", "interval_seconds": 300,
                                         "enabled": False}, format="json"),
        "webhook": client.post(HOOKS, {"url": f"{url}/hook", "events": ["TAG_PUSH"]}, format="json"),
    }


def assert_refused_everywhere(responses: dict[str, Any], reason: str) -> None:
    for surface, response in responses.items():
        assert response.status_code == 400, (surface, response.content)
        assert list(response.json()) == ["url"], (surface, response.json())
        assert reason in " ".join(response.json()["url"]), (surface, response.json())
    assert not Integration.objects.exists() and not PullMirror.objects.exists() and not Webhook.objects.exists()


PORT = free_port()


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:{PORT}", f"http://[::1]:{PORT}", f"http://localhost:{PORT}", f"http://2130706433:{PORT}",
    f"http://0177.0.0.1:{PORT}", f"http://0x7f.1:{PORT}", f"http://127.9.9.9:{PORT}", f"http://[::ffff:127.0.0.1]:{PORT}",
])
def test_a_user_cannot_point_anything_at_loopback(deny_loopback, people, url):
    assert_refused_everywhere(save_everywhere(as_user(people["alice"]), url), LOOPBACK)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]", "is a cloud metadata address"),
    ("http://100.100.100.200", "100.100.100.200 is a cloud metadata address"),
    ("http://169.254.10.1:8080", "169.254.10.1 is a link-local address"),
    ("http://[fe80::1]", "fe80::1 is a link-local address"),
    ("http://2852039166", "169.254.169.254 is a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]", "(169.254.169.254) is a cloud metadata address"),
    ("http://metadata.google.internal", "metadata.google.internal is a cloud metadata service"),
    ("http://0.0.0.0:5000", "0.0.0.0 is an unspecified address"),
    ("http://240.0.0.1", "240.0.0.1 is a reserved address"),
])
def test_nobody_points_anything_at_link_local_or_metadata_addresses(people, url, reason):
    """Not even an administrator, and not even with loopback allowed (the test default)."""
    assert_refused_everywhere(save_everywhere(as_user(people["root"]), url), reason)


def test_an_administrator_may_use_loopback(deny_loopback, people, plain_registry, receiver):
    root = as_user(people["root"])
    created = root.post("/api/v1/integrations/", {"name": "local", "url": plain_registry.url}, format="json")
    assert created.status_code == 201, created.json()
    pulled = root.put(PULL, {"url": plain_registry.url, "remote_repository": "upstream/app",
                             "interval_seconds": 300, "enabled": False}, format="json")
    assert pulled.status_code == 201, pulled.json()
    hooked = root.post(HOOKS, {"url": receiver.url, "events": ["TAG_PUSH"]}, format="json")
    assert hooked.status_code == 201, hooked.json()
    assert Integration.objects.get().url == plain_registry.url and PullMirror.objects.get().url == plain_registry.url
    assert Webhook.objects.get().url == receiver.url


def test_private_ranges_are_allowed_unless_denied(settings, people):
    alice = as_user(people["alice"])
    assert alice.post("/api/v1/integrations/", {"name": "lan", "url": "http://10.20.30.40:5000"},
                      format="json").status_code == 201
    settings.OUTBOUND_DENY_PRIVATE = True
    denied = alice.post("/api/v1/integrations/", {"name": "lan2", "url": "https://192.168.7.8"}, format="json")
    assert denied.status_code == 400 and "192.168.7.8 is a private address" in denied.json()["url"][0]
    assert list(Integration.objects.values_list("name", flat=True)) == ["lan"]


def test_a_user_editing_an_administrators_loopback_integration_keeps_it_only_unchanged(deny_loopback, people,
                                                                                       plain_registry):
    from registry_policies.integrations import services as integrations

    integration = integrations.create_integration(namespace=people["alice"].namespace, name="local",
                                                  url=plain_registry.url, actor=people["root"])
    alice = as_user(people["alice"])
    renamed = alice.patch(f"/api/v1/integrations/{integration.pk}/", {"name": "renamed"}, format="json")
    assert renamed.status_code == 200, renamed.json()
    moved = alice.patch(f"/api/v1/integrations/{integration.pk}/", {"url": f"http://127.0.0.1:{PORT}"},
                        format="json")
    assert moved.status_code == 400 and LOOPBACK in moved.json()["url"][0]
    assert Integration.objects.get().url == plain_registry.url


# -- at run time: the owner's rule, and every redirect hop -----------------------------------------

def test_pull_mirror_of_an_owner_who_is_no_longer_administrator_fails_without_contacting_loopback(
        deny_loopback, people, plain_registry):
    push_remote(plain_registry.client(), "upstream/runtime", "1.0")
    root, alice, app = people["root"], people["alice"], people["app"]
    mirror = mirroring.save_pull_mirror(actor=root, repository=app, url=plain_registry.url,
                                        remote_repository="upstream/runtime", enabled=False)
    first = MirrorRun.objects.get(pk=mirroring.request_sync(actor=root, mirror=mirror).pk)
    assert (first.status, first.tags) == ("succeeded", ["1.0"]), first.error
    Tag.objects.filter(repository=app).delete()
    # Still the repository's admin (the owner rule holds), but no longer a superuser: no loopback.
    tenancy.grant_repository_role(repository=app, grantee=Grantee(user=root), role="admin", actor=alice)
    root.is_superuser = False
    root.save(update_fields=["is_superuser"])
    second = MirrorRun.objects.get(pk=mirroring.request_sync(actor=alice, mirror=mirror).pk)
    assert (second.status, second.error_code) == ("failed", "blocked_address")
    assert LOOPBACK in second.error and "127.0.0.1" in second.error
    assert not Tag.objects.filter(repository=app).exists()


def test_webhook_of_an_owner_who_is_no_longer_administrator_is_not_delivered(deny_loopback, people, receiver):
    root = people["root"]
    webhook = webhooks.create_webhook(actor=root, repository=people["app"], url=receiver.url, events=["TAG_PUSH"])
    contents = {"namespace": "alice", "repository": "app", "full_name": "alice/app", "tag": "1.0"}
    events.emit("TAG_PUSH", contents=contents, actor="alice")
    delivered = WebhookDelivery.objects.get(webhook=webhook)
    assert delivered.status == WebhookDelivery.Status.SUCCEEDED and len(receiver.requests) == 1
    tenancy.grant_repository_role(repository=people["app"], grantee=Grantee(user=root), role="admin",
                                  actor=people["alice"])  # keeps the right to the webhook itself
    root.is_superuser = False
    root.save(update_fields=["is_superuser"])
    events.emit("TAG_PUSH", contents={**contents, "tag": "2.0"}, actor="alice")
    refused = WebhookDelivery.objects.exclude(pk=delivered.pk).get(webhook=webhook)
    assert refused.status == WebhookDelivery.Status.FAILED and refused.attempts == 1
    assert refused.error == f"url: 127.0.0.1 is {LOOPBACK}; outbound requests cannot go there."
    assert len(receiver.requests) == 1


def test_push_mirror_through_an_integration_whose_owner_is_no_longer_administrator_fails(
        deny_loopback, people, plain_registry):
    """An administrator set up the loopback integration in alice's namespace; alice's policy uses it."""
    from registry_policies.integrations import services as integrations
    from tests.mirroring.helpers import STABLE, push_image

    root, alice, app = people["root"], people["alice"], people["app"]
    integration = integrations.create_integration(namespace=alice.namespace, name="local", url=plain_registry.url,
                                                  actor=root)
    policy = mirroring.create_push_policy(actor=alice, source=app, integration=integration,
                                          remote_repository="mirror/runtime", rules=STABLE)
    push_image(app, "1.0-stable", actor=alice)
    assert MirrorRun.objects.get(push_policy=policy).status == "succeeded"
    root.is_superuser = False
    root.save(update_fields=["is_superuser"])
    push_image(app, "2.0-stable", actor=alice)
    refused = MirrorRun.objects.get(push_policy=policy, source_tag="2.0-stable")
    assert (refused.status, refused.error_code) == ("failed", "blocked_address")
    assert LOOPBACK in refused.error
    assert plain_registry.client().manifest_digest("mirror/runtime", "2.0-stable") is None


class RedirectingRegistry(FakeRegistry):
    """Answers blob downloads with a 302 to `target` (as registries do to their storage)."""

    target = ""

    def respond(self, request: ScriptedRequest) -> Reply:
        if "/blobs/" in request.path and request.method == "GET":
            return Reply(302, {"Location": self.target, "Content-Length": "0"})
        return super().respond(request)


@pytest.mark.parametrize(("target", "reason"), [
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "is a cloud metadata address"),
    ("http://[::ffff:a9fe:a9fe]/latest/", "is a cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "is a cloud metadata service"),
    ("http://2852039167/", "169.254.169.255 is a link-local address"),
])
def test_a_redirect_to_a_refused_address_is_not_followed(people, target, reason):
    registry = RedirectingRegistry()
    registry.target = target
    registry.add_image("1.0")
    try:
        mirror = mirroring.save_pull_mirror(actor=people["root"], repository=people["app"], url=registry.url,
                                            remote_repository="upstream/app", enabled=False)
        run = MirrorRun.objects.get(pk=mirroring.request_sync(actor=people["root"], mirror=mirror).pk)
    finally:
        registry.stop()
    assert (run.status, run.error_code) == ("failed", "blocked_address"), run.error
    assert reason in run.error
    assert not Tag.objects.filter(repository=people["app"]).exists()
    assert any("/blobs/" in request.path for request in registry.server.requests)


# -- Connect: precise for administrators, one answer for everybody else ----------------------------

def test_connect_does_not_tell_a_user_a_closed_port_from_an_open_one(people):
    """Loopback is allowed here (the test default), so both connections really happen."""
    not_a_registry = ScriptedServer(lambda request: Reply(404, {"Content-Type": "text/plain"}, b"nothing here"))
    closed = f"http://127.0.0.1:{free_port()}"
    try:
        alice, root = as_user(people["alice"]), as_user(people["root"])
        answers: dict[str, list[dict[str, Any]]] = {"alice": [], "root": []}
        for name, url in (("closed", closed), ("open", not_a_registry.url)):
            pk = alice.post("/api/v1/integrations/", {"name": name, "url": url}, format="json").json()["id"]
            host = url.split("://", 1)[1]
            for who, client in (("alice", alice), ("root", root)):
                answer = client.post(f"/api/v1/integrations/{pk}/connect/", {}, format="json").json()
                answers[who].append({**answer, "detail": answer["detail"].replace(host, "HOST")})
    finally:
        not_a_registry.stop()
    assert answers["alice"][0] == answers["alice"][1] == {
        "ok": False, "code": "unreachable", "detail": "No registry answered at HOST."}
    assert answers["root"][0]["code"] == "unreachable" and "refused" in answers["root"][0]["detail"]
    assert answers["root"][1]["code"] == "protocol_error"
    assert "does not serve the registry API" in answers["root"][1]["detail"]


def test_connect_to_a_refused_address_is_the_same_answer_for_a_user_and_the_reason_for_an_administrator(
        deny_loopback, people):
    def check(actor: Any, url: str) -> Any:
        return mirroring.check_pull_connection(url=url, username="", secret="", ca_certificate="",
                                               remote_repository="upstream/app", actor=actor)

    closed = f"http://127.0.0.1:{free_port()}"
    metadata = check(people["alice"], "http://169.254.169.254")
    loopback = check(people["alice"], closed)
    assert (metadata.ok, metadata.code, metadata.detail) == (False, "unreachable",
                                                            "No registry answered at 169.254.169.254.")
    assert (loopback.code, loopback.detail) == ("unreachable", f"No registry answered at {closed[7:]}.")
    for_root = check(people["root"], "http://169.254.169.254")
    assert for_root.code == "blocked_address" and "cloud metadata address" in for_root.detail
    root_loopback = check(people["root"], closed)
    assert root_loopback.code == "unreachable" and "refused" in root_loopback.detail


def test_connect_keeps_tls_precise_for_a_user(people, secure_registry):
    alice = as_user(people["alice"])
    pk = alice.post("/api/v1/integrations/", {"name": "tls", "url": secure_registry.url},
                    format="json").json()["id"]
    answer = alice.post(f"/api/v1/integrations/{pk}/connect/", {}, format="json").json()
    assert answer["code"] == "tls_untrusted" and "not trusted" in answer["detail"]


# -- the rule itself -------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "address"), [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("[::1]", "::1"), ("example.com", None), ("1.2.3.4", "1.2.3.4"), ("0x", None),
])
def test_numeric_host_forms_are_read_as_the_resolver_reads_them(host, address):
    found = outbound.literal_address(host)
    assert (str(found) if found is not None else None) == address


def test_loopback_needs_an_active_superuser_or_the_setting(settings, make_user):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    root, alice = make_user("root", is_superuser=True), make_user("alice")
    assert outbound.loopback_allowed(root) and not outbound.loopback_allowed(alice)
    assert not outbound.loopback_allowed(None)
    root.is_active = False
    assert not outbound.loopback_allowed(root)
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    assert outbound.loopback_allowed(alice) and outbound.loopback_allowed(None)
