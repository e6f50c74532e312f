"""infra/k8s (Kustomize base + dev/prod overlays for AKS), checked offline.

1. Rendered: each overlay is built by `render()`, the part of Kustomize these files use (resources,
   namespace, labels, images, JSON 6902 patches), which refuses any other field; where `kubectl` is
   installed its own `kubectl kustomize` must produce the same objects, so the subset cannot drift.
2. Valid: every built-in kind against the OpenAPI schemas of Kubernetes `K8S_VERSION`
   (kubernetes-validate, strict: unknown fields are errors); the two custom resources (Secrets Store
   CSI `SecretProviderClass`, KEDA HTTP `HTTPScaledObject`) against schemas written here from their
   CRDs' fields (no registry ships those CRDs). Each validator is shown failing on a broken copy.
3. Coherent: what the API server would accept but an operator would be hurt by: selectors that miss,
   a secret key nobody syncs, probes on the wrong paths, a grace period shorter than the drain, a
   settings name the app does not know, a models file it cannot load.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import kubernetes_validate
import pytest
import yaml

from app.core.config import Settings
from app.core.models_file import load_models_file
from app.providers.registry import PROVIDERS
from tests.deploy.tools import ROOT

K8S = ROOT / "infra" / "k8s"
K8S_VERSION = "1.33.0"  # an AKS-supported minor; bump with the clusters
OVERLAYS = ["dev", "prod"]
KNOWN_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


# -- 1. rendering -------------------------------------------------------------------------------------


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize directory` builds, for the fields these files use."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    assert not unknown, f"{directory}: render() does not implement {sorted(unknown)}"
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else _load_all(path)
    for label in kustomization.get("labels", []):
        assert set(label) <= {"pairs", "includeSelectors"} and not label.get("includeSelectors")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        for container in _containers(objects):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        hits = [o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]]
        assert hits, f"{directory}: a patch targets no object: {target}"
        for obj in hits:
            patched = jsonpatch.apply_patch(obj, yaml.safe_load(patch["patch"]))
            obj.clear()
            obj.update(patched)
    return objects


def _pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            specs.append(obj["spec"]["template"]["spec"])
        elif obj["kind"] == "CronJob":
            specs.append(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


def _containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for spec in _pod_specs(objects) for c in spec["containers"]]


@functools.cache
def _built(overlay: str) -> str:
    return json.dumps(render(K8S / "overlays" / overlay))


def built(overlay: str) -> list[dict[str, Any]]:
    return json.loads(_built(overlay))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_render_matches_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here: render() alone builds the overlays (no registry ships kubectl)")
    out = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    theirs = sorted(_load_all_text(out.stdout), key=_key)
    ours = sorted(built(overlay), key=_key)
    assert [_key(o) for o in ours] == [_key(o) for o in theirs]
    for mine, real in zip(ours, theirs, strict=True):
        assert mine == real, f"{_key(mine)} differs from kubectl kustomize"


def _load_all_text(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_render_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(AssertionError, match="configMapGenerator"):
        render(tmp_path)


# -- 2. schemas ---------------------------------------------------------------------------------------

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _STRINGS},
    "additionalProperties": False,
}
#: From the CRD secrets-store.csi.x-k8s.io/v1 SecretProviderClass (spec: provider, parameters, secretObjects).
SECRET_PROVIDER_CLASS = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "secrets-store.csi.x-k8s.io/v1"},
        "kind": {"const": "SecretProviderClass"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "required": ["provider"],
            "additionalProperties": False,
            "properties": {
                "provider": {"type": "string", "enum": ["azure"]},
                "parameters": _STRINGS,
                "secretObjects": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["secretName", "type", "data"],
                        "additionalProperties": False,
                        "properties": {
                            "secretName": {"type": "string"},
                            "type": {"type": "string"},
                            "labels": _STRINGS,
                            "annotations": _STRINGS,
                            "data": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["objectName", "key"],
                                    "additionalProperties": False,
                                    "properties": {"objectName": {"type": "string"}, "key": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
#: From the CRD http.keda.sh/v1alpha1 HTTPScaledObject (KEDA HTTP add-on 0.8+).
HTTP_SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "http.keda.sh/v1alpha1"},
        "kind": {"const": "HTTPScaledObject"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef"],
            "additionalProperties": False,
            "properties": {
                "hosts": {"type": "array", "items": {"type": "string"}},
                "pathPrefixes": {"type": "array", "items": {"type": "string"}},
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["service", "port"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                        "service": {"type": "string"},
                        "port": _INT32,
                    },
                },
                "replicas": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"min": _INT32, "max": _INT32},
                },
                "scaledownPeriod": _INT32,
                "scalingMetric": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "concurrency": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"targetValue": _INT32},
                        },
                        "requestRate": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "granularity": {"type": "string"},
                                "targetValue": _INT32,
                                "window": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}
CUSTOM = {"SecretProviderClass": SECRET_PROVIDER_CLASS, "HTTPScaledObject": HTTP_SCALED_OBJECT}


def validate(obj: dict[str, Any]) -> None:
    """Raises on anything the API server (or the CRD's schema) would refuse."""
    if obj["kind"] in CUSTOM:
        jsonschema.validate(obj, CUSTOM[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def optional_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted((K8S / "optional").glob("*.yaml")) for doc in _load_all(path)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_pinned_kubernetes(overlay: str) -> None:
    objects = built(overlay)
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace", "ServiceAccount", "ConfigMap", "SecretProviderClass", "Deployment", "Service",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "Job", "CronJob",
    } <= kinds  # fmt: skip
    for obj in objects:
        validate(obj)


def test_the_optional_keda_object_is_valid() -> None:
    objects = optional_objects()
    assert [o["kind"] for o in objects] == ["HTTPScaledObject"]
    for obj in objects:
        validate(obj)


BROKEN = [
    ("Deployment", lambda d: d["spec"].__setitem__("replicas", "three"), "is not of type"),
    (
        "Deployment",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("livenessProbes", {}),
        "livenessProbes",
    ),
    ("HorizontalPodAutoscaler", lambda d: d["spec"].pop("maxReplicas"), "maxReplicas"),
    ("SecretProviderClass", lambda d: d["spec"].pop("provider"), "provider"),
    ("SecretProviderClass", lambda d: d["spec"]["secretObjects"][0]["data"][0].pop("key"), "key"),
]


@pytest.mark.parametrize(("kind", "breaks", "says"), BROKEN)
def test_each_validator_fails_on_a_broken_copy(kind: str, breaks: Any, says: str) -> None:
    obj = copy.deepcopy(one(built("prod"), kind))
    validate(copy.deepcopy(obj))
    breaks(obj)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError), match=says):
        validate(obj)


