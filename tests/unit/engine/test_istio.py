"""The istio plugin's Istio-specific behaviour, beyond the goldens (tests/fidelity/test_istio.py):
revisions, ambient, release lines, declared containers, the metrics merge, and uninject after each."""

from __future__ import annotations

from typing import Any

import jsonpatch
import orjson
import pytest

from tests.helpers import apply, make_injector, make_pod, namespace, validate_pod
from webhook.engine import reasons
from webhook.engine.config import Config
from webhook.engine.discovery import Discovery
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.patch import uninject
from webhook.engine.plugins import load_plugins

INJECTOR = make_injector()
CLASSIC = make_injector(sidecar_style="classic")


def istiod(name: str, tag: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "istio-system", "labels": {"app": "istiod"}},
        "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": f"docker.io/istio/pilot:{tag}"}]}}},
    }


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


def env(proxy: dict[str, Any], name: str) -> str | None:
    return next((e.get("value") for e in proxy.get("env", []) if e["name"] == name), None)


def injected(pod: dict[str, Any], injector: Injector = INJECTOR, /, **labels: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    result = injector.inject(pod, namespace("demo", labels))
    out = apply(pod, result.patch)
    if result.patch:
        validate_pod(out)
        assert uninject(out) == pod
    return out, result.warnings


@pytest.mark.parametrize("where", ["pod", "namespace"])
def test_a_revision_label_turns_istio_on_with_that_revisions_control_plane(where: str) -> None:
    pod = make_pod(labels={"istio.io/rev": "canary"} if where == "pod" else None)
    out, _ = injected(pod, **({"istio.io/rev": "canary"} if where == "namespace" else {}))
    proxy = container(out, "istio-proxy")
    assert env(proxy, "CA_ADDR") == "istiod-canary.istio-system.svc:15012"
    assert out["metadata"]["annotations"]["istio.io/rev"] == "canary"
    assert orjson.loads(out["metadata"]["annotations"]["sidecar.istio.io/status"])["revision"] == "canary"


@pytest.mark.parametrize(
    ("pod_rev", "namespace_labels", "revision"),
    [
        ("canary", {"istio-injection": "enabled"}, "default"),  # the default revision's namespace. webhook
        ("canary", {"istio.io/rev": "stable"}, "stable"),  # stable's rev.namespace. webhook
        (None, {"istio-injection": "enabled", "istio.io/rev": "canary"}, "default"),  # "precedence to the legacy one"
        ("canary", {}, "canary"),  # canary's rev.object. webhook: the namespace has neither label
    ],
)
def test_the_revision_follows_istios_webhook_selectors(pod_rev: str | None, namespace_labels: dict[str, str], revision: str) -> None:
    out, _ = injected(make_pod(labels={"istio.io/rev": pod_rev} if pod_rev else None), **namespace_labels)
    assert out["metadata"]["annotations"]["istio.io/rev"] == revision
    ca = "istiod" if revision == "default" else f"istiod-{revision}"
    assert env(container(out, "istio-proxy"), "CA_ADDR") == f"{ca}.istio-system.svc:15012"


def test_the_default_revision_is_istiod() -> None:
    out, _ = injected(make_pod(labels={"istio.io/rev": "default"}))
    assert env(container(out, "istio-proxy"), "CA_ADDR") == "istiod.istio-system.svc:15012"
    assert out["metadata"]["annotations"]["istio.io/rev"] == "default"


def install_config_maps(discovery: Discovery, *suffixes: str) -> None:
    """A revision's injector and mesh ConfigMaps with the chart defaults (nothing set)."""
    for suffix in suffixes:
        discovery.observe("ConfigMap", "istio-system", f"istio-sidecar-injector{suffix}", {"data": {"values": "{}"}})
        discovery.observe("ConfigMap", "istio-system", f"istio{suffix}", {"data": {"mesh": "{}"}})


def test_each_revision_follows_its_own_istiod() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    discovery.observe("Deployment", "istio-system", "istiod", istiod("istiod", "1.29.6"))
    discovery.observe("Deployment", "istio-system", "istiod-canary", istiod("istiod-canary", "1.30.3"))
    install_config_maps(discovery, "", "-canary")
    stable, warnings = injected(make_pod(), injector, **{"istio.io/rev": "default"})
    canary, _ = injected(make_pod(), injector, **{"istio.io/rev": "canary"})
    assert container(stable, "istio-proxy")["image"].endswith(":1.29.6") and not warnings
    assert container(canary, "istio-proxy")["image"].endswith(":1.30.3")
    _, warnings = injected(make_pod(), injector, **{"istio.io/rev": "gone"})
    assert any("istiod-gone" in w for w in warnings)


def test_a_revision_tag_resolves_to_its_revision() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    discovery.observe("Deployment", "istio-system", "istiod-1-30", istiod("istiod-1-30", "1.30.3"))
    install_config_maps(discovery, "", "-1-30")
    tag = {"metadata": {"name": "istio-revision-tag-prod", "labels": {"istio.io/tag": "prod", "istio.io/rev": "1-30"}}}
    discovery.observe("MutatingWebhookConfiguration", "", "istio-revision-tag-prod", tag)
    out, warnings = injected(make_pod(labels={"istio.io/rev": "prod"}), injector)
    assert env(container(out, "istio-proxy"), "CA_ADDR") == "istiod-1-30.istio-system.svc:15012" and not warnings
    assert out["metadata"]["annotations"]["istio.io/rev"] == "1-30"
    # Moving the tag moves the next pod, with no restart.
    discovery.observe("MutatingWebhookConfiguration", "", "istio-revision-tag-prod", {"metadata": {"name": "x", "labels": {"istio.io/rev": "default"}}})
    out, _ = injected(make_pod(labels={"istio.io/rev": "prod"}), injector)
    assert env(container(out, "istio-proxy"), "CA_ADDR") == "istiod.istio-system.svc:15012"


def test_discovered_release_changes_the_rendering_without_a_restart() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    discovery.observe("Deployment", "istio-system", "istiod", istiod("istiod", "1.28.10"))
    first, _ = injected(make_pod(), injector, **{"istio-injection": "enabled"})
    discovery.observe("Deployment", "istio-system", "istiod", istiod("istiod", "1.30.3"))
    second, warnings = injected(make_pod(), injector, **{"istio-injection": "enabled"})
    assert container(first, "istio-proxy")["image"] == "docker.io/istio/proxyv2:1.28.10"
    assert container(second, "istio-proxy")["image"] == "docker.io/istio/proxyv2:1.30.3"
    assert not warnings


def test_a_newer_release_renders_as_the_newest_known_with_a_warning() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    discovery.observe("Deployment", "istio-system", "istiod", istiod("istiod", "1.31.0"))
    out, warnings = injected(make_pod(), injector, **{"istio-injection": "enabled"})
    assert container(out, "istio-proxy")["image"] == "docker.io/istio/proxyv2:1.31.0"
    assert any("1.31.0 is newer than the newest known release line 1.30; rendered as 1.30" in w for w in warnings)


@pytest.mark.parametrize("where", ["pod", "namespace"])
def test_ambient_pods_get_no_sidecar(where: str) -> None:
    ambient = {"istio.io/dataplane-mode": "ambient"}
    pod = make_pod(labels=ambient if where == "pod" else None)
    result = INJECTOR.inject(pod, namespace("demo", {"istio-injection": "enabled", **(ambient if where == "namespace" else {})}))
    assert result.patch == [] and result.reason.code == reasons.PLUGIN_DISABLED


@pytest.mark.parametrize("injector", [INJECTOR, CLASSIC], ids=["native-default", "classic"])
def test_gateway_pod_declaring_istio_proxy_gets_istios_merge(injector: Injector) -> None:
    pod = make_pod(
        labels={"sidecar.istio.io/inject": "true"},
        annotations={"inject.istio.io/templates": "gateway"},
        containers=[{"name": "istio-proxy", "image": "auto"}],
    )
    out, _ = injected(pod, injector)
    # The pod is the proxy: it stays an ordinary container whatever the default sidecar style.
    assert [c["name"] for c in out["spec"]["containers"]] == ["istio-proxy"]
    assert "initContainers" not in out["spec"]
    proxy = out["spec"]["containers"][0]
    assert proxy["image"].startswith("docker.io/istio/proxyv2:") and proxy["args"][:2] == ["proxy", "router"]
    assert out["metadata"]["annotations"]["proxy.istio.io/overrides"] == '{"containers":[{"name":"istio-proxy","resources":{}}]}'


def test_sidecar_then_gateway_with_a_native_sidecar_is_refused_naming_the_key() -> None:
    # Istio renders istio-proxy twice there (a native sidecar and the gateway's container): the API
    # server refuses the pod. gateway,sidecar and classic sidecars give one istio-proxy.
    pod = make_pod(labels={"sidecar.istio.io/inject": "true"}, annotations={"inject.istio.io/templates": "sidecar,gateway"})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("demo"))
    assert caught.value.code == reasons.INVALID_SETTING and "inject.istio.io/templates" in caught.value.message
    for annotations, injector in (({"inject.istio.io/templates": "gateway,sidecar"}, INJECTOR), ({"inject.istio.io/templates": "sidecar,gateway"}, CLASSIC)):
        out, _ = injected(make_pod(labels={"sidecar.istio.io/inject": "true"}, annotations=annotations), injector)
        names = [c["name"] for c in out["spec"].get("initContainers", []) + out["spec"]["containers"]]
        assert names.count("istio-proxy") == 1


