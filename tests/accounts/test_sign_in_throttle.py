"""Every password check is throttled per account and per client: /v2/ Basic, the API's Basic, the
token endpoint (GET Basic and POST password grant), the sign-in page and the admin sign-in. Locks
are audited, personal access tokens are never slowed, failed tokens are audited."""
import base64
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import SignInThrottle
from registry_policies.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
OTHER_NETWORK = "198.51.100.9"
ACCOUNT_LIMIT = 3
CLIENT_LIMIT = 8


@pytest.fixture(autouse=True)
def _limits(settings):  # type: ignore[no-untyped-def]
    settings.AUTH_FAILURE_LIMIT_ACCOUNT = ACCOUNT_LIMIT
    settings.AUTH_FAILURE_LIMIT_CLIENT = CLIENT_LIMIT
    settings.AUTH_FAILURE_WINDOW_SECONDS = 900
    settings.AUTH_LOCK_SECONDS = 300
    settings.AUTH_LOCK_MAX_SECONDS = 3600


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def v2(username: str, password: str, ip: str = ATTACKER):  # type: ignore[no-untyped-def]
    return Client().get("/v2/", HTTP_AUTHORIZATION=basic(username, password), REMOTE_ADDR=ip)


def api_me(username: str, password: str, ip: str = ATTACKER):  # type: ignore[no-untyped-def]
    return APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=basic(username, password), REMOTE_ADDR=ip)


def token_get(username: str, password: str, ip: str = ATTACKER):  # type: ignore[no-untyped-def]
    return Client().get("/auth/token", {"service": "registry_policies", "scope": "repository:alice/app:pull"},
                        HTTP_AUTHORIZATION=basic(username, password), REMOTE_ADDR=ip)


def token_post(username: str, password: str, ip: str = ATTACKER):  # type: ignore[no-untyped-def]
    return Client().post("/auth/token", {"grant_type": "password", "username": username, "password": password,
                                         "service": "registry_policies", "scope": "repository:alice/app:pull"},
                         REMOTE_ADDR=ip)


