"""Every plugin on every workload of the corpora (tests/corpus, and ../shared/manifests where present):
the patch applies, the pod validates against the 1.36 schemas, the right parts are added, uninject
gives the original back, a second pass is a no-op."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tests.corpora import pods
from tests.helpers import apply, make_injector, namespace, validate_pod
from webhook.engine.injector import Injector
from webhook.engine.patch import uninject

PODS = pods()
EXPECTED = {
    # plugin: (redirect init containers, proxies, volumes, labels, annotations)
    "istio": (
        ["istio-init"],
        ["istio-proxy"],
        ["workload-socket", "credential-socket", "workload-certs", "istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert", "istio-ca-crl"],
        ["security.istio.io/tlsMode", "service.istio.io/canonical-name", "service.istio.io/canonical-revision"],
        ["sidecar.istio.io/status", "istio.io/rev"],
    ),
    "linkerd": (
        ["linkerd-init"],
        ["linkerd-proxy"],
        ["linkerd-proxy-init-xtables-lock", "linkerd-identity-end-entity", "linkerd-identity-token"],
        ["linkerd.io/control-plane-ns", "linkerd.io/workload-ns"],
        ["linkerd.io/proxy-version", "linkerd.io/created-by"],
    ),
    "envoy": (["envoy-init"], ["envoy"], ["envoy-bootstrap"], [], []),
    "dapr": ([], ["daprd"], ["dapr-identity-token"], ["dapr.io/sidecar-injected", "dapr.io/app-id"], []),
}
# Classic style: these meshes' proxies go before the app's containers (Linkerd's linkerd-await holds
# the app until the proxy is ready); the others' are appended.
CLASSIC_FIRST = frozenset({"linkerd"})
INJECTOR = make_injector()
CLASSIC = make_injector(sidecar_style="classic")


def _request(plugin: str, pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The pod as it would arrive for this plugin, and the namespace's labels."""
    pod = copy.deepcopy(pod)
    if plugin == "dapr":
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations["dapr.io/enabled"] = "true"
        # A controller's pod has no name at admission, so Dapr (and meshswitch) need an app id.
        name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "").rstrip("-")
        annotations.setdefault("dapr.io/app-id", name[:58].rstrip("-"))
        return pod, {}
    return pod, {"meshswitch.io/mode": plugin}


@pytest.mark.parametrize("plugin", sorted(EXPECTED))
@pytest.mark.parametrize("injector", [INJECTOR, CLASSIC], ids=["native-sidecar", "classic"])
@pytest.mark.parametrize(("workload", "pod"), PODS, ids=[w for w, _ in PODS])
def test_plugin_on_corpus_workload(plugin: str, injector: Injector, workload: str, pod: dict[str, Any]) -> None:
    request, labels = _request(plugin, pod)
    original = copy.deepcopy(request)
    result = injector.inject(request, namespace("demo", labels))
    assert request == original, "the engine must not mutate its input"
    if request["spec"].get("hostNetwork") and plugin != "dapr":
        # Rule 5: a mesh skips hostNetwork pods (it cannot redirect the node's traffic).
        assert (result.plugins, result.patch, result.reason.code) == ((), [], "host-network")
        return
    assert result.plugins == (plugin,)
    injected = apply(request, result.patch)
    validate_pod(injected)

    inits, proxies, volumes, labels_added, annotations_added = EXPECTED[plugin]
    native = injector is INJECTOR
    init_names = [c["name"] for c in injected["spec"].get("initContainers", [])]
    app_inits = [c["name"] for c in request["spec"].get("initContainers", [])]
    container_names = [c["name"] for c in injected["spec"]["containers"]]
    if native:
        assert init_names == inits + proxies + app_inits
        assert all(c.get("restartPolicy") == "Always" for c in injected["spec"]["initContainers"] if c["name"] in proxies)
        assert container_names == [c["name"] for c in request["spec"]["containers"]]
    else:
        assert init_names == app_inits + inits
        apps = [c["name"] for c in request["spec"]["containers"]]
        assert container_names == (proxies + apps if plugin in CLASSIC_FIRST else apps + proxies)
    volume_names = [v["name"] for v in injected["spec"].get("volumes", [])]
    assert volume_names == [v["name"] for v in request["spec"].get("volumes", [])] + volumes
    for key in labels_added:
        assert key in injected["metadata"]["labels"]
    for key in annotations_added:
        assert key in injected["metadata"]["annotations"]
    status = orjson.loads(injected["metadata"]["annotations"]["meshswitch.io/status"])
    assert status["plugins"] == [plugin] and status["volumes"] == volumes

    assert uninject(injected) == request
    again = injector.inject(injected, namespace("demo", labels))
    assert again.patch == [] and again.reason.code == "already-injected"


@pytest.mark.parametrize(("workload", "pod"), PODS, ids=[w for w, _ in PODS])
def test_dapr_on_istio_on_corpus_workload(workload: str, pod: dict[str, Any]) -> None:
    request, _ = _request("dapr", pod)
    result = INJECTOR.inject(request, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(request, result.patch)
    validate_pod(injected)
    expected = ["daprd"] if request["spec"].get("hostNetwork") else ["istio-init", "istio-proxy", "daprd"]
    assert [c["name"] for c in injected["spec"]["initContainers"]][: len(expected)] == expected
    for container in injected["spec"]["containers"]:
        env = {e["name"] for e in container.get("env", [])}
        assert {"DAPR_HTTP_PORT", "DAPR_GRPC_PORT"} <= env
    assert uninject(injected) == request


def test_istio_probe_rewrite_keeps_headers_and_resolves_named_ports() -> None:
    pod = dict(PODS)["corpus/payments-api-deployment.yaml:Deployment/payments-api"]
    result = INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    api = injected["spec"]["containers"][0]
    # As Istio does: the kubelet's headers stay on the rewritten probe (the golden of this workload).
    assert api["livenessProbe"]["httpGet"] == {
        "path": "/app-health/api/livez", "port": 15020, "httpHeaders": [{"name": "X-Probe", "value": "kubelet"}]
    }  # fmt: skip
    assert api["livenessProbe"]["periodSeconds"] == 10
    proxy = next(c for c in injected["spec"]["initContainers"] if c["name"] == "istio-proxy")
    probers = orjson.loads(next(e["value"] for e in proxy["env"] if e["name"] == "ISTIO_KUBE_APP_PROBERS"))
    liveness = probers["/app-health/api/livez"]["httpGet"]
    assert liveness["path"] == "/actuator/health/liveness" and liveness["port"] == 8081
    assert liveness["httpHeaders"] == [{"name": "X-Probe", "value": "kubelet"}]
    assert uninject(injected) == pod


def test_grpc_probes_are_rewritten_and_restored() -> None:
    pod = dict(PODS)["corpus/grpc-greeter-deployment.yaml:Deployment/greeter"]
    result = INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    assert injected["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] == 15020
    assert uninject(injected) == pod
