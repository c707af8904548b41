"""Control-plane discovery on recorded objects: what each plugin takes, pins, and missing warnings."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import apply, make_pod, namespace, validate_pod
from webhook.cluster.discovery_watch import ControlPlaneWatch
from webhook.engine.config import Config
from webhook.engine.discovery import Discovery, Take, control_plane_of
from webhook.engine.errors import ConfigError
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.values import load_values

ISTIOD = {
    "metadata": {"name": "istiod", "namespace": "istio-system"},
    "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.29.6"}]}}},
}
LINKERD_CONFIG = {
    "metadata": {"name": "linkerd-config", "namespace": "linkerd"},
    "data": {"values": "linkerdVersion: edge-25.9.1\nidentityTrustAnchorsPEM: |\n  -----BEGIN CERTIFICATE-----\n  abc\n"},
}


def proxy_of(injector: Injector, mode: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    pod = make_pod()
    result = injector.inject(pod, namespace("demo", {"meshswitch.io/mode": mode}))
    return apply(pod, result.patch)["spec"]["initContainers"][1], result.warnings


def test_istiod_tag_becomes_the_proxy_tag_and_follows_changes() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    proxy, warnings = proxy_of(injector, "istio")
    assert proxy["image"] == "docker.io/istio/proxyv2:1.30.3"
    assert any("istio: control plane not found (Deployment istio-system/istiod)" in w for w in warnings)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    for name, obj in _istio_config_maps():
        discovery.observe("ConfigMap", "istio-system", name, obj)
    proxy, warnings = proxy_of(injector, "istio")
    assert proxy["image"] == "docker.io/istio/proxyv2:1.29.6" and warnings == ()
    discovery.forget("Deployment", "istio-system", "istiod")
    proxy, warnings = proxy_of(injector, "istio")
    assert proxy["image"] == "docker.io/istio/proxyv2:1.30.3" and warnings


def _linkerd_pod(injector: Injector) -> tuple[dict[str, Any], tuple[str, ...]]:
    pod = make_pod()
    result = injector.inject(pod, namespace("demo", {"meshswitch.io/mode": "linkerd"}))
    return apply(pod, result.patch), result.warnings


def _container(pod: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    for section in ("initContainers", "containers"):
        for container in pod["spec"].get(section) or ():
            if container["name"] == name:
                return section, container
    raise AssertionError(f"no {name}")


def test_linkerd_config_gives_anchors_and_version() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", LINKERD_CONFIG)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    pod, warnings = _linkerd_pod(injector)
    section, proxy = _container(pod, "linkerd-proxy")
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert proxy["image"].endswith(":edge-25.9.1")
    # edge-25.9 predates native sidecars by default and proxy-init's move into the proxy image.
    assert section == "containers" and pod["spec"]["containers"][0]["name"] == "linkerd-proxy"
    assert _container(pod, "linkerd-init")[1]["image"] == "cr.l5d.io/linkerd/proxy-init:v2.4.3"
    assert env["LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"].startswith("-----BEGIN CERTIFICATE-----")
    assert pod["metadata"]["annotations"]["linkerd.io/proxy-version"] == "edge-25.9.1"
    assert any("Deployment linkerd/linkerd-destination" in w for w in warnings)
    assert not any("trust anchors" in w for w in warnings)


def test_linkerd_rendering_follows_linkerd_config_without_restart() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    newer = {**LINKERD_CONFIG, "data": {"values": LINKERD_CONFIG["data"]["values"].replace("edge-25.9.1", "edge-26.8.3")}}
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", newer)
    pod, _ = _linkerd_pod(injector)
    section, init = _container(pod, "linkerd-init")
    assert (init["image"], init["command"]) == ("cr.l5d.io/linkerd/proxy:edge-26.8.3", ["/usr/lib/linkerd/linkerd2-proxy-init"])
    assert _container(pod, "linkerd-proxy")[0] == "initContainers"
    assert init["args"][:5] == ["--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save", "--ipv6=false"]
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", LINKERD_CONFIG)
    pod, _ = _linkerd_pod(injector)
    assert _container(pod, "linkerd-proxy")[0] == "containers"
    assert "command" not in _container(pod, "linkerd-init")[1]
    discovery.forget("ConfigMap", "linkerd", "linkerd-config")
    pod, warnings = _linkerd_pod(injector)
    assert any("linkerd: no identity trust anchors" in w for w in warnings)


def test_values_file_pins_what_discovery_would_change(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text("istio: {tag: '1.25.0'}\n")
    plugins = load_values(tmp_path / "values.yaml", load_plugins())
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    proxy, _ = proxy_of(Injector(plugins=plugins, config=Config(), discovery=discovery), "istio")
    assert proxy["image"] == "docker.io/istio/proxyv2:1.25.0"


def test_watched_objects_are_the_named_ones_and_istios_revisions() -> None:
    watched = {o.describe_watch() for o in Discovery(load_plugins()).watched()}
    assert watched == {
        "Deployment istio-system/istiod",
        "ConfigMap istio-system/istio-sidecar-injector",
        "ConfigMap istio-system/istio",
        "ConfigMap linkerd/linkerd-config",
        "Deployment linkerd/linkerd-destination",
        "Deployment dapr-system/dapr-sidecar-injector",
        "Deployment dapr-system/dapr-sentry",
        # Istio's other revisions and its revision tags: found by label, as their names are not known.
        "Deployments in istio-system with app=istiod",
        "ConfigMaps in istio-system with istio.io/rev",
        "MutatingWebhookConfigurations with istio.io/tag",
    }


def test_without_a_cluster_there_are_no_warnings() -> None:
    injector = Injector(plugins=load_plugins(), config=Config())
    _, warnings = proxy_of(injector, "istio")
    assert warnings == ()


def test_linkerd_config_value_of_another_kind_keeps_the_configured_value() -> None:
    # proxy.gid is an int64 to Linkerd; a string there once made every Linkerd pod a template error.
    plugins = load_plugins()
    discovery = Discovery(plugins)
    odd = {**LINKERD_CONFIG, "data": {"values": LINKERD_CONFIG["data"]["values"] + "proxy: {gid: '2300', uid: 2200}\n"}}
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", odd)
    pod, _ = _linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))
    proxy = _container(pod, "linkerd-proxy")[1]
    assert proxy["securityContext"]["runAsUser"] == 2200 and "runAsGroup" not in proxy["securityContext"]


@pytest.mark.parametrize(
    "context, expected",
    [
        # Linkerd writes the install's map in place of its own context (golden security/unknown-fields);
        # the API server drops the fields it does not know, so the proxy runs with an empty one.
        ("{procMountType: Default, sysctls: []}", {}),
        ("{a: 1, runAsUser: 5}", {"runAsUser": 5}),
        # Linkerd writes `RunAsUser: 5` as it is (reference program, both releases); the API server's
        # decoder is case-sensitive and drops it, so the proxy runs without a runAsUser.
        ("{RunAsUser: 5, runAsNonRoot: true}", {"runAsNonRoot": True}),
        # A field the API server drops is not checked either.
        ("{RunAsUser: x}", {}),
    ],
)
def test_linkerd_config_security_context_keeps_what_the_api_server_keeps(context: str, expected: dict[str, Any]) -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _linkerd_config(f"proxy: {{securityContext: {context}}}\n"))
    pod, _ = _linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))
    validate_pod(pod)
    assert _container(pod, "linkerd-proxy")[1]["securityContext"] == expected
    assert discovery.unreported_warnings() == []


# The install values read from linkerd-config since the workers/, cores/, tracing/ and token/ cases:
# a default install's linkerd-config (the file each release's injector read) gives the plugin's defaults.
_CHART_DEFAULTS = (
    "proxyInitRunAsUser", "proxyInitRunAsGroup", "proxyInitPrivileged", "closeWaitTimeoutSecs", "proxyCores",
    "proxyWorkersMinimum", "proxyWorkersMaximum", "proxyWorkersMaximumCPURatio", "controlStreamInitialTimeout",
    "controlStreamIdleTimeout", "controlStreamLifetime", "proxyInbound", "proxyOutbound", "livenessInitialDelaySeconds",
    "livenessTimeoutSeconds", "readinessInitialDelaySeconds", "readinessTimeoutSeconds", "startupInitialDelaySeconds",
    "startupPeriodSeconds", "startupFailureThreshold", "proxySecurityContext", "proxyCapabilities", "proxyInitCapabilities",
    "tracingEnabled", "tracingProtocol", "tracingServiceName", "tracingLabels", "tracingCollectorEndpoint",
    "tracingCollectorServiceAccount", "tracingCollectorNamespace", "serviceAccountTokenProjection",
)  # fmt: skip


def test_a_default_linkerd_config_gives_the_plugins_defaults_for_the_chart_values() -> None:
    plugins = load_plugins()
    linkerd = plugins["linkerd"]
    for golden in sorted((Path(__file__).parents[2] / "reference" / "linkerd" / "golden").glob("*/values.yaml")):
        discovery = Discovery(plugins)
        config = {"metadata": {"name": "linkerd-config", "namespace": "linkerd"}, "data": {"values": golden.read_text()}}
        discovery.observe("ConfigMap", "linkerd", "linkerd-config", config)
        found = discovery.values_for(linkerd)
        assert {k: found[k] for k in _CHART_DEFAULTS} == {k: linkerd.values[k] for k in _CHART_DEFAULTS}, golden


ISTIO_INJECTOR_VALUES = {
    "global": {
        "imagePullPolicy": "Always",
        "logging": {"level": "default:debug"},
        "meshID": "mesh-east",
        "network": "network-east",
        "multiCluster": {"clusterName": "cluster-east"},
        "proxy": {
            "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "holdApplicationUntilProxyStarts": True,
            "includeIPRanges": "10.0.0.0/8",
            "excludeIPRanges": "10.96.0.1/32",
            "includeInboundPorts": "8080",
            "excludeInboundPorts": "9901",
            "includeOutboundPorts": "",
            "excludeOutboundPorts": "3306",
            "logLevel": "info",
            "componentLogLevel": "misc:warning",
            "privileged": True,
        },
    },
    "pilot": {"cni": {"enabled": True}},
    "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": False},
}


def _istio_config_maps(suffix: str = "") -> list[tuple[str, dict[str, Any]]]:
    return [
        ("istio-sidecar-injector" + suffix, {"data": {"values": json.dumps(ISTIO_INJECTOR_VALUES), "config": "policy: enabled"}}),
        ("istio" + suffix, {"data": {"mesh": "trustDomain: east.example.com\ndefaultConfig:\n  holdApplicationUntilProxyStarts: true\n"}}),
    ]


def test_istio_install_values_come_from_its_config_maps() -> None:
    """The injector ConfigMap's `values` (JSON) and the mesh ConfigMap's `mesh` give the install's
    values, as Istio's injector reads them; per revision from istio-sidecar-injector-<rev>, istio-<rev>."""
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    for name, obj in _istio_config_maps():
        discovery.observe("ConfigMap", "istio-system", name, obj)
    values = discovery.values_for(plugins["istio"])
    assert {k: values[k] for k in ISTIO_TAKEN} == {
        "cniEnabled": True,
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "proxyHoldApplicationUntilProxyStarts": True,
        "includeIPRanges": "10.0.0.0/8",
        "excludeIPRanges": "10.96.0.1/32",
        "includeInboundPorts": "8080",
        "excludeInboundPorts": "9901",
        "includeOutboundPorts": "",  # empty in the ConfigMap: the plugin's default, also empty
        "excludeOutboundPorts": "3306",
        "proxyLogLevel": "info",
        "proxyComponentLogLevel": "misc:warning",
        "agentLogLevel": "default:debug",
        "imagePullPolicy": "Always",
        "privileged": True,
        "meshId": "mesh-east",
        "network": "network-east",
        "clusterId": "cluster-east",
        "rewriteAppProbers": False,
        "trustDomain": "east.example.com",
        "defaultConfig": {"holdApplicationUntilProxyStarts": True},
    }
    assert discovery.missing_for(plugins["istio"]) == ()
    # A revision reads its own ConfigMaps: none seen for canary yet, so its values are the defaults.
    canary = discovery.values_for(plugins["istio"], "canary")
    assert canary["cniEnabled"] is False and canary["trustDomain"] == "cluster.local"
    for name, obj in _istio_config_maps("-canary"):
        discovery.observe("ConfigMap", "istio-system", name, obj)
    assert discovery.values_for(plugins["istio"], "canary")["cniEnabled"] is True


