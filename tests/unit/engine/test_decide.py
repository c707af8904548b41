"""SPEC.md's decision rules, one test (or more) per rule, and each plugin's own keys."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.helpers import apply, make_injector, make_pod, namespace
from webhook.engine import reasons
from webhook.engine.config import Config
from webhook.engine.decide import Decision
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.values import apply_values, check_values

INJECTOR = make_injector()


def decide(
    pod: dict[str, Any], ns_labels: dict[str, str] | None = None, ns_annotations: dict[str, str] | None = None, ns: str = "demo", injector: Injector = INJECTOR
) -> Decision:
    return injector.decide(pod, namespace(ns, ns_labels, ns_annotations))


def names(decision: Decision) -> list[str]:
    return [p.name for p in decision.plugins]


def pod_with(where: str, keys: dict[str, str]) -> dict[str, Any]:
    """A pod with ``keys`` as its ``where`` ("labels" or "annotations")."""
    spec: dict[str, Any] = {where: keys}
    return make_pod(**spec)


# Rule 2: ignored namespaces.
@pytest.mark.parametrize("ns", ["kube-system", "kube-public", "kube-node-lease", "meshswitch-system"])
def test_rule2_system_and_own_namespace_are_ignored(ns: str) -> None:
    decision = decide(make_pod(annotations={"meshswitch.io/mode": "istio"}), {"meshswitch.io/mode": "istio"}, ns=ns)
    assert decision.plugins == () and decision.reason.code == reasons.IGNORED_NAMESPACE


def test_rule2_configured_namespace_is_ignored() -> None:
    injector = make_injector(extra_ignored_namespaces=frozenset({"legacy"}))
    decision = decide(make_pod(), {"meshswitch.io/mode": "istio"}, ns="legacy", injector=injector)
    assert decision.reason.code == reasons.IGNORED_NAMESPACE
    assert names(decide(make_pod(), {"meshswitch.io/mode": "istio"}, ns="other", injector=injector)) == ["istio"]


# Rule 3: opt out.
def test_rule3_pod_opt_out_by_annotation() -> None:
    decision = decide(make_pod(annotations={"meshswitch.io/inject": "false", "dapr.io/enabled": "true"}), {"meshswitch.io/mode": "istio"})
    assert decision.plugins == () and decision.reason.code == reasons.OPTED_OUT


def test_rule3_pod_opt_out_by_label() -> None:
    decision = decide(make_pod(labels={"meshswitch.io/inject": "false"}), {"meshswitch.io/mode": "linkerd"})
    assert decision.reason.code == reasons.OPTED_OUT


def test_rule3_pod_opt_out_label_beats_annotation() -> None:
    pod = make_pod(labels={"meshswitch.io/inject": "true"}, annotations={"meshswitch.io/inject": "false"})
    assert names(decide(pod, {"meshswitch.io/mode": "istio"})) == ["istio"]
    pod = make_pod(labels={"meshswitch.io/inject": "false"}, annotations={"meshswitch.io/inject": "true"})
    assert decide(pod, {"meshswitch.io/mode": "istio"}).reason.code == reasons.OPTED_OUT


# Rule 4: the mode.
def test_rule4_pod_mode_label_beats_pod_annotation() -> None:
    pod = make_pod(labels={"meshswitch.io/mode": "linkerd"}, annotations={"meshswitch.io/mode": "istio"})
    assert names(decide(pod)) == ["linkerd"]


def test_rule4_pod_mode_beats_namespace_mode() -> None:
    pod = make_pod(annotations={"meshswitch.io/mode": "envoy"})
    assert names(decide(pod, {"meshswitch.io/mode": "istio"})) == ["envoy"]


def test_rule4_pod_native_mode_beats_namespace_mesh() -> None:
    decision = decide(make_pod(labels={"meshswitch.io/mode": "native"}), {"meshswitch.io/mode": "istio"})
    assert decision.plugins == () and decision.reason.code == reasons.NATIVE_MODE


def test_rule4_namespace_mode_label() -> None:
    decision = decide(make_pod(), {"meshswitch.io/mode": "linkerd"})
    assert names(decision) == ["linkerd"] and decision.mode == "linkerd"


def test_rule4_namespace_mode_is_read_from_labels_not_annotations() -> None:
    decision = decide(make_pod(), ns_annotations={"meshswitch.io/mode": "istio"})
    assert decision.reason.code == reasons.NO_MODE


def test_rule4_mesh_own_key_on_pod_before_namespace() -> None:
    pod = make_pod(annotations={"linkerd.io/inject": "enabled"})
    assert names(decide(pod, {"istio-injection": "enabled"})) == ["linkerd"]


def test_rule4_istio_namespace_label_enables_istio() -> None:
    assert names(decide(make_pod(), {"istio-injection": "enabled"})) == ["istio"]


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_rule4_istio_pod_key_enables_istio(where: str) -> None:
    assert names(decide(pod_with(where, {"sidecar.istio.io/inject": "true"}))) == ["istio"]


@pytest.mark.parametrize("value", ["enabled", "ingress"])
def test_rule4_linkerd_annotation_on_pod_or_namespace(value: str) -> None:
    assert names(decide(make_pod(annotations={"linkerd.io/inject": value}))) == ["linkerd"]
    assert names(decide(make_pod(), ns_annotations={"linkerd.io/inject": value})) == ["linkerd"]


def test_rule4_envoy_only_by_mode() -> None:
    assert names(decide(make_pod(), {"meshswitch.io/mode": "envoy"})) == ["envoy"]


def test_rule4_server_default_mode() -> None:
    assert decide(make_pod()).reason.code == reasons.NO_MODE
    injector = make_injector(default_mode="istio")
    assert names(decide(make_pod(), injector=injector)) == ["istio"]


# Rule 5: a plugin's own "off" key.
@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_rule5_istio_pod_off_key(where: str) -> None:
    decision = decide(pod_with(where, {"sidecar.istio.io/inject": "false"}), {"istio-injection": "enabled"})
    assert decision.plugins == () and decision.reason.code == reasons.PLUGIN_DISABLED


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_rule5_istio_keys_count_only_as_written(where: str) -> None:
    """Istio compares the exact text (`exact: true`): "False" opts nothing out, "TRUE" asks for nothing."""
    assert names(decide(pod_with(where, {"sidecar.istio.io/inject": "False"}), {"istio-injection": "enabled"})) == ["istio"]
    assert decide(pod_with(where, {"sidecar.istio.io/inject": "TRUE"})).reason.code == reasons.NO_MODE


def test_rule5_istio_pod_label_beats_annotation() -> None:
    pod = make_pod(labels={"sidecar.istio.io/inject": "true"}, annotations={"sidecar.istio.io/inject": "false"})
    assert names(decide(pod, {"istio-injection": "enabled"})) == ["istio"]
    pod = make_pod(labels={"sidecar.istio.io/inject": "false"}, annotations={"sidecar.istio.io/inject": "true"})
    assert decide(pod, {"istio-injection": "enabled"}).reason.code == reasons.PLUGIN_DISABLED


def test_rule5_istio_namespace_disabled_beats_pod_request() -> None:
    pod = make_pod(labels={"sidecar.istio.io/inject": "true"})
    decision = decide(pod, {"istio-injection": "disabled"})
    assert decision.plugins == () and decision.reason.code == reasons.PLUGIN_DISABLED
    assert "istio-injection" in decision.reason.message


@pytest.mark.parametrize("value", ["disabled", "ENABLED", "yes", "Disabled"])
def test_rule5_istio_injection_other_than_enabled_turns_istio_off(value: str) -> None:
    """As Istio's webhook selectors: its revision and per-pod entries require istio-injection
    absent and its namespace entry requires exactly "enabled", so no pod there is injected."""
    by_pod = decide(make_pod(labels={"sidecar.istio.io/inject": "true"}), {"istio-injection": value})
    by_revision = decide(make_pod(), {"istio-injection": value, "istio.io/rev": "canary"})
    for decision in (by_pod, by_revision):
        assert decision.plugins == () and decision.reason.code == reasons.PLUGIN_DISABLED
        assert f"istio-injection={value}" in decision.reason.message
    assert names(decide(make_pod(), {"istio-injection": "enabled", "istio.io/rev": "canary"})) == ["istio"]
    assert names(decide(make_pod(), {"istio.io/rev": "canary"})) == ["istio"]


def test_rule5_off_key_beats_meshswitch_mode() -> None:
    pod = make_pod(annotations={"sidecar.istio.io/inject": "false"})
    assert decide(pod, {"meshswitch.io/mode": "istio"}).reason.code == reasons.PLUGIN_DISABLED


def test_rule5_linkerd_pod_disabled_beats_namespace_enabled() -> None:
    pod = make_pod(annotations={"linkerd.io/inject": "disabled"})
    assert decide(pod, ns_annotations={"linkerd.io/inject": "enabled"}).reason.code == reasons.PLUGIN_DISABLED


def test_rule5_linkerd_pod_enabled_beats_namespace_disabled() -> None:
    pod = make_pod(annotations={"linkerd.io/inject": "enabled"})
    assert names(decide(pod, ns_annotations={"linkerd.io/inject": "disabled"})) == ["linkerd"]


def test_rule5_mesh_skips_host_network_pods() -> None:
    decision = decide(make_pod(hostNetwork=True), {"meshswitch.io/mode": "istio"})
    assert decision.plugins == () and decision.reason.code == reasons.HOST_NETWORK


def test_rule5_host_network_still_gets_runtime() -> None:
    pod = make_pod(annotations={"dapr.io/enabled": "true"}, hostNetwork=True)
    decision = decide(pod, {"meshswitch.io/mode": "istio"})
    assert names(decision) == ["dapr"]
    assert decision.reason.message.endswith("; istio does not intercept hostNetwork pods"), "the reason says why istio is not there"


# Rule 6: runtime plugins.
def test_rule6_dapr_stacks_on_a_mesh() -> None:
    pod = make_pod(annotations={"dapr.io/enabled": "true"})
    assert names(decide(pod, {"meshswitch.io/mode": "istio"})) == ["istio", "dapr"]


def test_rule6_dapr_alone_in_native_mode() -> None:
    assert names(decide(make_pod(annotations={"dapr.io/enabled": "true"}))) == ["dapr"]


@pytest.mark.parametrize("value", ["false", "", "maybe"])
def test_rule6_dapr_not_enabled(value: str) -> None:
    assert decide(make_pod(annotations={"dapr.io/enabled": value})).plugins == ()


def test_rule6_dapr_only_from_pod_annotation() -> None:
    assert decide(make_pod(labels={"dapr.io/enabled": "true"})).plugins == ()


# Rule 7: idempotency.
def _status(*plugins: str) -> str:
    return orjson.dumps({"plugins": list(plugins)}).decode()


def test_rule7_recorded_plugins_are_not_injected_again() -> None:
    pod = make_pod(annotations={"meshswitch.io/status": _status("istio")})
    decision = decide(pod, {"meshswitch.io/mode": "istio"})
    assert decision.plugins == () and decision.reason.code == reasons.ALREADY_INJECTED


def test_rule7_only_the_missing_plugin_is_added() -> None:
    pod = make_pod(annotations={"meshswitch.io/status": _status("istio"), "dapr.io/enabled": "true"})
    assert names(decide(pod, {"meshswitch.io/mode": "istio"})) == ["dapr"]


def test_rule7_existing_sidecar_of_the_same_name_is_not_duplicated() -> None:
    # Linkerd's webhook skips a pod that already has linkerd-proxy.
    pod = make_pod(containers=[{"name": "app", "image": "a"}, {"name": "linkerd-proxy", "image": "b"}])
    decision = decide(pod, {"meshswitch.io/mode": "linkerd"})
    assert decision.plugins == () and decision.reason.code == reasons.SIDECAR_PRESENT


def test_rule7_a_pods_own_linkerd_debug_is_injected_as_linkerd_does() -> None:
    # Linkerd looks for linkerd-proxy and linkerd-init only: a user's linkerd-debug is the user's.
    pod = make_pod(containers=[{"name": "app", "image": "a"}, {"name": "linkerd-debug", "image": "b"}])
    assert names(decide(pod, {"meshswitch.io/mode": "linkerd"})) == ["linkerd"]


def test_rule8_a_pods_own_linkerd_debug_beside_the_debug_sidecar_is_denied() -> None:
    pod = make_pod(
        annotations={"config.linkerd.io/enable-debug-sidecar": "true"},
        containers=[{"name": "app", "image": "a"}, {"name": "linkerd-debug", "image": "b"}],
    )
    with pytest.raises(PodDenied) as denied:
        INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "linkerd"}))
    assert denied.value.code == reasons.INVALID_POD and "linkerd-debug" in str(denied.value)


@pytest.mark.parametrize(("mode", "name"), [("linkerd", "linkerd-init"), ("envoy", "envoy"), ("envoy", "envoy-init")])
def test_rule7_a_container_named_like_the_plugins_own_still_skips(mode: str, name: str) -> None:
    pod = make_pod(containers=[{"name": "app", "image": "a"}, {"name": name, "image": "b"}])
    assert decide(pod, {"meshswitch.io/mode": mode}).reason.code == reasons.SIDECAR_PRESENT


def test_rule7_declared_istio_proxy_is_merged_not_skipped() -> None:
    # Istio merges a declared istio-proxy (gateway charts: image auto) over its template.
    pod = make_pod(containers=[{"name": "app", "image": "a"}, {"name": "istio-proxy", "image": "auto"}])
    assert names(decide(pod, {"meshswitch.io/mode": "istio"})) == ["istio"]


def test_rule7_another_meshs_proxy_is_never_stacked() -> None:
    pod = make_pod(containers=[{"name": "app", "image": "a"}, {"name": "linkerd-proxy", "image": "b"}])
    decision = decide(pod, {"meshswitch.io/mode": "istio"})
    assert decision.plugins == () and decision.reason.code == reasons.OTHER_MESH_PRESENT
    assert "linkerd-proxy" in decision.reason.message


# Rule 8: denials.
def test_rule8_unknown_mode_is_denied_naming_key_value_and_choices() -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(annotations={"meshswitch.io/mode": "consul"}))
    assert caught.value.code == reasons.UNKNOWN_MODE
    message = caught.value.message
    assert "meshswitch.io/mode" in message and "'consul'" in message and "istio" in message and "native" in message


def test_rule8_unknown_namespace_mode_is_denied() -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(), {"meshswitch.io/mode": "Istio"})
    assert caught.value.code == reasons.UNKNOWN_MODE and "namespace label" in caught.value.message


def test_rule8_runtime_plugin_is_not_a_mode() -> None:
    with pytest.raises(PodDenied):
        decide(make_pod(annotations={"meshswitch.io/mode": "dapr"}))


def test_rule8_two_meshes_on_the_pod_are_denied() -> None:
    pod = make_pod(annotations={"sidecar.istio.io/inject": "true", "linkerd.io/inject": "enabled"})
    with pytest.raises(PodDenied) as caught:
        decide(pod)
    assert caught.value.code == reasons.CONFLICTING_MODES
    assert "sidecar.istio.io/inject" in caught.value.message and "linkerd.io/inject" in caught.value.message


def test_rule8_two_meshes_on_the_namespace_are_denied() -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(), {"istio-injection": "enabled"}, {"linkerd.io/inject": "enabled"})
    assert caught.value.code == reasons.CONFLICTING_MODES


def test_rule8_explicit_mode_settles_a_conflict() -> None:
    pod = make_pod(annotations={"meshswitch.io/mode": "linkerd", "sidecar.istio.io/inject": "true", "linkerd.io/inject": "enabled"})
    assert names(decide(pod)) == ["linkerd"]


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("sidecar.istio.io/proxyCPU", "lots", "CPU quantity"),
        ("sidecar.istio.io/proxyMemory", "1 GB", "memory quantity"),
        ("traffic.sidecar.istio.io/excludeOutboundPorts", "80,http", "ports"),
        ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.0/33", "CIDRs"),
        ("status.sidecar.istio.io/port", "-1", "from 0 to 65535"),
        ("sidecar.istio.io/interceptionMode", "BOGUS", "REDIRECT, TPROXY, NONE"),
        ("prometheus.istio.io/merge-metrics", "maybe", "true or false"),
    ],
)
def test_rule8_bad_setting_is_denied_naming_key_value_and_accepted(key: str, value: str, accepted: str) -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(annotations={key: value}), {"meshswitch.io/mode": "istio"})
    assert caught.value.code == reasons.INVALID_SETTING
    assert key in caught.value.message and repr(value) in caught.value.message and accepted in caught.value.message


def test_rule8_bad_setting_of_an_unselected_plugin_is_ignored() -> None:
    pod = make_pod(annotations={"config.linkerd.io/proxy-cpu-request": "lots"})
    assert names(decide(pod, {"meshswitch.io/mode": "istio"})) == ["istio"]


def test_rule8_bad_dapr_app_id_is_denied() -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "Not_Valid"}))
    assert "dapr.io/app-id" in caught.value.message and "DNS label" in caught.value.message


def test_rule8_dapr_app_id_ending_in_a_dash_is_denied() -> None:
    # Dapr's own check passes ("orders--dapr" is a DNS label); its label dapr.io/app-id=orders- is
    # no valid label value, so the API server would refuse the pod (cases/app-id-trailing-dash).
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "orders-"}))
    assert "dapr.io/app-id='orders-' is not of the accepted form" in caught.value.message
    assert "ending alphanumeric" in caught.value.message


def test_rule8_dapr_pod_name_standing_in_for_the_app_id_is_denied_in_a_sentence() -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(name="web.v1", annotations={"dapr.io/enabled": "true"}))
    message = caught.value.message
    assert "metadata.name 'web.v1' stands in for it, and it is not of the accepted form; accepted: a DNS label" in message


@pytest.mark.parametrize("app_id", [{"dapr.io/app-id": ""}, {}])
def test_rule8_dapr_missing_app_id_is_named_before_other_bad_keys(app_id: dict[str, str]) -> None:
    # Dapr refuses such a pod for its app id alone (it ignores the bad number): the denial names it.
    pod = make_pod(name=None, annotations={"dapr.io/enabled": "true", "dapr.io/metrics-port": "x", **app_id})
    with pytest.raises(PodDenied) as caught:
        decide(pod)
    assert caught.value.message.startswith("pod annotation dapr.io/app-id is absent or empty"), caught.value.message


def test_rule8_bad_sidecar_style_is_denied() -> None:
    with pytest.raises(PodDenied) as caught:
        decide(make_pod(annotations={"meshswitch.io/sidecar": "sidecar"}), {"meshswitch.io/mode": "istio"})
    assert "native, classic" in caught.value.message


def test_settings_pod_annotation_beats_namespace_annotation_beats_default() -> None:
    ns_annotations = {"config.linkerd.io/proxy-log-level": "debug"}
    decision = decide(make_pod(), {"meshswitch.io/mode": "linkerd"}, ns_annotations)
    assert decision.settings["linkerd"]["logLevel"] == "debug"
    pod = make_pod(annotations={"config.linkerd.io/proxy-log-level": "trace"})
    assert decide(pod, {"meshswitch.io/mode": "linkerd"}, ns_annotations).settings["linkerd"]["logLevel"] == "trace"
    # Without either key the setting is unset, and the template takes the install's proxy.logLevel.
    assert decide(make_pod(), {"meshswitch.io/mode": "linkerd"}).settings["linkerd"]["logLevel"] is None
    pod = make_pod()
    out = apply(pod, INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "linkerd"})).patch)
    proxy_env = next(c["env"] for c in out["spec"]["initContainers"] + out["spec"]["containers"] if c["name"] == "linkerd-proxy")
    assert next(e["value"] for e in proxy_env if e["name"] == "LINKERD2_PROXY_LOG").startswith("warn")


def test_every_decision_has_a_stable_code_and_a_sentence() -> None:
    for pod, labels in [
        (make_pod(), {}),
        (make_pod(), {"meshswitch.io/mode": "istio"}),
        (make_pod(labels={"meshswitch.io/inject": "false"}), {}),
        (make_pod(hostNetwork=True), {"meshswitch.io/mode": "istio"}),
    ]:
        reason = decide(pod, labels).reason
        assert reason.code in reasons.ALLOWED_CODES and len(reason.message) > 10


@pytest.mark.parametrize("value", ["¹", "٣", "8080 ", "0x50", "1e3", "80-90"])
def test_rule8_port_takes_ascii_digits_only(value: str) -> None:
    pod = make_pod(annotations={"dapr.io/enabled": "true", "dapr.io/metrics-port": value})
    if value.strip().isascii() and value.strip().isdigit():
        assert decide(pod).settings["dapr"]["metricsPort"] == int(value)
    else:
        with pytest.raises(PodDenied) as caught:
            decide(pod)
        assert "dapr.io/metrics-port" in caught.value.message and "port number" in caught.value.message


# Rule 7: another mesh's proxy.
@pytest.mark.parametrize("where", ["containers", "initContainers"])
def test_rule7_other_mesh_proxy_is_never_stacked_on(where: str) -> None:
    pod = make_pod()
    pod["spec"].setdefault(where, []).append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27.3"})
    decision = decide(pod, ns_annotations={"linkerd.io/inject": "enabled"})
    assert decision.plugins == () and decision.reason.code == reasons.OTHER_MESH_PRESENT
    assert any("istio-proxy" in w and "linkerd" in w for w in decision.warnings)
    result = INJECTOR.inject(pod, namespace("demo", None, {"linkerd.io/inject": "enabled"}))
    assert result.patch == [] and result.warnings == decision.warnings


def test_rule7_own_proxy_present_is_skipped_as_linkerd_does() -> None:
    pod = make_pod()
    pod["spec"]["containers"].append({"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3"})
    decision = decide(pod, ns_annotations={"linkerd.io/inject": "enabled"})
    assert decision.reason.code == reasons.SIDECAR_PRESENT and decision.warnings == ()


# Namespace-level settings: the namespace's value is the default; some keys are read on the pod only.
def test_namespace_setting_defaults_and_pod_only_keys() -> None:
    ns = {"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-cpu-request": "200m",
          "config.linkerd.io/enable-gateway": "true", "config.beta.linkerd.io/proxy-enable-native-sidecar": "false"}
    settings = decide(make_pod(), ns_annotations=ns).settings["linkerd"]
    assert settings["proxyCPURequest"] == "200m"
    assert settings["gateway"] is None  # pod only: the namespace's value is not read (unset: the install's proxy.isGateway)
    assert settings["nativeSidecarBeta"] is None  # the beta key is read on the pod only
    pod = make_pod(annotations={"config.linkerd.io/enable-gateway": "true", "config.linkerd.io/proxy-cpu-request": "1"})
    settings = decide(pod, ns_annotations=ns).settings["linkerd"]
    assert settings["gateway"] is True and settings["proxyCPURequest"] == "1"


def test_selector_keys_that_match_any_value() -> None:
    # Linkerd's webhook objectSelector: a pod labelled linkerd.io/control-plane-component is never sent.
    pod = make_pod(labels={"linkerd.io/control-plane-component": "destination"})
    assert decide(pod, ns_annotations={"linkerd.io/inject": "enabled"}).reason.code == reasons.PLUGIN_DISABLED
    ns_labels = {"config.linkerd.io/admission-webhooks": "disabled"}
    assert decide(make_pod(), ns_labels, {"linkerd.io/inject": "enabled"}).reason.code == reasons.PLUGIN_DISABLED


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("config.linkerd.io/proxy-outbound-connect-timeout", "soon", "not a duration"),
        ("config.linkerd.io/proxy-cpu-ratio-limit", "1", "not strictly between 0 and 1"),
        ("config.linkerd.io/proxy-additional-env", '{"name": "A"}', "not a list of env vars"),
        ("config.linkerd.io/proxy-additional-env", '[{"name": "A", "value": 1}]', "[0].value must be a string, got a number (1)"),
        ("config.linkerd.io/proxy-additional-env", '[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": 5}}}]', "[0].valueFrom.fieldRef.fieldPath must be a string"),
        ("config.linkerd.io/opaque-ports", "80,Not_A_Name", "is not a port or port range"),
        ("config.linkerd.io/close-wait-timeout", "90s", "needs linkerd-init to run as root"),
        ("config.linkerd.io/opaque-ports", "9090-9080", "'9090-9080' is a range whose upper bound is below its lower bound"),
        ("config.linkerd.io/opaque-ports", "0-70000", "'0-70000' is out of the range 0-65535"),
        ("config.linkerd.io/access-log", "nginx", "accepted: one of apache, json or empty"),
    ],
)
def test_linkerd_values_that_do_not_parse_are_denied(key: str, value: str, message: str) -> None:
    pod = make_pod(annotations={key: value})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("demo", None, {"linkerd.io/inject": "enabled"}))
    assert message in caught.value.message and caught.value.code == reasons.INVALID_SETTING


def test_rule7_a_users_own_envoy_container_is_not_another_mesh() -> None:
    pod = make_pod()
    pod["spec"]["containers"].append({"name": "envoy", "image": "docker.io/envoyproxy/envoy:v1.35.3"})
    assert names(decide(pod, ns_annotations={"linkerd.io/inject": "enabled"})) == ["linkerd"]
    pod["spec"].setdefault("initContainers", []).append({"name": "envoy-init", "image": "docker.io/istio/proxyv2:1.27.3"})
    assert decide(pod, ns_annotations={"linkerd.io/inject": "enabled"}).reason.code == reasons.OTHER_MESH_PRESENT


# Label beats annotation for a mesh's own "on" key too (rule 4), as Istio's injectRequired reads them.
def test_an_istio_label_false_is_no_request_for_istio_even_with_the_annotation_true() -> None:
    pod = make_pod(labels={"sidecar.istio.io/inject": "false"}, annotations={"sidecar.istio.io/inject": "true", "linkerd.io/inject": "enabled"})
    assert names(decide(pod)) == ["linkerd"], "Linkerd is the only mesh asked for: no conflict"
    pod = make_pod(labels={"sidecar.istio.io/inject": "false"}, annotations={"sidecar.istio.io/inject": "true"})
    assert names(decide(pod, ns_annotations={"linkerd.io/inject": "enabled"})) == ["linkerd"]


# Rule 5 for the delegating modes: the label or annotation they add must not override an opt-out.
@pytest.mark.parametrize(
    ("mode", "pod", "ns_labels"),
    [
        ("istio-delegate", make_pod(annotations={"sidecar.istio.io/inject": "false"}), {}),
        ("istio-delegate", make_pod(labels={"sidecar.istio.io/inject": "false"}), {}),
        ("istio-delegate", make_pod(), {"istio-injection": "disabled"}),
        ("istio-delegate", make_pod(labels={"istio.io/dataplane-mode": "ambient"}), {}),
        ("linkerd-delegate", make_pod(annotations={"linkerd.io/inject": "disabled"}), {}),
    ],
)
def test_delegating_modes_honour_the_mesh_opt_outs(mode: str, pod: dict[str, Any], ns_labels: dict[str, str]) -> None:
    decision = decide(pod, {"meshswitch.io/mode": mode, **ns_labels})
    assert decision.plugins == () and decision.reason.code == reasons.PLUGIN_DISABLED, decision.reason


def test_delegating_mode_still_delegates_without_an_opt_out() -> None:
    assert names(decide(make_pod(), {"meshswitch.io/mode": "istio-delegate"})) == ["istio-delegate"]


# "First rule that decides wins": a pod that gets nothing is not refused for its style annotation.
@pytest.mark.parametrize(
    ("pod", "code"),
    [
        (make_pod(annotations={"meshswitch.io/sidecar": "Native"}), reasons.NO_MODE),
        (make_pod(annotations={"meshswitch.io/sidecar": "sidecar", "sidecar.istio.io/inject": "true"}, hostNetwork=True), reasons.HOST_NETWORK),
        (make_pod(annotations={"meshswitch.io/sidecar": "x", "meshswitch.io/inject": "false"}), reasons.OPTED_OUT),
    ],
)
def test_a_bad_sidecar_style_is_refused_only_when_something_is_injected(pod: dict[str, Any], code: str) -> None:
    assert decide(pod).reason.code == code
    with pytest.raises(PodDenied, match="meshswitch.io/sidecar='Native' is not a sidecar style"):
        decide(make_pod(annotations={"meshswitch.io/sidecar": "Native", "sidecar.istio.io/inject": "true"}))


# Linkerd's truth table reads an empty linkerd.io/inject as no request: the namespace turns it on.
# The key is still the pod's, so the namespace's value is not copied onto it: no ingress mode
# (tests/reference/linkerd/cases/empty-pod-value-blocks-namespace).
@pytest.mark.parametrize("ns_value", ["enabled", "ingress"])
def test_an_empty_linkerd_inject_annotation_leaves_the_namespace_to_turn_linkerd_on(ns_value: str) -> None:
    decision = decide(make_pod(annotations={"linkerd.io/inject": ""}), ns_annotations={"linkerd.io/inject": ns_value})
    assert names(decision) == ["linkerd"]
    assert decision.settings["linkerd"]["inject"] is None, "the install's default, not the namespace's value"


# Keys a plugin writes itself are no typos when the pod carries them back (reinvocation, a
# re-applied manifest), even where the fragment writes them from an expression.
@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy"])
def test_a_reinjected_pod_draws_no_unknown_key_warning(mode: str) -> None:
    import jsonpatch

    pod = make_pod(annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "web"})
    injected = jsonpatch.apply_patch(pod, INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": mode})).patch)
    assert not [w for w in INJECTOR.unknown_keys(injected) if "is not a key" in w]
    assert "linkerd.io/created-by" in INJECTOR.plugins["linkerd"].written_keys


def test_an_empty_pod_value_is_the_default_not_the_namespaces() -> None:
    # Linkerd copies a namespace's key only onto a pod that lacks it; an empty one fails to parse.
    ns = {"linkerd.io/inject": "ingress", "config.linkerd.io/proxy-cpu-request": "200m", "config.linkerd.io/proxy-uid": "3000"}
    pod = make_pod(annotations={"linkerd.io/inject": "", "config.linkerd.io/proxy-cpu-request": "", "config.linkerd.io/proxy-uid": " "})
    settings = decide(pod, ns_annotations=ns).settings["linkerd"]
    assert settings["inject"] is None and settings["proxyCPURequest"] is None and settings["proxyUID"] is None


def test_a_namespace_inject_value_linkerd_rejects_denies_a_pod_that_opts_in() -> None:
    pod = make_pod(annotations={"linkerd.io/inject": "enabled"})
    with pytest.raises(PodDenied) as caught:
        decide(pod, ns_annotations={"linkerd.io/inject": "true"})
    assert "namespace annotation linkerd.io/inject='true'" in caught.value.message
    assert decide(make_pod(), ns_annotations={"linkerd.io/inject": "true"}).plugins == ()  # not asked for: not meshed


@pytest.mark.parametrize(
    ("section", "image", "code"),
    [
        ("containers", "cr.l5d.io/linkerd/proxy:edge-26.8.3", reasons.SIDECAR_PRESENT),
        ("initContainers", "cr.l5d.io/linkerd/proxy-init:v2.4.3", reasons.SIDECAR_PRESENT),
        ("containers", "gcr.io/istio-release/proxyv2:1.20.0", reasons.OTHER_MESH_PRESENT),
        ("containers", "cr.l5d.io/linkerd/proxy-init:v2.4.3", None),  # proxy-init counts only as an init container
    ],
)
def test_rule7_linkerd_finds_a_proxy_by_its_image(section: str, image: str, code: str | None) -> None:
    pod = make_pod()
    pod["spec"].setdefault(section, []).append({"name": "sidecar", "image": image})
    decision = decide(pod, ns_annotations={"linkerd.io/inject": "enabled"})
    if code is None:
        assert names(decision) == ["linkerd"]
    else:
        assert decision.plugins == () and decision.reason.code == code


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # Linkerd's chart fails on these (its webhook then admits the pod unmeshed): meshswitch denies.
        ({"tracingEnabled": True, "tracingCollectorEndpoint": "collector.tracing:4317"}, "proxy.tracing is enabled without a collector"),
        ({"closeWaitTimeoutSecs": 60}, "needs linkerd-init to run as root"),
        # Any value but 0, as the chart tests it (with runAsRoot, -1 is written as it is).
        ({"closeWaitTimeoutSecs": -1}, "closeWaitTimeoutSecs other than 0) needs linkerd-init to run as root"),
    ],
)
def test_linkerd_install_values_its_chart_fails_on_are_denied(values: dict[str, object], message: str) -> None:
    plugins = apply_values(load_plugins(), check_values(load_plugins(), {"linkerd": values}, source="test"))
    with pytest.raises(PodDenied) as caught:
        Injector(plugins=plugins, config=Config()).inject(make_pod(), namespace("demo", None, {"linkerd.io/inject": "enabled"}))
    assert message in caught.value.message
