"""manifests/ as kustomize renders it: valid objects, the Deployment's hardening, least-privilege RBAC
that names exactly the plugins' control-plane objects, webhook entries that are disjoint and fail
closed only where a namespace selects a mesh by label, and names that agree with the commands."""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from webhook.cluster import findings as check
from webhook.cluster import layout
from webhook.engine.config import Config
from webhook.engine.discovery import control_plane_of
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import load_plugins
from webhook.server.options import ServeOptions, add_serve_arguments
from webhook.engine.values import load_values

ROOT = Path(__file__).resolve().parents[3]
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) is not installed")
SYSTEM = ("kube-system", "kube-public", "kube-node-lease", "meshswitch-system")


def render(path: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run([KUBECTL, "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render("manifests")}


def one(objects: Mapping[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for (k, _), o in objects.items() if k == kind]
    assert len(found) == 1, f"{kind}: {len(found)} objects"
    return found[0]


def test_renders_the_installation(objects: Mapping[tuple[str, str], Any]) -> None:
    assert sorted(objects) == sorted(
        [
            ("Namespace", "meshswitch-system"),
            ("ServiceAccount", "meshswitch"),
            ("ClusterRole", "meshswitch"),
            ("ClusterRoleBinding", "meshswitch"),
            ("ConfigMap", "meshswitch-templates"),
            ("ConfigMap", "meshswitch-values"),
            ("Deployment", "meshswitch"),
            ("Service", "meshswitch"),
            ("PodDisruptionBudget", "meshswitch"),
            ("MutatingWebhookConfiguration", "meshswitch"),
            ("ValidatingWebhookConfiguration", "meshswitch"),
        ]
    )
    for obj in objects.values():
        kubernetes_validate.validate(obj, "1.36", strict=True)
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            assert obj["metadata"]["namespace"] == "meshswitch-system", obj["kind"]


def test_deployment_is_hardened(objects: Mapping[tuple[str, str], Any]) -> None:
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {"kubernetes.io/hostname"}
    for constraint in pod["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == "meshswitch"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsUser"] == 65532 and security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
    assert container["image"].startswith("ghcr.io/meshswitch/meshswitch:")
    assert spec["template"]["metadata"]["labels"]["meshswitch.io/inject"] == "false"


def test_deployment_arguments_match_its_volumes_and_the_server(objects: Mapping[tuple[str, str], Any]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(container["args"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[str(args.cert_dir)]]["secret"]["secretName"] == layout.TLS_SECRET
    (templates,) = args.templates_dir
    assert volumes[mounts[str(templates)]]["configMap"]["name"] == check.TEMPLATES_CONFIGMAP
    values = Path(args.values)
    assert values.name == check.VALUES_KEY
    assert volumes[mounts[str(values.parent)]]["configMap"]["name"] == check.VALUES_CONFIGMAP
    assert args.webhook_namespace == "meshswitch-system"
    assert args.port == 8443
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["mountPath"] != "/tmp")
    graceful = ServeOptions.__dataclass_fields__["graceful_timeout_seconds"].default
    assert pod["terminationGracePeriodSeconds"] > args.drain_seconds + graceful
    # A request must be read before the API server gives up on the webhook.
    timeouts = [w["timeoutSeconds"] for w in one(objects, "MutatingWebhookConfiguration")["webhooks"]]
    assert args.read_timeout_seconds <= min(timeouts)


def test_values_configmap_loads(objects: Mapping[tuple[str, str], Any], tmp_path: Path) -> None:
    values = objects[("ConfigMap", check.VALUES_CONFIGMAP)]["data"][check.VALUES_KEY]
    (tmp_path / "values.yaml").write_text(values)
    load_values(tmp_path / "values.yaml", load_plugins())


def test_service_pdb_and_names_agree(objects: Mapping[tuple[str, str], Any]) -> None:
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = objects[("Service", layout.SERVICE)]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    mwc = objects[("MutatingWebhookConfiguration", layout.WEBHOOK_CONFIG)]
    for entry in mwc["webhooks"]:
        assert entry["clientConfig"]["service"] == {"name": layout.SERVICE, "namespace": "meshswitch-system", "path": "/mutate", "port": 443}
        assert "caBundle" not in entry["clientConfig"], "certs install or cert-manager fills it"
    vwc = objects[("ValidatingWebhookConfiguration", layout.WEBHOOK_CONFIG)]
    [entry] = vwc["webhooks"]
    assert entry["clientConfig"]["service"] == {"name": layout.SERVICE, "namespace": "meshswitch-system", "path": "/validate", "port": 443}
    assert entry["failurePolicy"] == "Ignore", "with the webhook down, namespaces can still be labelled"
    assert entry["rules"] == [
        {"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["namespaces"], "scope": "Cluster"}
    ]


def test_rbac_is_least_privilege(objects: Mapping[tuple[str, str], Any]) -> None:
    role = one(objects, "ClusterRole")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}
    assert len(rules) == len(role["rules"]) == 3
    namespaces = rules[(("",), ("namespaces",))]
    assert sorted(namespaces["verbs"]) == ["get", "list", "watch"] and "resourceNames" not in namespaces
    # The server never touches its webhook configuration: a compromised pod must not rewrite it.
    assert not [r for r in role["rules"] if "admissionregistration.k8s.io" in r["apiGroups"]]
    # Exactly the objects the shipped plugins' controlPlane sections name, read-only.
    wanted: dict[str, set[str]] = {}
    for plugin in load_plugins():
        for obj in control_plane_of(plugin):
            wanted.setdefault(obj.kind, set()).add(obj.name)
    deployments = rules[(("apps",), ("deployments",))]
    configmaps = rules[(("",), ("configmaps",))]
    assert set(deployments["resourceNames"]) == wanted.pop("Deployment")
    assert set(configmaps["resourceNames"]) == wanted.pop("ConfigMap")
    assert not wanted
    for rule in (deployments, configmaps):
        assert sorted(rule["verbs"]) == ["get", "list", "watch"]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "meshswitch", "namespace": "meshswitch-system"}]


def test_webhook_entries_are_shaped_as_asked(objects: Mapping[tuple[str, str], Any]) -> None:
    mwc = one(objects, "MutatingWebhookConfiguration")
    names = [e["name"] for e in mwc["webhooks"]]
    assert len(set(names)) == len(names)
    for entry in mwc["webhooks"]:
        assert entry["sideEffects"] == "None"
        assert entry["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert entry["timeoutSeconds"] <= 5
        assert entry["reinvocationPolicy"] == "IfNeeded"
        assert entry["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}]
        assert entry["objectSelector"] == {"matchExpressions": [{"key": "meshswitch.io/inject", "operator": "NotIn", "values": ["false"]}]}
        assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(SYSTEM)} in entry["namespaceSelector"]["matchExpressions"]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector, evaluated as the API server does."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for term in selector.get("matchExpressions") or ():
        key, operator, values = term["key"], term["operator"], term.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def selected_by_label(injector: Injector, labels: Mapping[str, str]) -> bool:
    """Whether the engine injects (or refuses) a pod that asks for nothing, in a namespace with
    these labels and no annotations: the namespace's labels alone chose a mesh for it."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": labels["kubernetes.io/metadata.name"]},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}  # fmt: skip
    try:
        return bool(injector.inject(pod, NamespaceMeta(labels["kubernetes.io/metadata.name"], labels, {})).plugins)
    except PodDenied:
        return True


def test_each_pod_reaches_at_most_one_entry_and_labelled_namespaces_fail_closed(objects: Mapping[tuple[str, str], Any]) -> None:
    webhooks = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    injector = Injector(plugins=load_plugins(), config=Config())
    cases = closed = 0
    for name, mode, istio, revision, other, inject in itertools.product(
        [*SYSTEM, "default", "shop"],
        [None, "istio", "linkerd", "native", "bogus"],
        [None, "enabled", "disabled", "ENABLED"],
        [None, "canary"],
        [None, "team-a"],
        [None, "false", "true"],
    ):
        ns = {"kubernetes.io/metadata.name": name}
        labels = (("meshswitch.io/mode", mode), ("istio-injection", istio), ("istio.io/rev", revision), ("team", other))
        ns.update({k: v for k, v in labels if v is not None})
        pod = {"meshswitch.io/inject": inject} if inject is not None else {}
        reached = [w for w in webhooks if selects(w["namespaceSelector"], ns) and selects(w["objectSelector"], pod)]
        cases += 1
        if name in SYSTEM or inject == "false":
            assert reached == [], (ns, pod)
            continue
        assert len(reached) == 1, (ns, pod, [w["name"] for w in reached])
        # The mode label fails closed whatever the mode then decides (a mesh's own off key may skip).
        by_label = mode is not None or selected_by_label(injector, ns)
        closed += by_label
        assert reached[0]["failurePolicy"] == ("Fail" if by_label else "Ignore"), (ns, reached[0]["name"])
    assert cases == 6 * 5 * 4 * 2 * 2 * 3
    assert 0 < closed < cases


def test_cert_manager_overlay() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("manifests/overlays/cert-manager")}
    mwc = objects[("MutatingWebhookConfiguration", "meshswitch")]
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "meshswitch-system/meshswitch"
    vwc = objects[("ValidatingWebhookConfiguration", "meshswitch")]
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "meshswitch-system/meshswitch"
    shipped = one({(o["kind"], o["metadata"]["name"]): o for o in render("manifests")}, "MutatingWebhookConfiguration")
    assert mwc["webhooks"] == shipped["webhooks"], "the patch adds the annotation and keeps the webhooks"
    serving = objects[("Certificate", "meshswitch")]
    assert serving["metadata"]["namespace"] == "meshswitch-system"
    assert serving["spec"]["secretName"] == layout.TLS_SECRET
    assert "meshswitch.meshswitch-system.svc" in serving["spec"]["dnsNames"]
    issuer = objects[("Issuer", serving["spec"]["issuerRef"]["name"])]
    ca = objects[("Certificate", issuer["spec"]["ca"]["secretName"])]
    assert ca["spec"]["isCA"] is True
    assert objects[("Issuer", ca["spec"]["issuerRef"]["name"])]["spec"] == {"selfSigned": {}}
    base = {(o["kind"], o["metadata"]["name"]) for o in render("manifests")}
    assert base <= set(objects)


def test_replicas_spread_and_are_evicted_last(objects: Mapping[tuple[str, str], Any]) -> None:
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "system-cluster-critical"
    [term] = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    labels = spec.get("containers") and one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert selector and all(labels[k] == v for k, v in selector.items()), "the term must select the webhook's own pods"


def test_network_policy_overlay_admits_only_the_webhook_port() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render("manifests/overlays/network-policy")}
    policy = objects[("NetworkPolicy", "meshswitch")]
    deployment = objects[("Deployment", "meshswitch")]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    container_ports = {p["containerPort"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert [p["port"] for p in rule["ports"]] == sorted(container_ports) == [8443]
    assert rule["ports"][0]["protocol"] == "TCP" and "from" not in rule
    base = {(o["kind"], o["metadata"]["name"]) for o in render("manifests")}
    assert base <= set(objects)