def test_istio_cni_install_renders_istio_validation() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    for name, obj in _istio_config_maps():
        discovery.observe("ConfigMap", "istio-system", name, obj)
    pod = make_pod()
    result = Injector(plugins=plugins, config=Config(sidecar_style="classic"), discovery=discovery).inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    section, validation = _container(injected, "istio-validation")
    assert section == "initContainers" and validation["args"][-2:] == ["--run-validation", "--skip-rule-apply"]
    assert validation["securityContext"]["runAsNonRoot"] is True and "add" not in validation["securityContext"]["capabilities"]
    assert injected["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeInboundPorts"] == "9901,15020"
    _, proxy = _container(injected, "istio-proxy")
    assert proxy["imagePullPolicy"] == "Always" and proxy["securityContext"]["privileged"] is True


def test_an_empty_value_reads_as_not_found_unless_the_take_keeps_it() -> None:
    config_map = {"data": {"values": json.dumps({"a": "", "b": "x", "n": None})}}
    assert Take("v", config_key="values", paths=("a",)).extract(config_map) is None
    assert Take("v", config_key="values", paths=("a",), keep_empty=True).extract(config_map) == ""
    # Several paths: the first one found; a kept empty string is found, an absent key or null is not.
    assert Take("v", config_key="values", paths=("a", "b")).extract(config_map) == "x"
    assert Take("v", config_key="values", paths=("a", "b"), keep_empty=True).extract(config_map) == ""
    assert Take("v", config_key="values", paths=("missing", "n"), keep_empty=True).extract(config_map) is None


