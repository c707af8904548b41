"""Annotation values read as Go's json.Unmarshal reads them into core/v1 types (webhook/engine/schema.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest

from tests.helpers import apply, make_pod, namespace
from webhook.engine import reasons
from webhook.engine.config import Config
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.schema import _TABLE, TypeMismatch, check_annotation, conform
from webhook.engine.settings import SettingError, load_setting

_DEFINITIONS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.36.0-local" / "_definitions.json"
_SPECIAL = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int-or-string",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "any",
}


def _derived_table(roots: tuple[str, ...]) -> dict[str, str]:
    """The table schema.py holds, derived again from the Kubernetes 1.36 OpenAPI schema."""
    definitions = json.loads(_DEFINITIONS.read_text())["$defs"]
    found: dict[str, str] = {}
    queue = [f"io.k8s.api.core.v1.{root}" for root in roots]

    def code(prop: dict[str, Any]) -> str:
        if "$ref" in prop:
            full: str = prop["$ref"].rsplit("/", 1)[-1]
            if full in _SPECIAL:
                return _SPECIAL[full]
            queue.append(full)
            return full.rsplit(".", 1)[-1]
        kinds = [k for k in (prop["type"] if isinstance(prop["type"], list) else [prop["type"]]) if k != "null"]
        if kinds == ["array"]:
            return f"[{code(prop['items'])}]"
        if kinds == ["object"]:
            return "{" + code(prop["additionalProperties"]) + "}"
        if kinds == ["integer"]:
            return str(prop["format"])
        return {"string": "string", "boolean": "bool"}[kinds[0]]

    while queue:
        full = queue.pop(0)
        short = full.rsplit(".", 1)[-1]
        if short in found:
            continue
        properties = definitions[full].get("properties", {})
        found[short] = " ".join(f"{name}:{code(prop)}" for name, prop in properties.items())
    return found


def test_type_table_follows_the_kubernetes_schema() -> None:
    assert _TABLE == _derived_table(("Container", "Volume"))


def _entries(annotation: str) -> list[tuple[str, Any]]:
    return list(orjson.loads(annotation).items())


# Istio's sidecar.istio.io/userVolume and userVolumeMount: `{name: spec}`, each spec read into a
# Volume or a VolumeMount (Istio 1.28 to 1.30 refuse the pod: "unmarshal patched pod").
@pytest.mark.parametrize(
    ("key", "annotation", "kind", "message"),
    [
        (
            "sidecar.istio.io/userVolumeMount", '{"data": {"mountPath": "/data", "readOnly": "yes"}}', "VolumeMount",
            "annotation sidecar.istio.io/userVolumeMount: data.readOnly must be true or false, got a string ('yes')",
        ),
        (
            "sidecar.istio.io/userVolume", '{"v": {"emptyDir": {"sizeLimit": "abc"}}}', "Volume",
            "annotation sidecar.istio.io/userVolume: v.emptyDir.sizeLimit must be a quantity such as 128Mi or 1, got a string ('abc')",
        ),
        (
            "sidecar.istio.io/userVolume", '{"v":{"emptyDir":{"medium":5}}}', "Volume",
            "annotation sidecar.istio.io/userVolume: v.emptyDir.medium must be a string, got a number (5)",
        ),
        (
            "sidecar.istio.io/userVolumeMount", '{"data":{"mountPath":5}}', "VolumeMount",
            "annotation sidecar.istio.io/userVolumeMount: data.mountPath must be a string, got a number (5)",
        ),
    ],
)  # fmt: skip
def test_user_volume_of_the_wrong_type_is_refused_with_its_path(key: str, annotation: str, kind: str, message: str) -> None:
    [(name, spec)] = _entries(annotation)
    for float64 in (False, True):
        with pytest.raises(PodDenied) as caught:
            check_annotation(spec, kind, key=key, at=name, float64=float64)
        assert caught.value.message == message and caught.value.code == reasons.INVALID_SETTING


def test_an_unknown_field_of_a_user_volume_is_dropped_as_go_drops_it() -> None:
    [(name, spec)] = _entries('{"v":{"emptyDir":{},"bogus":1}}')
    assert conform(spec, "Volume", at=name, float64=True) == {"emptyDir": {}}


def test_a_whole_number_through_a_float64_is_a_whole_number() -> None:
    # Istio's template reads userVolume with fromJSON (float64) and writes it with toYaml: 4.2e2 is 420.
    spec = orjson.loads('{"configMap": {"name": "c", "defaultMode": 4.2e2}}')
    assert conform(spec, "Volume", float64=True) == {"configMap": {"name": "c", "defaultMode": 420}}
    with pytest.raises(TypeMismatch, match=r"configMap.defaultMode must be a whole number from -2147483648 to 2147483647"):
        conform(spec, "Volume")
    with pytest.raises(TypeMismatch, match="defaultMode"):
        conform({"configMap": {"defaultMode": 4.5}}, "Volume", float64=True)


@pytest.mark.parametrize("value", ["1Gi", " 128Mi ", "-1", "1e3", "+1.5", ".5", 5, 1.5])
def test_a_quantity_reads_as_resource_quantity_reads_it(value: Any) -> None:
    assert conform({"emptyDir": {"sizeLimit": value}}, "Volume") == {"emptyDir": {"sizeLimit": value}}


@pytest.mark.parametrize("value", ["abc", "", "-+1", "1 Gi", True, [], {}])
def test_a_quantity_that_does_not_parse_is_refused(value: Any) -> None:
    with pytest.raises(TypeMismatch, match="resources.limits.cpu must be a quantity"):
        conform({"resources": {"limits": {"cpu": value}}}, "Container")


def test_int_or_string_takes_text_or_an_int32() -> None:
    probe = {"httpGet": {"port": "http"}, "tcpSocket": {"port": 8080}}
    assert conform(probe, "Probe") == probe
    bad: object
    for bad in (True, 1.5, 2**31, {}):
        with pytest.raises(TypeMismatch, match="httpGet.port must be a string or a whole number"):
            conform({"httpGet": {"port": bad}}, "Probe")


def test_keys_match_fields_as_go_matches_them() -> None:
    # Exact name first, else case-insensitively (the Kelvin sign folds to k); null leaves a field unset.
    mount = {"Name": "a", "MOUNTPATH": "/a", "readonly": True, "subPath": None, "bogus": 1}
    assert conform(mount, "VolumeMount") == {"name": "a", "mountPath": "/a", "readOnly": True}
    assert conform({"\u212aey": "k", "name": "n"}, "SecretKeySelector") == {"key": "k", "name": "n"}


def test_exact_names_read_keys_as_the_api_server_does() -> None:
    # The API server's decoder is case-sensitive: a key in another case is a field it does not know,
    # nested ones included, and its value is not checked.
    context = {"RunAsUser": "x", "runAsNonRoot": True, "capabilities": {"ADD": ["NET_ADMIN"], "drop": ["ALL"]}}
    assert conform(context, "SecurityContext", exact_names=True) == {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def test_lists_and_maps_are_typed_item_by_item() -> None:
    assert conform({"args": ["a", None], "resources": {"requests": {"cpu": "1"}}}, "Container") == {
        "args": ["a", ""],
        "resources": {"requests": {"cpu": "1"}},
    }
    with pytest.raises(TypeMismatch, match=r"^env\[1\].valueFrom must be an object, got a string"):
        conform({"env": [{"name": "A"}, {"name": "B", "valueFrom": "x"}]}, "Container")
    with pytest.raises(TypeMismatch, match=r"^the value must be an object, got a list"):
        conform([], "Container")
    with pytest.raises(TypeMismatch, match=r"^securityContext.runAsUser must be a whole number from -9223372036854775808"):
        conform({"securityContext": {"runAsUser": 2**63}}, "Container")


def test_env_setting_reads_each_env_var_as_go_does() -> None:
    env = load_setting("x", {"key": "example.com/env", "type": "env"}, where="test.yaml")
    assert env.parse('[{"name":"A","Value":"x","bogus":1},{"name":"B","value":null}]') == [
        {"name": "A", "value": "x"},
        {"name": "B"},
    ]
    with pytest.raises(SettingError, match=r"\[0\].valueFrom.fieldRef.fieldPath must be a string, got a number \(5\)"):
        env.parse('[{"name":"A","valueFrom":{"fieldRef":{"fieldPath":5}}}]')
    for bad in ('[{"value":"x"}]', '[{"name":""}]', "[1]"):
        with pytest.raises(SettingError, match="not a list of env vars"):
            env.parse(bad)


def test_a_namespace_env_list_go_cannot_read_is_ignored_as_linkerd_ignores_it() -> None:
    """The namespace's proxy-additional-env, merged under the pod's own: Linkerd unmarshals it into
    []EnvVar and, where that fails, logs a warning and adds none of it."""
    engine = Injector(plugins=load_plugins(), config=Config())
    pod_env = '[{"name": "B", "value": "2"}]'
    for field_path, kept in (('"metadata.name"', True), ("5", False)):
        ns_env = '[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": %s}}, "bogus": 1}]' % field_path
        pod = make_pod(annotations={"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-additional-env": pod_env})
        ns = namespace("demo", None, {"config.linkerd.io/proxy-additional-env": ns_env})
        proxy = next(c for c in apply(pod, engine.inject(pod, ns).patch)["spec"]["initContainers"] if c["name"] == "linkerd-proxy")
        names = {e["name"]: e for e in proxy["env"]}
        assert ("A" in names) is kept and names["B"] == {"name": "B", "value": "2"}
        if kept:
            assert names["A"] == {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}  # bogus dropped