def test_declared_fields_win_and_env_merges_by_name() -> None:
    declared = {
        "name": "istio-proxy", "image": "auto",
        "resources": {"requests": {"cpu": "300m"}, "limits": {"memory": "2Gi"}},
        "env": [{"name": "EXTRA_FLAG", "value": "on"}, {"name": "CA_ADDR", "value": "elsewhere:15012"}],
    }  # fmt: skip
    pod = make_pod(containers=[{"name": "app", "image": "app"}, declared])
    for injector in (INJECTOR, CLASSIC):
        out, _ = injected(pod, injector, **{"istio-injection": "enabled"})
        proxy = container(out, "istio-proxy")
        assert proxy["resources"] == {"requests": {"cpu": "300m", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "2Gi"}}
        assert env(proxy, "CA_ADDR") == "elsewhere:15012" and env(proxy, "EXTRA_FLAG") == "on"
        # The pod's order among its own entries (EXTRA_FLAG before CA_ADDR), as Istio 1.30.3 renders it:
        # its second strategic merge puts the declared entries where the first overlap falls.
        order = [e["name"] for e in proxy["env"]]
        assert order.index("EXTRA_FLAG") + 1 == order.index("CA_ADDR")
        assert sum(c["name"] == "istio-proxy" for c in out["spec"]["containers"] + out["spec"].get("initContainers", [])) == 1