def registry_code(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["errors"][0]["code"]


def locks(scope: str) -> list[AuditEvent]:
    return [e for e in AuditEvent.objects.filter(action="auth.locked") if e.details["scope"] == scope]


REGISTRY_DOORS = [v2, token_get, token_post]


@pytest.mark.parametrize("door", REGISTRY_DOORS, ids=lambda d: d.__name__)
def test_registry_wrong_passwords_lock_the_account_with_toomanyrequests(make_user, door):
    make_user("alice")
    for _ in range(ACCOUNT_LIMIT - 1):
        refused = door("alice", "wrong")
        assert refused.status_code == 401 and registry_code(refused) == "UNAUTHORIZED"

    locked = door("alice", "wrong")

    assert locked.status_code == 429 and registry_code(locked) == "TOOMANYREQUESTS"
    assert 290 <= int(locked["Retry-After"]) <= 300
    assert "Too many failed sign-ins for this account" in locked.json()["errors"][0]["message"]
    # The right password does not get through the lock, from any address.
    still = door("alice", "pw-alice-123!", ip=OTHER_NETWORK)
    assert still.status_code == 429 and registry_code(still) == "TOOMANYREQUESTS"
    assert "access_token" not in still.json() and "token" not in still.json()
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == ACCOUNT_LIMIT
    (event,) = locks("account")
    assert (event.details["username"], event.details["seconds"], event.source_ip) == ("alice", 300, ATTACKER)


def test_api_basic_wrong_passwords_lock_with_drf_429_and_retry_after(make_user):
    make_user("alice")
    for _ in range(ACCOUNT_LIMIT - 1):
        assert api_me("alice", "wrong").status_code == 401

    locked = api_me("alice", "wrong")

    assert locked.status_code == 429
    assert "Too many failed sign-ins for this account" in locked.json()["detail"]
    assert 290 <= int(locked["Retry-After"]) <= 300
    still = api_me("alice", "pw-alice-123!", ip=OTHER_NETWORK)
    assert still.status_code == 429 and "username" not in still.json()
    assert len(locks("account")) == 1


def test_a_lock_holds_on_every_door_whichever_door_earned_it(make_user):
    make_user("alice")
    for _ in range(ACCOUNT_LIMIT):
        v2("alice", "wrong")

    assert api_me("alice", "pw-alice-123!").status_code == 429
    assert token_post("alice", "pw-alice-123!").status_code == 429
    page = Client(REMOTE_ADDR=OTHER_NETWORK).post("/accounts/login/", {"username": "alice",
                                                                       "password": "pw-alice-123!"})
    assert page.status_code == 429


def test_locked_account_does_not_lock_other_accounts_behind_the_same_address(make_user):
    make_user("alice")
    make_user("bob")
    for _ in range(ACCOUNT_LIMIT):
        v2("alice", "wrong")
    assert v2("alice", "pw-alice-123!").status_code == 429

    assert v2("bob", "pw-bob-123!").status_code == 200
    assert api_me("bob", "pw-bob-123!").json()["username"] == "bob"
    assert token_get("bob", "pw-bob-123!").status_code == 200
    wrong = v2("bob", "wrong")
    assert wrong.status_code == 401 and registry_code(wrong) == "UNAUTHORIZED"
    assert locks("client") == []


def test_client_limit_locks_password_sign_in_from_that_address_only(make_user):
    make_user("carol")
    make_user("dave")
    for number in range(CLIENT_LIMIT - 1):
        assert v2(f"guess{number}", "wrong").status_code == 401  # each account stays under its limit

    locked = v2("guess-last", "wrong")

    assert locked.status_code == 429 and registry_code(locked) == "TOOMANYREQUESTS"
    assert "your network address" in locked.json()["errors"][0]["message"]
    assert api_me("carol", "pw-carol-123!").status_code == 429
    assert api_me("carol", "pw-carol-123!", ip=OTHER_NETWORK).status_code == 200
    assert token_post("dave", "pw-dave-123!", ip=OTHER_NETWORK).status_code == 200
    (event,) = locks("client")
    assert event.source_ip == ATTACKER and event.details["seconds"] == 300
    assert SignInThrottle.objects.get(key=f"client:{ATTACKER}").locked_until is not None


def test_success_resets_the_account_counter(make_user):
    make_user("alice")
    for _ in range(ACCOUNT_LIMIT - 1):
        v2("alice", "wrong")
    assert v2("alice", "pw-alice-123!").status_code == 200
    assert not SignInThrottle.objects.filter(key="account:alice").exists()

    for _ in range(ACCOUNT_LIMIT - 1):
        assert v2("alice", "wrong").status_code == 401
    assert locks("account") == []


def test_each_further_lock_lasts_twice_as_long_up_to_the_maximum(make_user, settings):
    settings.AUTH_LOCK_MAX_SECONDS = 1000
    make_user("alice")
    durations = []
    for round_ in range(4):
        for _ in range(ACCOUNT_LIMIT):  # from a new address each round, under the client limit
            v2("alice", "wrong", ip=f"192.0.2.{round_ + 1}")
        row = SignInThrottle.objects.get(key="account:alice")
        durations.append(locks("account")[0].details["seconds"])
        # The lock ran out (moved into the past rather than waiting for it).
        SignInThrottle.objects.filter(pk=row.pk).update(locked_until=timezone.now() - timedelta(seconds=1))

    assert durations == [300, 600, 1000, 1000]
    assert v2("alice", "pw-alice-123!").status_code == 200


def test_sign_in_page_lock_is_a_clear_error_and_no_session(make_user):
    make_user("alice")
    client = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(ACCOUNT_LIMIT - 1):
        wrong = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert wrong.status_code == 200 and "Please enter a correct username and password" in wrong.content.decode()

    locked = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-ins for this account" in locked.content.decode()

    right = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123!", "next": "/"})
    assert right.status_code == 429 and "Too many failed sign-ins" in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert len(locks("account")) == 1


def test_admin_sign_in_is_throttled_too(make_user):
    make_user("root", is_superuser=True)
    client = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(ACCOUNT_LIMIT):
        client.post("/admin/login/", {"username": "root", "password": "wrong", "next": "/admin/"})

    right = client.post("/admin/login/", {"username": "root", "password": "pw-root-123!", "next": "/admin/"})

    assert right.status_code == 200 and "Too many failed sign-ins for this account" in right.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302
    assert len(locks("account")) == 1
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == ACCOUNT_LIMIT


def test_personal_access_tokens_are_not_slowed_by_a_lock(make_user):
    alice = make_user("alice")
    _token, secret = accounts.create_token(user=alice, name="ci")
    for _ in range(ACCOUNT_LIMIT + CLIENT_LIMIT):
        v2("alice", "wrong")
    assert v2("alice", "pw-alice-123!").status_code == 429

    assert v2("alice", secret).status_code == 200
    assert api_me("alice", secret).json()["username"] == "alice"
    assert token_get("alice", secret).status_code == 200
    assert token_post("alice", secret).status_code == 200
    bearer = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=ATTACKER)
    assert bearer.status_code == 200


