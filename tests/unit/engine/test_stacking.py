"""Dapr stacked on a mesh renders as the two injectors chained in a cluster's webhook order:
dapr-sidecar-injector sorts before istio-sidecar-injector and linkerd-proxy-injector, so the mesh's
injector sees daprd as one of the pod's containers."""

from __future__ import annotations

from typing import Any

import orjson

from tests.helpers import apply, make_pod, namespace, validate_pod
from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.patch import uninject
from webhook.engine.plugins import load_plugins
from webhook.engine.values import apply_values, check_values

ISTIO = {"meshswitch.io/mode": "istio"}
LINKERD = {"meshswitch.io/mode": "linkerd"}
DAPR = {"dapr.io/enabled": "true", "dapr.io/app-id": "shop"}


def injector(values: dict[str, Any] | None = None, **config: Any) -> Injector:
    plugins = load_plugins()
    if values:
        plugins = apply_values(plugins, check_values(plugins, values, source="test"))
    return Injector(plugins=plugins, config=Config(**config))


def inject(pod: dict[str, Any], labels: dict[str, str], engine: Injector) -> dict[str, Any]:
    injected = apply(pod, engine.inject(pod, namespace("shop", labels)).patch)
    validate_pod(injected)
    assert uninject(injected) == pod
    return injected


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env") or ()}


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in items if c["name"] == name)


