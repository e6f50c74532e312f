"""devcontainer.json against the small schema kept in the repo, and against the Compose stack it opens."""

from __future__ import annotations

import json

import json5
import pytest

from tests.deploy.tools import ROOT, compose_binary, output, run, tool

DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
SCHEMA = ROOT / ".devcontainer" / "devcontainer.schema.json"


def check(path) -> tuple[int, str]:
    cmd = [tool("check-jsonschema"), "--schemafile", str(SCHEMA), "--force-filetype", "json5", str(path)]
    result = run(cmd)
    return result.returncode, output(result)


def test_schema_is_a_valid_json_schema() -> None:
    result = run([tool("check-jsonschema"), "--check-metaschema", str(SCHEMA)])
    assert result.returncode == 0, output(result)


def test_devcontainer_json_matches_the_schema() -> None:
    code, text = check(DEVCONTAINER)
    assert code == 0, text


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"postCreateCommand"', '"postCreateComand"'),  # a typo'd key silently does nothing in VS Code
        ('"ms-toolsai.jupyter"', '"jupyter"'),  # not publisher.name
        ('"service": "dev"', '"service": ["dev"]'),
        ('"forwardPorts": [8000,', '"forwardPorts": [80000,'),
    ],
)
def test_schema_rejects_a_broken_copy(broken_copy, old: str, new: str) -> None:
    code, _ = check(broken_copy(".devcontainer/devcontainer.json", old, new))
    assert code != 0


def test_devcontainer_opens_a_service_of_the_compose_stack() -> None:
    config = json5.loads(DEVCONTAINER.read_text())
    files = [DEVCONTAINER.parent / f for f in config["dockerComposeFile"]]
    assert all(f.is_file() for f in files), files
    cmd = [compose_binary(), "--project-directory", str(ROOT), "--env-file", str(ROOT / ".env.example")]
    for f in files:
        cmd += ["-f", str(f)]
    result = run([*cmd, "config", "--format", "json"], unset_prefixes=("POSTGRES_", "SLIPWAY_", "COMPOSE_"))
    assert result.returncode == 0, output(result)
    services = json.loads(result.stdout)["services"]
    assert config["service"] in services
    assert set(config["runServices"]) <= set(services)
    dev = services[config["service"]]
    # The repository is mounted where the workspace folder says (paths resolve from the first file).
    mount = next(v for v in dev["volumes"] if v["target"] == config["workspaceFolder"])
    assert mount["source"] == str(ROOT)
    assert dev["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "postgres:5432" in dev["environment"]["SLIPWAY_DATABASE_URL"]


def test_devcontainer_runs_readme_setup_with_python_and_jupyter() -> None:
    config = json5.loads(DEVCONTAINER.read_text())
    assert config["postCreateCommand"].startswith("bash scripts/bootstrap.sh")
    extensions = config["customizations"]["vscode"]["extensions"]
    assert {"ms-python.python", "ms-toolsai.jupyter"} <= set(extensions)
    assert 8000 in config["forwardPorts"]