@pytest.mark.parametrize(
    ("take", "message"),
    [
        ({"network": {"configKey": "values", "path": "global.network", "keepEmpty": "yes"}}, "controlPlane take 'network': keepEmpty is true or false"),
        ({"network": {"configKey": "values", "path": "global.network", "strict": "yes"}}, "controlPlane take 'network': strict is true or false"),
        ({"network": {"configKey": "values", "path": "global.network", "asWritten": 1}}, "controlPlane take 'network': asWritten is true or false"),
        (
            {"defaultConfig": {"configKey": "mesh", "path": "defaultConfig", "asSetting": "nope"}},
            "controlPlane take 'defaultConfig': asSetting names one of the plugin's settings",
        ),
    ],
    ids=["keepEmpty", "strict", "asWritten", "asSetting"],
)
def test_a_takes_options_are_checked_at_load(take: dict[str, Any], message: str) -> None:
    istio = load_plugins()["istio"]
    entry = {"kind": "ConfigMap", "namespace": "istio-system", "name": "x", "take": take}
    with pytest.raises(ConfigError, match=message):
        control_plane_of(dataclasses.replace(istio, control_plane=(entry,)))


def test_istio_install_values_set_empty_are_written_empty_except_the_cluster_name() -> None:
    """Istio's template writes the chart's traffic values and log levels as they are, an empty one
    included (`-i ""`: nothing redirected); an empty cluster name is `Kubernetes` (`valueOrDefault`)."""
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    proxy_values = {"includeIPRanges": "", "includeInboundPorts": "", "logLevel": "", "componentLogLevel": ""}
    values = {"global": {"logging": {"level": ""}, "multiCluster": {"clusterName": ""}, "proxy": proxy_values}}
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", {"data": {"values": json.dumps(values)}})
    found = discovery.values_for(plugins["istio"])
    taken = ("includeIPRanges", "includeInboundPorts", "proxyLogLevel", "proxyComponentLogLevel", "agentLogLevel", "clusterId")
    assert {k: found[k] for k in taken} == {k: "" for k in taken[:-1]} | {"clusterId": "Kubernetes"}
    pod = make_pod()
    result = Injector(plugins=plugins, config=Config(sidecar_style="classic"), discovery=discovery).inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    _, init = _container(injected, "istio-init")
    args = init["args"]
    assert [args[args.index(flag) + 1] for flag in ("-i", "-x", "-b")] == ["", "", ""] and args[-1] == "--log_output_level="
    _, proxy = _container(injected, "istio-proxy")
    assert "--proxyLogLevel=" in proxy["args"] and "--proxyComponentLogLevel=" in proxy["args"]
    assert {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"} in proxy["env"]


ISTIO_TAKEN = (
    "cniEnabled", "resources", "proxyHoldApplicationUntilProxyStarts", "includeIPRanges", "excludeIPRanges",
    "includeInboundPorts", "excludeInboundPorts", "includeOutboundPorts", "excludeOutboundPorts", "proxyLogLevel",
    "proxyComponentLogLevel", "agentLogLevel", "imagePullPolicy", "privileged", "meshId", "network", "clusterId",
    "rewriteAppProbers", "trustDomain", "defaultConfig",
)  # fmt: skip


def _linkerd_config(extra: str) -> dict[str, Any]:
    return {**LINKERD_CONFIG, "data": {"values": LINKERD_CONFIG["data"]["values"] + extra}}


# Install values of a type Linkerd's injector cannot read into its typed values (it then fails for
# every pod; seen with the reference program's -set): the configured value is kept, the pod still
# renders and passes the API server's schema, and the bad value is reported once.
_UNREADABLE = [
    ("proxyCores", "proxy: {cores: '2'}", "proxy.cores"),
    ("proxyCores", "proxy: {cores: 1.5}", "proxy.cores"),
    ("proxyCores", "proxy: {cores: [1]}", "proxy.cores"),
    ("proxyCores", "proxy: {cores: 99999999999999999999}", "proxy.cores"),
    ("proxyWorkersMaximum", "proxy: {runtime: {workers: {maximum: '4'}}}", "proxy.runtime.workers.maximum"),
    ("proxyWorkersMaximumCPURatio", "proxy: {runtime: {workers: {maximumCPURatio: '0.5'}}}", "proxy.runtime.workers.maximumCPURatio"),
    ("controlStreamLifetime", "proxy: {control: {streams: {lifetime: {a: 1}}}}", "proxy.control.streams.lifetime"),
    ("proxyInbound", "proxy: {inbound: []}", "proxy.inbound"),
    ("proxyInbound", "proxy: {inbound: {server: x}}", "proxy.inbound"),
    ("proxyOutbound", "proxy: {outbound: {server: {http2: [1]}}}", "proxy.outbound"),
    ("livenessInitialDelaySeconds", "proxy: {livenessProbe: {initialDelaySeconds: -1}}", "proxy.livenessProbe.initialDelaySeconds"),
    ("readinessTimeoutSeconds", "proxy: {readinessProbe: {timeoutSeconds: '10'}}", "proxy.readinessProbe.timeoutSeconds"),
    ("startupPeriodSeconds", "proxy: {startupProbe: {periodSeconds: 1.5}}", "proxy.startupProbe.periodSeconds"),
    ("proxySecurityContext", "proxy: {securityContext: abc}", "proxy.securityContext"),
    ("proxySecurityContext", "proxy: {securityContext: [1]}", "proxy.securityContext"),
    # A map Linkerd passes on whole: the API server refuses every pod carrying it.
    ("proxySecurityContext", "proxy: {securityContext: {runAsUser: x}}", "proxy.securityContext"),
    ("proxySecurityContext", "proxy: {securityContext: {capabilities: {add: NET_ADMIN}}}", "proxy.securityContext"),
    ("proxyCapabilities", "proxy: {capabilities: {add: NET_ADMIN}}", "proxy.capabilities"),
    ("proxyCapabilities", "proxy: {capabilities: x}", "proxy.capabilities"),
    ("proxyInitRunAsUser", "proxyInit: {runAsUser: '1000'}", "proxyInit.runAsUser"),
    ("proxyInitPrivileged", "proxyInit: {privileged: 'true'}", "proxyInit.privileged"),
    ("closeWaitTimeoutSecs", "proxyInit: {closeWaitTimeoutSecs: '30'}", "proxyInit.closeWaitTimeoutSecs"),
    ("proxyInitCapabilities", "proxyInit: {capabilities: {drop: ALL}}", "proxyInit.capabilities"),
    ("tracingLabels", "proxy: {tracing: {labels: [1]}}", "proxy.tracing.labels"),
    ("tracingLabels", "proxy: {tracing: {labels: {a: {b: 1}}}}", "proxy.tracing.labels"),
    ("tracingEnabled", "proxy: {tracing: {enabled: 'true'}}", "proxy.tracing.enabled"),
    ("serviceAccountTokenProjection", "identity: {serviceAccountTokenProjection: 'false'}", "identity.serviceAccountTokenProjection"),
    ("proxyAdditionalEnv", "proxy: {additionalEnv: [1, a]}", "proxy.additionalEnv"),
    ("proxyExperimentalEnv", "proxy: {experimentalEnv: [{name: A, value: {b: 1}}]}", "proxy.experimentalEnv"),
    # Linkerd writes these and the API server refuses every pod carrying them.
    ("adminPort", "proxy: {ports: {admin: 0}}", "proxy.ports.admin"),
    ("inboundPort", "proxy: {ports: {inbound: 70000}}", "proxy.ports.inbound"),
    ("proxyUID", "proxy: {uid: 1.5}", "proxy.uid"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "extra", "path"), _UNREADABLE)
def test_linkerd_config_value_linkerd_cannot_read_keeps_the_default_and_is_reported_once(value: str, extra: str, path: str) -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _linkerd_config(extra + "\n"))
    assert discovery.values_for(plugins["linkerd"])[value] == plugins["linkerd"].values[value]
    pod, _ = _linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))
    validate_pod(pod)
    reported = discovery.unreported_warnings()
    assert len(reported) == 1 and f"linkerd-config values {path}" in reported[0] and value in reported[0], reported
    assert discovery.unreported_warnings() == []