def test_istio_rewrites_daprd_probes_classic() -> None:
    injected = inject(make_pod(annotations=dict(DAPR)), ISTIO, injector(sidecar_style="classic"))
    containers = injected["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "daprd", "istio-proxy"]  # Dapr appends, then Istio
    daprd = named(containers, "daprd")
    assert daprd["livenessProbe"]["httpGet"] == {"path": "/app-health/daprd/livez", "port": 15020}
    assert daprd["readinessProbe"]["httpGet"]["path"] == "/app-health/daprd/readyz"
    env = env_of(named(containers, "istio-proxy"))
    assert env["ISTIO_META_APP_CONTAINERS"] == "app,daprd"
    probers = orjson.loads(env["ISTIO_KUBE_APP_PROBERS"])
    assert probers["/app-health/daprd/livez"]["tcpSocket"] == {"port": 3501}
    assert probers["/app-health/daprd/readyz"]["httpGet"]["path"] == "/v1.0/healthz"
    assert '"containerPort":3500' in env["ISTIO_META_POD_PORTS"]
    assert "DAPR_HTTP_PORT" not in env  # Dapr ran before istio-proxy existed


def test_istio_rewrites_daprd_probes_native() -> None:
    injected = inject(make_pod(annotations=dict(DAPR), initContainers=[{"name": "setup", "image": "busybox"}]), ISTIO, injector())
    inits = injected["spec"]["initContainers"]
    assert [c["name"] for c in inits] == ["istio-init", "istio-proxy", "daprd", "setup"]
    daprd = named(inits, "daprd")
    assert daprd["restartPolicy"] == "Always"
    assert daprd["readinessProbe"]["httpGet"] == {"path": "/app-health/daprd/readyz", "port": 15020}
    probers = orjson.loads(env_of(named(inits, "istio-proxy"))["ISTIO_KUBE_APP_PROBERS"])
    assert set(probers) == {"/app-health/daprd/livez", "/app-health/daprd/readyz"}
    assert "readinessProbe" not in named(inits, "setup")


def test_app_probe_rewrite_still_reaches_the_app_beside_daprd() -> None:
    app = {"name": "app", "image": "x", "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}
    pod = make_pod(annotations=dict(DAPR), containers=[app])
    injected = inject(pod, ISTIO, injector(sidecar_style="classic"))
    assert injected["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/app-health/app/readyz"
    status = orjson.loads(injected["metadata"]["annotations"]["meshswitch.io/status"])
    assert list(status["probes"]) == ["app"]  # daprd's probes are meshswitch's own: uninject drops daprd


def test_linkerd_counts_daprd_ports() -> None:
    app = {"name": "app", "image": "x", "ports": [{"containerPort": 8080, "name": "http"}]}
    pod = make_pod(annotations={**DAPR, "dapr.io/enable-native-sidecar": "true"}, containers=[app])
    injected = inject(pod, LINKERD, injector())
    proxy = named(injected["spec"]["initContainers"], "linkerd-proxy")
    assert env_of(proxy)["LINKERD2_PROXY_INBOUND_PORTS"] == "3500,3501,50001,50002,8080,9090"
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy", "daprd"]


def test_linkerd_classic_keeps_its_proxy_first_and_daprd_last() -> None:
    pod = make_pod(annotations={**DAPR, "dapr.io/enable-native-sidecar": "false"})
    injected = inject(pod, LINKERD, injector())
    assert [c["name"] for c in injected["spec"]["containers"]] == ["linkerd-proxy", "app", "daprd"]
    assert env_of(injected["spec"]["containers"][0])["LINKERD2_PROXY_INBOUND_PORTS"] == "3500,3501,50001,50002,8080,9090"


def test_dapr_key_picks_the_style_over_linkerds_release_default() -> None:
    for version, key, section in (("edge-25.10.7", "true", "initContainers"), ("edge-26.8.3", "false", "containers")):
        engine = injector({"linkerd": {"version": version}})
        pod = make_pod(annotations={**DAPR, "dapr.io/enable-native-sidecar": key})
        injected = inject(pod, LINKERD, engine)
        names = {c["name"] for c in injected["spec"].get(section) or ()}
        assert {"linkerd-proxy", "daprd"} <= names, (version, key)


def test_linkerds_own_key_still_wins_over_daprs() -> None:
    pod = make_pod(annotations={**DAPR, "dapr.io/enable-native-sidecar": "true", "config.linkerd.io/proxy-enable-native-sidecar": "false"})
    injected = inject(pod, LINKERD, injector())
    assert [c["name"] for c in injected["spec"]["containers"]] == ["linkerd-proxy", "app", "daprd"]


def test_native_daprd_joins_a_pod_linkerd_meshed_after_linkerds_containers() -> None:
    inits = [
        {"name": "linkerd-init", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3"},
        {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3", "restartPolicy": "Always"},
        {"name": "setup", "image": "busybox"},
    ]
    pod = make_pod(annotations={**DAPR, "dapr.io/enable-native-sidecar": "true", "linkerd.io/inject": "enabled"}, initContainers=inits)
    injected = inject(pod, {}, injector())
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["linkerd-init", "linkerd-proxy", "daprd", "setup"]


def test_native_daprd_goes_before_the_apps_own_init_containers() -> None:
    pod = make_pod(annotations={**DAPR, "dapr.io/enable-native-sidecar": "true"}, initContainers=[{"name": "setup", "image": "busybox"}])
    injected = inject(pod, {}, injector())
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["daprd", "setup"]


def test_rule7_a_mesh_joining_a_pod_dapr_injected_puts_its_native_sidecars_first() -> None:
    # The namespace relabelled after Dapr injected: Istio's reorderPod (and Linkerd's
    # initContainers/0) put the mesh's init container and proxy before daprd, as when both join at once.
    engine = injector(sidecar_style="native")
    pod = make_pod(annotations=DAPR, initContainers=[{"name": "setup", "image": "busybox"}])
    with_dapr = inject(pod, {}, engine)
    assert [c["name"] for c in with_dapr["spec"]["initContainers"]] == ["daprd", "setup"]
    for labels, mesh in ((ISTIO, ["istio-init", "istio-proxy"]), (LINKERD, ["linkerd-init", "linkerd-proxy"])):
        meshed = apply(with_dapr, engine.inject(with_dapr, namespace("shop", labels)).patch)
        validate_pod(meshed)
        assert uninject(meshed) == pod
        assert [c["name"] for c in meshed["spec"]["initContainers"]] == [*mesh, "daprd", "setup"]
        assert [c["name"] for c in inject(pod, labels, engine)["spec"]["initContainers"]] == [*mesh, "daprd", "setup"]
