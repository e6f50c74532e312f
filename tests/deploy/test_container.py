"""The real image on a real Docker engine: build the Dockerfile as is, run it, ask it one question.

Offline: the engine is a private dockerd started here (see docker_engine.py) and python:3.11-slim is a
debootstrap stand-in; pip inside the build reaches PyPI like the host does. The host's portable
llama-cpp-python wheel is copied into the build context's wheels/ so nothing is compiled twice.
Everything the test makes is removed at the end: containers, the image, intermediate layers (the
stand-in base stays in the cache's data root, to be re-used), and the engine's processes.
Phase durations are written to test-artifacts/container-smoke.json (never asserted).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.docker_engine import DockerEngine, EngineError
from tests.deploy.image_build import ARTIFACTS, BUILD, missing_prerequisites

# The timeout covers the module fixtures too: waiting for the background build (image_build.py).
pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(2400)]

READY_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def timings() -> Iterator[dict[str, float]]:
    values: dict[str, float] = BUILD.timings
    started = time.monotonic()
    yield values
    values["tests_s"] = time.monotonic() - started
    ARTIFACTS.mkdir(exist_ok=True)
    rounded = {k: round(v, 1) for k, v in values.items()}
    (ARTIFACTS / "container-smoke.json").write_text(json.dumps(rounded, indent=2) + "\n")
    print(f"\ncontainer smoke test timings: {rounded}")


@pytest.fixture(scope="module")
def engine(timings: dict[str, float]) -> Iterator[DockerEngine]:
    """The private dockerd the background build started (image_build.py); stopped after these tests."""
    missing = missing_prerequisites()
    if missing:
        message = f"container smoke test needs: {', '.join(missing)} (bash scripts/bootstrap.sh dev installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield BUILD.wait_engine()
    finally:
        if BUILD.engine is not None:
            run_dir = BUILD.engine.run_dir
            started = time.monotonic()
            leftovers = BUILD.stop()
            timings["engine_stop_s"] = time.monotonic() - started
            assert not leftovers, f"processes left after stopping dockerd: {leftovers}"
            assert not run_dir.exists()


@pytest.fixture(scope="module")
def image(engine: DockerEngine, timings: dict[str, float]) -> Iterator[str]:
    """The project's image, built from the repository with the real Dockerfile (in the background
    since collection, see image_build.py); removed afterwards."""
    tag = BUILD.wait_image()
    try:
        yield tag
    finally:
        started = time.monotonic()
        for container in engine.containers():
            engine.docker("rm", "-f", container, check=False)
        engine.docker("rmi", "-f", tag, check=False)
        engine.docker("image", "prune", "-f", check=False)
        timings["cleanup_s"] = time.monotonic() - started
        left = set(engine.images()) - BUILD.images_before
        assert not left, f"images left behind: {left}"


def run_container(engine: DockerEngine, image: str, port: int, env: dict[str, str], name: str) -> str:
    args = ["run", "-d", "--name", name, "--network", "host", "-e", f"SLIPWAY_PORT={port}"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    # Same HEALTHCHECK command as the Dockerfile, polled faster so the test need not wait 30 s.
    args += ["--health-interval", "2s", "--health-start-period", "5s", image]
    return engine.docker(*args).stdout.strip()


def container_logs(engine: DockerEngine, name: str) -> str:
    result = engine.docker("logs", "--tail", "60", name, check=False)
    return (result.stdout + result.stderr)[-6000:]


def wait_ready(engine: DockerEngine, name: str, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = engine.docker("inspect", "--format", "{{.State.Status}}", name, check=False).stdout.strip()
        if state not in ("running", "created"):
            pytest.fail(f"container {state} before ready:\n{container_logs(engine, name)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"/readyz not 200 after {timeout_s:.0f} s:\n{container_logs(engine, name)}")


def test_image_serves_a_chat_completion(engine: DockerEngine, image: str, timings: dict[str, float]) -> None:
    port = free_port()
    key = f"sk-smoke-{uuid.uuid4().hex}"
    name = f"slipway-smoke-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    run_container(engine, image, port, {"SLIPWAY_API_KEYS": key}, name)
    url = f"http://127.0.0.1:{port}"
    wait_ready(engine, name, url, READY_TIMEOUT_S)
    timings["start_to_ready_s"] = time.monotonic() - started

    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 32,
        "temperature": 0,
    }
    started = time.monotonic()
    answer = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )
    timings["first_completion_s"] = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    text = answer.json()["choices"][0]["message"]["content"]
    assert text.strip(), f"empty answer: {answer.json()}"
    print(f"\nthe container answered: {text!r}")

    refused = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert refused.status_code == 401, "the container must enforce its API keys"
    assert set(refused.json()["error"]) >= {"message", "type", "code"}

    # The image's own HEALTHCHECK command turns the container healthy.
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline:
        health = engine.docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        if health == "healthy":
            break
        time.sleep(1)
    assert health == "healthy", container_logs(engine, name)

    uid = engine.docker("exec", name, "id", "-u").stdout.strip()
    assert uid != "0" and uid.isdigit(), f"runs as uid {uid}"

    # The image migrated its database at start-up: a conversation turn is stored and read back.
    auth = {"Authorization": f"Bearer {key}"}
    sid = httpx.post(f"{url}/api/sessions", json={"title": "smoke"}, headers=auth, timeout=30).json()["id"]
    turn = httpx.post(f"{url}/api/sessions/{sid}/messages", json={"content": "Say hello."}, headers=auth, timeout=120)
    assert turn.status_code == 200 and turn.json()["status"] == "complete", turn.text
    stored = httpx.get(f"{url}/api/sessions/{sid}", headers=auth, timeout=30).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]

    # METEOR works offline inside the image as its non-root user (WordNet was installed at build time).
    meteor = engine.docker(
        "exec",
        name,
        "python",
        "-c",
        "from nltk.corpus import wordnet; from nltk.translate.meteor_score import meteor_score; "
        "print(len(wordnet.synsets('quick')), round(meteor_score([['a', 'fast', 'car']], ['a', 'quick', 'car']), 4))",
    ).stdout.split()
    assert int(meteor[0]) > 0 and float(meteor[1]) > 0.9, meteor
    engine.docker("rm", "-f", name)


def test_image_refuses_a_public_bind_without_api_keys(engine: DockerEngine, image: str) -> None:
    name = f"slipway-open-{uuid.uuid4().hex[:8]}"
    port = free_port()
    run_container(engine, image, port, {}, name)
    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline:
        state = engine.docker("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state == "exited":
            break
        time.sleep(0.5)
    logs = container_logs(engine, name)
    assert state == "exited", f"a public bind without keys kept running:\n{logs}"
    code = engine.docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert code != "0"
    assert "SLIPWAY_API_KEYS" in logs and "SLIPWAY_ALLOW_NO_AUTH" in logs
    engine.docker("rm", "-f", name)


def test_engine_is_private(engine: DockerEngine) -> None:
    """The test drives the engine it started, and that engine made no bridge (so no iptables rules)."""
    info = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"] == str(engine.data_root)
    networks = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "bridge" not in networks and "host" in networks
    with pytest.raises(EngineError):
        engine.docker("inspect", "no-such-container-here")
