"""infra/scripts/rollout.py (the deploy workflow's blue-green step) against a stand-in `az`.

FakeAz is a small executable put first on PATH that keeps an app's revisions and traffic in a JSON
file, the way Container Apps does; /readyz is served by a real HTTP server on loopback. What is
checked is the script's behaviour: which revision ends up with the traffic, and what gets deactivated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT

SCRIPT = ROOT / "infra" / "scripts" / "rollout.py"

FAKE_AZ = r'''#!PYTHON
"""FakeAz: the `az containerapp` calls rollout.py makes, on a JSON state file."""
import json, os, sys

path = os.environ["FAKE_AZ_STATE"]
state = json.load(open(path))
args = sys.argv[1:]
state["calls"].append(" ".join(args))

def opt(name):
    return args[args.index(name) + 1]

def save(out=None):
    json.dump(state, open(path, "w"))
    if out is not None:
        print(json.dumps(out))
    sys.exit(0)

revisions = state["revisions"]
by_name = {r["name"]: r for r in revisions}
cmd = " ".join(a for a in args[:4] if not a.startswith("-"))
if cmd.startswith("containerapp revision list"):
    save(revisions)
if cmd.startswith("containerapp ingress traffic set"):
    name, weight = opt("--revision-weight").split("=")
    for r in revisions:
        r["properties"]["trafficWeight"] = int(weight) if r["name"] == name else 0
    save([{"revisionName": name, "weight": int(weight)}])
if cmd.startswith("containerapp update"):
    if state.get("fail_update"):
        print("ERROR: image not found", file=sys.stderr)
        sys.exit(1)
    name = opt("--name") + "--" + opt("--revision-suffix")
    revisions.append({"name": name, "properties": {"active": True, "trafficWeight": 0, "fqdn": state["new_fqdn"]}})
    save({"name": opt("--name")})
if cmd.startswith("containerapp revision show"):
    save(by_name[opt("--revision")])
if cmd.startswith("containerapp revision deactivate"):
    by_name[opt("--revision")]["properties"]["active"] = False
    save()
if cmd.startswith("containerapp show"):
    save({"properties": {"configuration": {"ingress": {"fqdn": state["app_fqdn"]}}}})
print("FakeAz: unexpected call " + " ".join(args), file=sys.stderr)
sys.exit(2)
'''


class Readyz:
    """A real HTTP server whose /readyz answers `status`."""

    def __init__(self, status: int) -> None:
        outer = self
        self.status = status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(outer.status if self.path == "/readyz" else 404)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.fqdn = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_az(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.replace("PYTHON", sys.executable, 1))
    az.chmod(0o755)
    servers: list[Readyz] = []

    def setup(*, new_status: int, previous: str | None = "ca-app--r1", fail_update: bool = False) -> Path:
        server = Readyz(new_status)
        servers.append(server)
        revisions = []
        if previous:
            revisions = [
                {"name": previous, "properties": {"active": True, "trafficWeight": 100, "fqdn": "old.example"}},
                {"name": "ca-app--r0", "properties": {"active": False, "trafficWeight": 0, "fqdn": "older.example"}},
            ]
        state = {
            "revisions": revisions,
            "calls": [],
            "new_fqdn": server.fqdn,
            "app_fqdn": server.fqdn,
            "fail_update": fail_update,
        }
        path = tmp_path / "state.json"
        path.write_text(json.dumps(state))
        return path

    yield setup, bin_dir
    for server in servers:
        server.close()


def rollout(bin_dir: Path, state: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict, dict]:
    outputs = tmp_path / "github_output"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AZ_STATE": str(state),
        "GITHUB_OUTPUT": str(outputs),
    }
    cmd = [sys.executable, str(SCRIPT), "--resource-group", "rg", "--app", "ca-app", "--image", "cr.io/slipway:abc"]
    cmd += ["--revision-suffix", "r2", "--ready-timeout", "1", "--interval", "0.1", "--scheme", "http"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines()) if outputs.exists() else {}
    return result, json.loads(state.read_text()), written


def traffic(state: dict) -> dict[str, int]:
    return {r["name"]: r["properties"]["trafficWeight"] for r in state["revisions"] if r["properties"]["trafficWeight"]}


def test_a_ready_revision_gets_all_the_traffic(fake_az, tmp_path: Path) -> None:
    setup, bin_dir = fake_az
    result, state, outputs = rollout(bin_dir, setup(new_status=200), tmp_path)
    assert result.returncode == 0, result.stderr
    assert traffic(state) == {"ca-app--r2": 100}
    assert outputs == {"previous_revision": "ca-app--r1", "new_revision": "ca-app--r2"}
    calls = state["calls"]
    # Traffic pinned to the old revision BEFORE the new one exists, so it starts at 0%.
    pin = calls.index(
        "containerapp ingress traffic set --revision-weight ca-app--r1=100 --name ca-app --resource-group rg --output json"
    )
    update = next(i for i, c in enumerate(calls) if c.startswith("containerapp update"))
    assert pin < update
    assert "--image cr.io/slipway:abc --revision-suffix r2" in calls[update]


def test_a_revision_that_never_gets_ready_is_rolled_back(fake_az, tmp_path: Path) -> None:
    setup, bin_dir = fake_az
    result, state, _ = rollout(bin_dir, setup(new_status=503), tmp_path)
    assert result.returncode == 1
    assert "not ready" in result.stderr and "HTTP 503" in result.stderr
    assert traffic(state) == {"ca-app--r1": 100}
    new = next(r for r in state["revisions"] if r["name"] == "ca-app--r2")
    assert new["properties"]["active"] is False
    assert not any("ca-app--r2=100" in c for c in state["calls"]), "the broken revision never got traffic"


def test_a_failed_update_leaves_the_previous_revision_serving(fake_az, tmp_path: Path) -> None:
    setup, bin_dir = fake_az
    result, state, _ = rollout(bin_dir, setup(new_status=200, fail_update=True), tmp_path)
    assert result.returncode == 1
    assert "image not found" in result.stderr
    assert traffic(state) == {"ca-app--r1": 100}


def test_first_deployment_without_a_previous_revision(fake_az, tmp_path: Path) -> None:
    setup, bin_dir = fake_az
    result, state, outputs = rollout(bin_dir, setup(new_status=200, previous=None), tmp_path)
    assert result.returncode == 0, result.stderr
    assert traffic(state) == {"ca-app--r2": 100}
    assert outputs["previous_revision"] == ""
