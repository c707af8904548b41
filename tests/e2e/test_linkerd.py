"""End to end, Linkerd through the real API server: the rendering follows the linkerd-config of the
installed release without a restart, a namespace's config.linkerd.io keys are defaults for its new
pods, and a pod that carries Istio's proxy is left alone with a warning."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.fidelity.reference import REFERENCE
from webhook.dev import cluster as dc

from .test_webhook import eventually, pod_body

pytestmark = pytest.mark.e2e

LINKERD = REFERENCE / "linkerd"
CONTROL_PLANE_NAMESPACE = "linkerd"


def _values(version: str) -> str:
    """The linkerd-config `values` that `linkerd install` of that release stores (from the goldens)."""
    return (LINKERD / "golden" / version / "values.yaml").read_text()


def _create(client: Any, namespace: str, body: Mapping[str, Any], *, dry_run: bool) -> tuple[dict[str, Any], list[str]]:
    """Create a pod; the stored (or dry-run) pod and the warnings the API server passed on."""
    core: Any = k8s.CoreV1Api(client)
    response = core.create_namespaced_pod(namespace, dict(body), dry_run="All" if dry_run else None, _preload_content=False)
    warnings = [w for k, w in response.getheaders().items() if k.lower() == "warning"]
    pod: dict[str, Any] = json.loads(response.data)
    return pod, warnings


def _container(pod: Mapping[str, Any], name: str) -> tuple[str, dict[str, Any]] | None:
    for section in ("initContainers", "containers"):
        for container in pod["spec"].get(section) or ():
            if container["name"] == name:
                return section, container
    return None


@pytest.fixture
def meshed(kube_client: Any) -> Iterator[Any]:
    """Make namespaces annotated as Linkerd users annotate them; delete them afterwards."""
    core: Any = k8s.CoreV1Api(kube_client)
    made: list[str] = []

    def make(annotations: Mapping[str, str]) -> str:
        name = f"l5d-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name, "annotations": dict(annotations)}})
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def linkerd_config(kube_client: Any) -> Iterator[Any]:
    """Write (and replace) the ConfigMap linkerd/linkerd-config; delete it afterwards."""
    core: Any = k8s.CoreV1Api(kube_client)
    try:
        core.create_namespace({"metadata": {"name": CONTROL_PLANE_NAMESPACE}})
    except ApiException as exc:
        if exc.status != 409:
            raise

    def write(version: str) -> None:
        body = {"metadata": {"name": "linkerd-config"}, "data": {"values": _values(version)}}
        try:
            core.replace_namespaced_config_map("linkerd-config", CONTROL_PLANE_NAMESPACE, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            core.create_namespaced_config_map(CONTROL_PLANE_NAMESPACE, body)

    yield write
    core.delete_namespaced_config_map("linkerd-config", CONTROL_PLANE_NAMESPACE)


def test_linkerd_config_version_changes_the_rendering_without_restart(
    kube_client: Any, webhook: dc.WebhookServer, meshed: Any, linkerd_config: Any
) -> None:
    ns = meshed({"linkerd.io/inject": "enabled"})
    pid = webhook.pid
    probe = pod_body("probe")

    linkerd_config("edge-25.10.7")
    # edge-25.10: classic proxy first in containers, proxy-init from its own image.
    pod = eventually(
        "the webhook to render edge-25.10.7",
        lambda: found if (found := _create(kube_client, ns, probe, dry_run=True)[0])["metadata"]["annotations"].get(
            "linkerd.io/proxy-version") == "edge-25.10.7" else None,
    )  # fmt: skip
    assert [c["name"] for c in pod["spec"]["containers"]] == ["linkerd-proxy", "app"]
    init = _container(pod, "linkerd-init")
    assert init is not None and init[1]["image"] == "cr.l5d.io/linkerd/proxy-init:v2.4.3"
    anchors = (LINKERD / "trust-anchors.pem").read_text().strip()
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"].strip() == anchors

    linkerd_config("edge-26.8.3")
    pod = eventually(
        "the webhook to render edge-26.8.3",
        lambda: found if (found := _create(kube_client, ns, probe, dry_run=True)[0])["metadata"]["annotations"].get(
            "linkerd.io/proxy-version") == "edge-26.8.3" else None,
    )  # fmt: skip
    proxy = _container(pod, "linkerd-proxy")
    assert proxy is not None and proxy[0] == "initContainers" and proxy[1]["restartPolicy"] == "Always"
    init = _container(pod, "linkerd-init")
    assert init is not None and init[1]["image"] == "cr.l5d.io/linkerd/proxy:edge-26.8.3"
    assert init[1]["command"] == ["/usr/lib/linkerd/linkerd2-proxy-init"]
    assert webhook.pid == pid


def test_namespace_config_keys_are_defaults_for_new_pods(kube_client: Any, webhook: dc.WebhookServer, meshed: Any) -> None:
    ns = meshed({"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-cpu-request": "200m"})
    eventually(
        "the namespace in the webhook's cache",
        lambda: _container(_create(kube_client, ns, pod_body("probe"), dry_run=True)[0], "linkerd-proxy"),
    )
    pod, _ = _create(kube_client, ns, pod_body("first"), dry_run=False)
    proxy = _container(pod, "linkerd-proxy")
    assert proxy is not None and proxy[1]["resources"]["requests"]["cpu"] == "200m"
    assert pod["metadata"]["annotations"]["config.linkerd.io/proxy-cpu-request"] == "200m"

    # The pod's own value wins over the namespace's.
    own = pod_body("own", annotations={"config.linkerd.io/proxy-cpu-request": "300m"})
    pod, _ = _create(kube_client, ns, own, dry_run=False)
    proxy = _container(pod, "linkerd-proxy")
    assert proxy is not None and proxy[1]["resources"]["requests"]["cpu"] == "300m"

    # A changed namespace default reaches the next pod, through the namespace watch.
    core: Any = k8s.CoreV1Api(kube_client)
    core.patch_namespace(ns, {"metadata": {"annotations": {"config.linkerd.io/proxy-cpu-request": "250m"}}})

    def next_pod() -> dict[str, Any] | None:
        found, _ = _create(kube_client, ns, pod_body(f"p-{uuid.uuid4().hex[:6]}"), dry_run=True)
        container = _container(found, "linkerd-proxy")
        return found if container and container[1]["resources"]["requests"]["cpu"] == "250m" else None

    eventually("the new namespace default", next_pod, timeout=30.0)


def test_pod_with_istio_sidecar_is_left_alone_with_a_warning(kube_client: Any, webhook: dc.WebhookServer, meshed: Any) -> None:
    ns = meshed({"linkerd.io/inject": "enabled"})
    body = pod_body("gateway")
    body["spec"]["containers"].append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.3"})
    eventually("the namespace in the webhook's cache", lambda: _container(_create(kube_client, ns, pod_body(), dry_run=True)[0], "linkerd-proxy"))
    pod, warnings = _create(kube_client, ns, body, dry_run=False)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app", "istio-proxy"]
    assert not pod["spec"].get("initContainers")
    assert not any(k.startswith(("linkerd.io/", "meshswitch.io/")) for k in pod["metadata"].get("annotations") or {})
    assert any("istio-proxy" in w and "linkerd" in w for w in warnings), warnings
