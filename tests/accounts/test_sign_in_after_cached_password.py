"""A password verified a moment ago (by a registry client's token request) is remembered; signing in
to the site with it must still work (Django's login() needs the backend that authenticated)."""
import base64

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_sign_in_right_after_a_token_request_with_the_same_password(make_user) -> None:  # type: ignore[no-untyped-def]
    make_user("carol", password="pw-carol-123!")
    basic = "Basic " + base64.b64encode(b"carol:pw-carol-123!").decode()
    token = Client().get("/auth/token", {"service": "registry_policies", "scope": "repository:carol/app:pull"},
                         HTTP_AUTHORIZATION=basic)
    assert token.status_code == 200, token.content
    browser = Client()
    signed_in = browser.post("/accounts/login/", {"username": "carol", "password": "pw-carol-123!"})
    assert signed_in.status_code == 302, signed_in.content
    assert browser.get("/api/v1/me/").json()["username"] == "carol"
    wrong = Client().post("/accounts/login/", {"username": "carol", "password": "not-the-password"})
    assert wrong.status_code == 200 and "_auth_user_id" not in wrong.wsgi_request.session
