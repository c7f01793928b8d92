"""The Webhooks tab (admin role only) and the Activity tab (anyone who can read the repository)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks import Webhook as StandardWebhook

from registry_policies.repositories.models import TagHistory
from registry_policies.repositories.services import update_repository
from registry_policies.web.views import activity as activity_view
from registry_policies.webhooks import services
from registry_policies.webhooks.models import Webhook, WebhookDelivery
from tests.webhooks.conftest import Receiver, _start

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback (tests/webhooks' receiver)."""
    made, running = _start(Receiver)
    yield made
    running.stop()


def _hook(world, url: str = URL, events: tuple[str, ...] = ("TAG_PUSH",)) -> Webhook:
    return services.create_webhook(actor=world.owner, repository=world.org_public, url=url, events=list(events))


@pytest.mark.django_db
def test_admin_sees_the_tabs_and_an_empty_list_with_the_catalogue_form(world, as_user):
    page = as_user(world.owner).get("/acme/open/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/acme/open/webhooks/"' in html and 'href="/acme/open/activity/"' in html
    assert "No webhooks yet." in html
    assert 'value="TAG_PUSH"' in html and "A tag was pushed" in html  # checkboxes with descriptions
    assert 'value="POLL_MIRRORING"' in html
    assert "<details" in html and 'name="ca_certificate"' in html and 'name="secret"' in html


@pytest.mark.django_db
def test_readers_do_not_see_the_tab_and_get_403_others_404(world, as_user):
    webhook = _hook(world)
    reader = as_user(world.stranger)  # acme/open is public: the stranger reads it
    tags = reader.get("/acme/open/").content.decode()
    assert 'href="/acme/open/webhooks/"' not in tags and 'href="/acme/open/activity/"' in tags
    for path in ("/acme/open/webhooks/", f"/acme/open/webhooks/{webhook.pk}/",
                 f"/acme/open/webhooks/{webhook.pk}/edit/"):
        assert reader.get(path).status_code == 403, path
    for path in ("/acme/open/webhooks/new/", f"/acme/open/webhooks/{webhook.pk}/test/",
                 f"/acme/open/webhooks/{webhook.pk}/delete/"):
        assert reader.post(path, {"url": URL, "events": ["TAG_PUSH"]}).status_code == 403, path
    assert reader.get("/acme/secret/webhooks/").status_code == 404  # private, unreadable
    assert reader.post("/acme/secret/webhooks/new/", {"url": URL, "events": ["TAG_PUSH"]}).status_code == 404
    assert Webhook.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(world, client):
    response = client.get("/acme/open/webhooks/")
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.django_db
def test_create_shows_the_secret_once(world, as_user):
    client = as_user(world.owner)
    created = client.post("/acme/open/webhooks/new/", {"url": URL, "events": ["TAG_PUSH", "TAG_DELETE"],
                                                      "enabled": "on"})
    assert created.status_code == 201
    webhook = Webhook.objects.get()
    secret = str(webhook.secret)
    assert secret in created.content.decode() and "only time it is shown" in created.content.decode()
    assert webhook.events == ["TAG_PUSH", "TAG_DELETE"] and webhook.enabled and webhook.created_by == world.owner
    listing = client.get("/acme/open/webhooks/").content.decode()
    assert URL in listing and "TAG_DELETE" in listing and secret not in listing
    detail = client.get(f"/acme/open/webhooks/{webhook.pk}/").content.decode()
    assert secret not in detail and "Nothing delivered yet" in detail


@pytest.mark.django_db
@pytest.mark.parametrize("data, field, message", [
    ({"url": "ftp://x.example/", "events": ["TAG_PUSH"]}, "url", "http"),
    ({"url": URL}, "events", "required"),
    ({"url": URL, "events": ["NOPE"]}, "events", "NOPE"),
    ({"url": URL, "events": ["TAG_PUSH"], "ca_certificate": "nope"}, "ca_certificate", "PEM"),
    ({"url": URL, "events": ["TAG_PUSH"], "secret": "plain"}, "secret", "whsec_"),
])
def test_bad_form_input_is_shown_next_to_the_field_and_nothing_stored(world, as_user, data, field, message):
    response = as_user(world.owner).post("/acme/open/webhooks/new/", data)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_edit_keeps_the_secret_unless_rotated(world, as_user):
    webhook = _hook(world)
    old = str(webhook.secret)
    client = as_user(world.owner)
    form = client.get(f"/acme/open/webhooks/{webhook.pk}/edit/")
    assert form.status_code == 200 and URL in form.content.decode()
    saved = client.post(f"/acme/open/webhooks/{webhook.pk}/edit/", {"url": URL, "events": ["TAG_DELETE"]})
    assert saved.status_code == 302
    webhook.refresh_from_db()
    assert webhook.events == ["TAG_DELETE"] and not webhook.enabled and str(webhook.secret) == old
    rotated = client.post(f"/acme/open/webhooks/{webhook.pk}/edit/",
                          {"url": URL, "events": ["TAG_DELETE"], "enabled": "on", "rotate_secret": "on"})
    webhook.refresh_from_db()
    assert rotated.status_code == 200 and str(webhook.secret) != old
    assert str(webhook.secret) in rotated.content.decode()


@pytest.mark.django_db
def test_delete_removes_the_webhook(world, as_user):
    webhook = _hook(world)
    response = as_user(world.owner).post(f"/acme/open/webhooks/{webhook.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/acme/open/webhooks/"
    assert not Webhook.objects.exists()
    assert as_user(world.owner).get(f"/acme/open/webhooks/{webhook.pk}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_send_test_then_deliveries_page_then_redeliver(world, as_user, hook_receiver):
    webhook = _hook(world, url=hook_receiver.url, events=("TAG_PUSH", "PROMOTION"))
    client = as_user(world.owner)
    sent = client.post(f"/acme/open/webhooks/{webhook.pk}/test/", {"event_type": "PROMOTION"}, follow=True)
    assert sent.status_code == 200 and "Test PROMOTION event queued" in sent.content.decode()
    [request] = hook_receiver.requests
    assert StandardWebhook(str(webhook.secret)).verify(request.body, request.headers)["type"] == "PROMOTION"
    delivery = WebhookDelivery.objects.get()
    page = client.get(f"/acme/open/webhooks/{webhook.pk}/").content.decode()
    assert f'id="delivery-{delivery.pk}"' in page and "Succeeded" in page and "<strong>200</strong>" in page
    assert "ok" in page and "Redeliver" in page  # response excerpt and the button
    again = client.post(f"/acme/open/webhooks/{webhook.pk}/deliveries/{delivery.pk}/redeliver/")
    assert again.status_code == 302 and len(hook_receiver.requests) == 2
    assert WebhookDelivery.objects.filter(redelivery_of=delivery).count() == 1
    listing = client.get("/acme/open/webhooks/").content.decode()
    assert "status-succeeded" in listing
    assert client.post(f"/acme/open/webhooks/{webhook.pk}/deliveries/999999/redeliver/").status_code == 404


def _history(repository, count: int) -> None:
    TagHistory.objects.bulk_create([
        TagHistory(repository=repository, tag=f"v{number}", new_digest="sha256:" + f"{number:064x}",
                   cause=TagHistory.Cause.PUSH, actor_name="alice") for number in range(count)])


@pytest.mark.django_db
def test_activity_merges_tag_history_and_audit_events_newest_first(world, as_user):
    repository = world.org_public
    _history(repository, 1)
    update_repository(repository=repository, actor=world.owner, changes={"description": "hello"})
    _hook(world)  # audit: webhook.created on acme/open
    TagHistory.objects.create(repository=repository, tag="v1", old_digest="sha256:" + "0" * 64,
                              new_digest="sha256:" + "1" * 64, cause=TagHistory.Cause.PROMOTION, actor_name="bot",
                              detail={"source_repository": "acme/secret", "source_tag": "v1"})
    response = as_user(world.stranger).get("/acme/open/activity/")  # a reader of the public repository
    assert response.status_code == 200
    kinds = [entry.kind for entry in response.context["entries"]]
    assert kinds[0] == "promotion" and kinds[-2:] == ["push", "repository.created"]
    assert "repository.updated" in kinds and "webhook.created" in kinds
    html = response.content.decode()
    assert "from acme/secret:v1" in html and "bot" in html


@pytest.mark.django_db
def test_activity_is_404_for_who_cannot_read_and_open_to_anonymous_on_public(world, as_user, client):
    assert client.get("/acme/open/activity/").status_code == 200
    assert as_user(world.stranger).get("/acme/secret/activity/").status_code == 404


@pytest.mark.django_db
def test_activity_pages_with_a_cursor_in_bounded_queries(world, as_user, monkeypatch):
    monkeypatch.setattr(activity_view, "PAGE_SIZE", 5)
    repository = world.org_public
    _history(repository, 8)
    for number in range(4):
        update_repository(repository=repository, actor=world.owner, changes={"description": f"d{number}"})
    client = as_user(world.owner)
    seen: list[tuple[int, int]] = []
    path = "/acme/open/activity/"
    while True:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        activity_queries = [q for q in queries.captured_queries
                            if "repositories_taghistory" in q["sql"] or "audit_auditevent" in q["sql"]]
        assert len(activity_queries) == 2
        seen += [(entry.source, entry.pk) for entry in response.context["entries"]]
        if not response.context["next_cursor"]:
            break
        path = f"/acme/open/activity/?before={response.context['next_cursor']}"
    total = TagHistory.objects.filter(repository=repository).count() + 4 + 1  # + repository.created
    assert len(seen) == len(set(seen)) >= 12 and len(seen) <= total
    assert client.get("/acme/open/activity/?before=garbage").status_code == 200  # first page