def test_linkerd_config_numbers_where_linkerd_reads_text_are_gos_text() -> None:
    # Go's YAML reader turns a number or boolean into text where the field is a string (an int as
    # written, a float as float32's shortest %g), as Linkerd's reference rendering shows.
    plugins = load_plugins()
    discovery = Discovery(plugins)
    extra = (
        "proxy: {control: {streams: {initialTimeout: 5, idleTimeout: 123456789.25, lifetime: true}},"
        " tracing: {labels: {a: 1.5, b: true, c: 10000000}}}\n"
        "proxyInit: {capabilities: {add: [X, 1, 2.5, true]}}\n"
    )
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _linkerd_config(extra))
    found = discovery.values_for(plugins["linkerd"])
    assert (found["controlStreamInitialTimeout"], found["controlStreamIdleTimeout"], found["controlStreamLifetime"]) == ("5", "1.2345679e+08", "true")
    assert found["tracingLabels"] == {"a": "1.5", "b": "true", "c": "10000000"}
    assert found["proxyInitCapabilities"] == {"add": ["X", "1", "2.5", "true"]}
    pod, _ = _linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))
    validate_pod(pod)
    assert _container(pod, "linkerd-init")[1]["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW", "X", "1", "2.5", "true"]
    assert discovery.unreported_warnings() == []