HOLD = {"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true"}
APP = {"name": "app", "image": "app"}
PROXY = {"name": "istio-proxy", "image": "auto"}


def names(pod: dict[str, Any], section: str) -> list[str]:
    return [c["name"] for c in pod["spec"].get(section, [])]


@pytest.mark.parametrize(
    ("injector", "annotations", "init", "containers", "want_init", "want_containers"),
    [
        (CLASSIC, {}, [], [PROXY, APP], ["istio-init"], ["app", "istio-proxy"]),
        (CLASSIC, HOLD, [], [APP, PROXY], ["istio-init"], ["istio-proxy", "app"]),
        (CLASSIC, HOLD, [{"name": "setup", "image": "s"}], [APP, {"name": "tail", "image": "t"}, PROXY],
         ["setup", "istio-init"], ["istio-proxy", "app", "tail"]),
        (INJECTOR, {}, [{"name": "setup", "image": "s"}, {**PROXY, "restartPolicy": "Always"}], [APP],
         ["istio-init", "istio-proxy", "setup"], ["app"]),
        (INJECTOR, {}, [{"name": "setup", "image": "s"}], [APP, PROXY], ["istio-init", "istio-proxy", "setup"], ["app"]),
    ],
    ids=["classic-declared-first", "classic-hold-declared-last", "classic-hold-between", "native-declared-after-init", "native-declared-in-containers"],
)  # fmt: skip
def test_a_declared_istio_proxy_goes_where_istio_puts_its_proxy(
    injector: Injector, annotations: dict[str, str], init: list[Any], containers: list[Any], want_init: list[str], want_containers: list[str]
) -> None:
    # Istio's reorderPod: the proxy last, first to hold the app, right after istio-init as a native sidecar.
    spec: dict[str, Any] = {"initContainers": init} if init else {}
    pod = make_pod(annotations=annotations, containers=containers, **spec)
    out, _ = injected(pod, injector, **{"istio-injection": "enabled"})
    assert (names(out, "initContainers"), names(out, "containers")) == (want_init, want_containers)


