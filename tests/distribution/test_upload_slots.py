"""The per-account upload slots in-process: the limit, leases of dead holders taken over, requests
without a body taking no slot, slots freed when the body is in (or the request failed)."""
from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from registry_policies.distribution.errors import RegistryError
from registry_policies.distribution.models import UploadSlot
from registry_policies.distribution.upload_slots import upload_slot

pytestmark = pytest.mark.django_db


def patch_request(length: int = 10):  # type: ignore[no-untyped-def]
    return RequestFactory().patch("/v2/a/b/blobs/uploads/x", data=b"x" * length,
                                  content_type="application/octet-stream")


def test_the_slot_past_the_limit_is_429_and_other_accounts_are_not_counted(settings, make_user):
    settings.UPLOADS_PER_ACCOUNT = 2
    alice, bob = make_user("alice"), make_user("bob")
    with contextlib.ExitStack() as held:
        for _ in range(2):
            held.enter_context(upload_slot(request=patch_request(), user_id=alice.pk))
        with pytest.raises(RegistryError) as refused, upload_slot(request=patch_request(), user_id=alice.pk):
            pass
        assert refused.value.error.code == "TOOMANYREQUESTS" and refused.value.status == 429
        with upload_slot(request=patch_request(), user_id=bob.pk):
            assert UploadSlot.objects.filter(user=bob).count() == 1
        assert UploadSlot.objects.filter(user=alice).count() == 2
    assert not UploadSlot.objects.exists()


def test_a_slot_whose_lease_expired_is_taken_over(settings, make_user):
    settings.UPLOADS_PER_ACCOUNT = 1
    alice = make_user("alice")
    dead = UploadSlot.objects.create(user=alice, slot=0, holder="00000000-0000-0000-0000-000000000001",
                                     expires_at=timezone.now() - timedelta(seconds=1))
    with upload_slot(request=patch_request(), user_id=alice.pk):
        taken = UploadSlot.objects.get(user=alice, slot=0)
        assert taken.holder != dead.holder and taken.expires_at > timezone.now()
    assert not UploadSlot.objects.exists()


def test_requests_without_a_body_or_an_account_take_no_slot(settings, make_user):
    settings.UPLOADS_PER_ACCOUNT = 1
    alice = make_user("alice")
    with upload_slot(request=patch_request(0), user_id=alice.pk), upload_slot(request=patch_request(), user_id=None):
        assert not UploadSlot.objects.exists()


def test_a_failed_upload_frees_its_slot(settings, make_user):
    settings.UPLOADS_PER_ACCOUNT = 1
    alice = make_user("alice")
    with pytest.raises(RegistryError), upload_slot(request=patch_request(), user_id=alice.pk):
        raise RegistryError("BLOB_UPLOAD_INVALID", "the request body stopped arriving", status=408)
    assert not UploadSlot.objects.exists()
