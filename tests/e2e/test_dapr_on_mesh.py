"""End to end: Dapr stacked on each mesh, through the local API server and `meshswitch serve`.

Both sidecars are as the two injectors chained make them in a cluster, where dapr-sidecar-injector
sorts before the mesh's injector: daprd is Dapr's (for the release in the values), and the mesh's
injector sees it as one of the pod's containers (Istio rewrites its probes through the agent,
Linkerd counts its ports); otherwise the mesh's sidecar is the one a mesh-only pod gets, first among
the native sidecars so daprd's traffic goes through it. A pod the mesh's own injector already
rendered keeps its proxy and gets daprd beside it, with Dapr's env on every container as Dapr does.
No mesh enters Dapr's control-plane namespace.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s

from webhook.dev import cluster as dc
from webhook.dev import controlplane as cp

from .conftest import NamespaceFactory
from .test_webhook import assert_injected, container_names, create_pod, eventually, init_names, list_pods, pod_body

pytestmark = pytest.mark.e2e

DAPR = {"dapr.io/enabled": "true", "dapr.io/app-id": "web"}
MESH_SIDECARS = {"istio": ["istio-init", "istio-proxy"], "linkerd": ["linkerd-init", "linkerd-proxy"], "envoy": ["envoy-init", "envoy"]}


def _init(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["initContainers"] if c["name"] == name)


def _own(container: dict[str, Any]) -> dict[str, Any]:
    """A container without its env and the API server's per-pod token mount (kube-api-access-<random>)."""
    mounts = [m for m in container.get("volumeMounts") or [] if not m["name"].startswith("kube-api-access-")]
    return {**{k: v for k, v in container.items() if k != "env"}, "volumeMounts": mounts}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env") or []}


@pytest.mark.parametrize("mesh", sorted(MESH_SIDECARS))
def test_dapr_on_each_mesh_keeps_both_sidecars(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory, mesh: str
) -> None:
    ns = namespace_factory(labels={dc.MODE_LABEL: mesh})
    # The same pod without Dapr, in a namespace of the same mode (a proxy may carry the pod's name).
    alone = create_pod(kube_client, namespace_factory(labels={dc.MODE_LABEL: mesh}), pod_body(name="web"))
    both = create_pod(kube_client, ns, pod_body(name="web", annotations=DAPR))
    assert_injected(both, mesh, "dapr")
    assert init_names(both) == [*MESH_SIDECARS[mesh], "daprd"]
    assert container_names(both) == ["app"]
    # The mesh's containers are the ones a mesh-only pod gets but for the env that describes the
    # pod's containers (the mesh's injector, called after Dapr's, sees daprd); no Dapr env in them.
    for name in MESH_SIDECARS[mesh]:
        mine, theirs = _init(both, name), _init(alone, name)
        assert _own(mine) == _own(theirs)
        assert not {n for n in _env(mine) if n.startswith(("DAPR_", "APP_PROTOCOL"))}
    daprd = _init(both, "daprd")
    if mesh == "istio":  # the kubelet reaches daprd through the agent, as after Istio's own injector
        assert daprd["readinessProbe"]["httpGet"]["path"] == "/app-health/daprd/readyz"
        assert "/app-health/daprd/readyz" in _env(_init(both, "istio-proxy"))["ISTIO_KUBE_APP_PROBERS"]
    if mesh == "linkerd":
        assert "3500" in _env(_init(both, "linkerd-proxy"))["LINKERD2_PROXY_INBOUND_PORTS"].split(",")
    assert daprd["args"][0] == "/daprd" and daprd["args"][daprd["args"].index("--app-id") + 1] == "web"
    assert daprd["image"].startswith("ghcr.io/dapr/daprd:") and daprd["restartPolicy"] == "Always"
    assert _env(daprd)["NAMESPACE"] == ns
    assert both["metadata"]["labels"]["dapr.io/app-id"] == "web"
    app_env = _env(both["spec"]["containers"][0])
    assert app_env["DAPR_HTTP_PORT"] == "3500" and app_env["DAPR_GRPC_PORT"] == "50001" and app_env["APP_PROTOCOL"] == "http"
    stored = {p["metadata"]["name"]: p for p in list_pods(kube_client, ns)}
    assert init_names(stored["web"]) == init_names(both)


