"""Promotion latency against a real server and the real django-q2 worker cluster, compared with
copying the image by hand.

    .venv/bin/python bench/promotion_bench.py [--pushes 50] [--big-mib 512]

1. Starts the product as `make run` does (gunicorn + qcluster, SQLite or $DATABASE_URL) with
   dev/website and qa/website and a policy "tag name ends with stable → qa/website".
2. `--pushes` times: `skopeo copy` of a small image to dev/website:<n>-stable, then polls
   `HEAD /v2/qa/website/manifests/<n>-stable` every 10 ms until the promoted tag answers. The clock
   starts when skopeo exits (so it slightly *under*-counts); a second series starts it when our own
   manifest PUT returns (exact). p50/p95 of both, and the server-side split from the promotion
   record (tag pushed → evaluation started: the queue; started → finished: the promotion itself).
3. Builds a 512 MiB image (8 random gzip layers; an OCI layout cached in the temp dir),
   pushes it, then times `skopeo copy` of it from dev/website to qa/website — once as an unprivileged
   user with an empty blob-info cache (every byte goes through the client), once as root whose
   cache knows the blobs (skopeo mounts them across repositories) — and the promotion of the same
   512 MiB image (a `big-stable` tag).
Writes bench/results/promotion.json and promotion.md. Target: p50 ≤ 300 ms from push to visible.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.distribution.images import make_image, write_layout  # noqa: E402
from tests.servers import RunningServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CACHE = Path(tempfile.gettempdir()) / "registry_policies-promotion-bench"
MIB = 1024 * 1024
TARGET_P50_MS = 300.0
POLL_INTERVAL = 0.01
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"n": len(values_ms), "p50_ms": round(percentile(values_ms, 0.5), 1),
            "p95_ms": round(percentile(values_ms, 0.95), 1), "min_ms": round(min(values_ms), 1),
            "max_ms": round(max(values_ms), 1), "mean_ms": round(statistics.fmean(values_ms), 1)}


class Registry:
    """Bearer-token HTTP against /v2/ as the administrator (tokens are fetched once per scope)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.tokens: dict[str, str] = {}

    def _token(self, scope: str, *, fresh: bool = False) -> str:
        if fresh or scope not in self.tokens:
            response = self.session.get(f"{self.server.url}/auth/token", auth=self.server.admin_auth, timeout=30,
                                        params={"service": "registry_policies", "scope": scope})
            response.raise_for_status()
            self.tokens[scope] = response.json()["token"]
        return self.tokens[scope]

    def request(self, method: str, path: str, scope: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        for fresh in (False, True):
            headers["Authorization"] = f"Bearer {self._token(scope, fresh=fresh)}"
            response = self.session.request(method, f"{self.server.url}{path}", headers=headers, timeout=60,
                                            **kwargs)
            if response.status_code != 401:
                return response
        return response

    def has_tag(self, repository: str, tag: str) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/manifests/{tag}", f"repository:{repository}:pull",
                                headers={"Accept": OCI_MANIFEST})
        return response.status_code == 200

    def put_manifest(self, repository: str, tag: str, body: bytes) -> None:
        response = self.request("PUT", f"/v2/{repository}/manifests/{tag}", f"repository:{repository}:pull,push",
                                data=body, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text

    def wait_for(self, repository: str, tag: str, timeout: float = 30.0) -> float:
        """Poll until `repository:tag` answers; returns the monotonic time it first did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.has_tag(repository, tag):
                return time.perf_counter()
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(f"{repository}:{tag} did not appear within {timeout}s")


def skopeo(*args: str, as_nobody: Path | None = None) -> float:
    """Run skopeo; returns its wall time. `as_nobody`: run as uid 65534 with that HOME (an empty
    blob-info cache, so nothing is mounted across repositories)."""
    command = ["skopeo", *args]
    env = dict(os.environ)
    if as_nobody is not None:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", f"HOME={as_nobody}",
                   f"XDG_RUNTIME_DIR={as_nobody}", *command]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}:\n{result.stderr}")
    return time.perf_counter() - started


def big_layout(total_mib: int, layers: int = 8) -> tuple[Path, str]:
    """An OCI layout of `layers` gzip layers (level 1) of random bytes, `total_mib` in all (built
    once, streamed to disk, hashed while written; gzip because skopeo would compress uncompressed
    layers on push and so change the digests). Returns the layout and its manifest digest."""
    root = CACHE / f"big-{total_mib}"
    done = root / "manifest-digest"
    if done.exists():
        return root, done.read_text()
    shutil.rmtree(root, ignore_errors=True)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descriptors, diff_ids = [], []
    for index in range(layers):
        partial = blobs / "partial"
        size = total_mib * MIB // layers
        with open(partial, "wb") as handle:
            compressed = _Hashing(handle)
            with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0) as gz:  # type: ignore[call-overload]
                uncompressed = _Hashing(gz)
                with tarfile.open(fileobj=uncompressed, mode="w|", bufsize=MIB) as archive:  # type: ignore[call-overload]
                    info = tarfile.TarInfo(f"layer-{index}.bin")
                    info.size = size
                    archive.addfile(info, _Random(size))
        digest = "sha256:" + compressed.hasher.hexdigest()
        partial.rename(blobs / digest.split(":")[1])
        descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": digest,
                            "size": (blobs / digest.split(":")[1]).stat().st_size})
        diff_ids.append("sha256:" + uncompressed.hasher.hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": _put(blobs, config), "size": len(config)},
                           "layers": descriptors}).encode()
    manifest_digest = _put(blobs, manifest)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "big"}}]}))
    done.write_text(manifest_digest)
    return root, manifest_digest


class _Hashing:
    """A write-only file that hashes what goes through it."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.hasher = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return int(self.handle.write(data))


class _Random:
    """A read-only file of `remaining` random bytes."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n < 0 else min(n, self.remaining)
        self.remaining -= n
        return os.urandom(n)


def _put(blobs: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.split(":")[1]).write_bytes(data)
    return digest


def set_up(server: RunningServer) -> None:
    def ok(response: requests.Response) -> None:
        assert response.status_code in (200, 201), f"{response.url}: {response.text}"

    for org in ("dev", "qa"):
        ok(server.api("POST", "organizations/", json={"name": org}))
        ok(server.api("POST", "repositories/", json={"namespace": org, "name": "website"}))
    ok(server.api("POST", "repositories/", json={"namespace": "qa", "name": "website-mount"}))
    ok(server.api("POST", "repositories/dev/website/promotion-policies/", json={
        "rules": [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}],
        "target_repository": "qa/website", "tag_template": "", "enabled": True}))


def server_split(server: RunningServer, tags: list[str]) -> dict[str, Any]:
    """From the records: tag pushed (tag history of the source) → evaluation started (promotion
    created) → promotion finished, in ms."""
    code = (
        "import json\n"
        "from registry_policies.policies.models import Promotion\n"
        "from registry_policies.repositories.models import TagHistory\n"
        f"tags = {tags!r}\n"
        "pushed = {h.tag: h.created_at for h in TagHistory.objects.filter(repository__name='website', "
        "repository__namespace__name='dev', tag__in=tags)}\n"
        "rows = [((p.created_at - pushed[p.source_tag]).total_seconds() * 1000, "
        "(p.finished_at - p.created_at).total_seconds() * 1000) "
        "for p in Promotion.objects.filter(source_tag__in=tags, status='succeeded') if p.source_tag in pushed]\n"
        "print(json.dumps(rows))\n")
    output = server.manage("shell", "--no-imports", "-c", code).stdout.strip().splitlines()[-1]
    rows = json.loads(output)
    return {"queue": summary([r[0] for r in rows]), "promote": summary([r[1] for r in rows])}


def run(pushes: int, big_mib: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="promotion-bench-"))
    server = RunningServer.start(workdir / "server", with_worker=True)
    fresh_home: Path | None = None
    try:
        set_up(server)
        registry = Registry(server)
        creds = f"{server.admin_username}:{server.admin_password}"
        host = server.host_port
        image = make_image(layers=1, layer_size=4096)
        layout = write_layout(workdir / "small", tag="small", image=image)
        # Warm up: the first push creates rows and loads code in both gunicorn workers and the cluster.
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:small",
               f"docker://{host}/dev/website:warmup-stable")
        registry.wait_for("qa/website", "warmup-stable")

        skopeo_series, push_times, tags = [], [], []
        for n in range(1, pushes + 1):
            tag = f"{n}-stable"
            push_times.append(skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds,
                                     f"oci:{layout}:small", f"docker://{host}/dev/website:{tag}"))
            ended = time.perf_counter()
            skopeo_series.append((registry.wait_for("qa/website", tag) - ended) * 1000)
            tags.append(tag)

        put_series = []
        for n in range(1, pushes + 1):
            tag = f"{n}-put-stable"
            registry.put_manifest("dev/website", tag, image.manifest.data)
            ended = time.perf_counter()
            put_series.append((registry.wait_for("qa/website", tag) - ended) * 1000)
            tags.append(tag)
        split = server_split(server, tags)

        # The 512 MiB image: push it, copy it by hand, and promote it.
        big, big_digest = big_layout(big_mib)
        push_big = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{big}:big",
                          f"docker://{host}/dev/website:big")
        fresh_home = Path(tempfile.mkdtemp(prefix="promotion-bench-client-"))
        os.chmod(fresh_home, 0o777)  # skopeo runs as nobody there, with its own empty cache
        copy_bytes = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds,
                            "--dest-creds", creds, f"docker://{host}/dev/website:big",
                            f"docker://{host}/qa/website:big-copy", as_nobody=fresh_home)
        copy_mount = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds,
                            "--dest-creds", creds, f"docker://{host}/dev/website:big",
                            f"docker://{host}/qa/website-mount:big")
        manifest = (big / "blobs" / "sha256" / big_digest.split(":")[1]).read_bytes()
        started = time.perf_counter()
        registry.put_manifest("dev/website", "big-stable", manifest)
        pushed = time.perf_counter()
        big_visible = registry.wait_for("qa/website", "big-stable")
        big_promotion_ms = (big_visible - pushed) * 1000
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if fresh_home is not None:
            shutil.rmtree(fresh_home, ignore_errors=True)

    skopeo_summary, put_summary = summary(skopeo_series), summary(put_series)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "database": "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres")
                    else "sqlite"},
        "settings": {"q_cluster_poll_s": float(os.environ.get("Q_POLL", "0.05")),
                     "q_workers": int(os.environ.get("Q_WORKERS", "2")),
                     "client_poll_interval_ms": POLL_INTERVAL * 1000},
        "target_p50_ms": TARGET_P50_MS,
        "promotion_after_skopeo_push": skopeo_summary,
        "promotion_after_manifest_put": put_summary,
        "server_side": split,
        "small_skopeo_push_s": summary([t * 1000 for t in push_times]),
        "big_image": {
            "mib": big_mib, "layers": 8, "push_s": round(push_big, 2),
            "skopeo_copy_bytes_s": round(copy_bytes, 2),
            "skopeo_copy_with_mount_s": round(copy_mount, 2),
            "promotion_ms": round(big_promotion_ms, 1),
            "put_manifest_ms": round((pushed - started) * 1000, 1),
        },
        "ratio_copy_bytes_to_promotion_p50": round(copy_bytes * 1000 / put_summary["p50_ms"], 1),
        "ratio_copy_bytes_to_big_promotion": round(copy_bytes * 1000 / big_promotion_ms, 1),
        "meets_target": skopeo_summary["p50_ms"] <= TARGET_P50_MS and put_summary["p50_ms"] <= TARGET_P50_MS,
    }


def markdown(report: dict[str, Any]) -> str:
    skopeo_series, put_series = report["promotion_after_skopeo_push"], report["promotion_after_manifest_put"]
    queue, promote = report["server_side"]["queue"], report["server_side"]["promote"]
    big = report["big_image"]
    poll_ms = report["settings"]["q_cluster_poll_s"] * 1000
    dominated = queue["p50_ms"] >= 0.5 * put_series["p50_ms"]
    verdict = "meets" if report["meets_target"] else "misses"
    lines = [
        "# Promotion latency",
        "",
        f"{report['date']}, {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, "
        f"{report['machine']['database']}, 1-min load average {report['machine']['load_average_before_after'][0]} "
        f"before / {report['machine']['load_average_before_after'][1]} after (other work shares the machine); "
        "gunicorn (as `make run`) + django-q2 cluster "
        f"({report['settings']['q_workers']} workers, ORM broker, poll {report['settings']['q_cluster_poll_s']} s). "
        "Produced by `bench/promotion_bench.py`.",
        "",
        f"From the end of a tag push to dev/website to the promoted tag answering in qa/website "
        f"(`HEAD /v2/qa/website/manifests/<tag>` polled every {report['settings']['client_poll_interval_ms']:g} ms), "
        f"over {put_series['n']} pushes each. Target p50 ≤ {report['target_p50_ms']:g} ms: **{verdict}**.",
        "",
        "| clock starts when | p50 | p95 | min | max |",
        "|---|---|---|---|---|",
        f"| `skopeo copy` exits (small image) | {skopeo_series['p50_ms']} ms | {skopeo_series['p95_ms']} ms | "
        f"{skopeo_series['min_ms']} ms | {skopeo_series['max_ms']} ms |",
        f"| our manifest `PUT` returns (exact) | {put_series['p50_ms']} ms | {put_series['p95_ms']} ms | "
        f"{put_series['min_ms']} ms | {put_series['max_ms']} ms |",
        "",
        "Where the time goes, from the server's records (source tag history row → promotion row created → "
        "promotion finished):",
        "",
        "| part | p50 | p95 |",
        "|---|---|---|",
        f"| tag pushed → promotion recorded (queue wait, task start, evaluating the rules) | {queue['p50_ms']} ms "
        f"| {queue['p95_ms']} ms |",
        f"| promotion recorded → finished (target tag, links, history written) | {promote['p50_ms']} ms "
        f"| {promote['p95_ms']} ms |",
        "",
        (f"The worker's poll interval dominates: django-q2's ORM broker is polled every {poll_ms:g} ms, so a task "
         f"waits {poll_ms / 2:g} ms on average (up to {poll_ms:g} ms) before a worker sees it, and on a busy "
         f"2-core machine the worker processes also wait for CPU; writing the promotion takes "
         f"{promote['p50_ms']} ms. A lower `Q_CLUSTER['poll']` trades idle database queries for latency."
         if dominated else
         f"The promotion itself takes {promote['p50_ms']} ms; the queue (poll {poll_ms:g} ms) adds "
         f"{queue['p50_ms']} ms."),
        "",
        f"## Against copying a {big['mib']} MiB image by hand",
        "",
        "| operation | time |",
        "|---|---|",
        f"| `skopeo copy` dev/website → qa/website, every byte through the client (empty blob-info cache) "
        f"| {big['skopeo_copy_bytes_s']} s |",
        f"| `skopeo copy` dev/website → qa/website-mount, client cache knows the blobs (cross-repository mount) "
        f"| {big['skopeo_copy_with_mount_s']} s |",
        f"| promotion of the same {big['mib']} MiB image (`big-stable`, PUT → visible in qa/website) "
        f"| {big['promotion_ms']} ms |",
        f"| (initial `skopeo copy` of it from an OCI layout into dev/website) | {big['push_s']} s |",
        "",
        f"Copying the bytes takes **{report['ratio_copy_bytes_to_big_promotion']}×** as long as promoting the same "
        f"image ({report['ratio_copy_bytes_to_promotion_p50']}× the p50 promotion of the small image): a promotion "
        "writes a few rows (tag, links, history) and copies no blob, whatever the image size.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--big-mib", type=int, default=512)
    args = parser.parse_args()
    for tool in ("skopeo", "setpriv"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install {'skopeo' if tool == 'skopeo' else 'util-linux'})")
    started = time.monotonic()
    load_before = os.getloadavg()
    report = run(args.pushes, args.big_mib)
    report["machine"]["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    report["runtime_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "promotion.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "promotion.md").write_text(markdown(report))
    print(markdown(report))
    print(f"runtime {report['runtime_s']} s")


if __name__ == "__main__":
    main()
