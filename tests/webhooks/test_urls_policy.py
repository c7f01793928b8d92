"""Which URLs may receive webhooks: schemes, hosts, link-local and metadata targets."""
import ipaddress

import pytest
from django.core.exceptions import ValidationError

from registry_policies.webhooks import urls_policy
from registry_policies.webhooks.urls_policy import validate_webhook_url


def _error(url: str) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_webhook_url(url)
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
def test_loopback_and_private_receivers_are_allowed(url):
    assert validate_webhook_url(f"  {url} ") == url


def test_a_name_resolving_to_link_local_is_refused(monkeypatch):
    monkeypatch.setattr(urls_policy, "resolve", lambda host, port: [ipaddress.ip_address("169.254.1.2")])
    message = _error("https://hooks.example.com/x")
    assert message == ("hooks.example.com resolves to 169.254.1.2, which is a link-local address; "
                       "webhooks cannot be sent there.")


def test_allow_private_targets_setting_lifts_the_refusals(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert validate_webhook_url("http://169.254.169.254/") == "http://169.254.169.254/"
    assert validate_webhook_url("http://metadata.google.internal/") == "http://metadata.google.internal/"
    assert "ftp://" in _error("ftp://example.com/")
