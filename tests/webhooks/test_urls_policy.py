"""Which URLs may receive webhooks: schemes, hosts, link-local and metadata targets."""
import ipaddress

import pytest
from django.core.exceptions import ValidationError

from registry_policies.core import outbound
from registry_policies.webhooks.urls_policy import validate_webhook_url


def _error(url: str, *, allow_loopback: bool = True) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_webhook_url(url, allow_loopback=allow_loopback)
    assert list(caught.value.message_dict) == ["url"]
    return caught.value.message_dict["url"][0]


@pytest.mark.parametrize(("url", "expected"), [
    ("ftp://ci.example.com/hook", "only to http:// or https:// URLs, not ftp://"),
    ("ci.example.com/hook", "not a URL without a scheme"),
    ("http:///hook", "no host"),
    ("https://", "no host"),
    ("", "Enter the URL"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://169.254.10.1:8080/", "169.254.10.1 is a link-local address"),
    ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("http://[fd00:ec2::254]/", "is a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe (169.254.169.254) is a cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata service"),
    ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
    ("http://[::]/", ":: is an unspecified address"),
    ("http://user:pw@ci.example.com/hook", "credentials"),
    ("http://bad_host!/hook", "not a valid host name"),
    ("http://ci.example.com:99999/", "Not a valid URL"),
    ("http://host.invalid/hook", "cannot be resolved"),
])
def test_bad_urls_are_refused_with_an_error_on_url(url, expected):
    assert expected in _error(url)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "https://[::1]/hook", "http://10.1.2.3/hook", "http://192.168.1.20:9000/x?y=1",
    "http://localhost:8000/hook",
])
def test_loopback_and_private_receivers_are_allowed_when_loopback_is(url):
    assert validate_webhook_url(f"  {url} ", allow_loopback=True) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://[::1]/hook", "http://localhost:8000/hook",
                                 "http://2130706433/hook", "http://0177.0.0.1/hook"])
def test_loopback_receivers_are_refused_without_allow_loopback(settings, url):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    assert "a loopback address (only administrators may use it)" in _error(url, allow_loopback=False)


def test_a_name_resolving_to_link_local_is_refused(monkeypatch):
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("169.254.1.2")])
    message = _error("https://hooks.example.com/x")
    assert message == ("hooks.example.com resolves to 169.254.1.2, which is a link-local address; "
                       "outbound requests cannot go there.")


def test_deny_private_setting_refuses_private_ranges(settings):
    assert validate_webhook_url("http://10.1.2.3/hook", allow_loopback=False) == "http://10.1.2.3/hook"
    settings.OUTBOUND_DENY_PRIVATE = True
    assert "10.1.2.3 is a private address" in _error("http://10.1.2.3/hook")
    assert "fd12::1 is a private address" in _error("http://[fd12::1]/hook")
    assert validate_webhook_url("http://127.0.0.1/hook", allow_loopback=True) == "http://127.0.0.1/hook"