@pytest.mark.parametrize(
    ("injector", "init", "want"),
    [
        (CLASSIC, ["enable-core-dump", "wait"], ["wait", "istio-init", "enable-core-dump"]),
        (INJECTOR, ["wait", "enable-core-dump"], ["istio-init", "istio-proxy", "enable-core-dump", "wait"]),
        (INJECTOR, ["enable-core-dump"], ["istio-init", "istio-proxy", "enable-core-dump"]),
    ],
    ids=["classic", "native", "native-alone"],
)
def test_an_init_container_named_enable_core_dump_runs_right_after_istios(injector: Injector, init: list[str], want: list[str]) -> None:
    pod = make_pod(initContainers=[{"name": n, "image": "busybox"} for n in init])
    out, _ = injected(pod, injector, **{"istio-injection": "enabled"})
    assert names(out, "initContainers") == want


@pytest.mark.parametrize("annotations", [{"sidecar.istio.io/nativeSidecar": "true"}, {}], ids=["annotation", "server-default"])
def test_the_gateway_template_has_no_native_form(annotations: dict[str, str]) -> None:
    pod = make_pod(
        annotations={"inject.istio.io/templates": "gateway", **annotations},
        containers=[PROXY, {"name": "helper", "image": "h", "readinessProbe": {"httpGet": {"path": "/ready", "port": 8081}}}],
    )
    out, _ = injected(pod, INJECTOR, **{"istio-injection": "enabled"})
    assert names(out, "containers") == ["helper", "istio-proxy"] and names(out, "initContainers") == []
    # Its other containers' probes go through the agent, as Istio rewrites them for every template.
    assert container(out, "helper")["readinessProbe"]["httpGet"] == {"path": "/app-health/helper/readyz", "port": 15020}
    assert env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS") == '{"/app-health/helper/readyz":{"httpGet":{"path":"/ready","port":8081}}}'


def test_json_for_the_agent_is_escaped_as_gos_json_marshal_escapes_it() -> None:
    app = {"name": "app", "image": "app", "readinessProbe": {"httpGet": {"path": "/h?a=1&b=<2>", "port": 8080}}}
    out, _ = injected(make_pod(containers=[app]), CLASSIC, **{"istio-injection": "enabled"})
    probers = env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS")
    assert probers == '{"/app-health/app/readyz":{"httpGet":{"path":"/h?a=1\\u0026b=\\u003c2\\u003e","port":8080}}}'
    assert orjson.loads(probers or "")["/app-health/app/readyz"]["httpGet"]["path"] == "/h?a=1&b=<2>"


def test_a_probe_already_on_the_status_port_is_rewritten_but_not_replayed() -> None:
    app = {"name": "app", "image": "app", "readinessProbe": {"httpGet": {"path": "/ready", "port": 15020}}}
    out, _ = injected(make_pod(containers=[app]), CLASSIC, **{"istio-injection": "enabled"})
    assert container(out, "app")["readinessProbe"]["httpGet"] == {"path": "/app-health/app/readyz", "port": 15020}
    assert env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS") is None


def test_a_stale_revision_annotation_is_overwritten_and_given_back_by_uninject() -> None:
    out, _ = injected(make_pod(annotations={"istio.io/rev": "canary"}), CLASSIC, **{"istio-injection": "enabled"})
    assert out["metadata"]["annotations"]["istio.io/rev"] == "default"


def test_another_meshs_proxy_is_never_stacked_and_warned() -> None:
    pod = make_pod(containers=[{"name": "app", "image": "app"}, {"name": "linkerd-proxy", "image": "l5d"}])
    result = INJECTOR.inject(pod, namespace("demo", {"istio-injection": "enabled"}))
    assert result.patch == [] and result.reason.code == reasons.OTHER_MESH_PRESENT
    assert any("linkerd-proxy" in w for w in result.warnings)


