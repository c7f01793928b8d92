"""Pull mirrors under the shared owner rule: a sync needs its owner (whoever saved it last) to
still administer the repository; otherwise the mirror pauses with the reason, pulls nothing and
is not polled, until an administrator saves it again."""
from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from registry_policies.mirroring import services
from registry_policies.mirroring.models import MirrorRun, PullMirror
from registry_policies.mirroring.pull import claim_due_mirrors
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.mirroring.conftest import unique
from tests.mirroring.fakes import FakeRegistry

pytestmark = pytest.mark.django_db(transaction=True)


def test_pull_mirror_pauses_when_its_owner_loses_admin_and_resumes_when_saved_again(alice: Any, make_user: Any,
                                                                                  fake_remote: FakeRegistry) -> None:
    bob = make_user("bob")
    repository = create_repository(namespace=alice.namespace, name=unique("mirror"), actor=alice)
    tenancy.grant_repository_role(repository=repository, grantee=Grantee(user=bob), role="admin", actor=alice)
    mirror = services.save_pull_mirror(actor=bob, repository=repository, url=fake_remote.url,
                                       remote_repository=fake_remote.repository, enabled=False)
    assert mirror.created_by == bob and mirror.is_active is False  # disabled: only manual syncs

    tenancy.grant_repository_role(repository=repository, grantee=Grantee(user=bob), role="read", actor=alice)
    run = services.request_sync(actor=alice, mirror=mirror)
    run.refresh_from_db()
    mirror.refresh_from_db()
    reason = f"The pull mirror's owner bob is no longer an administrator of {repository.full_name}."
    assert (run.status, run.error_code, run.error) == (MirrorRun.Status.FAILED, "owner_lost_rights", reason)
    assert mirror.paused_reason == reason
    assert not Tag.objects.filter(repository=repository).exists()

    api = APIClient()
    api.force_authenticate(alice)
    shown = api.get(f"/api/v1/repositories/{repository.full_name}/pull-mirror/").json()
    assert shown["paused_reason"] == reason and shown["is_active"] is False
    PullMirror.objects.filter(pk=mirror.pk).update(enabled=True)
    assert claim_due_mirrors() == []  # a paused mirror is not polled

    saved = services.save_pull_mirror(actor=alice, repository=repository, url=fake_remote.url,
                                      remote_repository=fake_remote.repository, enabled=False)
    assert saved.created_by == alice and saved.paused_reason == ""
    again = services.request_sync(actor=alice, mirror=saved)
    again.refresh_from_db()
    assert again.status == MirrorRun.Status.SUCCEEDED, again.error
    assert list(Tag.objects.filter(repository=repository).values_list("name", flat=True)) == ["1.0"]