def test_pod_the_linkerd_injector_rendered_keeps_its_proxy_and_gets_daprd(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={dc.MODE_LABEL: "linkerd"})
    body = pod_body(annotations={**DAPR, "linkerd.io/inject": "enabled"})
    proxy = {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3", "env": [{"name": "LINKERD2_PROXY_LOG", "value": "warn"}]}
    body["spec"]["containers"].insert(0, proxy)
    pod = create_pod(kube_client, ns, body)
    assert container_names(pod) == ["linkerd-proxy", "app"]  # Linkerd's webhook skips it; so do we
    assert init_names(pod) == ["daprd"]
    assert json.loads(pod["metadata"]["annotations"]["meshswitch.io/status"])["plugins"] == ["dapr"]
    kept = pod["spec"]["containers"][0]
    assert kept["image"] == proxy["image"] and _env(kept)["LINKERD2_PROXY_LOG"] == "warn"
    # Dapr adds its env to every container, the mesh's proxy included (as Dapr's injector does).
    assert _env(kept)["DAPR_HTTP_PORT"] == "3500"


def test_deployment_with_dapr_on_istio(kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory) -> None:
    ns = namespace_factory(labels={dc.MODE_LABEL: "istio"})
    apps: Any = k8s.AppsV1Api(kube_client)

    def deployment(name: str, annotations: dict[str, str]) -> dict[str, Any]:
        template = pod_body(name="", annotations=annotations)
        template["metadata"] = {"labels": {"app": name}, "annotations": annotations}
        return {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {"metadata": template["metadata"], "spec": template["spec"]}},
        }  # fmt: skip

    apps.create_namespaced_deployment(ns, deployment("orders", {"dapr.io/enabled": "true", "dapr.io/app-id": "orders"}))
    pods = eventually("the Deployment's pod", lambda: list_pods(kube_client, ns, "app=orders") or None)
    assert init_names(pods[0]) == ["istio-init", "istio-proxy", "daprd"]
    # Without an app id a controller's pod has no name to fall back on: Dapr refuses it, so do we.
    apps.create_namespaced_deployment(ns, deployment("nameless", {"dapr.io/enabled": "true"}))

    def refusal() -> str | None:
        for rs in apps.list_namespaced_replica_set(ns, label_selector="app=nameless").items:
            for condition in rs.status.conditions or []:
                if condition.type == "ReplicaFailure" and "dapr.io/app-id" in (condition.message or ""):
                    return str(condition.message)
        return None

    assert "metadata.name" in eventually("the ReplicaSet's refusal naming dapr.io/app-id", refusal)
    assert list_pods(kube_client, ns, "app=nameless") == []


def test_no_mesh_in_the_dapr_control_plane_namespace(kube_client: Any, webhook: dc.WebhookServer, namespace: str) -> None:
    ns_other = namespace
    core: Any = k8s.CoreV1Api(kube_client)
    name = "dapr-system"
    core.create_namespace({"metadata": {"name": name, "labels": {dc.MODE_LABEL: "istio"}}})
    try:
        cp.wait_for_service_account(kube_client, name)
        # The pod's own mode label asks for Istio, so the namespace cache's timing does not matter.
        meshed = {dc.MODE_LABEL: "istio"}
        plain = create_pod(kube_client, name, pod_body(name="sentry", labels=meshed))
        assert init_names(plain) == [] and container_names(plain) == ["app"]
        assert "meshswitch.io/status" not in (plain["metadata"].get("annotations") or {})
        dapr = create_pod(kube_client, name, pod_body(name="web", labels=meshed, annotations=DAPR))
        assert init_names(dapr) == ["daprd"]
        elsewhere = create_pod(kube_client, ns_other, pod_body(name="control", labels=meshed))
        assert init_names(elsewhere) == ["istio-init", "istio-proxy"]  # the same pod elsewhere is meshed
    finally:
        core.delete_namespace(name, propagation_policy="Background")
