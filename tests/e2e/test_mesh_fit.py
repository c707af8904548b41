"""Fitting the installed mesh, against the local control plane: discovery of istiod and linkerd-config,
the missing-control-plane warning, and delegation to a mesh's own injector (a stand-in records it)."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from webhook import certs
from webhook.dev import controlplane as cp

pytestmark = pytest.mark.e2e

ISTIO_WARNING = "istio: control plane not found (Deployment istio-system/istiod)"


def _pod(name: str = "app") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}


def dry_run(kube_client: Any, namespace: str, pod: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """A server-side dry-run create: the pod as admitted, and the warnings the API server passed on."""
    from kubernetes import client as k8s

    core: Any = k8s.CoreV1Api(kube_client)  # with _preload_content=False it answers the raw HTTP response
    response = core.create_namespaced_pod(namespace, pod or _pod(), dry_run="All", _preload_content=False)
    return orjson.loads(response.data), list(response.headers.getlist("Warning"))


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


def until(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll until the watches catch up (bounded)."""
    return cp.wait_until(what, probe, timeout, interval=0.2)


@pytest.fixture
def system_namespace(kube_client: Any) -> Iterator[Callable[[str], str]]:
    """Create fixed-name namespaces (istio-system, linkerd) for a test, and delete them afterwards."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    core: Any = k8s.CoreV1Api(kube_client)
    created: list[str] = []

    def make(name: str) -> str:
        try:
            core.create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        created.append(name)
        return name

    yield make
    for name in created:
        core.delete_namespace(name, propagation_policy="Foreground")
    for name in created:  # the next test may create it again: wait until it is really gone
        until(f"namespace {name} deleted", lambda: not _exists(core, name), timeout=60)  # polled before the loop moves on


def _exists(core: Any, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def istiod(tag: str, name: str = "istiod") -> dict[str, Any]:
    labels = {"app": "istiod"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,  # it never runs: only its image tag matters
            "selector": {"matchLabels": {"app": "istiod", "meshswitch-e2e": name}},
            "template": {
                "metadata": {"labels": {**labels, "meshswitch-e2e": name}},
                "spec": {"containers": [{"name": "discovery", "image": f"docker.io/istio/pilot:{tag}"}]},
            },
        },
    }


def test_istiod_release_is_followed_with_no_restart_and_its_absence_warned(
    kube_client: Any, webhook: Any, namespace_factory: Callable[..., str], system_namespace: Callable[[str], str]
) -> None:
    from kubernetes import client as k8s

    apps: Any = k8s.AppsV1Api(kube_client)
    namespace = namespace_factory({"meshswitch.io/mode": "istio"})
    pod, warnings = dry_run(kube_client, namespace)
    assert container(pod, "istio-proxy")["image"] == "docker.io/istio/proxyv2:1.30.3"
    assert any(ISTIO_WARNING in w for w in warnings), warnings

    # Istio 1.28 found: its tag, and its own template (no resourceFieldRef divisor, stored as "0").
    apps.create_namespaced_deployment(system_namespace("istio-system"), istiod("1.28.10"))
    pod, warnings = until(
        "the proxy to follow istiod 1.28.10",
        lambda: (r := dry_run(kube_client, namespace)) and container(r[0], "istio-proxy")["image"].endswith(":1.28.10") and r,
    )
    assert container(pod, "istio-init")["image"] == "docker.io/istio/proxyv2:1.28.10"
    divisor = next(e for e in container(pod, "istio-proxy")["env"] if e["name"] == "ISTIO_CPU_LIMIT")["valueFrom"]["resourceFieldRef"]["divisor"]
    assert divisor == "0"
    assert not any(ISTIO_WARNING in w for w in warnings), warnings

    # Upgraded to 1.30 in place: the next pod follows, with no restart of meshswitch.
    apps.patch_namespaced_deployment("istiod", "istio-system", {"spec": {"template": {"spec": {"containers": [
        {"name": "discovery", "image": "docker.io/istio/pilot:1.30.3"}]}}}})  # fmt: skip
    pod = until("the proxy to follow istiod 1.30.3", lambda: (p := dry_run(kube_client, namespace)[0]) and container(p, "istio-proxy")["image"].endswith(":1.30.3") and p)
    divisor = next(e for e in container(pod, "istio-proxy")["env"] if e["name"] == "ISTIO_CPU_LIMIT")["valueFrom"]["resourceFieldRef"]["divisor"]
    assert divisor == "1"

    apps.delete_namespaced_deployment("istiod", "istio-system")
    pod, warnings = until(
        "the warning to come back", lambda: (r := dry_run(kube_client, namespace)) and any(ISTIO_WARNING in w for w in r[1]) and r
    )
    assert container(pod, "istio-proxy")["image"] == "docker.io/istio/proxyv2:1.30.3", "back to the configured values"


def test_revision_labelled_namespace_uses_that_revisions_istiod(
    kube_client: Any, webhook: Any, namespace_factory: Callable[..., str], system_namespace: Callable[[str], str]
) -> None:
    from kubernetes import client as k8s

    apps: Any = k8s.AppsV1Api(kube_client)
    namespace = namespace_factory({"istio.io/rev": "canary"})
    pod, warnings = dry_run(kube_client, namespace)
    proxy = container(pod, "istio-proxy")
    assert {"name": "CA_ADDR", "value": "istiod-canary.istio-system.svc:15012"} in proxy["env"]
    assert pod["metadata"]["annotations"]["istio.io/rev"] == "canary"
    assert any("istiod-canary" in w for w in warnings), warnings

    apps.create_namespaced_deployment(system_namespace("istio-system"), istiod("1.29.6", name="istiod-canary"))
    pod, warnings = until(
        "the canary revision to follow istiod-canary 1.29.6",
        lambda: (r := dry_run(kube_client, namespace)) and container(r[0], "istio-proxy")["image"].endswith(":1.29.6") and r,
    )
    assert not any("istiod-canary" in w for w in warnings), warnings

    # A revision tag (istioctl tag set prod --revision canary): pods asking for prod get canary.
    admission: Any = k8s.AdmissionregistrationV1Api(kube_client)
    tag = {"metadata": {"name": "istio-revision-tag-prod", "labels": {"istio.io/tag": "prod", "istio.io/rev": "canary"}}, "webhooks": []}
    admission.create_mutating_webhook_configuration(tag)
    try:
        tagged = namespace_factory({"istio.io/rev": "prod"})
        pod = until(
            "the prod tag to resolve to canary",
            lambda: (p := dry_run(kube_client, tagged)[0]) and p["metadata"]["annotations"].get("istio.io/rev") == "canary" and p,
        )
        assert {"name": "CA_ADDR", "value": "istiod-canary.istio-system.svc:15012"} in container(pod, "istio-proxy")["env"]
        assert container(pod, "istio-proxy")["image"].endswith(":1.29.6")
    finally:
        admission.delete_mutating_webhook_configuration("istio-revision-tag-prod")
        apps.delete_namespaced_deployment("istiod-canary", "istio-system")


INSTALL_RESOURCES = {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


def _init_names(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers", [])]


def test_istio_install_values_follow_the_injector_config_map_with_no_restart(
    kube_client: Any, webhook: Any, namespace_factory: Callable[..., str], system_namespace: Callable[[str], str]
) -> None:
    """The istio-sidecar-injector ConfigMap's `values` (JSON, as Istio's chart writes it) reach the
    next pod: an install with the CNI agent gets istio-validation and the install's proxy resources;
    gone again, the next pod has istio-init and the plugin's defaults."""
    from kubernetes import client as k8s

    core: Any = k8s.CoreV1Api(kube_client)
    namespace = namespace_factory({"meshswitch.io/mode": "istio"})
    pod, _ = dry_run(kube_client, namespace)
    assert "istio-init" in _init_names(pod) and "istio-validation" not in _init_names(pod)
    default_resources = container(pod, "istio-proxy")["resources"]

    values = {"pilot": {"cni": {"enabled": True}}, "global": {"proxy": {"resources": INSTALL_RESOURCES, "includeInboundPorts": ""}}}
    config_map = {"metadata": {"name": "istio-sidecar-injector"}, "data": {"values": json.dumps(values), "config": "policy: enabled"}}
    core.create_namespaced_config_map(system_namespace("istio-system"), config_map)
    pod = until("istio-validation from the install's pilot.cni.enabled", lambda: (p := dry_run(kube_client, namespace)[0]) and "istio-validation" in _init_names(p) and p)
    assert "istio-init" not in _init_names(pod)
    assert container(pod, "istio-proxy")["resources"] == INSTALL_RESOURCES
    assert container(pod, "istio-validation")["resources"] == INSTALL_RESOURCES
    # An empty install value is Istio's value too (keepEmpty): the CNI agent gets an empty inbound list.
    assert pod["metadata"]["annotations"]["traffic.sidecar.istio.io/includeInboundPorts"] == ""

    core.delete_namespaced_config_map("istio-sidecar-injector", "istio-system")
    pod = until("istio-init back once the ConfigMap is gone", lambda: (p := dry_run(kube_client, namespace)[0]) and "istio-init" in _init_names(p) and p)
    assert "istio-validation" not in _init_names(pod)
    assert container(pod, "istio-proxy")["resources"] == default_resources


