"""Push mirroring of a 512 MiB four-layer image to CNCF distribution, cold and warm, against
`skopeo copy` of the same image in the same run.

    .venv/bin/python bench/mirror_bench.py [--layers 4] [--layer-mib 128]

1. Sets up the product in-process (its own data dir and SQLite database, tasks inline); the remote
   is CNCF distribution (`docker-registry`, plain http on loopback, no auth).
2. Builds an image of `--layers` random (incompressible) layers of `--layer-mib` MiB directly in
   the blob store (streamed, never in memory) and tags it in a local repository; an OCI layout of
   the same blobs (hard links) is what skopeo copies from.
3. Times `--rounds` times, alternating, each into a distribution of its own with empty storage
   (nothing to skip, mount or deduplicate; no client cache that knows the blobs): `skopeo copy`
   layout → distribution (cold, then warm: the same copy again) and the push mirror run (cold: every
   blob uploaded). Medians are reported. Then the warm mirror runs: "run on existing tags" again
   (the remote tag is already there), and with a new remote tag (every blob HEADed and skipped).
4. Samples the process's RSS every 20 ms during the mirror runs (memory must stay flat: blobs are
   streamed in chunks).
Writes bench/results/mirror.json and mirror.md. Targets: cold ≤ skopeo's cold; warm ≤ 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
WARM_TARGET_S = 0.5


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Peak RSS of this process while the block runs (sampled every `interval` seconds)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mib())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.before = rss_mib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = rss_mib()

    @property
    def peak(self) -> float:
        return max([self.before, self.after, *self.samples])


def setup_django(data_dir: Path) -> None:
    (data_dir / "static").mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "REGISTRY_DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}",
        "Q_SYNC": "true", "DJANGO_SECRET_KEY": "mirror-bench-secret-key-0123456789abcdef",
        "DJANGO_SETTINGS_MODULE": "registry_policies.settings", "LOG_LEVEL": "WARNING",
    })
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def random_gzip_layer(path: Path, size: int) -> tuple[str, int]:
    """A valid gzip stream (stored blocks: random data does not compress) of `size` random bytes, written
    in chunks; (digest, compressed size). Valid gzip, so skopeo copies it as it is (it would compress a
    layer it does not recognise as compressed, which is not what is measured here)."""
    import gzip

    from registry_policies.storage.base import digest_file

    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=0, mtime=0) as sink:
        remaining = size
        while remaining:
            chunk = os.urandom(min(MIB, remaining))
            sink.write(chunk)
            remaining -= len(chunk)
    return digest_file(path)


def build_image(layers: int, layer_mib: int, layout: Path) -> tuple[Any, Any, str]:
    """The owner, the local repository (tag `big`) and the manifest digest; the OCI layout at `layout`."""
    from accounts import services as accounts
    from registry_policies.repositories import content
    from registry_policies.repositories.services import create_repository
    from registry_policies.storage import get_blob_store
    owner = accounts.create_user(username="bencher", password="bench-password-123!")
    repository = create_repository(namespace=owner.namespace, name="big", actor=owner)
    repository.scan_on_push = False  # the bench measures mirroring, not scanning
    repository.save(update_fields=["scan_on_push"])
    store = get_blob_store()
    (layout / "blobs" / "sha256").mkdir(parents=True)

    def add(path: Path, digest: str, size: int) -> dict[str, Any]:
        content.link_blob(repository=repository, digest=digest, size=size)
        store.ingest(path, digest)
        os.link(store.path(digest), layout / "blobs" / "sha256" / digest.split(":")[1])  # type: ignore[attr-defined]
        return {"digest": digest, "size": size}

    descriptors = []
    for index in range(layers):
        path = store.staging_dir / f"bench-layer-{index}"
        digest, size = random_gzip_layer(path, layer_mib * MIB)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **add(path, digest, size)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {}}).encode()
    config_path = store.staging_dir / "bench-config"
    config_path.write_bytes(config)
    from tests.remotes import sha256_digest

    config_descriptor = {"mediaType": "application/vnd.oci.image.config.v1+json",
                         **add(config_path, sha256_digest(config), len(config))}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_descriptor, "layers": descriptors}).encode()
    digest = sha256_digest(manifest)
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(manifest)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "big"}}]}))
    content.push_manifest(repository=repository, reference="big", body=manifest,
                          media_type="application/vnd.oci.image.manifest.v1+json", actor=owner)
    return owner, repository, digest


def timed_skopeo(layout: Path, destination: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:big", destination], check=True,
                   capture_output=True, env=env)
    return time.perf_counter() - started


def mirror_run(policy: Any, owner: Any) -> tuple[Any, float, RssSampler]:
    from registry_policies.mirroring import services
    from registry_policies.mirroring.models import MirrorRun

    with RssSampler() as sampler:
        started = time.perf_counter()
        queued = services.run_push_policy_on_existing_tags(actor=owner, policy=policy)
        elapsed = time.perf_counter() - started
    run = MirrorRun.objects.get(pk=queued[0].pk)
    if run.status != "succeeded":
        raise SystemExit(f"mirror run failed: {run.error}")
    return run, elapsed, sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="Cold copies of each kind (the median is reported).")
    parser.add_argument("--monolithic-mib", type=int, default=None,
                        help="Upload blobs up to this size in one PUT (default: the client's, 32 MiB).")
    args = parser.parse_args()
    if not shutil.which("skopeo") or not shutil.which("docker-registry"):
        raise SystemExit("needs skopeo and docker-registry (apt-get install skopeo docker-registry)")
    work = Path(tempfile.mkdtemp(prefix="rp-mirror-bench-"))
    registry = None
    try:
        setup_django(work / "data")
        if args.monolithic_mib is not None:
            from django.conf import settings

            settings.MIRRORING_CLIENT_OPTIONS = {"monolithic_limit": args.monolithic_mib * MIB}
        from registry_policies.integrations import services as integrations
        from registry_policies.mirroring import services
        from tests.remotes import start_distribution

        owner, repository, digest = build_image(args.layers, args.layer_mib, work / "layout")
        total = args.layers * args.layer_mib * MIB
        skopeo_colds, skopeo_warms, colds = [], [], []
        for round_ in range(args.rounds):
            # Each cold copy goes to a distribution of its own with empty storage: nothing to skip,
            # mount or deduplicate, and no client cache that knows the blobs (a new host:port).
            registry = start_distribution(work / f"distribution-skopeo-{round_}")
            host = registry.url.split("://", 1)[1]
            skopeo_env = {**os.environ, "HOME": str(work / f"skopeo-home-{round_}")}
            skopeo_colds.append(timed_skopeo(work / "layout", f"docker://{host}/bench/skopeo:big", skopeo_env))
            skopeo_warms.append(timed_skopeo(work / "layout", f"docker://{host}/bench/skopeo:big", skopeo_env))
            registry.stop()
            shutil.rmtree(registry.directory, ignore_errors=True)
            registry = start_distribution(work / f"distribution-mirror-{round_}")
            integration = integrations.create_integration(namespace=owner.namespace, name=f"distribution-{round_}",
                                                          url=registry.url, actor=owner)
            policy = services.create_push_policy(actor=owner, source=repository, integration=integration,
                                                 remote_repository="bench/mirror", rules=[])
            colds.append(mirror_run(policy, owner))
            if round_ < args.rounds - 1:
                services.delete_push_policy(actor=owner, policy=policy)
                registry.stop()
                shutil.rmtree(registry.directory, ignore_errors=True)
        skopeo_cold, skopeo_warm = statistics.median(skopeo_colds), statistics.median(skopeo_warms)
        cold, cold_s, cold_rss = sorted(colds, key=lambda item: item[1])[len(colds) // 2]
        warm, warm_s, warm_rss = mirror_run(policy, owner)
        policy = services.update_push_policy(actor=owner, policy=policy, tag_template="%n-%H%M%S%f")
        fresh, fresh_s, _ = mirror_run(policy, owner)
        results = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "image": {"layers": args.layers, "layer_mib": args.layer_mib,
                                                           "bytes": total, "digest": digest},
            "rounds": args.rounds,
            "skopeo": {"cold_s": round(skopeo_cold, 3), "warm_s": round(skopeo_warm, 3),
                       "cold_all_s": [round(v, 3) for v in skopeo_colds]},
            "mirror": {
                "cold": {"s": round(cold_s, 3), "all_s": [round(item[1], 3) for item in colds],
                         "run_ms": cold.duration_ms, "bytes": cold.bytes_transferred,
                         "blobs_sent": cold.blobs_sent, "MiB_per_s": round(total / MIB / cold_s, 1)},
                "warm": {"s": round(warm_s, 3), "run_ms": warm.duration_ms, "bytes": warm.bytes_transferred,
                         "blobs_sent": warm.blobs_sent, "blobs_skipped": warm.blobs_skipped},
                "warm_new_tag": {"s": round(fresh_s, 3), "run_ms": fresh.duration_ms,
                                 "bytes": fresh.bytes_transferred, "blobs_skipped": fresh.blobs_skipped},
            },
            "rss_mib": {"before": round(cold_rss.before, 1), "peak_during_cold": round(cold_rss.peak, 1),
                        "after": round(cold_rss.after, 1), "peak_during_warm": round(warm_rss.peak, 1),
                        "max_rss_of_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
            "targets": {"cold_le_skopeo": cold_s <= skopeo_cold, "warm_le_0_5_s": warm_s <= WARM_TARGET_S},
        }
    finally:
        if registry is not None:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mirror.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "mirror.md").write_text(report(results))
    print(report(results))


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def report(r: dict[str, Any]) -> str:
    m, s, rss = r["mirror"], r["skopeo"], r["rss_mib"]
    cold, warm, fresh = m["cold"], m["warm"], m["warm_new_tag"]
    size = f"{r['image']['bytes'] // MIB} MiB ({r['image']['layers']} layers of {r['image']['layer_mib']} MiB)"
    verdict = {True: "meets", False: "misses"}
    rows = [
        (f"`skopeo copy` OCI layout → distribution, cold (empty blob-info cache; median of {r['rounds']}: "
         f"{_seconds(s['cold_all_s'])} s)", f"{s['cold_s']:.2f} s", "every blob"),
        ("`skopeo copy` again, warm", f"{s['warm_s']:.2f} s", "nothing"),
        (f"push mirror run, cold (median of {r['rounds']}: {_seconds(cold['all_s'])} s)",
         f"{cold['s']:.2f} s ({cold['MiB_per_s']} MiB/s)", f"{cold['blobs_sent']} blobs, {cold['bytes'] // MIB} MiB"),
        ("push mirror run, warm (remote tag already there)", f"{warm['s'] * 1000:.0f} ms",
         f"{warm['blobs_sent']} blobs, {warm['bytes']} bytes"),
        ("push mirror run, warm with a new remote tag (every blob HEADed)", f"{fresh['s'] * 1000:.0f} ms",
         f"{fresh['bytes']} bytes, {fresh['blobs_skipped']} blobs skipped"),
    ]
    table = "\n".join(f"| {what} | {time_} | {sent} |" for what, time_, sent in rows)
    return f"""# Push mirroring

{r['when']}, {r['cpus']} CPUs, Python {r['python']}; CNCF distribution (`docker-registry`) on loopback over
plain http; image of {size}, random (incompressible) gzip layers. Produced by `bench/mirror_bench.py`.
Times are wall clock of the whole operation (for the mirror: evaluating the policy, recording the run,
connecting, transferring).

| operation | time | sent |
|---|---|---|
{table}

Targets: cold ≤ skopeo's cold copy: **{verdict[r['targets']['cold_le_skopeo']]}**
({cold['s']:.2f} s vs {s['cold_s']:.2f} s); warm ≤ 0.5 s: **{verdict[r['targets']['warm_le_0_5_s']]}**
({warm['s'] * 1000:.0f} ms).

Memory (RSS of the process doing the runs, sampled every 20 ms): {rss['before']} MiB before the median
cold run, peak {rss['peak_during_cold']} MiB during it, {rss['after']} MiB after; peak
{rss['peak_during_warm']} MiB during the warm run; the process's max RSS overall {rss['max_rss_of_process']} MiB.
Blobs are streamed from the store in fixed-size chunks (up to three at once, each on its own connection),
so memory stays flat whatever the image size.
"""


if __name__ == "__main__":
    main()
