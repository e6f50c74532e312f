"""infra/containerapp.yaml deserialised by the Azure SDK's own ContainerApp model (azure-mgmt-appcontainers
3.x; 5.x accepts anything). The SDK drops unknown keys silently, so every key must also survive a
round trip: a typo is caught as well as a wrong type."""

from __future__ import annotations

import re

import pytest
import yaml
from azure.mgmt.appcontainers import models

from tests.deploy.tools import ROOT

YAML_FILE = ROOT / "infra" / "containerapp.yaml"
PLACEHOLDERS = {
    "LOCATION": "westeurope",
    "APP": "ca-slipway-prod",
    "IDENTITY_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-slipway"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-slipway-prod",
    "ENVIRONMENT_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-slipway"
    "/providers/Microsoft.App/managedEnvironments/cae-slipway-prod",
    "ACR_LOGIN_SERVER": "crslipwayprodabc123.azurecr.io",
    "KEY_VAULT_URI": "https://kv-slipway-prod-abc123.vault.azure.net/",
    "IMAGE": "crslipwayprodabc123.azurecr.io/slipway:0123abc",
}
ENUMS = {  # fields the SDK types as plain strings although the API only accepts these values
    ("properties", "configuration", "activeRevisionsMode"): models.ActiveRevisionsMode,
    ("properties", "configuration", "ingress", "transport"): models.IngressTransportMethod,
    ("identity", "type"): models.ManagedServiceIdentityType,
}


def render(text: str) -> dict:
    """What `envsubst` makes of the file with the Bicep outputs filled in."""
    used = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert used <= set(PLACEHOLDERS), f"undocumented placeholders: {used - set(PLACEHOLDERS)}"
    return yaml.safe_load(re.sub(r"\$\{([A-Z_]+)\}", lambda m: PLACEHOLDERS[m.group(1)], text))


def key_paths(node: object, prefix: tuple = ()) -> set[tuple]:
    if isinstance(node, dict):
        paths = set()
        for key, value in node.items():
            # identity ids are map keys chosen by the user, not schema keys
            child = (*prefix, "<id>" if prefix[-1:] == ("userAssignedIdentities",) else key)
            paths |= {child} | key_paths(value, child)
        return paths
    if isinstance(node, list):
        return set().union(*(key_paths(v, (*prefix, "[]")) for v in node)) if node else set()
    return set()


def validate(doc: dict) -> models.ContainerApp:
    """Raise if the SDK rejects a value, drops a key, or an enum-like field has an unknown value."""
    app = models.ContainerApp.deserialize(doc)
    lost = key_paths(doc) - key_paths(app.serialize(keep_readonly=True))
    if lost:
        raise ValueError(f"keys the ContainerApp model does not know: {sorted(lost)}")
    for path, enum in ENUMS.items():
        value = doc
        for key in path:
            value = value[key]
        if value not in {e.value for e in enum}:
            raise ValueError(f"{'.'.join(path)}: {value!r} is not one of {[e.value for e in enum]}")
    for container in doc["properties"]["template"]["containers"]:
        for probe in container.get("probes", []):
            if probe["type"] not in {e.value for e in models.Type}:
                raise ValueError(f"probe type {probe['type']!r}")
    return app


def test_containerapp_yaml_deserialises_into_the_sdk_model() -> None:
    app = validate(render(YAML_FILE.read_text()))
    ingress = app.configuration.ingress
    assert (ingress.external, ingress.target_port, ingress.allow_insecure) == (True, 8000, False)
    assert app.configuration.active_revisions_mode == "Multiple"
    assert app.configuration.registries[0].identity == PLACEHOLDERS["IDENTITY_ID"]
    assert all(s.key_vault_url and s.identity and not s.value for s in app.configuration.secrets)
    container = app.template.containers[0]
    probes = {p.type: p for p in container.probes}
    assert probes["Liveness"].http_get.path == "/healthz"
    assert probes["Readiness"].http_get.path == "/readyz"
    startup = probes["Startup"]
    assert startup.initial_delay_seconds + startup.period_seconds * startup.failure_threshold >= 300
    env = {e.name: e for e in container.env}
    assert env["SLIPWAY_API_KEYS"].secret_ref == "api-keys" and env["SLIPWAY_API_KEYS"].value is None
    scale = app.template.scale
    assert 1 <= scale.min_replicas < scale.max_replicas
    assert scale.rules[0].http.metadata["concurrentRequests"].isdigit()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("minReplicas: 1", "minReplicas: lots"),  # wrong type
        ("targetPort: 8000", "targetPrt: 8000"),  # typo: the SDK alone would drop it silently
        ("activeRevisionsMode: Multiple", "activeRevisionsMode: Several"),  # not an allowed value
        ("- type: Startup", "- type: Boot"),
        ("        probes:\n", "        probes: /readyz\n        unused:\n"),
    ],
)
def test_a_broken_copy_is_rejected(old: str, new: str) -> None:
    text = YAML_FILE.read_text()
    assert old in text
    with pytest.raises(ValueError):  # the SDK's DeserializationError is a ValueError too
        validate(render(text.replace(old, new, 1)))
