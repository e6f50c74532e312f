"""What stops a careless set-up or a hostile page before any model work: a missing GGUF or a taken port
stops start-up with one line (exit 2, nothing migrated); on loopback without keys only requests
addressed to this machine are served (DNS rebinding); /readyz shows no file paths; a message without
content, or with an image, is refused saying why."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers import SlipwayServer, free_port, write_models_file
from tests.sessions.conftest import wait_for

pytestmark = pytest.mark.slow


def run_app(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )


def test_a_missing_gguf_stops_start_up(tmp_path: Path) -> None:
    config = write_models_file(tmp_path, {"models": [{"name": "mine", "provider": "local", "path": "/nope/x.gguf"}]})
    out = run_app(tmp_path, "--config", str(config), "--port", str(free_port()))
    assert out.returncode == 2, out.stderr
    assert "model 'mine': `path` /nope/x.gguf is not a file" in out.stderr.replace("\n", " ")
    assert "Traceback" not in out.stderr and not (tmp_path / "s.db").exists()


def test_a_port_in_use_is_one_line_before_any_migration(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_app(tmp_path, "--port", str(port))
    assert out.returncode == 2, out.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr.replace("\n", " ")
    assert "alembic" not in out.stdout + out.stderr and "Traceback" not in out.stderr  # nothing migrated


def test_loopback_without_keys_serves_only_requests_addressed_to_this_machine(server: SlipwayServer) -> None:
    url = server.url + "/v1/models"
    for host in ("attacker.example", "attacker.example:8000", "192.168.1.5"):
        r = httpx.get(url, headers={"host": host})
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["code"] == "host_not_allowed" and "SLIPWAY_ALLOWED_HOSTS" in err["message"]
    assert httpx.get(server.url + "/", headers={"host": "attacker.example"}).status_code == 403  # the page too
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "app.localhost", f"[::1]:{server.port}"):
        assert httpx.get(url, headers={"host": host}).status_code == 200, host
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:  # a WebSocket handshake
        raw.sendall(
            b"GET /api/sessions/x/ws HTTP/1.1\r\nHost: evil.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert raw.recv(200).startswith(b"HTTP/1.1 403")


def test_allowed_hosts_and_keys_lift_the_host_check(tmp_path: Path) -> None:
    with SlipwayServer(env={"SLIPWAY_ALLOWED_HOSTS": "devbox.lan"}) as s:
        assert httpx.get(s.url + "/v1/models", headers={"host": "devbox.lan:8000"}).status_code == 200
        assert httpx.get(s.url + "/v1/models", headers={"host": "other.lan"}).status_code == 403
    with SlipwayServer(env={"SLIPWAY_API_KEYS": "sk-host-test"}) as s:  # with keys, the key is the check
        r = httpx.get(s.url + "/v1/models", headers={"host": "tunnel.example", "authorization": "Bearer sk-host-test"})
        assert r.status_code == 200


def test_readyz_shows_no_file_paths(tmp_path: Path) -> None:
    bogus = tmp_path / "private" / "dir" / "broken.gguf"
    bogus.parent.mkdir(parents=True)
    bogus.write_bytes(b"not a gguf")
    config = tmp_path / "models.yaml"
    config.write_text(yaml.safe_dump({"default_model": "ok", "models": [
        {"name": "ok", "provider": "local"}, {"name": "broken", "provider": "local", "path": str(bogus)}]}))  # fmt: skip
    with SlipwayServer(config=config, wait_ready=False) as s:
        text = wait_for(lambda: _broken_detail(s.url), timeout=120)
        assert "broken.gguf" in text and str(tmp_path) not in text, text


def _broken_detail(url: str) -> str | None:
    try:
        r = httpx.get(url + "/readyz", timeout=10)
    except httpx.HTTPError:
        return None
    return r.text if r.json()["checks"]["models"]["broken"].get("detail") else None


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"role": "user", "content": None}, "needs content"),
        ({"role": "user", "content": []}, "needs content"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}, "text only"),
    ],
)
def test_messages_without_text_are_refused_saying_why(server: SlipwayServer, message: dict, says: str) -> None:
    r = httpx.post(server.url + "/v1/chat/completions", json={"messages": [message]}, timeout=60)
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]["message"] and r.json()["error"]["param"].startswith("messages.0")


def test_start_up_says_ready_in_one_plain_line_without_plugin_noise(server: SlipwayServer) -> None:
    log = server.log_text()
    base = f"http://127.0.0.1:{server.port}"
    assert f"Slipway ready: web page {base}/  API {base}/v1  docs {base}/docs" in log
    assert "setup plugin" not in log


def test_a_json_body_without_its_content_type_is_told_so(server: SlipwayServer) -> None:
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    r = httpx.post(server.url + "/v1/chat/completions", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type"
    assert "Content-Type: application/json" in r.json()["error"]["message"] and "text/plain" in r.json()["error"]["message"]


def test_help_shows_flags_as_flags(tmp_path: Path) -> None:
    out = run_app(tmp_path, "--help")
    assert out.returncode == 0 and "--tunnel" in out.stdout and "<bool>" not in out.stdout, out.stdout


def test_models_shows_what_is_missing_before_start_up(tmp_path: Path) -> None:
    config = write_models_file(tmp_path, {"default_model": "smollm2", "models": [
        {"name": "smollm2", "provider": "local"},
        {"name": "mine", "provider": "local", "path": "/nope/x.gguf"},
        {"name": "g", "provider": "gemini", "api_key_env": "SLIPWAY_TEST_UNSET_KEY"},
    ]})  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "app", "models", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "packaged model installed" in out.stdout
    assert "MISSING GGUF /nope/x.gguf" in out.stdout and "MISSING $SLIPWAY_TEST_UNSET_KEY" in out.stdout


def test_the_favicon_is_served(server: SlipwayServer) -> None:
    r = httpx.get(server.url + "/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.content