def test_wrong_tokens_are_audited_but_never_throttled(make_user):
    alice = make_user("alice")
    token, secret = accounts.create_token(user=alice, name="ci")
    accounts.revoke_token(token=token, actor=alice)
    for _ in range(CLIENT_LIMIT + 2):
        wrong = v2("alice", "rpat_" + "x" * 43)
        assert wrong.status_code == 401 and registry_code(wrong) == "UNAUTHORIZED"

    revoked = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=ATTACKER)
    unknown = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer not-a-token", REMOTE_ADDR=ATTACKER)

    assert (revoked.status_code, unknown.status_code) == (401, 401)
    failed = AuditEvent.objects.filter(action="auth.token_failed")
    assert failed.count() == CLIENT_LIMIT + 4
    assert {e.source_ip for e in failed} == {ATTACKER}
    assert failed.filter(details__token_hint=secret[:12]).count() == 1
    assert not SignInThrottle.objects.exists() and locks("account") == locks("client") == []
    assert v2("alice", "pw-alice-123!").status_code == 200


def test_failed_refresh_token_is_audited_not_throttled(make_user):
    make_user("alice")
    for _ in range(CLIENT_LIMIT + 1):
        refused = Client().post("/auth/token", {"grant_type": "refresh_token", "refresh_token": "forged"},
                                REMOTE_ADDR=ATTACKER)
        assert refused.status_code == 401 and registry_code(refused) == "UNAUTHORIZED"
    assert AuditEvent.objects.filter(action="auth.token_failed").count() == CLIENT_LIMIT + 1
    assert token_post("alice", "pw-alice-123!").status_code == 200


def test_administrator_unlocks_an_account_in_the_admin_and_it_is_audited(make_user):
    make_user("alice")
    root = make_user("root", is_superuser=True)
    for _ in range(ACCOUNT_LIMIT):
        v2("alice", "wrong")
    assert v2("alice", "pw-alice-123!").status_code == 429
    admin = Client(REMOTE_ADDR=OTHER_NETWORK)
    admin.force_login(root)
    listing = admin.get("/admin/accounts/signinthrottle/")
    assert listing.status_code == 200 and "account:alice" in listing.content.decode()
    row = SignInThrottle.objects.get(key="account:alice")

    done = admin.post("/admin/accounts/signinthrottle/", {"action": "unlock", "_selected_action": [row.pk]})

    assert done.status_code == 302
    assert not SignInThrottle.objects.filter(key="account:alice").exists()
    assert SignInThrottle.objects.filter(key=f"client:{ATTACKER}").exists()  # only what was selected
    event = AuditEvent.objects.get(action="auth.unlocked")
    assert (event.actor, event.details["key"], event.source_ip) == (root, "account:alice", OTHER_NETWORK)
    assert v2("alice", "pw-alice-123!").status_code == 200


def test_staff_who_are_not_superusers_cannot_see_or_unlock(make_user):
    staff = make_user("staffer")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    for _ in range(ACCOUNT_LIMIT):
        v2("alice", "wrong")
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/accounts/signinthrottle/").status_code == 403
    row = SignInThrottle.objects.get(key="account:alice")
    client.post("/admin/accounts/signinthrottle/", {"action": "unlock", "_selected_action": [row.pk]})
    assert SignInThrottle.objects.filter(pk=row.pk).exists()
    assert not AuditEvent.objects.filter(action="auth.unlocked").exists()


def test_daily_clean_up_forgets_only_rows_that_can_no_longer_matter(make_user):
    from django_q.models import Schedule

    from accounts.tasks import forget_stale_sign_in_failures

    for _ in range(ACCOUNT_LIMIT):
        v2("alice", "wrong")  # locked now: kept
    v2("bob", "wrong", ip=OTHER_NETWORK)
    long_ago = timezone.now() - timedelta(hours=2)
    SignInThrottle.objects.filter(key__in=["account:bob", f"client:{OTHER_NETWORK}"]).update(
        last_failure_at=long_ago, window_started_at=long_ago)

    assert forget_stale_sign_in_failures() == 2

    assert set(SignInThrottle.objects.values_list("key", flat=True)) == {"account:alice", f"client:{ATTACKER}"}
    assert Schedule.objects.get(name="accounts: forget stale sign-in failures").func == \
        "accounts.tasks.forget_stale_sign_in_failures"