def test_interception_mode_none_has_no_redirect_init_container() -> None:
    out, _ = injected(make_pod(annotations={"sidecar.istio.io/interceptionMode": "NONE"}), CLASSIC, **{"istio-injection": "enabled"})
    assert [c["name"] for c in out["spec"].get("initContainers", [])] == []
    assert env(container(out, "istio-proxy"), "ISTIO_META_INTERCEPTION_MODE") == "NONE"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sidecar.istio.io/proxyImage", "gcr.io/istio-release/proxyv2:1.30.3"),
        ("sidecar.istio.io/proxyImage", "registry.istio.io/release/proxyv2:1.30.3"),
        ("sidecar.istio.io/proxyImage", "docker.io/istio/proxyv2:1.30.3-distroless"),
        ("sidecar.istio.io/componentLogLevel", "http2:debug"),
        ("sidecar.istio.io/logLevel", "debug"),
    ],
)
def test_values_istio_accepts_are_accepted(key: str, value: str) -> None:
    out, _ = injected(make_pod(annotations={key: value}), **{"istio-injection": "enabled"})
    assert "istio-proxy" in {c["name"] for c in out["spec"]["initContainers"]}


def test_proxy_config_reaches_proxy_config_env_and_proxy_metadata() -> None:
    config = "concurrency: 2\nproxyMetadata:\n  ISTIO_META_DNS_CAPTURE: 'true'\n"
    out, _ = injected(make_pod(annotations={"proxy.istio.io/config": config}), CLASSIC, **{"istio-injection": "enabled"})
    proxy = container(out, "istio-proxy")
    assert env(proxy, "PROXY_CONFIG") == '{"concurrency":2,"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true"}}\n'
    assert env(proxy, "ISTIO_META_DNS_CAPTURE") == "true"
    assert env(container(out, "istio-init"), "ISTIO_META_DNS_CAPTURE") == "true"


def test_proxy_config_that_istio_refuses_is_refused_naming_the_key() -> None:
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(make_pod(annotations={"proxy.istio.io/config": "concurrency: lots"}), namespace("demo", {"istio-injection": "enabled"}))
    assert "proxy.istio.io/config" in caught.value.message and "concurrency" in caught.value.message


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("sidecar.istio.io/logLevel", "info:", "sidecar.istio.io/logLevel"),
        ("sidecar.istio.io/componentLogLevel", "misc:error, http: debug", "sidecar.istio.io/componentLogLevel"),
        ("sidecar.istio.io/agentLogLevel", 'default:"info"', "sidecar.istio.io/agentLogLevel"),
        ("proxy.istio.io/config", "proxyMetadata:\n  RE: '^/api\\d+$'\n", "proxyMetadata"),
    ],
)
def test_text_istios_yaml_template_cannot_carry_is_refused_naming_the_key(key: str, value: str, named: str) -> None:
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(make_pod(annotations={key: value}), namespace("demo", {"istio-injection": "enabled"}))
    assert key in caught.value.message and named in caught.value.message


def test_text_istios_yaml_template_changes_is_injected_as_istio_reads_it() -> None:
    # A value Istio accepts is never refused (SPEC rule 8): ' #' starts a YAML comment in the proxy's
    # unquoted args; escapes and line breaks are decoded inside the double-quoted ones.
    annotations = {
        "sidecar.istio.io/logLevel": "info #x",
        "sidecar.istio.io/agentLogLevel": "default:info\\t #y",
        "proxy.istio.io/config": 'proxyMetadata:\n  TAB: "a\\\\tb"\n  FOLD: "a\\nb"\n',
    }
    out, _ = injected(make_pod(annotations=annotations), CLASSIC, **{"istio-injection": "enabled"})
    proxy, init = container(out, "istio-proxy"), next(c for c in out["spec"]["initContainers"] if c["name"] == "istio-init")
    assert "--proxyLogLevel=info" in proxy["args"] and "--log_output_level=default:info\\t" in proxy["args"]
    assert "--log_output_level=default:info\t #y" in init["args"]
    assert (env(proxy, "TAB"), env(proxy, "FOLD")) == ("a\tb", "a b")