def test_linkerd_config_http2_params_of_any_shape_are_written_as_linkerds_chart_writes_them() -> None:
    # Keys of any spelling are snake-cased; a leaf that is a map or a list is Go's %v of it.
    plugins = load_plugins()
    discovery = Discovery(plugins)
    extra = "proxy: {inbound: {server: {http2: {'': 1, 'a b': 2, 'ünï': 3, a: {b: [1, {c: 2.5}], d: null, e: x}, f: 1000000, g: [true, null, s]}}}}\n"
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _linkerd_config(extra))
    pod, _ = _linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))
    validate_pod(pod)
    env = {e["name"]: e.get("value") for e in _container(pod, "linkerd-proxy")[1]["env"]}
    assert env["LINKERD2_PROXY_INBOUND_SERVER_HTTP2_A"] == "map[b:[1 map[c:2.5]] d:<nil> e:x]"
    assert env["LINKERD2_PROXY_INBOUND_SERVER_HTTP2_F"] == "1e+06"
    assert env["LINKERD2_PROXY_INBOUND_SERVER_HTTP2_G"] == "[true <nil> s]"
    assert "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL" in env
    assert discovery.unreported_warnings() == []


_ALIASES = "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True))


@pytest.mark.parametrize(
    ("extra", "reported"),
    [
        # An alias used a million times: Go's YAML reader refuses it ("excessive aliasing").
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + _ALIASES + "proxy: {inbound: {server: {http2: {x: *f}}}}\n", "more than 20000 values"),
        ("proxy: {outbound: {server: {http2: {x: " + "[" * 300 + "]" * 300 + "}}}}\n", "nested deeper than 64 levels"),
    ],
)
def test_linkerd_config_value_too_large_or_deep_keeps_the_default_and_is_reported(extra: str, reported: str) -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _linkerd_config(extra))
    linkerd = plugins["linkerd"]
    found = discovery.values_for(linkerd)
    assert (found["proxyInbound"], found["proxyOutbound"]) == (linkerd.values["proxyInbound"], linkerd.values["proxyOutbound"])
    pod, _ = _linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))
    validate_pod(pod)
    warnings = discovery.unreported_warnings()
    assert len(warnings) == 1 and reported in warnings[0] and len(warnings[0]) < 500, warnings


def test_linkerd_config_nested_deeper_than_python_reads_keeps_every_default() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    deep = "proxy: {inbound: {server: {http2: {x: " + "[" * 5000 + "]" * 5000 + "}}}}\n"
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _linkerd_config(deep))
    assert discovery.values_for(plugins["linkerd"])["version"] == plugins["linkerd"].values["version"]
    validate_pod(_linkerd_pod(Injector(plugins=plugins, config=Config(), discovery=discovery))[0])


def test_the_watch_logs_an_unreadable_value_once(caplog: pytest.LogCaptureFixture) -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    target = next(o for o in discovery.watched() if o.name == "linkerd-config")
    watch = ControlPlaneWatch(discovery, target, api=None)  # type: ignore[arg-type]  # only list/watch use it
    odd = _linkerd_config("proxy: {cores: '2'}\n")
    with caplog.at_level(logging.WARNING):
        watch.replace([odd], "1")
        watch.on_object("MODIFIED", odd)
    logged = [r.getMessage() for r in caplog.records if "proxy.cores" in r.getMessage()]
    assert logged == ["linkerd: ConfigMap linkerd/linkerd-config values proxy.cores='2': must be a whole number from "
                      "-9223372036854775808 to 9223372036854775807, got a string ('2'); the configured proxyCores (0) is used"]  # fmt: skip


