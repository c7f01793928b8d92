"""Where our gunicorn workers spend time on the bulk path: py-spy samples both web workers while
blobs are pushed (monolithic and 16 MiB chunks) and pulled, and the top functions (by samples,
own time and including callees, idle threads left out) go to bench/results/registry_profile.txt.

    .venv/bin/python bench/registry_profile.py [--blob-mib 128] [--repeats 4]
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry_bench as rb  # noqa: E402

IDLE = ("select", "poll", "wait (threading", "_wait_for_tstate_lock", "accept", "sleep", "get (queue", "epoll")


def summarize(raw: Path, title: str, top: int = 25) -> list[str]:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or any(marker in frames[-1] for marker in IDLE):
            continue
        count = int(count_text)
        samples += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            total[frame] += count
    lines = [f"== {title}: {samples} busy samples", "-- own time"]
    lines += [f"{100 * n / max(samples, 1):5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["-- including callees"]
    lines += [f"{100 * n / max(samples, 1):5.1f}%  {frame}" for frame, n in total.most_common(top)]
    return lines


def record(pids: list[int], output: Path, action: object) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    command = [spy, "record", "--format", "raw", "--rate", "200", "--nonblocking", "-o", str(output)]
    processes = [subprocess.Popen([*command[:-1], f"{output}.{pid}", "--pid", str(pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]
    time.sleep(1.5)
    action()  # type: ignore[operator]
    for process in processes:
        process.send_signal(2)
        process.wait(timeout=30)
    merged = "".join(Path(f"{output}.{pid}").read_text() for pid in pids if Path(f"{output}.{pid}").exists())
    output.write_text(merged)
    return processes[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blob-mib", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="registry-profile-"))
    server = rb.RunningServer.start(work / "ours", with_worker=False)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report: list[str] = [f"`bench/registry_profile.py {' '.join(sys.argv[1:])}`, {when}", ""]
    try:
        target = rb.our_target(server, mount_repositories=[])
        pids = rb.worker_pids(server.processes[0].pid)
        path = work / "blob.bin"
        digests: list[str] = []
        with requests.Session() as session:
            def push(chunk_mib: int) -> None:
                for _ in range(args.repeats):
                    digest = rb.random_file(path, args.blob_mib * rb.MIB)
                    digests.append(digest)
                    rb.push_blob(target, path, digest, session, chunk_mib=chunk_mib)

            for title, action in (("push, monolithic PUT", lambda: push(0)),
                                  (f"push, {rb.CHUNK_MIB} MiB PATCH chunks", lambda: push(rb.CHUNK_MIB)),
                                  ("pull (curl)", lambda: [rb.pull_curl(target, d) for d in digests * 2])):
                raw = work / "profile.raw"
                record(pids, raw, action)
                report += summarize(raw, title) + [""]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    (rb.RESULTS / "registry_profile.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
