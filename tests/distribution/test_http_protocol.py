"""The /v2/ protocol over real HTTP (gunicorn): authentication and the token endpoint, access
decisions (a private repository answers like a missing one), manifests, tags, catalog and
referrers; every error path with status, error code and what was (not) stored. Blob uploads are in
test_http_blobs.py."""
from __future__ import annotations

import base64
import json

import jwt
import pytest

from tests.distribution.conftest import Registry, error_codes, unique
from tests.distribution.images import Blob, canonical, make_image, sha256

pytestmark = pytest.mark.e2e


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_v2_root_challenges_anonymous_and_accepts_token_and_basic(server, alice):
    anonymous = Registry(server).request("GET", "/v2/")
    assert anonymous.status_code == 401
    assert error_codes(anonymous) == ["UNAUTHORIZED"]
    challenge = anonymous.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{server.url}/auth/token",service="registry_policies"')
    assert anonymous.headers["Docker-Distribution-API-Version"] == "registry/2.0"

    registry = Registry(server, alice)
    with_token = registry.request("GET", "/v2/", token=registry.token())
    assert (with_token.status_code, with_token.json()) == (200, {})
    assert with_token.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert registry.request("GET", "/v2/", auth=alice.auth).status_code == 200
    wrong = registry.request("GET", "/v2/", auth=(alice.username, "wrong"))
    assert wrong.status_code == 401 and error_codes(wrong) == ["UNAUTHORIZED"]
    forged = registry.request("GET", "/v2/", token="not-a-jwt")
    assert forged.status_code == 401 and 'error="invalid_token"' in forged.headers["WWW-Authenticate"]


def test_token_endpoint_grants_only_held_actions_and_rejects_bad_credentials(server, alice, bob):
    registry = Registry(server, alice)
    registry.push_image(f"{alice.username}/app", "v1", make_image())
    bad = registry.session.get(f"{server.url}/auth/token", auth=(alice.username, "nope"), timeout=10)
    assert bad.status_code == 401 and error_codes(bad) == ["UNAUTHORIZED"]

    body = registry.session.get(f"{server.url}/auth/token", timeout=10, auth=alice.auth, params={
        "service": "registry_policies", "offline_token": "true",
        "scope": [f"repository:{alice.username}/app:pull,push,delete", f"repository:{bob.username}/x:pull,push",
                  "registry:catalog:*"]}).json()
    assert set(body) >= {"token", "access_token", "expires_in", "issued_at", "refresh_token"}
    granted = {(a["type"], a["name"]): a["actions"] for a in claims(body["token"])["access"]}
    assert granted == {("repository", f"{alice.username}/app"): ["pull", "push", "delete"],
                       ("repository", f"{bob.username}/x"): [], ("registry", "catalog"): ["*"]}
    decoded = claims(body["token"])
    assert decoded["sub"] == alice.username and decoded["aud"] == "registry_policies"
    assert jwt.get_unverified_header(body["token"])["alg"] == "ES256"

    bob_view = Registry(server, bob).token(f"repository:{alice.username}/app:pull,push")
    assert claims(bob_view)["access"][0]["actions"] == []

    oauth = registry.session.post(f"{server.url}/auth/token", timeout=10, data={
        "grant_type": "password", "username": alice.username, "password": alice.password,
        "service": "registry_policies", "client_id": "containerd",
        "scope": f"repository:{alice.username}/app:pull registry:catalog:*"}).json()
    assert claims(oauth["access_token"])["access"][0]["actions"] == ["pull"]
    refreshed = registry.session.post(f"{server.url}/auth/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": oauth["refresh_token"], "service": "registry_policies",
        "scope": f"repository:{alice.username}/app:push"})
    assert refreshed.status_code == 200, refreshed.text
    assert claims(refreshed.json()["access_token"])["access"][0]["actions"] == ["push"]
    forged = registry.session.post(f"{server.url}/auth/token", timeout=10,
                                   data={"grant_type": "refresh_token", "refresh_token": oauth["access_token"]})
    assert forged.status_code == 401 and error_codes(forged) == ["UNAUTHORIZED"]


