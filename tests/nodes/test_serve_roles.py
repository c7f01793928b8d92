"""`manage.py serve` roles and supervision: one role per process, and no orphans when the
supervisor dies (SIGKILL) or is asked to stop (SIGTERM)."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from tests.cluster import MANAGE, Node, children_of, command_lines, processes_in_group, wait_for
from tests.servers import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def node_env(tmp_path):  # type: ignore[no-untyped-def]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "REGISTRY_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'registry.sqlite3'}",
        "Q_SYNC": "false",
        "Q_WORKERS": "2",
        "WEB_WORKERS": "1",
        "DJANGO_SECRET_KEY": secrets.token_hex(32),
    }
    env.pop("REDIS_URL", None)
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, capture_output=True)
    return env


def _cluster_group(node: Node, *, processes: int = 3) -> int:
    assert wait_for(lambda: len(node.child_groups()) == 1, timeout=30), node.log()
    (group,) = node.child_groups()
    # the worker role: one process (sentinel, pusher, monitor and sweep as threads) and its two
    # forked workers (Q_WORKERS=2), in the child's process group
    assert wait_for(lambda: len(processes_in_group(group)) >= processes, timeout=60), node.log()
    return group


def test_worker_role_runs_only_the_cluster_and_dies_with_its_supervisor_even_by_sigkill(node_env, tmp_path):
    node = Node.start(role="worker", env=node_env, log_dir=tmp_path, name="worker")
    try:
        group = _cluster_group(node)
        commands = command_lines(processes_in_group(group))
        assert not any(b"gunicorn" in command for command in commands)  # no web role here
        # the role forked from `serve` and django-q2's workers forked from it, named by their titles
        assert command_lines([group])[0].startswith(b"registry_policies: worker")
        assert sum(command.startswith(b"qcluster ") for command in commands) == 2
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        assert wait_for(lambda: not processes_in_group(group), timeout=15), processes_in_group(group)
    finally:
        node.stop()


def test_web_role_serves_without_a_cluster(node_env, tmp_path):
    node = Node.start(role="web", env=node_env, log_dir=tmp_path, name="web")
    try:
        (group,) = node.child_groups()
        commands = command_lines(processes_in_group(group))
        assert all(b"gunicorn" in command for command in commands)
        assert not any(b"qcluster" in command or b"registry_policies: worker" in command for command in commands)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        assert wait_for(lambda: not processes_in_group(group), timeout=15), processes_in_group(group)
    finally:
        node.stop()


def test_sigterm_stops_every_process_of_both_roles_within_ten_seconds(node_env, tmp_path):
    node = Node.start(role="all", env=node_env, log_dir=tmp_path, name="all")
    try:
        assert wait_for(lambda: len(node.child_groups()) == 2, timeout=30), node.log()
        groups = node.child_groups()
        assert wait_for(lambda: sum(len(processes_in_group(g)) for g in groups) >= 5, timeout=60), node.log()
        node.process.send_signal(signal.SIGTERM)
        node.process.wait(timeout=10)
        assert node.process.returncode == 0, node.log()
        assert all(not processes_in_group(group) for group in groups)
        assert "Stopped." in node.log()
    finally:
        node.stop()


def test_a_role_that_dies_stops_the_other_and_the_node_exits_1_for_its_service_manager(node_env, tmp_path):
    node = Node.start(role="all", env=node_env, log_dir=tmp_path, name="all")
    try:
        assert wait_for(lambda: len(node.child_groups()) == 2, timeout=30), node.log()
        groups = node.child_groups()
        titles = {group: command_lines([group])[0] for group in groups}
        (web,) = [group for group, title in titles.items() if title.startswith(b"gunicorn: master")]
        (worker,) = [group for group, title in titles.items() if title.startswith(b"registry_policies: worker")]
        os.kill(web, signal.SIGKILL)
        node.process.wait(timeout=15)
        assert node.process.returncode == 1, node.log()
        assert "A role ended on its own: web (exit status -9)" in node.log()
        assert wait_for(lambda: not processes_in_group(worker) and not processes_in_group(web), timeout=10)
    finally:
        node.stop()


def test_web_and_worker_flags_exclude_each_other(node_env):
    result = subprocess.run([*MANAGE, "serve", "--web", "--worker"], cwd=ROOT, env=node_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "exclude each other" in result.stderr


def _shell(env: dict[str, str], code: str) -> str:
    result = subprocess.run([*MANAGE, "shell", "-v", "0", "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def _succeeded(env: dict[str, str], name: str) -> bool:
    count = _shell(env, f"from django_q.models import Success; print(Success.objects.filter(name={name!r}).count())")
    return count == "1"


def test_the_worker_role_is_one_process_with_forked_workers_that_replaces_a_killed_worker(node_env, tmp_path):
    """Sentinel, pusher, monitor and sweep are threads of the `worker_cluster` process; only the
    workers are processes. A worker killed mid-task is replaced (forked through the fork gate while
    the pusher and monitor threads run) and the replacement runs the next task."""
    env = {**node_env, "Q_WORKERS": "1"}
    node = Node.start(role="worker", env=env, log_dir=tmp_path, name="worker")
    try:
        group = _cluster_group(node, processes=2)
        assert len(processes_in_group(group)) == 2, processes_in_group(group)
        (worker,) = children_of(group)  # the group's leader is the worker_cluster process itself
        _shell(env, "from django_q.tasks import async_task; async_task('time.sleep', 120, task_name='sleeper')")
        assert wait_for(lambda: b"processing" in Path(f"/proc/{worker}/cmdline").read_bytes()
                        or "sleeper" in node.log(), timeout=60), node.log()
        os.kill(worker, signal.SIGKILL)
        assert wait_for(lambda: children_of(group) and children_of(group) != [worker], timeout=30), node.log()
        _shell(env, "from django_q.tasks import async_task; async_task('registry_policies.core.sweep.sweep', "
                    "task_name='after-the-kill')")
        assert wait_for(lambda: _succeeded(env, "after-the-kill"), timeout=60, interval=1), node.log()
        assert "reincarnated worker" in node.log()
        assert "reader lock" not in node.log()  # a worker killed mid-task held no lock of the queue
        assert len(processes_in_group(group)) == 2
    finally:
        node.stop()


def test_a_worker_killed_while_idle_is_replaced_by_one_that_still_receives_tasks(node_env, tmp_path):
    """An idle worker waits in the task queue's `get` holding the queue's reader lock; killed there
    (the OOM killer, an operator), it never releases it. The sentinel frees the lock when no other
    worker can hold it, so the replacement (the only worker by default) gets the next task."""
    env = {**node_env, "Q_WORKERS": "1"}
    node = Node.start(role="worker", env=env, log_dir=tmp_path, name="worker")
    try:
        group = _cluster_group(node, processes=2)
        (worker,) = children_of(group)
        _shell(env, "from django_q.tasks import async_task; async_task('registry_policies.core.sweep.sweep', "
                    "task_name='before-the-kill')")
        assert wait_for(lambda: _succeeded(env, "before-the-kill"), timeout=60, interval=1), node.log()
        os.kill(worker, signal.SIGKILL)  # idle again, in task_queue.get()
        assert wait_for(lambda: children_of(group) and children_of(group) != [worker], timeout=30), node.log()
        _shell(env, "from django_q.tasks import async_task; async_task('registry_policies.core.sweep.sweep', "
                    "task_name='after-the-kill')")
        assert wait_for(lambda: _succeeded(env, "after-the-kill"), timeout=60, interval=1), node.log()
        assert f"released the task queue's reader lock held by worker {worker}" in node.log()
    finally:
        node.stop()