LINKERD_VALUES = """\
linkerdVersion: edge-25.9.1
identityTrustAnchorsPEM: |
  -----BEGIN CERTIFICATE-----
  MIIBkzCCATmgAwIBAgIQAtest
  -----END CERTIFICATE-----
"""


def test_linkerd_config_gives_version_and_trust_anchors(
    kube_client: Any, webhook: Any, namespace_factory: Callable[..., str], system_namespace: Callable[[str], str]
) -> None:
    from kubernetes import client as k8s

    core: Any = k8s.CoreV1Api(kube_client)
    namespace = namespace_factory({"meshswitch.io/mode": "linkerd"})
    pod, warnings = dry_run(kube_client, namespace)
    assert any("linkerd: control plane not found" in w for w in warnings), warnings
    assert "linkerd.io/trust-root-sha256" not in pod["metadata"]["annotations"]

    core.create_namespaced_config_map(system_namespace("linkerd"), {"metadata": {"name": "linkerd-config"}, "data": {"values": LINKERD_VALUES}})

    def followed() -> dict[str, Any] | None:
        candidate = dry_run(kube_client, namespace)[0]
        return candidate if container(candidate, "linkerd-proxy")["image"].endswith(":edge-25.9.1") else None

    pod = until("linkerd-proxy to follow linkerd-config", followed)
    env = {e["name"]: e.get("value") for e in container(pod, "linkerd-proxy")["env"]}
    assert env["LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"].startswith("-----BEGIN CERTIFICATE-----")
    assert pod["metadata"]["annotations"]["linkerd.io/proxy-version"] == "edge-25.9.1"
    assert len(pod["metadata"]["annotations"]["linkerd.io/trust-root-sha256"]) == 64


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in for a mesh's own injector: records each pod it is sent and adds nothing."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        review = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(review["request"]["object"])
        body = orjson.dumps({"apiVersion": review["apiVersion"], "kind": "AdmissionReview",
                             "response": {"uid": review["request"]["uid"], "allowed": True}})  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in_injector(kube_client: Any, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """An HTTPS webhook registered like Istio's pod-label entry, under a name that sorts after meshswitch's."""
    generated = certs.generate(tmp_path / "certs", dns_names=["localhost"], ips=["127.0.0.1"])
    received: list[dict[str, Any]] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(generated.tls_cert, generated.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = "zz-istio-stand-in"
    cp.apply_mutating_webhook(kube_client, {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "sidecar-injector.stand-in.test",
            "clientConfig": {"url": f"https://127.0.0.1:{server.server_address[1]}/inject",
                             "caBundle": base64.b64encode(Path(generated.ca_cert).read_bytes()).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "namespaceSelector": {"matchLabels": {"meshswitch.io/mode": "istio-delegate"}},
            "objectSelector": {"matchLabels": {"sidecar.istio.io/inject": "true"}},
        }],
    })  # fmt: skip
    yield received
    from kubernetes import client as k8s

    k8s.AdmissionregistrationV1Api(kube_client).delete_mutating_webhook_configuration(name)
    server.shutdown()


def test_istio_delegate_leaves_injection_to_the_mesh_webhook(
    kube_client: Any, webhook: Any, namespace_factory: Callable[..., str], stand_in_injector: list[dict[str, Any]]
) -> None:
    namespace = namespace_factory({"meshswitch.io/mode": "istio-delegate"})
    pod = until(
        "the stand-in injector to be called",
        lambda: (created := dry_run(kube_client, namespace, _pod(f"delegated-{len(stand_in_injector)}"))[0]) and stand_in_injector and created,
    )
    received = stand_in_injector[-1]
    assert received["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert "meshswitch.io/status" in received["metadata"]["annotations"], "meshswitch ran before the mesh's webhook"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]
    assert "initContainers" not in pod["spec"], "meshswitch itself injected nothing"


def test_explain_reads_the_cluster_and_names_a_missing_control_plane(
    control_plane: Any, webhook: Any, namespace_factory: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from webhook.cli.main import main

    namespace = namespace_factory({"istio-injection": "enabled"})
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(orjson.dumps({**_pod(), "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": namespace}}).decode())
    assert main(["explain", "-f", str(manifest), "--kubeconfig", str(control_plane.kubeconfig)]) == 0
    out = capsys.readouterr().out
    assert f"pod/app ({namespace}): istio [injected]" in out, out
    assert f"warning: {ISTIO_WARNING}" in out, out
