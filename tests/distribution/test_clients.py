"""Real clients against the real server: skopeo (OCI, Docker v2s2, multi-arch, zstd, delete,
list-tags), podman (login with password and token, push, pull by tag and digest) and oras
(an artifact with a subject, read back through the referrers API)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.distribution.conftest import Account, Registry, create_token, new_account
from tests.distribution.images import LAYER_ZSTD, make_image, sha256, write_layout
from tests.tools import require_tool

pytestmark = pytest.mark.e2e


def run(*command: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def skopeo() -> str:
    return require_tool("skopeo")


@pytest.fixture
def owner(server) -> Account:
    return new_account(server, "sk")


def dest(account: Account) -> list[str]:
    return ["--dest-tls-verify=false", "--dest-creds", account.creds]


def src(account: Account) -> list[str]:
    return ["--src-tls-verify=false", "--src-creds", account.creds]


def test_skopeo_copies_oci_image_in_and_out_quickly(server, skopeo, owner, tmp_path):
    image = make_image(layers=2, layer_size=200_000)
    layout = write_layout(tmp_path / "in", tag="v1", image=image)
    ref = f"docker://{server.host_port}/{owner.username}/oci:v1"
    started = time.monotonic()
    run(skopeo, "copy", *dest(owner), f"oci:{layout}:v1", ref)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"skopeo copy took {elapsed:.1f}s: a slow TLS-probe fallback?"
    tag_url = f"repositories/{owner.username}/oci/tags/v1/"
    assert server.api("GET", tag_url, auth=owner.auth).json()["last_pulled_at"] is None  # a push is no pull
    raw = run(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", owner.creds, ref)
    assert sha256(raw.encode()) == image.manifest.digest  # stored verbatim
    inspected = json.loads(run(skopeo, "inspect", "--tls-verify=false", "--creds", owner.creds, ref))
    assert inspected["Digest"] == image.manifest.digest and inspected["Architecture"] == "amd64"
    run(skopeo, "copy", *src(owner), ref, f"oci:{tmp_path / 'out'}:v1")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.manifest.digest
    for blob in image.layers:
        assert (tmp_path / "out" / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == blob.data
    assert server.api("GET", tag_url, auth=owner.auth).json()["last_pulled_at"]  # the pulls were recorded


def test_skopeo_docker_v2s2_round_trip_and_copy_between_repositories(server, skopeo, owner, tmp_path):
    layout = write_layout(tmp_path / "in", tag="v1", image=make_image())
    ref = f"docker://{server.host_port}/{owner.username}/docker:v1"
    run(skopeo, "copy", "--format", "v2s2", *dest(owner), f"oci:{layout}:v1", ref)
    registry = Registry(server, owner)
    name = f"{owner.username}/docker"
    got = registry.request("GET", f"/v2/{name}/manifests/v1", scope=f"repository:{name}:pull",
                           headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert got.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert got.json()["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    copy = f"docker://{server.host_port}/{owner.username}/docker-copy:v1"
    run(skopeo, "copy", *src(owner), *dest(owner), ref, copy)
    copied = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", owner.creds, copy))
    assert copied == got.json()
    run(skopeo, "copy", *src(owner), ref, f"dir:{tmp_path / 'out'}")
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == got.json()


def test_skopeo_copies_multi_arch_index_with_all(server, skopeo, owner, tmp_path):
    images = [make_image(architecture="amd64"), make_image(architecture="arm64")]
    layout = write_layout(tmp_path / "in", tag="multi", images=images)
    ref = f"docker://{server.host_port}/{owner.username}/multi:multi"
    run(skopeo, "copy", "--all", *dest(owner), f"oci:{layout}:multi", ref)
    index = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", owner.creds, ref))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert {m["digest"] for m in index["manifests"]} == {i.manifest.digest for i in images}
    arm = json.loads(run(skopeo, "inspect", "--override-arch", "arm64", "--tls-verify=false",
                         "--creds", owner.creds, ref))
    assert arm["Architecture"] == "arm64"
    assert arm["Layers"] == [layer.digest for layer in images[1].layers]
    run(skopeo, "copy", "--all", *src(owner), ref, f"oci:{tmp_path / 'out'}:multi")
    for image in images:
        assert (tmp_path / "out" / "blobs" / "sha256" / image.manifest.digest.split(":")[1]).exists()


def test_skopeo_zstd_layers(server, skopeo, owner, tmp_path):
    image = make_image(compression="zstd")
    layout = write_layout(tmp_path / "in", tag="z", image=image)
    ref = f"docker://{server.host_port}/{owner.username}/zstd:z"
    run(skopeo, "copy", *dest(owner), f"oci:{layout}:z", ref)
    manifest = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", owner.creds, ref))
    assert manifest["layers"][0]["mediaType"] == LAYER_ZSTD
    recompressed = f"docker://{server.host_port}/{owner.username}/zstd:from-gzip"
    gzip_layout = write_layout(tmp_path / "gz", tag="g", image=make_image())
    run(skopeo, "copy", "--dest-compress", "--dest-compress-format", "zstd", *dest(owner),
        f"oci:{gzip_layout}:g", recompressed)
    converted = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", owner.creds,
                               recompressed))
    assert converted["layers"][0]["mediaType"] == LAYER_ZSTD
    run(skopeo, "copy", *src(owner), recompressed, f"oci:{tmp_path / 'out'}:z")


def test_skopeo_list_tags_and_delete(server, skopeo, owner, tmp_path):
    layout = write_layout(tmp_path / "in", tag="v1", image=make_image())
    base = f"{server.host_port}/{owner.username}/tags"
    for tag in ("v1", "v2", "latest"):
        run(skopeo, "copy", *dest(owner), f"oci:{layout}:v1", f"docker://{base}:{tag}")
    other = write_layout(tmp_path / "other", tag="v1", image=make_image())
    run(skopeo, "copy", *dest(owner), f"oci:{other}:v1", f"docker://{base}:other")
    listed = json.loads(run(skopeo, "list-tags", "--tls-verify=false", "--creds", owner.creds, f"docker://{base}"))
    assert sorted(listed["Tags"]) == ["latest", "other", "v1", "v2"]
    run(skopeo, "delete", "--tls-verify=false", "--creds", owner.creds, f"docker://{base}:other")
    listed = json.loads(run(skopeo, "list-tags", "--tls-verify=false", "--creds", owner.creds, f"docker://{base}"))
    assert sorted(listed["Tags"]) == ["latest", "v1", "v2"]
    gone = subprocess.run([skopeo, "inspect", "--tls-verify=false", "--creds", owner.creds, f"docker://{base}:other"],
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr.lower()


# -- podman ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> list[str]:
    binary = require_tool("podman")
    root = tmp_path_factory.mktemp("podman")
    return [binary, "--storage-driver", "vfs", "--root", str(root / "root"), "--runroot", str(root / "run"),
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]


def podman_env(tmp_path: Path) -> dict[str, str]:
    return {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"), "XDG_RUNTIME_DIR": str(tmp_path),
            "HOME": str(tmp_path)}


def test_podman_login_with_password_and_token_then_pull_and_push(server, skopeo, podman, owner, tmp_path):
    env = podman_env(tmp_path)
    image = make_image(layer_size=20_000)
    layout = write_layout(tmp_path / "in", tag="v1", image=image)
    repo = f"{server.host_port}/{owner.username}/pod"
    run(skopeo, "copy", *dest(owner), f"oci:{layout}:v1", f"docker://{repo}:v1")

    run(*podman, "login", "--tls-verify=false", "-u", owner.username, "-p", owner.password, server.host_port,
        env=env)
    wrong = subprocess.run([*podman, "login", "--tls-verify=false", "-u", owner.username, "-p", "wrong",
                            server.host_port], capture_output=True, text=True, env={**os.environ, **env},
                           timeout=60)
    assert wrong.returncode != 0
    run(*podman, "pull", "--tls-verify=false", f"{repo}:v1", env=env)
    run(*podman, "pull", "--tls-verify=false", f"{repo}@{image.manifest.digest}", env=env)

    run(*podman, "logout", server.host_port, env=env)
    secret = create_token(server, owner, "podman")
    run(*podman, "login", "--tls-verify=false", "-u", owner.username, "-p", secret, server.host_port, env=env)
    run(*podman, "tag", f"{repo}:v1", f"{repo}-pushed:v2", env=env)
    run(*podman, "push", "--tls-verify=false", f"{repo}-pushed:v2", env=env)
    pushed = json.loads(run(skopeo, "inspect", "--tls-verify=false", "--creds", owner.creds,
                            f"docker://{repo}-pushed:v2"))
    assert pushed["Layers"]
    digest = pushed["Digest"]
    run(*podman, "rmi", "-a", "-f", env=env)
    run(*podman, "pull", "--tls-verify=false", f"{repo}-pushed@{digest}", env=env)
    run(*podman, "pull", "--tls-verify=false", f"{repo}-pushed:v2", env=env)


# -- oras --------------------------------------------------------------------------------------------

def test_oras_pushes_an_artifact_with_a_subject_found_through_referrers(server, skopeo, owner, tmp_path):
    import oras.oci
    import oras.provider

    image = make_image()
    layout = write_layout(tmp_path / "in", tag="v1", image=image)
    name = f"{owner.username}/signed"
    run(skopeo, "copy", *dest(owner), f"oci:{layout}:v1", f"docker://{server.host_port}/{name}:v1")

    client = oras.provider.Registry(server.host_port, insecure=True)
    client.auth.set_basic_auth(owner.username, owner.password)
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": "demo"}))
    subject = oras.oci.Subject(mediaType=image.manifest.media_type, digest=image.manifest.digest,
                               size=len(image.manifest.data))
    response = client.push(target=f"{server.host_port}/{name}:sbom", files=[f"{sbom}:application/spdx+json"],
                           subject=subject, disable_path_validation=True, quiet=True,
                           manifest_annotations={"org.opencontainers.image.title": "sbom"})
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == image.manifest.digest

    referrers = client.do_request(f"http://{server.host_port}/v2/{name}/referrers/{image.manifest.digest}")
    assert referrers.status_code == 200
    manifests = referrers.json()["manifests"]
    assert len(manifests) == 1 and manifests[0]["digest"] == response.headers["Docker-Content-Digest"]
    pulled = client.pull(target=f"{server.host_port}/{name}@{manifests[0]['digest']}", outdir=str(tmp_path / "out"))
    assert json.loads(Path(pulled[0]).read_text())["name"] == "demo"
