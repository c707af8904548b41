"""Every object manifests/ renders to is accepted by the real API server (server-side dry-run create),
and its ClusterRole grants what the server does and nothing more (checked by impersonating the
ServiceAccount).

Other tests share this control plane: cluster-scoped objects are renamed with this run's id and the
namespaced ones go to a fresh namespace standing in for meshswitch-system, so nothing collides."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from tests.e2e.shipping.conftest import Stack, render
from webhook.cluster.client import KubeApi, api_client

pytestmark = pytest.mark.e2e
PATHS = {
    "Namespace": "/api/v1/namespaces",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
}


def relocated(objects: list[dict[str, Any]], namespace: str, suffix: str) -> list[dict[str, Any]]:
    """Cluster-scoped names get `suffix`; meshswitch-system becomes `namespace` wherever it is named."""
    text = json.dumps(objects).replace('"meshswitch-system"', json.dumps(namespace))
    moved: list[dict[str, Any]] = json.loads(text)
    for obj in moved:
        if obj["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            obj["metadata"]["name"] += f"-{suffix}"
        if obj["kind"] == "ClusterRoleBinding":
            obj["roleRef"]["name"] += f"-{suffix}"
    return moved


@pytest.mark.parametrize("path", ["manifests", "manifests/overlays/cert-manager"])
def test_every_rendered_object_is_accepted(stack: Stack, path: str) -> None:
    home = stack.make_namespace(prefix="manifests", selected=False)
    objects = render(path)
    if path.endswith("cert-manager"):
        # The cert-manager CRDs are not installed here; their objects are checked in tests/unit.
        objects = [o for o in objects if not o["apiVersion"].startswith("cert-manager.io/")]
    kinds = set()
    for obj in relocated(objects, home, uuid.uuid4().hex[:6]):
        url = PATHS[obj["kind"]].format(ns=home)
        created = stack.kube.call("POST", url, body=obj, query=[("dryRun", "All"), ("fieldValidation", "Strict")])
        assert created["metadata"]["name"] == obj["metadata"]["name"]
        kinds.add(obj["kind"])
    assert kinds == set(PATHS)


def test_the_cluster_role_grants_exactly_what_the_server_reads(stack: Stack) -> None:
    from webhook.cluster.client import ApiError

    home = stack.make_namespace(prefix="rbac", selected=False)
    suffix = uuid.uuid4().hex[:6]
    objects = {o["kind"]: o for o in relocated(render(), home, suffix)}
    made = []
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        stack.kube.call("POST", PATHS[kind].format(ns=home), body=objects[kind])
        made.append(kind)
    role_name = objects["ClusterRole"]["metadata"]["name"]
    try:
        impersonated = api_client(stack.kubeconfig)
        impersonated.set_default_header("Impersonate-User", f"system:serviceaccount:{home}:meshswitch")
        kube = KubeApi(impersonated)

        def allowed(method: str, path: str, query: list[tuple[str, str]] | None = None, body: Any = None) -> bool:
            try:
                kube.call(method, path, query=query or [], body=body, content_type="application/merge-patch+json")
                return True
            except json.JSONDecodeError:
                return True  # a watch: a stream of events, not one document
            except ApiError as err:
                if err.status == 403:
                    return False
                if err.status == 404:
                    return True  # authorized, the object just is not there
                raise

        def by_name(name: str) -> list[tuple[str, str]]:
            return [("fieldSelector", f"metadata.name={name}")]

        # What the server does: namespaces, and each control-plane object by name (list+watch, get).
        assert allowed("GET", "/api/v1/namespaces")
        assert allowed("GET", "/api/v1/namespaces", [("watch", "true"), ("timeoutSeconds", "1")])
        assert allowed("GET", f"/api/v1/namespaces/{home}")
        for namespace, plural, name in (
            ("istio-system", "deployments", "istiod"),
            ("linkerd", "deployments", "linkerd-destination"),
            ("dapr-system", "deployments", "dapr-sidecar-injector"),
            ("dapr-system", "deployments", "dapr-sentry"),
        ):
            assert allowed("GET", f"/apis/apps/v1/namespaces/{namespace}/{plural}", by_name(name)), name
            watch = [*by_name(name), ("watch", "true"), ("timeoutSeconds", "1")]
            assert allowed("GET", f"/apis/apps/v1/namespaces/{namespace}/{plural}", watch), name
            assert allowed("GET", f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}"), name
        for namespace, name in (("linkerd", "linkerd-config"), ("istio-system", "istio-sidecar-injector"), ("istio-system", "istio")):
            assert allowed("GET", f"/api/v1/namespaces/{namespace}/configmaps", by_name(name)), name
            watch = [*by_name(name), ("watch", "true"), ("timeoutSeconds", "1")]
            assert allowed("GET", f"/api/v1/namespaces/{namespace}/configmaps", watch), name
            assert allowed("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}"), name
        # Not even its own webhook configuration: a compromised server must not reroute or widen it
        # (only `certs install`, with the operator's credentials, patches its caBundle).
        own = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/meshswitch"
        assert not allowed("PATCH", own, body={"webhooks": [{"name": "x", "clientConfig": {"url": "https://evil.example"}}]})
        assert not allowed("GET", own)
        # Nothing more.
        assert not allowed("GET", "/apis/apps/v1/namespaces/istio-system/deployments")
        assert not allowed("GET", "/apis/apps/v1/namespaces/istio-system/deployments/other")
        assert not allowed("GET", "/api/v1/namespaces/linkerd/configmaps")
        assert not allowed("GET", "/api/v1/namespaces/istio-system/configmaps")
        assert not allowed("GET", "/api/v1/namespaces/istio-system/configmaps/other")
        assert not allowed("GET", f"/api/v1/namespaces/{home}/secrets")
        assert not allowed("GET", "/api/v1/pods")
        assert not allowed("PATCH", f"/api/v1/namespaces/{home}", body={"metadata": {"labels": {"x": "y"}}})
        assert not allowed("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations")
        assert not allowed("GET", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{stack.config_name}")
        assert not allowed("PATCH", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{stack.config_name}", body={"metadata": {"labels": {"x": "y"}}})
        impersonated.close()
    finally:
        for kind in reversed(made):
            if kind != "ServiceAccount":
                name = copy.deepcopy(objects[kind]["metadata"]["name"])
                stack.kube.call("DELETE", f"{PATHS[kind]}/{name}")
    assert role_name.endswith(suffix)