def test_the_keda_validator_fails_on_a_broken_copy() -> None:
    obj = copy.deepcopy(optional_objects()[0])
    del obj["spec"]["scaleTargetRef"]["port"]
    with pytest.raises(jsonschema.ValidationError, match="port"):
        validate(obj)


def test_an_unknown_kind_is_not_waved_through() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}})


# -- 3. coherence -------------------------------------------------------------------------------------


def _pod_labels(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, str]:
    return one(objects, kind)["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_references_meet(overlay: str) -> None:
    objects = built(overlay)
    deployment = one(objects, "Deployment")
    pods = _pod_labels(objects)
    namespace = one(objects, "Namespace")["metadata"]["name"]
    assert all(o["metadata"].get("namespace") == namespace for o in objects if o["kind"] != "Namespace")
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pods.items()
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= pods.items()
    assert one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pods.items()
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "slipway"}
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    port_names = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    backend = one(objects, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}

    # Every secret a pod reads is synced from Key Vault by the SecretProviderClass every pod mounts.
    synced = one(objects, "SecretProviderClass")
    keys = {(s["secretName"], d["key"]) for s in synced["spec"]["secretObjects"] for d in s["data"]}
    vault_objects = synced["spec"]["parameters"]["objects"]
    for spec in _pod_specs(objects):
        assert spec["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
        csi = [v["csi"] for v in spec["volumes"] if "csi" in v]
        assert [c["volumeAttributes"]["secretProviderClass"] for c in csi] == [synced["metadata"]["name"]]
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert (ref["name"], ref["key"]) in keys, ref
                    assert f"objectName: {ref['key']}" in vault_objects


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down_and_sized(overlay: str) -> None:
    for spec in _pod_specs(built(overlay)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile)
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
            assert container["image"].rsplit(":", 1)[1] != "latest", "overlays pin the image"
            # A read-only root: whatever the process writes goes to an emptyDir at /tmp.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_drain_fit_the_service(overlay: str) -> None:
    objects = built(overlay)
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "five minutes for the model load"
    env = {e["name"]: e.get("value") for e in container["env"]}
    readiness = container["readinessProbe"]
    delay = float(env["SLIPWAY_SHUTDOWN_DELAY_S"])
    assert delay > readiness["periodSeconds"] * readiness["failureThreshold"], "out of rotation before closing"
    assert spec["terminationGracePeriodSeconds"] > delay + float(env["SLIPWAY_SHUTDOWN_GRACE_S"])
    assert env["SLIPWAY_MIGRATE_ON_START"] == "false"
    assert one(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["args"][-3:] == ["app", "db", "upgrade"]
    strategy = one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_and_models_file_are_ones_the_app_reads(overlay: str, tmp_path: Path) -> None:
    objects = built(overlay)
    fields = {f"SLIPWAY_{name.upper()}" for name in Settings.model_fields}
    for container in _containers(objects):
        for env in container.get("env", []):
            if env["name"].startswith("SLIPWAY_") and env["name"] not in ("SLIPWAY_URL", "SLIPWAY_API_KEY"):
                assert env["name"] in fields, f"{env['name']} is no setting of app/core/config.py"
    path = tmp_path / "models.yaml"
    path.write_text(one(objects, "ConfigMap")["data"]["models.yaml"])
    models = load_models_file(path, PROVIDERS)
    assert models.default_model == "smollm2"


def test_prod_sizes_postgres_connections_for_its_largest_fleet() -> None:
    """replicas x (pool + overflow) at maxReplicas, as the overlay's comment states it."""
    objects = built("prod")
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    pool, overflow = int(env["SLIPWAY_DB_POOL_SIZE"]), int(env["SLIPWAY_DB_MAX_OVERFLOW"])
    most = one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    stated = f"{most} x ({pool} + {overflow}) = {most * (pool + overflow)}"
    assert stated in (K8S / "overlays" / "prod" / "kustomization.yaml").read_text()