def test_manifest_referencing_missing_blob_is_manifest_blob_unknown(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/partial"
    image = make_image(layers=2)
    registry.push_blob(name, image.config.data)
    registry.push_blob(name, image.layers[0].data)
    response = registry.push_manifest(name, "v1", image.manifest)
    assert response.status_code == 400 and error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"]["digest"] == image.layers[1].digest
    token = registry.token(f"repository:{name}:pull")
    missing = registry.request("GET", f"/v2/{name}/manifests/v1", token=token)
    assert missing.status_code == 404 and error_codes(missing) == ["MANIFEST_UNKNOWN"]
    # A blob pushed to another repository does not count.
    other = f"{alice.username}/other"
    registry.push_blob(other, image.layers[1].data)
    assert error_codes(registry.push_manifest(name, "v1", image.manifest)) == ["MANIFEST_BLOB_UNKNOWN"]


def test_manifest_validation_errors(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/invalid"
    token = registry.token(f"repository:{name}:pull,push")

    def put(body: bytes, content_type: str, reference: str = "v1"):
        return registry.request("PUT", f"/v2/{name}/manifests/{reference}", token=token, data=body,
                                headers={"Content-Type": content_type})

    oversize = put(b"{" + b" " * (4 * 1024 * 1024) + b"}", "application/vnd.oci.image.manifest.v1+json")
    assert oversize.status_code == 413 and error_codes(oversize) == ["SIZE_INVALID"]
    not_json = put(b"{nope", "application/vnd.oci.image.manifest.v1+json")
    assert not_json.status_code == 400 and error_codes(not_json) == ["MANIFEST_INVALID"]
    schema1 = put(canonical({"schemaVersion": 1, "name": name, "tag": "v1", "fsLayers": []}),
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert error_codes(schema1) == ["MANIFEST_INVALID"]
    mismatch = put(make_image().manifest.data, "application/vnd.docker.distribution.manifest.v2+json")
    assert error_codes(mismatch) == ["MANIFEST_INVALID"]
    image = make_image()
    wrong_digest = put(image.manifest.data, image.manifest.media_type, reference=sha256(b"other"))
    assert wrong_digest.status_code == 400 and error_codes(wrong_digest) == ["DIGEST_INVALID"]
    bad_tag = put(image.manifest.data, image.manifest.media_type, reference="-bad")
    assert bad_tag.status_code == 400 and error_codes(bad_tag) == ["TAG_INVALID"]
    long_tag = put(image.manifest.data, image.manifest.media_type, reference="a" * 129)
    assert error_codes(long_tag) == ["TAG_INVALID"]


@pytest.mark.parametrize("path", ["/v2/Alice/App/tags/list", "/v2/onlyone/manifests/latest",
                                  "/v2/a/b/c/manifests/latest", "/v2/a/b_/blobs/uploads/", "/v2/a/-b/tags/list"])
def test_invalid_repository_names_are_name_invalid(server, path):
    response = Registry(server).request("GET" if "uploads" not in path else "POST", path)
    assert response.status_code == 400 and error_codes(response) == ["NAME_INVALID"]


def test_private_repository_of_another_user_answers_like_a_missing_one(server, alice, bob):
    owner = Registry(server, bob)
    secret = f"{bob.username}/secret"
    image = make_image()
    digest = owner.push_image(secret, "v1", image)
    missing = f"{bob.username}/does-not-exist"
    intruder = Registry(server, alice)

    def outcome(name: str, method: str, path: str, scope: str, **kwargs):
        response = intruder.request(method, f"/v2/{name}{path}", scope=f"repository:{name}:{scope}", **kwargs)
        return response.status_code, error_codes(response) if response.content else [], \
            response.headers.get("WWW-Authenticate", "").replace(name, "NAME")

    for method, path, scope in [
        ("GET", "/manifests/v1", "pull"), ("HEAD", "/manifests/v1", "pull"), ("GET", f"/manifests/{digest}", "pull"),
        ("GET", "/tags/list", "pull"), ("GET", f"/blobs/{image.config.digest}", "pull"),
        ("GET", f"/referrers/{digest}", "pull"), ("POST", "/blobs/uploads/", "pull,push"),
        ("DELETE", f"/manifests/{digest}", "delete"),
    ]:
        seen_secret = outcome(secret, method, path, scope)
        seen_missing = outcome(missing, method, path, scope)
        assert seen_secret == seen_missing, (method, path, seen_secret, seen_missing)
        assert seen_secret[0] in (403, 404)
    assert outcome(secret, "GET", "/manifests/v1", "pull")[:2] == (404, ["NAME_UNKNOWN"])
    push = intruder.push_manifest(secret, "v2", image.manifest)
    assert push.status_code == 403 and error_codes(push) == ["DENIED"]
    # Basic directly on /v2/ answers the same way.
    basic = intruder.request("GET", f"/v2/{secret}/manifests/v1", auth=alice.auth)
    assert basic.status_code == 404 and error_codes(basic) == ["NAME_UNKNOWN"]
    # And nothing was created or changed.
    assert owner.request("GET", f"/v2/{secret}/tags/list", scope=f"repository:{secret}:pull").json()["tags"] == ["v1"]


def test_token_without_push_is_insufficient_scope(server, alice, bob):
    owner = Registry(server, alice)
    name = f"{alice.username}/shared"
    image = make_image()
    owner.push_image(name, "v1", image)
    granted = server.api("POST", f"repositories/{alice.username}/shared/permissions/", auth=alice.auth,
                         json={"user": bob.username, "role": "read"})
    assert granted.status_code in (200, 201), granted.text
    reader = Registry(server, bob)
    token = reader.token(f"repository:{name}:pull,push")
    assert claims(token)["access"][0]["actions"] == ["pull"]
    assert reader.request("GET", f"/v2/{name}/manifests/v1", token=token).status_code == 200
    denied = reader.push_manifest(name, "v2", image.manifest, token=token)
    assert denied.status_code == 403 and error_codes(denied) == ["DENIED"]
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    assert f'scope="repository:{name}:pull,push"' in denied.headers["WWW-Authenticate"]
    upload = reader.request("POST", f"/v2/{name}/blobs/uploads/", token=token)
    assert upload.status_code == 403
    delete = reader.request("DELETE", f"/v2/{name}/manifests/v1", token=token)
    assert delete.status_code == 403 and f'scope="repository:{name}:delete"' in delete.headers["WWW-Authenticate"]
    # Basic credentials on /v2/ are decided the same way.
    basic = reader.request("PUT", f"/v2/{name}/manifests/v2", auth=bob.auth, data=image.manifest.data,
                           headers={"Content-Type": image.manifest.media_type})
    assert basic.status_code == 403 and error_codes(basic) == ["DENIED"]
    # A token for another repository does not cover this one: the client is told which scope to ask for.
    elsewhere = reader.token(f"repository:{bob.username}/mine:pull")
    other = reader.request("GET", f"/v2/{name}/manifests/v1", token=elsewhere)
    assert other.status_code == 401 and f'scope="repository:{name}:pull"' in other.headers["WWW-Authenticate"]


def test_owner_reusing_a_pull_token_for_a_write_is_challenged_with_401_insufficient_scope(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/reuse"
    image = make_image()
    registry.push_image(name, "v1", image)
    started = registry.request("POST", f"/v2/{name}/blobs/uploads/", scope=f"repository:{name}:pull,push")
    assert started.status_code == 202
    pull_token = registry.token(f"repository:{name}:pull")
    assert claims(pull_token)["access"][0]["actions"] == ["pull"]
    # The user holds push: the client is told to fetch a token with the needed scope (401, not 403).
    for method, path in [("POST", f"/v2/{name}/blobs/uploads/"), ("GET", started.headers["Location"]),
                         ("DELETE", f"/v2/{name}/manifests/v1")]:
        response = registry.request(method, path, token=pull_token)
        assert response.status_code == 401, (method, path, response.status_code)
        assert error_codes(response) == ["UNAUTHORIZED"]
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge and f"repository:{name}:" in challenge
    pushed = registry.push_manifest(name, "v2", image.manifest, token=pull_token)
    assert pushed.status_code == 401 and f'scope="repository:{name}:pull,push"' in pushed.headers["WWW-Authenticate"]
    # Nothing was written or deleted with the pull token.
    tags = registry.request("GET", f"/v2/{name}/tags/list", token=pull_token).json()["tags"]
    assert tags == ["v1"]
    # oras-py (the requests library's User-Agent) refreshes its token only after a repeated 403.
    oras_like = registry.request("POST", f"/v2/{name}/blobs/uploads/", token=pull_token,
                                 headers={"User-Agent": "python-requests/2.32.3"})
    assert oras_like.status_code == 403 and error_codes(oras_like) == ["DENIED"]
    assert 'error="insufficient_scope"' in oras_like.headers["WWW-Authenticate"]
    # With the token the challenge names, the same write works.
    assert registry.push_manifest(name, "v2", image.manifest).status_code == 201


def test_get_and_head_of_an_invalid_tag_are_manifest_unknown(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/refs"
    registry.push_image(name, "v1", make_image())
    token = registry.token(f"repository:{name}:pull")
    for reference in (".INVALID_MANIFEST_NAME", "-bad", "a" * 129):
        got = registry.request("GET", f"/v2/{name}/manifests/{reference}", token=token)
        assert got.status_code == 404 and error_codes(got) == ["MANIFEST_UNKNOWN"]
        head = registry.request("HEAD", f"/v2/{name}/manifests/{reference}", token=token)
        assert head.status_code == 404 and head.content == b""
    missing = f"{alice.username}/nothing-here"
    unknown = registry.request("GET", f"/v2/{missing}/manifests/.INVALID_MANIFEST_NAME",
                               scope=f"repository:{missing}:pull")
    assert unknown.status_code == 404 and error_codes(unknown) == ["NAME_UNKNOWN"]
    anonymous = Registry(server).request("GET", f"/v2/{name}/manifests/.INVALID_MANIFEST_NAME")
    assert anonymous.status_code == 401  # authentication still comes first
    bad_digest = registry.request("GET", f"/v2/{name}/manifests/sha256:nothex", token=token)
    assert bad_digest.status_code == 400 and error_codes(bad_digest) == ["DIGEST_INVALID"]


def test_immutable_tags_cannot_move_or_be_deleted(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/frozen"
    first, second = make_image(), make_image()
    registry.push_image(name, "v1", first)
    changed = server.api("PATCH", f"repositories/{alice.username}/frozen/", auth=alice.auth,
                         json={"immutable_tags": True})
    assert changed.status_code == 200, changed.text
    for blob in second.blobs:
        registry.push_blob(name, blob.data)
    moved = registry.push_manifest(name, "v1", second.manifest)
    assert moved.status_code == 403 and error_codes(moved) == ["DENIED"]
    assert moved.json()["errors"][0]["detail"]["reason"] == "TAG_IMMUTABLE"
    assert registry.push_manifest(name, "v1", first.manifest).status_code == 201  # same content: fine
    assert registry.push_manifest(name, "v2", second.manifest).status_code == 201  # a new tag: fine
    token = registry.token(f"repository:{name}:pull,delete")
    deleted = registry.request("DELETE", f"/v2/{name}/manifests/v1", token=token)
    assert deleted.status_code == 403 and error_codes(deleted) == ["DENIED"]
    by_digest = registry.request("DELETE", f"/v2/{name}/manifests/{first.manifest.digest}", token=token)
    assert by_digest.status_code == 403
    current = registry.request("GET", f"/v2/{name}/manifests/v1", token=token)
    assert current.headers["Docker-Content-Digest"] == first.manifest.digest


def test_catalog_lists_only_visible_repositories_with_pagination(server, alice, bob):
    Registry(server, alice).push_image(f"{alice.username}/private-one", "v1", make_image())
    Registry(server, bob).push_image(f"{bob.username}/hidden", "v1", make_image())
    Registry(server, bob).push_image(f"{bob.username}/open", "v1", make_image())
    server.api("PATCH", f"repositories/{bob.username}/open/", auth=bob.auth, json={"visibility": "public"})
    registry = Registry(server, alice)
    token = registry.token("registry:catalog:*")
    names = registry.request("GET", "/v2/_catalog", token=token, params={"n": 1000}).json()["repositories"]
    assert f"{alice.username}/private-one" in names and f"{bob.username}/open" in names
    assert f"{bob.username}/hidden" not in names
    assert names == sorted(names)
    anonymous = Registry(server)
    public = anonymous.request("GET", "/v2/_catalog", token=anonymous.token("registry:catalog:*", auth=None))
    assert f"{bob.username}/open" in public.json()["repositories"]
    assert f"{alice.username}/private-one" not in public.json()["repositories"]
    first = registry.request("GET", "/v2/_catalog", token=token, params={"n": 1})
    assert len(first.json()["repositories"]) == 1
    assert first.headers["Link"].endswith('>; rel="next"') and "n=1" in first.headers["Link"]
    assert registry.request("GET", "/v2/_catalog", token=registry.token()).status_code == 401
    narrow = registry.request("GET", "/v2/_catalog", token=registry.token("registry:catalog:pull"))
    assert narrow.status_code == 401 and error_codes(narrow) == ["UNAUTHORIZED"]
    assert 'scope="registry:catalog:*",error="insufficient_scope"' in narrow.headers["WWW-Authenticate"]


def test_tags_list_paginates_with_link_header(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/many"
    image = make_image()
    registry.push_image(name, "a", image)
    for tag in ("e", "c", "d", "b"):
        assert registry.push_manifest(name, tag, image.manifest).status_code == 201
    token = registry.token(f"repository:{name}:pull")
    everything = registry.request("GET", f"/v2/{name}/tags/list", token=token).json()
    assert everything == {"name": name, "tags": ["a", "b", "c", "d", "e"]}
    seen, path = [], f"/v2/{name}/tags/list?n=2"
    while path:
        page = registry.request("GET", path, token=token)
        seen.append(page.json()["tags"])
        link = page.headers.get("Link")
        path = link[1:link.index(">")] if link else None
        if link:
            assert link == f'</v2/{name}/tags/list?n=2&last={seen[-1][-1]}>; rel="next"'
    assert seen == [["a", "b"], ["c", "d"], ["e"]]
    assert registry.request("GET", f"/v2/{name}/tags/list?n=0", token=token).json()["tags"] == []
    after = registry.request("GET", f"/v2/{name}/tags/list?last=c", token=token).json()["tags"]
    assert after == ["d", "e"]


def test_tags_list_answers_304_while_nothing_changed(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/etag"
    image = make_image()
    registry.push_image(name, "v1", image)
    token = registry.token(f"repository:{name}:pull,push")
    first = registry.request("GET", f"/v2/{name}/tags/list", token=token)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"')
    again = registry.request("GET", f"/v2/{name}/tags/list", token=token, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    other_page = registry.request("GET", f"/v2/{name}/tags/list?n=0", token=token, headers={"If-None-Match": etag})
    assert other_page.status_code == 200  # another page is another answer
    assert registry.push_manifest(name, "v2", image.manifest).status_code == 201
    changed = registry.request("GET", f"/v2/{name}/tags/list", token=token, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["tags"] == ["v1", "v2"]
    assert changed.headers["ETag"] != etag
    missing = registry.request("GET", f"/v2/{alice.username}/nothing-here/tags/list",
                               token=registry.token(f"repository:{alice.username}/nothing-here:pull"))
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_manifest_get_head_accept_and_delete(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/manifests"
    image = make_image()
    digest = registry.push_image(name, "v1", image)
    token = registry.token(f"repository:{name}:pull,push,delete")
    got = registry.request("GET", f"/v2/{name}/manifests/v1", token=token)
    assert got.content == image.manifest.data
    assert got.headers["Content-Type"] == image.manifest.media_type
    assert got.headers["Docker-Content-Digest"] == digest == image.manifest.digest
    head = registry.request("HEAD", f"/v2/{name}/manifests/v1", token=token)
    assert head.content == b"" and head.headers["Content-Length"] == str(len(image.manifest.data))
    docker_only = "application/vnd.docker.distribution.manifest.v2+json"
    refused = registry.request("GET", f"/v2/{name}/manifests/v1", token=token, headers={"Accept": docker_only})
    assert refused.status_code == 404 and error_codes(refused) == ["MANIFEST_UNKNOWN"]
    by_digest = registry.request("GET", f"/v2/{name}/manifests/{digest}", token=token,
                                 headers={"Accept": docker_only})
    assert by_digest.status_code == 200
    assert registry.request("DELETE", f"/v2/{name}/manifests/{digest}", token=token).status_code == 202
    for reference in ("v1", digest):
        gone = registry.request("GET", f"/v2/{name}/manifests/{reference}", token=token)
        assert gone.status_code == 404 and error_codes(gone) == ["MANIFEST_UNKNOWN"]
    assert registry.request("GET", f"/v2/{name}/tags/list", token=token).json()["tags"] == []
    config = registry.request("DELETE", f"/v2/{name}/blobs/{image.config.digest}", token=token)
    assert config.status_code == 202
    assert registry.request("HEAD", f"/v2/{name}/blobs/{image.config.digest}", token=token).status_code == 404


def test_push_to_organization_namespace_needs_create_permission(server, alice, bob):
    org = unique("org")
    created = server.api("POST", "organizations/", auth=alice.auth, json={"name": org})
    assert created.status_code == 201, created.text
    image = make_image()
    assert Registry(server, alice).push_image(f"{org}/app", "v1", image)
    outsider = Registry(server, bob)
    token = outsider.token(f"repository:{org}/other:pull,push")
    assert claims(token)["access"][0]["actions"] == []
    refused = outsider.request("POST", f"/v2/{org}/other/blobs/uploads/", token=token)
    assert refused.status_code == 403 and error_codes(refused) == ["DENIED"]
    ghost = f"{unique('ghost')}/x"
    nowhere = outsider.request("POST", f"/v2/{ghost}/blobs/uploads/", scope=f"repository:{ghost}:pull,push")
    assert nowhere.status_code == 403 and error_codes(nowhere) == ["DENIED"]


def test_unknown_endpoints_and_methods(server, alice):
    registry = Registry(server, alice)
    token = registry.token(f"repository:{alice.username}/x:pull,push")
    assert error_codes(registry.request("GET", "/v2/nothing/here/at/all", token=token)) in (["NOT_FOUND"],
                                                                                              ["NAME_INVALID"])
    method = registry.request("POST", f"/v2/{alice.username}/x/manifests/v1", token=token)
    assert method.status_code == 405 and error_codes(method) == ["UNSUPPORTED"]


def test_basic_auth_on_v2_and_personal_access_token(server, alice):
    token_response = server.api("POST", "tokens/", auth=alice.auth, json={"name": "ci"})
    secret = token_response.json()["token"]
    name = f"{alice.username}/basic"
    image = make_image()
    registry = Registry(server)
    for blob in image.blobs:
        response = registry.request("POST", f"/v2/{name}/blobs/uploads/", auth=(alice.username, secret),
                                    params={"digest": blob.digest}, data=blob.data)
        assert response.status_code == 201, response.text
    pushed = registry.request("PUT", f"/v2/{name}/manifests/v1", auth=(alice.username, secret),
                              data=image.manifest.data, headers={"Content-Type": image.manifest.media_type})
    assert pushed.status_code == 201, pushed.text
    header = "Basic " + base64.b64encode(f"{alice.username}:{secret}".encode()).decode()
    fetched = registry.request("GET", f"/v2/{name}/manifests/v1", headers={"Authorization": header})
    assert json.loads(fetched.content) == json.loads(image.manifest.data)


def test_empty_config_artifact_and_referrers(server, alice):
    registry = Registry(server, alice)
    name = f"{alice.username}/artifacts"
    subject = make_image()
    subject_digest = registry.push_image(name, "v1", subject)
    sbom = Blob("application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}')
    registry.push_blob(name, sbom.data)
    empty = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2}
    artifact = Blob("application/vnd.oci.image.manifest.v1+json", canonical({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json", "config": empty, "layers": [sbom.descriptor()],
        "subject": subject.manifest.descriptor(), "annotations": {"org.example": "sbom"}}))
    pushed = registry.push_manifest(name, artifact.digest, artifact)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["OCI-Subject"] == subject_digest
    token = registry.token(f"repository:{name}:pull")
    index = registry.request("GET", f"/v2/{name}/referrers/{subject_digest}", token=token)
    assert index.status_code == 200
    assert index.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert index.json()["manifests"] == [{
        "mediaType": artifact.media_type, "digest": artifact.digest, "size": len(artifact.data),
        "artifactType": "application/spdx+json", "annotations": {"org.example": "sbom"}}]
    filtered = registry.request("GET", f"/v2/{name}/referrers/{subject_digest}", token=token,
                                params={"artifactType": "application/vnd.example.signature"})
    assert filtered.json()["manifests"] == [] and filtered.headers["OCI-Filters-Applied"] == "artifactType"
    nothing = registry.request("GET", f"/v2/{name}/referrers/{sha256(b'unknown')}", token=token)
    assert nothing.status_code == 200 and nothing.json()["manifests"] == []
    assert registry.request("GET", f"/v2/{name}/blobs/{sha256(b'{}')}", token=token).content == b"{}"
