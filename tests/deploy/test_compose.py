"""docker-compose.yml under the real Compose program and the Compose spec schema, plus what it promises:
app waits for healthy Postgres and Redis, Ollama only under its profile, no secret in the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.models_file import load_models_file
from app.providers.registry import PROVIDERS
from tests.deploy.tools import ROOT, compose_binary, output, run, tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# Interpolation must depend on .env.example alone, not on the developer's shell.
CLEAN = ("POSTGRES_", "SLIPWAY_", "OLLAMA_", "COMPOSE_")


def compose(*args: str, files: tuple[Path, ...] = (COMPOSE_FILE,), project_dir: Path = ROOT):
    cmd = [compose_binary(), "--project-directory", str(project_dir), "--env-file", str(ENV_EXAMPLE)]
    for f in files:
        cmd += ["-f", str(f)]
    return run([*cmd, *args], unset_prefixes=CLEAN)


def resolved(*profiles: str) -> dict:
    args = [a for p in profiles for a in ("--profile", p)]
    result = compose(*args, "config", "--format", "json")
    assert result.returncode == 0, output(result)
    return json.loads(result.stdout)


def test_compose_config_accepts_the_stack() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, output(result)
    result = compose("--profile", "ollama", "config", "-q")
    assert result.returncode == 0, output(result)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "      redis:\n        condition: service_healthy",
            "      cache:\n        condition: service_healthy",
            "cache",
        ),
        ("condition: service_healthy", "condition: healthy", "condition"),
        (
            '    healthcheck:\n      test: ["CMD", "redis-cli"',
            '    healthcheck:\n      tset: ["CMD", "redis-cli"',
            "tset",
        ),
    ],
)
def test_compose_config_fails_on_a_broken_copy(broken_copy, old: str, new: str, message: str) -> None:
    broken = broken_copy("docker-compose.yml", old, new, also=["infra/compose/models.yaml"])
    result = compose("config", "-q", files=(broken,), project_dir=broken.parent)
    assert result.returncode != 0
    assert message in output(result)


def test_compose_file_matches_the_compose_spec_schema(broken_copy) -> None:
    checker = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = run([*checker, str(COMPOSE_FILE), str(ROOT / ".devcontainer" / "compose.yaml")])
    assert result.returncode == 0, output(result)
    broken = broken_copy("docker-compose.yml", "    stop_grace_period: 30s", "    stop_grace_periods: 30s")
    result = run([*checker, str(broken)])
    assert result.returncode != 0
    assert "stop_grace_periods" in output(result)


def test_no_secret_is_committed_postgres_password_must_come_from_env() -> None:
    cmd = [compose_binary(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "-q"]
    result = run(cmd, env={"COMPOSE_DISABLE_ENV_FILE": "1"}, unset_prefixes=CLEAN)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in output(result)
    assert "change-me" not in COMPOSE_FILE.read_text()


def test_app_waits_for_healthy_postgres_and_redis() -> None:
    services = resolved()["services"]
    assert set(services) == {"app", "postgres", "redis"}, "the default stack is app + Postgres + Redis"
    app = services["app"]
    assert app["build"]["dockerfile"] == "Dockerfile"
    for dep in ("postgres", "redis"):
        assert app["depends_on"][dep]["condition"] == "service_healthy"
        assert services[dep]["healthcheck"]["test"], f"{dep} needs a healthcheck for the app to wait on"
    assert any(
        v["type"] == "volume" and v["target"] == "/var/lib/postgresql/data" for v in services["postgres"]["volumes"]
    )
    env = app["environment"]
    assert env["SLIPWAY_DATABASE_URL"].startswith("postgresql+asyncpg://slipway:")
    assert env["SLIPWAY_DATABASE_URL"].endswith("@postgres:5432/slipway")
    assert env["SLIPWAY_REDIS_URL"] == "redis://redis:6379/0"
    assert [p["target"] for p in app["ports"]] == [8000]


def test_ollama_profile_adds_ollama_and_a_one_shot_pull() -> None:
    services = resolved("ollama")["services"]
    assert {"ollama", "ollama-pull"} <= set(services)
    pull = services["ollama-pull"]
    assert pull["command"] == ["pull", "llama3.1:8b"]
    assert pull["environment"]["OLLAMA_HOST"] == "http://ollama:11434"
    assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"
    assert pull["restart"] == "no"
    assert any(v["target"] == "/root/.ollama" and v["type"] == "volume" for v in services["ollama"]["volumes"])
    # The app starts after the pull when the profile is on, and does not need it otherwise.
    assert services["app"]["depends_on"]["ollama-pull"] == {
        "condition": "service_completed_successfully",
        "required": False,
    }


def test_models_file_mounted_into_the_app_is_valid() -> None:
    app = resolved()["services"]["app"]
    mount = next(v for v in app["volumes"] if v["target"] == app["environment"]["SLIPWAY_CONFIG"])
    assert mount["read_only"] is True
    models = load_models_file(Path(mount["source"]), PROVIDERS)
    names = {m.name: m for m in models.models}
    assert models.default_model == "smollm2" and names["smollm2"].provider == "local"
    llama = names["llama3.1"]
    assert (llama.provider, llama.upstream_model, llama.base_url) == ("ollama", "llama3.1:8b", "http://ollama:11434")
    assert llama.fallbacks == ["smollm2"]
