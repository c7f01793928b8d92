"""The Tags tab, the tag page (manifest, layers, history, scan result), deleting tags and rescans."""
import pytest
from django.test import override_settings

from registry_policies.repositories import content
from registry_policies.repositories.models import Tag
from registry_policies.scanning.models import Scan
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.api.test_scans import OPENSSL, REQUESTS, ZLIB, push_index, record_scan
from tests.factories import push_image

pytestmark = pytest.mark.django_db


def grant(world, role: str) -> None:
    """Give world.member `role` on acme/secret."""
    tenancy.grant_repository_role(repository=world.org_private, grantee=Grantee(user=world.member), role=role,
                                  actor=world.owner)


@override_settings(REGISTRY_PUBLIC_URL="https://registry.example.test:5443")
def test_tags_tab_lists_tags_with_digest_size_platform_pusher_and_pull_command(world, as_user):
    manifest = push_image(world.own_repo, "1.0", actor=world.owner)

    response = as_user(world.owner).get("/alice/app/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/alice/app/tags/1.0/"' in html
    assert f'title="{manifest.digest}">{manifest.digest[:19]}</code>' in html
    assert "linux/amd64" in html and "alice" in html and "pushed" in html
    assert 'value="docker pull registry.example.test:5443/alice/app:1.0"' in html
    assert "skopeo copy docker://registry.example.test:5443/alice/app:1.0" in html
    assert "not scanned" in html
    assert 'action="/alice/app/tags/1.0/delete/"' in html
    assert "No tags yet" not in html
    assert [t.name for t in response.templates].count("web/repository/tab_tags.html") == 1


def test_promoted_tag_shows_where_it_came_from_with_a_link_to_the_source(world, as_user):
    manifest = push_image(world.org_public, "1.0-stable", actor=world.owner)
    content.set_tag(repository=world.own_repo, name="1.0-stable", manifest=manifest, actor=world.owner,
                    cause="promotion", origin_detail={"source_repository": "acme/open", "source_tag": "1.0-stable",
                                                      "policy_id": 12, "promotion_id": 5})

    html = as_user(world.owner).get("/alice/app/").content.decode()

    assert ('promoted from <a href="/acme/open/">acme/open</a>:<a href="/acme/open/tags/1.0-stable/">1.0-stable</a>'
            ' by policy #12') in html


def test_promoted_tag_names_a_source_the_viewer_cannot_see_without_linking_it(world, as_user):
    manifest = push_image(world.own_repo, "1.0", actor=world.owner)
    content.set_tag(repository=world.org_public, name="1.0", manifest=manifest, actor=world.owner,
                    cause="promotion", origin_detail={"source_repository": "alice/app", "source_tag": "1.0",
                                                      "policy_id": 3})

    html = as_user(world.stranger).get("/acme/open/").content.decode()

    assert "promoted from alice/app:1.0 by policy #3" in html
    assert 'href="/alice/app/' not in html


def test_tags_tab_shows_scan_counts_or_scan_state(world, as_user):
    record_scan(push_image(world.own_repo, "scanned", actor=world.owner), [OPENSSL, ZLIB])
    record_scan(push_image(world.own_repo, "clean", actor=world.owner), [REQUESTS])
    record_scan(push_image(world.own_repo, "busy", actor=world.owner), status="running")

    html = as_user(world.owner).get("/alice/app/").content.decode()

    assert '<span class="sev sev-critical" title="critical">1 critical</span>' in html
    assert '<span class="sev sev-major" title="major">1 major</span>' in html
    assert "no known vulnerabilities" in html and "scanning…" in html


def test_tags_tab_searches_sorts_and_paginates_with_bounded_queries(world, as_user, django_assert_max_num_queries):
    grant(world, "write")
    for index in range(55):
        manifest = push_image(world.org_private, f"v{index:02d}", actor=world.owner)
        if index % 2:
            record_scan(manifest, [OPENSSL])
    content.set_tag(repository=world.org_private, name="zz-promoted", manifest=manifest, actor=world.owner,
                    cause="promotion", origin_detail={"source_repository": "acme/open", "source_tag": "x"})
    client = as_user(world.member)
    client.get("/acme/secret/")  # warm the session and content types

    with django_assert_max_num_queries(9):
        response = client.get("/acme/secret/")

    html = response.content.decode()
    assert html.count('class="repo-name"') == 50 and "Page 1 of 2" in html
    assert 'href="?page=2"' in html
    second = client.get("/acme/secret/", {"page": 2, "sort": "-pushed_at"}).content.decode()
    assert 'href="?page=1&amp;sort=-pushed_at"' in second
    found = client.get("/acme/secret/", {"q": "v1"}).content.decode()
    assert found.count('class="repo-name"') == 10


def test_tag_page_shows_manifest_layers_history_and_pull_commands(world, as_user):
    first = push_image(world.own_repo, "1.0", actor=world.owner)
    manifest = push_image(world.own_repo, "1.0", actor=world.owner)

    response = as_user(world.owner).get("/alice/app/tags/1.0/")

    assert response.status_code == 200
    html = response.content.decode()
    assert manifest.digest in html and "application/vnd.oci.image.manifest.v1+json" in html
    layer = manifest.blobs.get(size=64)
    assert f'<td class="digest-full"><code class="mono">{layer.digest}</code></td>' in html
    assert "&quot;schemaVersion&quot;: 2" in html  # the pretty-printed manifest
    assert first.digest[:19] in html and response.context["history"][0].old_digest == first.digest
    assert "docker pull" in html and "skopeo copy docker://" in html
    assert "Rescan" in html and 'action="/alice/app/tags/1.0/delete/"' in html


def test_tag_page_of_an_index_lists_its_images(world, as_user):
    amd64 = push_image(world.own_repo, "amd64", actor=world.owner)
    arm64 = push_image(world.own_repo, "arm64", actor=world.owner, architecture="arm64")
    push_index(world.own_repo, "multi", {"linux/amd64": amd64, "linux/arm64": arm64}, actor=world.owner)

    html = as_user(world.owner).get("/alice/app/tags/multi/").content.decode()

    assert "Images" in html and "linux/amd64" in html and "linux/arm64" in html
    assert amd64.digest[:19] in html and arm64.digest[:19] in html
    assert "skopeo copy --all docker://" in html


def test_tag_page_shows_vulnerabilities_by_severity_licenses_and_filterable_components(world, as_user):
    record_scan(push_image(world.own_repo, "1.0", actor=world.owner), [OPENSSL, ZLIB, REQUESTS])
    client = as_user(world.owner)

    response = client.get("/alice/app/tags/1.0/")

    html = response.content.decode()
    assert [severity for severity, _rows in response.context["vulnerability_groups"]] == ["critical", "major",
                                                                                        "minor"]
    assert "CVE-2024-0001" in html and "3.0.13" in html and "CVE-2022-37434" in html and "1.2.13" in html
    assert "no fix known" in html  # CVE-2024-0002
    assert dict(response.context["licenses"]) == {"Apache-2.0": 2, "Zlib": 1}
    assert [c["name"] for c in response.context["components"]] == ["openssl", "zlib", "requests"]
    filtered = client.get("/alice/app/tags/1.0/", {"component": "ZL"})
    assert [c["name"] for c in filtered.context["components"]] == ["zlib"]
    by_type = client.get("/alice/app/tags/1.0/", {"type": "python"})
    assert [c["name"] for c in by_type.context["components"]] == ["requests"]
    assert '<option value="python" selected>' in by_type.content.decode()


def test_failed_scan_shows_its_reason(world, as_user):
    record_scan(push_image(world.own_repo, "1.0", actor=world.owner), status="failed", reason="layer is not a tar")
    html = as_user(world.owner).get("/alice/app/tags/1.0/").content.decode()
    assert "scan failed" in html and "layer is not a tar" in html


def test_reader_sees_no_delete_or_rescan_buttons_and_posting_is_403(world, as_user):
    grant(world, "read")
    push_image(world.org_private, "1.0", actor=world.owner)
    client = as_user(world.member)

    for path in ("/acme/secret/", "/acme/secret/tags/1.0/"):
        html = client.get(path).content.decode()
        assert "/delete/" not in html.replace('href="/acme/secret/delete/"', "") and "Rescan" not in html, path
    assert client.post("/acme/secret/tags/1.0/delete/", {"confirm": "yes"}).status_code == 403
    assert client.post("/acme/secret/tags/1.0/scan/").status_code == 403
    assert Tag.objects.filter(repository=world.org_private, name="1.0").exists()
    assert not Scan.objects.exists()


def test_writer_deletes_a_tag_after_confirming(world, as_user):
    grant(world, "write")
    push_image(world.org_private, "1.0", actor=world.owner)
    client = as_user(world.member)

    confirm = client.post("/acme/secret/tags/1.0/delete/")
    assert confirm.status_code == 200 and 'name="confirm" value="yes"' in confirm.content.decode()
    assert Tag.objects.filter(repository=world.org_private, name="1.0").exists()

    response = client.post("/acme/secret/tags/1.0/delete/", {"confirm": "yes"}, follow=True)

    assert response.redirect_chain[-1][0] == "/acme/secret/"
    assert "Tag 1.0 deleted." in response.content.decode()
    assert not Tag.objects.filter(repository=world.org_private, name="1.0").exists()


def test_immutable_tag_is_not_deleted(world, as_user):
    push_image(world.own_repo, "1.0", actor=world.owner)
    world.own_repo.immutable_tags = True
    world.own_repo.save(update_fields=["immutable_tags"])
    client = as_user(world.owner)

    assert 'action="/alice/app/tags/1.0/delete/"' not in client.get("/alice/app/").content.decode()
    response = client.post("/alice/app/tags/1.0/delete/", {"confirm": "yes"}, follow=True)

    assert "immutable" in response.content.decode()
    assert Tag.objects.filter(repository=world.own_repo, name="1.0").exists()


def test_writer_asks_for_a_rescan(world, as_user):
    manifest = push_image(world.own_repo, "1.0", actor=world.owner)
    record_scan(manifest, [OPENSSL])

    response = as_user(world.owner).post("/alice/app/tags/1.0/scan/", follow=True)

    assert response.redirect_chain[-1][0] == "/alice/app/tags/1.0/"
    assert "A new scan of 1.0 was queued." in response.content.decode()
    assert Scan.objects.get(manifest=manifest).status == "queued"


def test_tags_of_a_private_repository_are_404_to_those_who_cannot_read_it(world, as_user, client):
    push_image(world.org_private, "1.0", actor=world.owner)
    for visitor in (as_user(world.member), client):
        assert visitor.get("/acme/secret/tags/1.0/").status_code == 404
    member = as_user(world.member)
    assert member.post("/acme/secret/tags/1.0/delete/", {"confirm": "yes"}).status_code == 404
    assert member.post("/acme/secret/tags/1.0/scan/").status_code == 404
    assert Tag.objects.filter(repository=world.org_private, name="1.0").exists()


def test_unknown_tag_page_is_404(world, as_user):
    client = as_user(world.owner)
    assert client.get("/alice/app/tags/nope/").status_code == 404
    assert client.post("/alice/app/tags/nope/delete/", {"confirm": "yes"}).status_code == 404


def test_public_repository_tag_page_is_readable_anonymously(world, client):
    push_image(world.org_public, "v1.2.3-rc_1", actor=world.owner)
    response = client.get("/acme/open/tags/v1.2.3-rc_1/")
    assert response.status_code == 200 and "Rescan" not in response.content.decode()
    assert client.post("/acme/open/tags/v1.2.3-rc_1/delete/")["Location"].startswith("/accounts/login/")