def test_prometheus_merge_keeps_the_apps_port_and_path_for_the_agent() -> None:
    pod = make_pod(annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"})
    out, _ = injected(pod, CLASSIC, **{"istio-injection": "enabled"})
    annotations = out["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == ("15020", "/stats/prometheus")
    assert env(container(out, "istio-proxy"), "ISTIO_PROMETHEUS_ANNOTATIONS") == '{"scrape":"true","path":"/metrics","port":"9090"}'


def test_prometheus_scrape_false_is_left_alone() -> None:
    pod = make_pod(annotations={"prometheus.io/scrape": "false"})
    out, _ = injected(pod, CLASSIC, **{"istio-injection": "enabled"})
    assert out["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
    assert "prometheus.io/port" not in out["metadata"]["annotations"]
    assert env(container(out, "istio-proxy"), "ISTIO_PROMETHEUS_ANNOTATIONS") is None


def test_native_proxy_drains_on_the_status_port_the_pod_names() -> None:
    out, _ = injected(make_pod(annotations={"status.sidecar.istio.io/port": "15030"}), **{"istio-injection": "enabled"})
    command = container(out, "istio-proxy")["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["pilot-agent", "request", "--debug-port=15030", "POST", "drain"]


def test_app_lifecycle_and_native_init_probes_go_through_the_agent() -> None:
    pod = make_pod(containers=[{"name": "app", "image": "app", "lifecycle": {"preStop": {"httpGet": {"path": "/stop", "port": 8080}}}}])
    pod["spec"]["initContainers"] = [
        {"name": "shipper", "image": "s", "restartPolicy": "Always", "startupProbe": {"tcpSocket": {"port": 2020}}}
    ]
    out, _ = injected(pod, **{"istio-injection": "enabled"})
    assert container(out, "app")["lifecycle"]["preStop"]["httpGet"] == {"path": "/app-lifecycle/app/prestopz", "port": 15020}
    assert container(out, "shipper")["startupProbe"]["httpGet"]["path"] == "/app-health/shipper/startupz"
    probers = orjson.loads(env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS") or "{}")
    assert probers == {
        "/app-health/shipper/startupz": {"tcpSocket": {"port": 2020}},
        "/app-lifecycle/app/prestopz": {"httpGet": {"path": "/stop", "port": 8080}},
    }


@pytest.mark.parametrize(("value", "rewritten"), [("false", False), ("F", False), ("true", True), ("sometimes", True)])
def test_rewrite_app_probers_is_read_as_istio_reads_it(value: str, rewritten: bool) -> None:
    # Go's ParseBool spellings; text it does not take is ignored (the default applies), not refused.
    pod = make_pod(annotations={"sidecar.istio.io/rewriteAppHTTPProbers": value})
    pod["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    out, _ = injected(pod, **{"istio-injection": "enabled"})
    path = container(out, pod["spec"]["containers"][0]["name"])["readinessProbe"]["httpGet"]["path"]
    assert path.startswith("/app-health/") is rewritten


READY = '{"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8080}}}'


def istio_injected(probers: str, *, native: bool, app: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod as Istio's own injector left it: the app's probe on the agent, the original in the
    proxy's ISTIO_KUBE_APP_PROBERS, the proxy listed in sidecar.istio.io/status."""
    rewritten = {"readinessProbe": {"httpGet": {"path": "/app-health/app/readyz", "port": 15020}}}
    proxy = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3", "env": [{"name": "ISTIO_KUBE_APP_PROBERS", "value": probers}]}
    status = {"initContainers": ["istio-init", "istio-proxy"] if native else ["istio-init"], "containers": None if native else ["istio-proxy"]}
    pod = make_pod(annotations={"sidecar.istio.io/status": orjson.dumps(status).decode()}, containers=[{**APP, **rewritten, **(app or {})}])
    if native:
        pod["spec"]["initContainers"] = [{**proxy, "restartPolicy": "Always"}]
    else:
        pod["spec"]["containers"].append(proxy)
    return pod


@pytest.mark.parametrize("native", [True, False], ids=["istio-native", "istio-classic"])
@pytest.mark.parametrize("injector", [INJECTOR, CLASSIC], ids=["native", "classic"])
def test_reinjection_keeps_the_probers_istio_recorded_and_writes_no_overrides(native: bool, injector: Injector) -> None:
    out, _ = injected(istio_injected(READY, native=native), injector, **{"istio-injection": "enabled"})
    proxy = container(out, "istio-proxy")
    assert env(proxy, "ISTIO_KUBE_APP_PROBERS") == READY
    assert sum(c["name"] == "istio-proxy" for c in out["spec"]["containers"] + out["spec"].get("initContainers", [])) == 1
    assert "proxy.istio.io/overrides" not in out["metadata"]["annotations"]


def test_reinjection_merges_new_probers_and_a_previous_path_keeps_its_target() -> None:
    # Istio's merge: the new probers, then the recorded ones over them (re-marshalled in Go's order).
    app = {"livenessProbe": {"httpGet": {"path": "/live", "port": 8080}}, "startupProbe": {"tcpSocket": {"port": 8081}}}
    recorded = '{"/app-health/app/startupz":{"timeoutSeconds":3,"tcpSocket":{"port":9090},"extra":1},' + READY[1:]
    out, _ = injected(istio_injected(recorded, native=True, app=app), **{"istio-injection": "enabled"})
    assert env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS") == (
        '{"/app-health/app/livez":{"httpGet":{"path":"/live","port":8080}},'
        '"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8080}},'
        '"/app-health/app/startupz":{"tcpSocket":{"port":9090},"timeoutSeconds":3}}'
    )


@pytest.mark.parametrize("recorded", ["not json", '["a list"]', '{"/app-health/app/readyz":"text"}'])
def test_recorded_probers_go_cannot_decode_are_left_as_they_were(recorded: str) -> None:
    app = {"livenessProbe": {"httpGet": {"path": "/live", "port": 8080}}}
    out, _ = injected(istio_injected(recorded, native=True, app=app), **{"istio-injection": "enabled"})
    assert env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS") == recorded


def test_a_pod_never_injected_by_istio_has_no_probers_merged() -> None:
    pod = istio_injected(READY, native=True)
    del pod["metadata"]["annotations"]["sidecar.istio.io/status"]
    out, _ = injected(pod, **{"istio-injection": "enabled"})
    # The pod's own istio-proxy is merged over ours (its env wins) and recorded for re-injection.
    assert env(container(out, "istio-proxy"), "ISTIO_KUBE_APP_PROBERS") == READY
    assert "proxy.istio.io/overrides" in out["metadata"]["annotations"]


def test_reinjection_keeps_the_metrics_the_previous_proxy_was_given() -> None:
    """A pod Istio injected before: its prometheus.io annotations already point at the agent, so
    nothing is merged now, and Istio, rendering over the pod as it is, keeps the old proxy's
    ISTIO_PROMETHEUS_ANNOTATIONS."""
    scraped = '{"scrape":"true","path":"/m","port":"9102"}'
    annotations = {
        "prometheus.io/scrape": "true", "prometheus.io/port": "15020", "prometheus.io/path": "/stats/prometheus",
        "sidecar.istio.io/status": '{"initContainers":null,"containers":["istio-proxy"],"volumes":null,"imagePullSecrets":null,"revision":"default"}',
    }  # fmt: skip
    previous = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3", "env": [{"name": "ISTIO_PROMETHEUS_ANNOTATIONS", "value": scraped}]}
    pod = make_pod(annotations=annotations, containers=[{"name": "app", "image": "app:1"}, previous])
    result = CLASSIC.inject(pod, namespace("demo", {"istio-injection": "enabled"}))
    out = apply(pod, result.patch)
    assert env(container(out, "istio-proxy"), "ISTIO_PROMETHEUS_ANNOTATIONS") == scraped
    assert out["metadata"]["annotations"]["prometheus.io/port"] == "15020"


def test_pod_ports_list_a_declared_proxys_ports_but_not_a_previous_injections() -> None:
    """Istio's template ranges over every container's ports, a declared istio-proxy's too; one its
    status lists (a previous injection) is stripped first."""
    declared = {"name": "istio-proxy", "image": "auto", "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}]}
    pod = make_pod(containers=[{"name": "app", "image": "app:1"}, declared])
    out, _ = injected(pod, CLASSIC, **{"istio-injection": "enabled"})
    assert "15090" in str(env(container(out, "istio-proxy"), "ISTIO_META_POD_PORTS"))
    status = '{"initContainers":null,"containers":["istio-proxy"],"volumes":null,"imagePullSecrets":null,"revision":"default"}'
    pod = make_pod(annotations={"sidecar.istio.io/status": status}, containers=[{"name": "app", "image": "app:1"}, declared])
    result = CLASSIC.inject(pod, namespace("demo", {"istio-injection": "enabled"}))
    assert env(container(apply(pod, result.patch), "istio-proxy"), "ISTIO_META_POD_PORTS") == "[\n]"


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("sidecar.istio.io/userVolumeMount", '{"data": {"mountPath": "/data", "readOnly": "yes"}}', "data.readOnly must be true or false"),
        ("sidecar.istio.io/userVolume", '{"v": {"emptyDir": {"sizeLimit": "abc"}}}', "v.emptyDir.sizeLimit must be a quantity"),
        ("sidecar.istio.io/userVolume", '[{"name": "v", "emptyDir": {"medium": 5}}]', "0.emptyDir.medium must be a string"),
        ("sidecar.istio.io/userVolume", '{"c": {"configMap": {"name": "c", "defaultMode": 4.5}}}', "c.configMap.defaultMode must be a whole number"),
    ],
)  # fmt: skip
def test_a_user_volume_field_go_cannot_read_into_the_pod_refuses_it(key: str, value: str, path: str) -> None:
    """Istio reads userVolume/userVolumeMount into the pod's Volume and VolumeMount types and refuses
    the pod where that fails; copied as written, the API server could not decode the patched pod."""
    pod = make_pod(annotations={key: value})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("istio-demo", {"istio-injection": "enabled"}))
    assert caught.value.code == reasons.INVALID_SETTING
    assert key in caught.value.message and path in caught.value.message, caught.value.message


def test_a_user_volume_field_go_does_not_know_is_dropped() -> None:
    pod = make_pod(annotations={"sidecar.istio.io/userVolume": '{"v": {"emptyDir": {}, "bogus": 1}}'})
    result, _ = injected(pod, **{"istio-injection": "enabled"})
    assert next(v for v in result["spec"]["volumes"] if v["name"] == "v") == {"name": "v", "emptyDir": {}}


def test_an_app_container_named_istio_init_is_refused_naming_it() -> None:
    """Istio overlays its istio-init on a declared one but keeps the pod's in `containers` too, and
    the API server refuses the duplicate; meshswitch refuses it naming the field (before, the app
    container was moved into the init containers and the pod never left Init)."""
    pod = make_pod()
    pod["spec"]["containers"].append({"name": "istio-init", "image": "busybox", "command": ["sleep", "infinity"]})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("istio-demo", {"istio-injection": "enabled"}))
    assert caught.value.code == reasons.INVALID_POD
    assert caught.value.message.startswith("spec.containers: the pod has its own container istio-init")
    pod["spec"]["containers"][-1]["name"] = "istio-proxy"  # a declared proxy (a gateway's) is merged
    assert INJECTOR.inject(pod, namespace("istio-demo", {"istio-injection": "enabled"})).plugins == ("istio",)


def test_declared_env_keyed_by_a_non_text_name_is_merged_without_an_error() -> None:
    # Admission runs before validation: a name written as a list reaches the merge, which keys by it.
    declared = {"name": "istio-proxy", "image": "auto", "env": [{"name": ["A"], "value": "1"}, {"name": "CA_ADDR", "value": "x:1"}]}
    pod = make_pod(containers=[APP, declared])
    result = CLASSIC.inject(pod, namespace("demo", {"istio-injection": "enabled"}))
    proxy = container(jsonpatch.apply_patch(pod, result.patch), "istio-proxy")
    assert {"name": ["A"], "value": "1"} in proxy["env"] and env(proxy, "CA_ADDR") == "x:1"