MESH_DEFAULT_CONFIG = """\
trustDomain: cluster.local
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
  termination_drain_duration: 1m
  interceptionMode: 1
  concurrency: 2
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
    ISTIO_META_DNS_AUTO_ALLOCATE: "true"
"""


def _with_mesh(mesh: str) -> Discovery:
    discovery = Discovery(load_plugins())
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    discovery.observe("ConfigMap", "istio-system", "istio", {"data": {"mesh": mesh}})
    return discovery


def test_istio_mesh_default_config_is_taken_whole_and_read_as_the_pods_proxy_config_is() -> None:
    """The mesh ConfigMap's defaultConfig is a ProxyConfig, read as proxy.istio.io/config is: proto
    names in JSON form, durations and enums written back as Istio writes them."""
    discovery = _with_mesh(MESH_DEFAULT_CONFIG)
    assert discovery.values_for(discovery.plugins["istio"])["defaultConfig"] == {
        "discoveryAddress": "istiod.istio-system.svc:15012",
        "terminationDrainDuration": "60s",
        "interceptionMode": "TPROXY",
        "concurrency": 2,
        "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"},
    }


@pytest.mark.parametrize(
    "mesh",
    [
        "defaultConfig:\n  concurrency: many\n",  # refused in a pod's annotation: not taken either
        "defaultConfig: [1, 2]\n",
        "defaultConfig:\n  proxyMetadata: !!set {a}\n",  # YAML that is no JSON
        "defaultConfig: {}\n",  # nothing set: the default, also empty
    ],
)
def test_istio_mesh_default_config_istio_refuses_leaves_the_default(mesh: str) -> None:
    discovery = _with_mesh(mesh)
    assert discovery.values_for(discovery.plugins["istio"])["defaultConfig"] == {}


