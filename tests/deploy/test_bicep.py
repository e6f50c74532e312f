"""Bicep parsed by pycep-parser (no registry ships the bicep compiler), plus the cross-file checks the
compiler would make: module paths, module parameters, module outputs, and the per-environment parameter
files against main.bicep's declarations and decorators."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from lark.exceptions import LarkError
from pycep import BicepParser

from tests.deploy.tools import ROOT

INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
PARAMETER_FILES = sorted((INFRA / "parameters").glob("*.json"))
JSON_TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}


@functools.cache
def parser() -> BicepParser:
    return BicepParser()  # building the grammar is the slow part: once per session


@functools.cache
def _parse_text(text: str) -> str:
    return json.dumps(parser().parse(text=text))


def parse(path: Path, text: str | None = None) -> dict:
    return json.loads(_parse_text(path.read_text() if text is None else text))


def module_calls(tree: dict) -> dict[str, tuple[str, dict]]:
    """name -> (relative path, params passed), for conditional modules too."""
    calls = {}
    for name, module in tree.get("modules", {}).items():
        config = module["config"]
        config = config.get("config", config)  # `= if (cond) {...}` nests one level deeper
        calls[name] = (module["detail"]["path"], config.get("params", {}))
    return calls


def check_main(text: str) -> list[str]:
    """Problems the Bicep compiler would report across main.bicep and its modules (empty = none)."""
    tree = parse(MAIN, text)
    problems = []
    outputs_of = {}
    for name, (relpath, passed) in module_calls(tree).items():
        path = INFRA / relpath
        if not path.is_file():
            problems.append(f"module {name}: {relpath} does not exist")
            continue
        module = parse(path)
        declared = module.get("parameters", {})
        outputs_of[name] = set(module.get("outputs", {}))
        problems += [f"module {name}: no parameter {p!r} in {relpath}" for p in set(passed) - set(declared)]
        required = {p for p, spec in declared.items() if spec.get("default") is None}
        problems += [f"module {name}: required parameter {p!r} not passed" for p in required - set(passed)]
    for module, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", text):
        if module in outputs_of and output not in outputs_of[module]:
            problems.append(f"{module}.outputs.{output}: the module has no such output")
    return problems


def test_every_bicep_file_parses() -> None:
    files = [MAIN, *sorted((INFRA / "modules").glob("*.bicep"))]
    assert len(files) >= 8
    for path in files:
        tree = parse(path)
        assert tree.get("resources") or tree.get("modules"), path


def test_a_syntax_error_is_rejected() -> None:
    text = (INFRA / "modules" / "identity.bicep").read_text()
    assert "location: location\n" in text
    with pytest.raises((LarkError, ValueError)):  # lark's parse errors, or pycep's own pre-check
        parse(MAIN, text.replace("location: location\n", "location: location,,\n  tags tags\n", 1))


def test_modules_get_the_parameters_they_declare_and_expose_the_outputs_used() -> None:
    assert check_main(MAIN.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("'modules/redis.bicep'", "'modules/rediss.bicep'", "does not exist"),
        ("    pullPrincipalId: appIdentity", "    pullPrincipalID: appIdentity", "no parameter 'pullPrincipalID'"),
        ("    workspaceName: monitoring.outputs.workspaceName\n", "", "required parameter 'workspaceName'"),
        ("keyVault.outputs.uri\n", "keyVault.outputs.url\n", "no such output"),
    ],
)
def test_cross_file_checks_fail_on_a_broken_copy(old: str, new: str, problem: str) -> None:
    text = MAIN.read_text()
    assert old in text
    problems = check_main(text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def check_parameter_file(values: dict) -> list[str]:
    declared = parse(MAIN)["parameters"]
    problems = [f"{name}: not a parameter of main.bicep" for name in set(values) - set(declared)]
    for name, spec in declared.items():
        if name not in values:
            if spec.get("default") is None:
                problems.append(f"{name}: required and missing")
            continue
        value = values[name]["value"]
        expected = JSON_TYPES[spec["type"]]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{name}: {value!r} is not a {spec['type']}")
            continue
        for deco in spec["decorators"]:
            kind, arg = deco["type"], deco.get("argument")
            if (
                (kind == "allowed" and value not in arg)
                or (kind == "min_value" and value < arg)
                or (kind == "max_value" and value > arg)
                or (kind == "min_length" and len(value) < arg)
                or (kind == "max_length" and len(value) > arg)
            ):
                problems.append(f"{name}: {value!r} breaks @{kind}({arg})")
        if "secure" in {d["type"] for d in spec["decorators"]}:
            problems.append(f"{name}: a @secure() value must not be committed in a parameters file")
    return problems


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_parameter_files_fit_main_bicep(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["$schema"].endswith("deploymentParameters.json#")
    assert check_parameter_file(doc["parameters"]) == []


def test_there_is_a_parameter_file_per_environment() -> None:
    names = {json.loads(p.read_text())["parameters"]["environmentName"]["value"]: p.stem for p in PARAMETER_FILES}
    assert {"dev", "prod"} <= set(names)
    assert all(env == stem for env, stem in names.items())


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"minReplica": {"value": 1}}, "not a parameter"),
        ({"maxReplicas": {"value": "ten"}}, "not a int"),
        ({"appName": {"value": "sl"}}, "@min_length"),
        ({"apiKeys": {"value": "sk-committed"}}, "@secure()"),
    ],
)
def test_parameter_file_checks_fail_on_a_broken_copy(change: dict, problem: str) -> None:
    values = json.loads(PARAMETER_FILES[0].read_text())["parameters"] | change
    assert any(problem in p for p in check_parameter_file(values))


def test_prod_scales_out_on_postgres_and_redis() -> None:
    prod = {
        k: v["value"] for k, v in json.loads((INFRA / "parameters" / "prod.json").read_text())["parameters"].items()
    }
    assert prod["deployPostgres"] and prod["deployRedis"], "replicas share conversations and rate limits"
    assert 2 <= prod["minReplicas"] < prod["maxReplicas"]
    app = (INFRA / "modules" / "containerapp.bicep").read_text()
    for needle in ("external: true", "'Startup'", "'Liveness'", "'Readiness'", "concurrentRequests", "keyVaultUrl"):
        assert needle in app


def test_the_continuous_evaluation_job_runs_the_harness_on_a_schedule_and_alerts_on_failure() -> None:
    text = (INFRA / "modules" / "evaljob.bicep").read_text()
    tree = parse(INFRA / "modules" / "evaljob.bicep")
    job = tree["resources"]["job"]
    assert job["type"] == "Microsoft.App/jobs"
    config = job["config"]["properties"]["configuration"]
    assert config["triggerType"] == "Schedule" and config["scheduleTriggerConfig"]["cronExpression"] == "cronExpression"
    assert config["replicaRetryLimit"] == 0, "a missed gate is a result, not a crash to retry"
    [container] = job["config"]["properties"]["template"]["containers"]
    assert container["command"] == ["python", "-m", "eval", "scheduled"]
    # Every variable the job sets is one `python -m eval scheduled` reads.
    import typer

    from eval.__main__ import cli

    command = typer.main.get_command(cli).commands["scheduled"]  # type: ignore[attr-defined]
    read = {p.envvar for p in command.params if getattr(p, "envvar", None)}
    set_here = set(re.findall(r"name: '([A-Z][A-Z_]+)'", text))
    assert set_here and set_here <= read, set_here - read
    assert "SLIPWAY_API_KEY" in set_here and "secretRef: 'eval-api-key'" in text  # the key from Key Vault
    alert = tree["resources"]["failedRun"]
    assert alert["type"] == "Microsoft.Insights/metricAlerts"
    [criterion] = alert["config"]["properties"]["criteria"]["allOf"]
    assert criterion["metricName"] == "Executions" and criterion["metricNamespace"] == "Microsoft.App/jobs"
    assert criterion["dimensions"] == [{"name": "state", "operator": "Include", "values": ["Failed"]}]
    assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0
    main = (INFRA / "main.bicep").read_text()
    assert "module evalJob 'modules/evaljob.bicep' = if (deployEvalJob && !empty(image))" in main
    assert "appUrl: 'https://${app.outputs.fqdn}'" in main
    prod = json.loads((INFRA / "parameters" / "prod.json").read_text())["parameters"]
    assert prod["deployEvalJob"]["value"] is True
