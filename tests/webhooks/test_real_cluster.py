"""End to end: the real server and django-q2 cluster (ORM broker) deliver an event, and the retry
scheduled after a 500 is picked up by the cluster's own scheduler (it looks every 30 s)."""
import json
import time

import pytest
from standardwebhooks import Webhook as StandardWebhook

from tests.servers import RunningServer

pytestmark = pytest.mark.e2e

EMIT = """
from accounts.models import User
from registry_policies.core import events
from registry_policies.webhooks import services
admin = User.objects.get(username="root")
webhook = services.create_webhook(actor=admin, url={url!r}, events=["TAG_PUSH"])
print(webhook.secret)
events.emit("TAG_PUSH", contents={{"full_name": "root/app", "tag": "1.0"}}, actor="root")
"""
STATUS = """
from registry_policies.webhooks.models import WebhookDelivery
import json
d = WebhookDelivery.objects.get()
print(json.dumps([d.status, d.attempts, list(d.attempt_log.values_list("response_status", flat=True))]))
"""


def test_real_cluster_delivers_and_retries_through_a_schedule(tmp_path, receiver):
    receiver.respond(500)
    server = RunningServer.start(tmp_path, with_worker=True,
                                 extra_env={"DJANGO_SETTINGS_MODULE": "tests.webhooks.e2e_settings"})
    try:
        secret = server.manage("shell", "-c", EMIT.format(url=receiver.url)).stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 90
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(receiver.requests) == 2, server.log()
        for request in receiver.requests:
            assert StandardWebhook(secret).verify(request.body, request.headers)["type"] == "TAG_PUSH"
        deadline = time.monotonic() + 10
        while True:
            status = json.loads(server.manage("shell", "-c", STATUS).stdout.strip().splitlines()[-1])
            if status[0] == "succeeded" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == ["succeeded", 2, [500, 200]]
    finally:
        server.stop()