def test_istio_pods_get_the_mesh_default_config_under_their_own() -> None:
    """Each pod's ProxyConfig is the install's defaultConfig with its proxy.istio.io/config laid
    over it: proxyMetadata key by key, other fields whole (Istio's mesh.MergeProxyConfig)."""
    discovery = _with_mesh(MESH_DEFAULT_CONFIG)
    injector = Injector(plugins=discovery.plugins, config=Config(sidecar_style="classic"), discovery=discovery)
    own = {"proxy.istio.io/config": '{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "false"}, "interceptionMode": "REDIRECT", "concurrency": null}'}
    for annotations, mode, metadata, text in [
        (
            {},
            "TPROXY",
            {"ISTIO_META_DNS_AUTO_ALLOCATE": "true", "ISTIO_META_DNS_CAPTURE": "true"},
            '{"concurrency":2,"interceptionMode":"TPROXY","proxyMetadata":{"ISTIO_META_DNS_AUTO_ALLOCATE":"true",'
            '"ISTIO_META_DNS_CAPTURE":"true"},"terminationDrainDuration":"60s"}\n',
        ),
        (
            own,
            "REDIRECT",
            {"ISTIO_META_DNS_AUTO_ALLOCATE": "true", "ISTIO_META_DNS_CAPTURE": "false"},
            '{"concurrency":2,"proxyMetadata":{"ISTIO_META_DNS_AUTO_ALLOCATE":"true","ISTIO_META_DNS_CAPTURE":"false"},'
            '"terminationDrainDuration":"60s"}\n',
        ),
    ]:
        pod = make_pod(annotations=annotations)
        injected = apply(pod, injector.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"})).patch)
        _, init = _container(injected, "istio-init")
        _, proxy = _container(injected, "istio-proxy")
        env = {e["name"]: e.get("value") for e in proxy["env"]}
        assert init["args"][init["args"].index("-m") + 1] == mode
        assert {e["name"]: e["value"] for e in init["env"]} == metadata
        assert {k: env[k] for k in metadata} == metadata
        assert env["PROXY_CONFIG"] == text


def test_istio_chart_values_of_the_proxy_come_from_the_injector_config_map() -> None:
    """global.hub and global.tag make the proxy image (Istio's injector renders it from its values),
    while istiod's image tag still picks the release line; the status port, probes, lifecycle,
    seccomp profile, JSON logs, nftables, STS port, CA address, cluster domain and trust bundle are
    the install's."""
    plugins = load_plugins()
    discovery = Discovery(plugins)
    istiod_1_28 = json.loads(json.dumps(ISTIOD).replace("pilot:1.29.6", "pilot:1.28.10"))
    discovery.observe("Deployment", "istio-system", "istiod", istiod_1_28)
    chart = {
        "global": {
            "hub": "registry.example.com/istio", "tag": "mirror-1", "caAddress": "ca.example.com:15012",
            "logAsJson": True, "nativeNftables": True, "trustBundleName": "my-root-cert", "sts": {"servicePort": 15463},
            "proxy_init": {"forceApplyIptables": True},
            "proxy": {
                "clusterDomain": "corp.local", "statusPort": 15030, "readinessInitialDelaySeconds": 2,
                "readinessPeriodSeconds": 5, "readinessFailureThreshold": 10,
                "startupProbe": {"enabled": False, "failureThreshold": 300},
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}, "seccompProfile": {"type": "RuntimeDefault"},
                "capNetBindService": True, "outlierLogPath": "/dev/stdout",
            },
        },
        "pilot": {"crlConfigMapName": "my-crl"},
    }  # fmt: skip
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", {"data": {"values": json.dumps(chart)}})
    pod = make_pod()
    result = Injector(plugins=plugins, config=Config(sidecar_style="classic"), discovery=discovery).inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    _, init = _container(injected, "istio-init")
    assert init["image"] == "registry.example.com/istio/proxyv2:mirror-1"
    assert init["args"][-3:] == ["--log_as_json", "--force-apply", "--native-nftables"]
    assert init["args"][init["args"].index("-d") + 1] == "15090,15021,15030"
    assert init["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    _, proxy = _container(injected, "istio-proxy")
    assert proxy["args"][3] == "$(POD_NAMESPACE).svc.corp.local"
    assert proxy["args"][-3:] == ["--stsPort=15463", "--log_as_json", "--outlierLogPath=/dev/stdout"]
    assert {"name": "CA_ADDR", "value": "ca.example.com:15012"} in proxy["env"]
    assert "startupProbe" not in proxy and proxy["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    probe = proxy["readinessProbe"]
    assert (probe["initialDelaySeconds"], probe["periodSeconds"], probe["failureThreshold"]) == (2, 5, 10)
    security = proxy["securityContext"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"} and security["capabilities"]["add"] == ["NET_BIND_SERVICE"]
    # The release line is istiod's (1.28: divisor "0", and the CRL ConfigMap's name fixed).
    cpu = next(e for e in proxy["env"] if e["name"] == "ISTIO_CPU_LIMIT")
    assert cpu["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    assert volumes["istio-ca-crl"]["configMap"]["name"] == "istio-ca-crl"
    assert volumes["istiod-ca-cert"]["configMap"]["name"] == "my-root-cert"


def test_istio_certificate_and_image_chart_values_come_from_the_injector_config_map() -> None:
    """global.pilotCertProvider (istiod's CA root only for istiod), global.caName GkeWorkloadCertificate,
    global.mountMtlsCerts, and global.proxy.image / global.proxy_init.image, as Istio's templates read them."""
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    chart = {
        "global": {
            "pilotCertProvider": "custom", "caName": "GkeWorkloadCertificate", "mountMtlsCerts": True,
            "proxy": {"image": "proxyv2-custom"}, "proxy_init": {"image": "registry.example.com/tools/iptables-init:1.0"},
        },
    }  # fmt: skip
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", {"data": {"values": json.dumps(chart)}})
    pod = make_pod()
    pod["spec"]["serviceAccountName"] = "reviews"
    result = Injector(plugins=plugins, config=Config(sidecar_style="classic"), discovery=discovery).inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    _, init = _container(injected, "istio-init")
    _, proxy = _container(injected, "istio-proxy")
    assert init["image"] == "registry.example.com/tools/iptables-init:1.0"
    assert proxy["image"] == "docker.io/istio/proxyv2-custom:1.29.6"
    assert {"name": "PILOT_CERT_PROVIDER", "value": "custom"} in proxy["env"]
    mounts = {m["name"]: m for m in proxy["volumeMounts"]}
    assert "istiod-ca-cert" not in mounts and "istio-ca-crl" not in mounts and "workload-certs" not in mounts
    assert mounts["gke-workload-certificate"]["readOnly"] is True and mounts["istio-certs"]["mountPath"] == "/etc/certs/"
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    assert "istiod-ca-cert" not in volumes and "istio-ca-crl" in volumes
    assert volumes["istio-certs"]["secret"] == {"optional": True, "secretName": "istio.reviews"}
    assert volumes["gke-workload-certificate"]["csi"] == {"driver": "workloadcertificates.security.cloud.google.com"}


def test_istio_variant_and_image_pull_secrets_come_from_the_injector_config_map() -> None:
    """global.variant (where the mesh ConfigMap names no image type) and global.imagePullSecrets, as
    Istio's injector reads them; a type already at the tag's end is replaced, not doubled."""
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    chart = {"global": {"variant": "distroless", "tag": "1.29.6-debug", "imagePullSecrets": ["regcred"]}}
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", {"data": {"values": json.dumps(chart)}})
    pod = make_pod()
    result = Injector(plugins=plugins, config=Config(sidecar_style="classic"), discovery=discovery).inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    assert {c["image"] for c in injected["spec"]["initContainers"] + injected["spec"]["containers"][1:]} == {"docker.io/istio/proxyv2:1.29.6-distroless"}
    assert injected["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_istio_image_pull_secrets_that_are_not_names_are_reported_and_keep_the_default() -> None:
    """Istio reads its values into typed fields (protojson): [1] is no list of names there, so istiod
    refuses the values; discovery keeps the configured ones and says which value and why."""
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    chart = {"global": {"imagePullSecrets": [1]}}
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", {"data": {"values": json.dumps(chart)}})
    assert discovery.values_for(plugins["istio"])["imagePullSecrets"] == []
    [warning] = discovery.unreported_warnings()
    assert "global.imagePullSecrets=[1]" in warning and "[0] must be a string, got a number (1)" in warning


def test_istio_image_pull_secrets_in_a_values_file_must_be_names(tmp_path: Path) -> None:
    """The values file is checked against the Go type the cluster's value is read as, so that a list
    of numbers is refused naming the value, not failing later when the plugin renders."""
    path = tmp_path / "values.yaml"
    path.write_text("istio:\n  imagePullSecrets: [1]\n")
    with pytest.raises(ConfigError, match=r"istio\.imagePullSecrets=\[1\]: \[0\] must be a string, got a number \(1\) \(the mesh reads it as \[string\]\)"):
        load_values(path, load_plugins())


def test_linkerd_security_context_in_a_values_file_is_checked_as_the_api_server_reads_it(tmp_path: Path) -> None:
    """proxySecurityContext is taken as written: a name in another case is a field the API server
    drops, as from linkerd-config (not refused); a known field of the wrong type is refused."""
    path = tmp_path / "values.yaml"
    path.write_text("linkerd:\n  proxySecurityContext: {RunAsUser: x, runAsNonRoot: true}\n")
    load_values(path, load_plugins())
    path.write_text("linkerd:\n  proxySecurityContext: {runAsUser: x}\n")
    with pytest.raises(ConfigError, match=r"linkerd\.proxySecurityContext=.*: runAsUser must be a whole number"):
        load_values(path, load_plugins())


def test_istio_image_pull_secrets_of_another_kind_keep_the_default() -> None:
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("Deployment", "istio-system", "istiod", ISTIOD)
    chart = {"global": {"imagePullSecrets": [{"name": "regcred"}]}}  # Istio reads a list of names
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", {"data": {"values": json.dumps(chart)}})
    assert discovery.values_for(plugins["istio"])["imagePullSecrets"] == []


def _reference_linkerd_config(version: str, folder: str) -> dict[str, Any]:
    """The linkerd-config the reference program gave Linkerd's injector for one folder's inputs: the
    release's default values with the folder's values (meta.yaml folder_values) set over them."""
    golden = Path(__file__).parents[2] / "reference" / "linkerd" / "golden" / version
    values = yaml.safe_load((golden / "values.yaml").read_text())
    for path, value in yaml.safe_load((golden / "meta.yaml").read_text())["folder_values"][folder].items():
        *parents, last = path.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return {"metadata": {"name": "linkerd-config", "namespace": "linkerd"}, "data": {"values": yaml.safe_dump(values)}}


def _reference_input(folder: str, stem: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((Path(__file__).parents[2] / "reference" / "linkerd" / folder / f"{stem}.yaml").read_text()))


def _reference_golden(version: str, folder: str, stem: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((Path(__file__).parents[2] / "reference" / "linkerd" / "golden" / version / folder / f"{stem}.yaml").read_text()))


@pytest.mark.parametrize("version", ["edge-26.8.3", "edge-25.10.7"])
def test_linkerd_config_values_written_empty_are_written_as_linkerd_writes_them(version: str) -> None:
    # Linkerd reads linkerd-config with no chart defaults under it: an empty log level, policy,
    # timeout, port list, pull policy or image name is written empty (or null), not as the chart's.
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _reference_linkerd_config(version, "empty"))
    expected = _reference_golden(version, "empty", "empty-values")[0]
    pod = _reference_input("empty", "empty-values")[0]
    result = Injector(plugins=plugins, config=Config(), discovery=discovery).inject(pod, namespace("meshed", {"meshswitch.io/mode": "linkerd"}))
    injected = apply(pod, result.patch)
    for name in ("linkerd-proxy", "linkerd-init"):
        ours, theirs = _container(injected, name)[1], _container(expected, name)[1]
        assert (ours["image"], ours.get("imagePullPolicy") or "") == (theirs["image"], theirs.get("imagePullPolicy") or ""), name
        assert ours.get("args") == theirs.get("args"), name
        assert {e["name"]: e.get("value") or "" for e in ours.get("env") or ()} == {e["name"]: e.get("value") or "" for e in theirs.get("env") or ()}
    assert any("proxy.image.name is empty" in w for w in result.warnings), result.warnings


def test_linkerd_config_service_account_and_xtables_mount_paths_are_linkerds() -> None:
    # proxy.saMountPath is the proxy's and linkerd-init's mount where the first container mounts no
    # token (proxyInit.saMountPath is not read: Linkerd replaces it); proxyInit.xtMountPath's path is
    # linkerd-init's xtables-lock mount. Its name (xtables-lock in mounts/) is not followed: Linkerd's
    # volume keeps the chart's name, so the mount would name no volume (intended/linkerd.yaml).
    plugins = load_plugins()
    discovery = Discovery(plugins)
    discovery.observe("ConfigMap", "linkerd", "linkerd-config", _reference_linkerd_config("edge-26.8.3", "mounts"))
    injector = Injector(plugins=plugins, config=Config(), discovery=discovery)
    expected = _reference_golden("edge-26.8.3", "mounts", "service-account-mount")
    for given, theirs in zip(_reference_input("mounts", "service-account-mount")[:2], expected[:2], strict=True):
        result = injector.inject(given, namespace("meshed", {"meshswitch.io/mode": "linkerd"}))
        injected = apply(given, result.patch)
        for name in ("linkerd-proxy", "linkerd-init"):
            mounts = [
                {**m, "name": "linkerd-proxy-init-xtables-lock"} if m["name"] == "xtables-lock" else m
                for m in _container(theirs, name)[1]["volumeMounts"]
            ]
            assert _container(injected, name)[1]["volumeMounts"] == mounts, name
