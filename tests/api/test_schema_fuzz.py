"""The whole API over real HTTP without a single 5xx: every path of /api/schema/ with every method it
documents plus OPTIONS (with real identifiers filled in), then schemathesis generating requests for
every operation (a bounded number of examples each) with a token, checking `not_a_server_error`."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 8


def _schemathesis() -> str:
    path = Path(sys.executable).parent / "st"
    if not path.exists():
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    return str(path)


def _seed(server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Objects for the identifiers in the paths; their names, keyed by path parameter."""
    owner = server.admin_username
    assert server.api("POST", "repositories/", json={"namespace": owner, "name": "app"}).status_code == 201
    assert server.api("POST", "organizations/", json={"name": "fuzzorg"}).status_code == 201
    team = server.api("POST", "organizations/fuzzorg/teams/", json={"name": "devs"})
    assert team.status_code == 201, team.text
    member, _password = server.create_user("fuzzmember")
    return {"namespace": owner, "name": "app", "org": "fuzzorg", "team": "devs", "username": member}


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), "1"), path)


def test_every_documented_path_and_method_and_options_answers_without_5xx(registry_server):
    server = registry_server
    values = _seed(server)
    schema = requests.get(f"{server.url}/api/schema/?format=json", auth=server.admin_auth, timeout=30).json()
    assert len(schema["paths"]) > 40
    failures = []
    for path, operations in schema["paths"].items():
        methods = ["OPTIONS", *[m.upper() for m in operations if m in ("get", "post", "put", "patch", "delete")]]
        for method in methods:
            for auth in (server.admin_auth, None):
                response = requests.request(method, server.url + _fill(path, values), auth=auth, timeout=30,
                                            json={} if method in ("POST", "PUT", "PATCH") else None)
                if response.status_code >= 500:
                    failures.append((method, path, auth is not None, response.status_code))
    assert failures == []
    # The objects the walk used are still served (the walk did reach real objects, not only 404s).
    options = requests.options(f"{server.url}/api/v1/repositories/{values['namespace']}/app/pull-mirror/",
                               auth=server.admin_auth, timeout=30)
    assert options.status_code == 200 and "PUT" in options.headers["Allow"]


def _errors(output: str) -> str:
    """schemathesis's ERRORS section (what a "Runtime Error" was), which the tail may not hold."""
    start = output.find("ERRORS")
    return "" if start < 0 else output[start:start + 6000] + "\n...\n"


def test_schemathesis_finds_no_server_error_in_any_operation(registry_server, tmp_path):
    server = registry_server
    st = _schemathesis()
    for name in ("spare-1", "spare-2", "fuzz"):  # the fuzzer revoking token 1 or 2 must not lock itself out
        created = server.api("POST", "tokens/", json={"name": name})
        assert created.status_code == 201, created.text
    token = created.json()["token"]
    # One worker: with two threads, hypothesis's source inspection (`ast.parse`) runs in both at once
    # and CPython 3.11's AST builder, whose recursion counter the threads share, fails now and then
    # with "AST constructor recursion depth mismatch" (cpython#106905), a Runtime Error of the run.
    result = subprocess.run(
        [st, "run", f"{server.url}/api/schema/", "--url", server.url, "--checks", "not_a_server_error",
         "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color",
         "-H", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, (f"{_errors(result.stdout)}{summary}\n{result.stderr[-2000:]}\n"
                                    f"server log:\n{server.log()}")
    selected = re.search(r"Selected:\s+(\d+)/(\d+)", summary)
    tested = re.search(r"Tested:\s+(\d+)", summary)
    assert selected and tested, summary
    assert int(tested[1]) == int(selected[2]) > 40, summary  # every operation was exercised
    assert "Traceback" not in server.log()
