"""The GitHub Actions workflows under the workflow JSON schema and actionlint (with shellcheck on every
`run:` script), plus the properties the deployment relies on."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.tools import ROOT, output, run, tool

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DEPLOY = WORKFLOWS / "deploy.yml"


def schema_check(*paths) -> tuple[int, str]:
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)])
    return result.returncode, output(result)


def actionlint(*paths) -> tuple[int, str]:
    tool("shellcheck")  # actionlint only runs shellcheck if it finds it: make sure it is there
    result = run([tool("actionlint"), "-no-color", *map(str, paths)])
    return result.returncode, output(result)


def load(path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def test_workflows_match_the_schema() -> None:
    code, text = schema_check(CI, DEPLOY)
    assert code == 0, text


def test_actionlint_passes() -> None:
    code, text = actionlint(CI, DEPLOY)
    assert code == 0, text


@pytest.mark.parametrize(
    ("relpath", "old", "new"),
    [
        (".github/workflows/ci.yml", "runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"),
        (".github/workflows/deploy.yml", "cancel-in-progress: false", "cancel-in-progress: [false]"),
    ],
)
def test_schema_rejects_a_broken_copy(broken_copy, relpath: str, old: str, new: str) -> None:
    code, _ = schema_check(broken_copy(relpath, old, new))
    assert code != 0


@pytest.mark.parametrize(
    ("relpath", "old", "new", "expected"),
    [
        # shellcheck through actionlint: an unquoted variable in a run script
        (".github/workflows/deploy.yml", 'az acr login --name "$ACR_NAME"', "az acr login --name $ACR_NAME", "SC2086"),
        # an expression naming a step that does not exist
        (".github/workflows/deploy.yml", "steps.rollout.outputs.previous_revision", "steps.rollot.outputs.x", "rollot"),
        # a job depending on a job that does not exist
        (".github/workflows/ci.yml", "needs: llama-wheel", "needs: llama-wheels", "llama-wheels"),
    ],
)
def test_actionlint_rejects_a_broken_copy(broken_copy, relpath: str, old: str, new: str, expected: str) -> None:
    code, text = actionlint(broken_copy(relpath, old, new))
    assert code != 0
    assert expected in text


def test_ci_runs_ruff_the_readme_test_command_and_an_image_build_on_pushes_and_prs() -> None:
    ci = load(CI)
    assert {"push", "pull_request"} <= set(ci["on"])
    steps = {
        job: "\n".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in spec["steps"])
        for job, spec in ci["jobs"].items()
    }
    assert "ruff check" in steps["lint"]
    assert "bash scripts/test.sh" in steps["test"]
    assert "docker/build-push-action" in steps["image"]
    services = ci["jobs"]["test"]["services"]
    assert services["postgres"]["image"].startswith("postgres:") and "5432:5432" in services["postgres"]["ports"]
    assert services["redis"]["image"].startswith("redis:") and "6379:6379" in services["redis"]["ports"]


def test_deploy_uses_oidc_never_races_and_rolls_back() -> None:
    deploy = load(DEPLOY)
    assert deploy["on"]["push"]["branches"] == ["main"] and deploy["on"]["push"]["tags"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    job = deploy["jobs"]["deploy"]
    assert job["permissions"]["id-token"] == "write"
    uses = [s.get("uses", "") for s in job["steps"]]
    login = next(s for s in job["steps"] if s.get("uses", "").startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC: no creds/secret
    assert "secrets." not in DEPLOY.read_text(), "no stored cloud secret"
    assert any(u.startswith("docker/build-push-action@") for u in uses)
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "infra/scripts/rollout.py" in runs
    assert "ingress traffic set" in runs  # the belt-and-braces traffic move on failure


def test_continuous_evaluation_runs_nightly_and_after_each_deploy() -> None:
    path = WORKFLOWS / "continuous-eval.yml"
    workflow = load(path)
    assert workflow["on"]["schedule"] and workflow["on"]["workflow_run"]["workflows"] == ["Deploy"]
    job = workflow["jobs"]["evaluate"]
    assert "conclusion == 'success'" in job["if"]
    steps = job["steps"]
    run = next(s for s in steps if s.get("name") == "python -m eval scheduled")
    assert run["run"].endswith("python -m eval scheduled")  # the Container Apps Job's command, too
    assert {"SLIPWAY_URL", "SLIPWAY_API_KEY", "MLFLOW_TRACKING_URI", "EVAL_FAIL_UNDER"} <= set(run["env"])
    assert "secrets.SLIPWAY_EVAL_API_KEY" in run["env"]["SLIPWAY_API_KEY"]
    install = next(s for s in steps if s.get("name") == "Install the harness")["run"]
    assert "--require-hashes" in install and "requirements-dev.lock" in install
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in steps)
