"""The Dockerfile under hadolint (warnings fail), and the properties the issue asks of the image."""

from __future__ import annotations

import re

import pytest

from tests.deploy.tools import ROOT, output, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path) -> tuple[int, str]:
    result = run([tool("hadolint"), "--failure-threshold", "warning", "--no-color", str(path)])
    return result.returncode, output(result)


def test_hadolint_passes_on_the_dockerfile() -> None:
    code, text = hadolint(DOCKERFILE)
    assert code == 0, text


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("USER 10001:10001", "USER root", "DL3002"),  # the last USER must not be root
        ("FROM ${PYTHON_IMAGE} AS runtime", "FROM python:latest AS runtime", "DL3007"),  # no :latest
        # The pragma is the only thing keeping unpinned apt packages legal: hadolint really checks it.
        ("# hadolint ignore=DL3008\n", "", "DL3008"),
        # Shell-form CMD: signals would go to /bin/sh, not to the server (no graceful drain).
        ('CMD ["python", "-m", "app", "--host", "0.0.0.0"]', "CMD python -m app --host 0.0.0.0", "DL3025"),
    ],
)
def test_hadolint_fails_on_a_broken_copy(broken_copy, old: str, new: str, rule: str) -> None:
    code, text = hadolint(broken_copy("Dockerfile", old, new))
    assert code != 0
    assert rule in text


def runtime_stage() -> str:
    text = DOCKERFILE.read_text()
    return text[text.index(" AS runtime") :]


def test_runtime_stage_runs_as_a_numeric_non_root_user() -> None:
    users = re.findall(r"^USER\s+(\S+)", runtime_stage(), flags=re.M)
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so Kubernetes/ACA runAsNonRoot can verify it


def test_image_serves_port_8000_with_a_healthcheck_on_healthz() -> None:
    stage = runtime_stage()
    assert re.search(r"^EXPOSE 8000$", stage, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD .*/healthz", stage, flags=re.M)
    cmd = re.search(r"^CMD (\[.*\])$", stage, flags=re.M)
    assert cmd and '"-m", "app", "--host", "0.0.0.0"' in cmd.group(1)


def test_llama_cpp_is_compiled_portably_when_no_wheel_fits() -> None:
    text = DOCKERFILE.read_text()
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in text
    assert "--no-index --find-links /wheels" in text
    # No heredoc RUN (the classic builder cannot run it) and no BuildKit-only mounts.
    assert "<<" not in text and "--mount=" not in text


def test_dockerignore_is_an_allow_list_that_keeps_secrets_out() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*", "start from nothing, then allow"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert {"pyproject.toml", "README.md", "app", "wheels"} <= allowed
    assert not any(a in allowed for a in (".env", ".git", ".venv", "tests")), allowed
