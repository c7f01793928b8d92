"""Under an https public URL the session and CSRF cookies are Secure; HSTS is sent on HTTPS requests
when SECURE_HSTS_SECONDS is set; X-Forwarded-Proto counts only when TRUST_X_FORWARDED_PROTO is on.
Driven against a real server (the cookies come from gunicorn as a browser would get them)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests

from tests.servers import ROOT, RunningServer

pytestmark = pytest.mark.e2e


def _settings_for(env: dict[str, str]) -> list[str]:
    code = ("from django.conf import settings; print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
            "settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER)")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SESSION_", "CSRF_", "SECURE_"))}
    base.pop("TRUST_X_FORWARDED_PROTO", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**base, "DJANGO_SETTINGS_MODULE": "registry_policies.settings", **env})
    return result.stdout.split()


def test_cookies_are_secure_only_under_an_https_public_url():
    assert _settings_for({"REGISTRY_PUBLIC_URL": "http://127.0.0.1:5000"}) == ["False", "False", "0", "None"]
    assert _settings_for({"REGISTRY_PUBLIC_URL": "https://registry.example.test"})[:3] == ["True", "True", "0"]
    overridden = _settings_for({"REGISTRY_PUBLIC_URL": "https://registry.example.test",
                                "SESSION_COOKIE_SECURE": "false", "SECURE_HSTS_SECONDS": "3600",
                                "TRUST_X_FORWARDED_PROTO": "true"})
    assert overridden[:3] == ["False", "True", "3600"]
    assert "HTTP_X_FORWARDED_PROTO" in overridden[3]


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    server = RunningServer.start(tmp_path_factory.mktemp("https"), with_worker=False, extra_env={
        "REGISTRY_PUBLIC_URL": "https://registry.example.test", "SECURE_HSTS_SECONDS": "3600",
        "TRUST_X_FORWARDED_PROTO": "true"})
    yield server
    server.stop()


def _set_cookie(response: requests.Response, name: str) -> str:
    headers = response.raw.headers.getlist("Set-Cookie")
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert found, headers
    return found[0]


def test_sign_in_behind_a_tls_proxy_gets_secure_cookies_and_hsts(https_server):
    server = https_server
    proxied = {"X-Forwarded-Proto": "https"}
    page = requests.get(f"{server.url}/accounts/login/", headers=proxied, timeout=10)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=3600"
    csrf_cookie = _set_cookie(page, "csrftoken")
    assert re.search(r";\s*Secure", csrf_cookie, re.I)
    csrf = csrf_cookie.split(";", 1)[0].split("=", 1)[1]
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert form_token
    signed_in = requests.post(
        f"{server.url}/accounts/login/", allow_redirects=False, timeout=10,
        data={"username": server.admin_username, "password": server.admin_password,
              "csrfmiddlewaretoken": form_token[1]},
        headers={**proxied, "Cookie": f"csrftoken={csrf}", "Origin": f"https://{server.host_port}"})
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert re.search(r";\s*Secure", _set_cookie(signed_in, "sessionid"), re.I)
    # A plain-HTTP request (no proxy header) gets no HSTS header: HSTS is only meaningful over HTTPS.
    plain = requests.get(f"{server.url}/accounts/login/", timeout=10)
    assert "Strict-Transport-Security" not in plain.headers
    # Wrong password: no session cookie at all.
    refused = requests.post(
        f"{server.url}/accounts/login/", allow_redirects=False, timeout=10,
        data={"username": server.admin_username, "password": "wrong", "csrfmiddlewaretoken": form_token[1]},
        headers={**proxied, "Cookie": f"csrftoken={csrf}", "Origin": f"https://{server.host_port}"})
    assert refused.status_code == 200 and "sessionid=" not in refused.headers.get("Set-Cookie", "")
