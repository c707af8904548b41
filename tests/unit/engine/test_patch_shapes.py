"""Each pod shape the patch must handle, a test of its own (ops built directly, no whole-pod diff)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.helpers import apply, make_injector, make_pod, namespace, validate_pod
from webhook.engine.config import Config
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.patch import escape, uninject
from webhook.engine.plugins import load_plugins
from webhook.engine.values import apply_values

INJECTOR = make_injector()
ISTIO = {"meshswitch.io/mode": "istio"}


def inject(pod: dict[str, Any], labels: dict[str, str] = ISTIO, injector: Injector = INJECTOR) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = injector.inject(pod, namespace("demo", labels))
    injected = apply(pod, result.patch)
    validate_pod(injected)
    assert uninject(injected) == pod
    return injected, result.patch


def test_rfc6901_escaping() -> None:
    assert escape("a/b~c") == "a~1b~0c"
    assert escape("~/") == "~0~1"


def test_absent_init_containers_volumes_labels_annotations() -> None:
    pod = make_pod()
    assert "labels" not in pod["metadata"] and "annotations" not in pod["metadata"]
    injected, patch = inject(pod)
    paths = [op["path"] for op in patch]
    assert "/spec/initContainers" in paths and "/spec/volumes" in paths
    assert "/metadata/annotations" in paths
    assert injected["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"


def test_empty_maps_and_lists_present() -> None:
    pod = make_pod(labels={}, annotations={}, initContainers=[], volumes=[])
    injected, patch = inject(pod)
    assert all(op["path"] not in ("/spec/initContainers", "/spec/volumes", "/metadata/labels") for op in patch)
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["istio-init", "istio-proxy"]


def test_keys_with_slash_and_tilde_are_escaped() -> None:
    pod = make_pod(labels={"team~x/owner": "a"}, annotations={"example.com/a~b": "c"})
    injected, patch = inject(pod)
    assert {"op": "add", "path": "/metadata/labels/security.istio.io~1tlsMode", "value": "istio"} in patch
    assert any(op["path"] == "/metadata/annotations/meshswitch.io~1status" for op in patch)
    assert injected["metadata"]["labels"]["team~x/owner"] == "a"
    assert injected["metadata"]["annotations"]["example.com/a~b"] == "c"


def test_pod_named_only_by_generate_name() -> None:
    pod = make_pod(name=None, labels={"app": "shop", "pod-template-hash": "7d9f8b6c5"})
    pod["metadata"]["generateName"] = "shop-7d9f8b6c5-"
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-7d9f8b6c5", "uid": "u1", "controller": True}
    ]
    injected, _ = inject(pod)
    proxy = next(c for c in injected["spec"]["initContainers"] if c["name"] == "istio-proxy")
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["ISTIO_META_WORKLOAD_NAME"] == "shop"
    assert env["ISTIO_META_OWNER"] == "kubernetes://apis/apps/v1/namespaces/demo/deployments/shop"


def test_dapr_without_app_id_on_a_pod_without_name_is_denied() -> None:
    # Dapr's app id falls back to the pod's name, which a controller's pod lacks at admission: Dapr
    # refuses the pod (value for the dapr.io/app-id annotation is empty), and so does meshswitch.
    pod = make_pod(name=None, annotations={"dapr.io/enabled": "true"}, labels={"pod-template-hash": "abc12"})
    pod["metadata"]["generateName"] = "cart-abc12-"
    with pytest.raises(PodDenied) as caught:
        inject(pod, {})
    assert "dapr.io/app-id" in caught.value.message and "metadata.name" in caught.value.message
    pod["metadata"]["annotations"]["dapr.io/app-id"] = "cart"
    injected, _ = inject(pod, {})
    assert injected["metadata"]["labels"]["dapr.io/app-id"] == "cart"


def test_dapr_app_id_falls_back_to_a_bare_pods_name_which_must_be_valid() -> None:
    injected, _ = inject(make_pod(name="orders", annotations={"dapr.io/enabled": "true"}), {})
    assert injected["metadata"]["labels"]["dapr.io/app-id"] == "orders"
    with pytest.raises(PodDenied) as caught:
        inject(make_pod(name="orders.v2", annotations={"dapr.io/enabled": "true"}), {})
    assert "dapr.io/app-id" in caught.value.message and "orders.v2" in caught.value.message


def test_existing_init_containers_and_native_sidecars_come_after_ours() -> None:
    app_inits = [
        {"name": "migrate", "image": "busybox"},
        {"name": "log-shipper", "image": "fluent-bit", "restartPolicy": "Always"},
    ]
    pod = make_pod(initContainers=app_inits)
    injected, patch = inject(pod)
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["istio-init", "istio-proxy", "migrate", "log-shipper"]
    assert [op["path"] for op in patch if op["path"].startswith("/spec/initContainers")] == [
        "/spec/initContainers/0",
        "/spec/initContainers/1",
    ]


def test_classic_mode_appends_proxy_and_puts_redirect_last() -> None:
    classic = make_injector(sidecar_style="classic")
    pod = make_pod(initContainers=[{"name": "migrate", "image": "busybox"}])
    injected, _ = inject(pod, injector=classic)
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["migrate", "istio-init"]
    assert [c["name"] for c in injected["spec"]["containers"]] == ["app", "istio-proxy"]
    assert "restartPolicy" not in injected["spec"]["containers"][1]
    status = orjson.loads(injected["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"] and status["initContainers"] == ["istio-init"]


def test_pod_annotation_chooses_classic_sidecar() -> None:
    # Linkerd's classic proxy goes first, held by linkerd-await, so the app starts behind a ready proxy.
    pod = make_pod(annotations={"meshswitch.io/sidecar": "classic"})
    injected, _ = inject(pod, {"meshswitch.io/mode": "linkerd"})
    assert [c["name"] for c in injected["spec"]["containers"]] == ["linkerd-proxy", "app"]
    assert injected["spec"]["containers"][0]["lifecycle"]["postStart"]["exec"]["command"][0] == "/usr/lib/linkerd/linkerd-await"
    assert uninject(injected) == pod


def test_classic_linkerd_without_await_is_appended() -> None:
    pod = make_pod(annotations={"meshswitch.io/sidecar": "classic", "config.linkerd.io/proxy-await": "disabled"})
    injected, _ = inject(pod, {"meshswitch.io/mode": "linkerd"})
    assert [c["name"] for c in injected["spec"]["containers"]] == ["app", "linkerd-proxy"]
    assert "lifecycle" not in injected["spec"]["containers"][1]


def test_app_changes_follow_a_proxy_inserted_first() -> None:
    # Dapr's env goes into the app containers, whose indices moved when Linkerd's proxy went first.
    pod = make_pod(annotations={"meshswitch.io/sidecar": "classic", "dapr.io/enabled": "true", "dapr.io/app-id": "a"})
    injected, _ = inject(pod, {"meshswitch.io/mode": "linkerd"})
    names = [c["name"] for c in injected["spec"]["containers"]]
    assert names == ["linkerd-proxy", "app", "daprd"]
    assert {"DAPR_HTTP_PORT", "DAPR_GRPC_PORT"} <= {e["name"] for e in injected["spec"]["containers"][1]["env"]}
    assert not any(e["name"].startswith("DAPR_") for e in injected["spec"]["containers"][0]["env"])
    assert uninject(injected) == pod


def test_existing_volume_of_the_same_name_is_kept() -> None:
    mine = {"name": "istio-envoy", "emptyDir": {"sizeLimit": "1Gi"}}
    pod = make_pod(volumes=[mine])
    result = INJECTOR.inject(pod, namespace("demo", ISTIO))
    injected = apply(pod, result.patch)
    validate_pod(injected)
    assert [v for v in injected["spec"]["volumes"] if v["name"] == "istio-envoy"] == [mine]
    assert any("istio-envoy" in w for w in result.warnings)
    assert uninject(injected) == pod


def test_existing_labels_and_annotations_keep_their_values() -> None:
    pod = make_pod(labels={"service.istio.io/canonical-name": "mine"}, annotations={"kubectl.kubernetes.io/default-container": "x"})
    injected, _ = inject(pod)
    assert injected["metadata"]["labels"]["service.istio.io/canonical-name"] == "mine"
    assert injected["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "x"


def test_app_env_only_where_not_defined() -> None:
    containers: list[dict[str, Any]] = [
        {"name": "a", "image": "x", "env": [{"name": "DAPR_HTTP_PORT", "value": "9999"}]},
        {"name": "b", "image": "x"},
    ]
    pod = make_pod(containers=containers, annotations={"dapr.io/enabled": "true"})
    injected, _ = inject(pod, {})
    env_a = {e["name"]: e["value"] for e in injected["spec"]["containers"][0]["env"]}
    env_b = {e["name"]: e["value"] for e in injected["spec"]["containers"][1]["env"]}
    assert env_a == {"DAPR_HTTP_PORT": "9999", "DAPR_GRPC_PORT": "50001", "APP_PROTOCOL": "http"}
    assert env_b == {"DAPR_HTTP_PORT": "3500", "DAPR_GRPC_PORT": "50001", "APP_PROTOCOL": "http"}
    assert uninject(injected) == pod


def test_reinvocation_adds_only_the_new_plugin_and_merges_status() -> None:
    pod = make_pod()
    first, _ = inject(pod)
    first["metadata"]["annotations"]["dapr.io/enabled"] = "true"  # another webhook added it
    result = INJECTOR.inject(first, namespace("demo", ISTIO))
    assert result.plugins == ("dapr",)
    assert any(op["op"] == "replace" and op["path"].endswith("meshswitch.io~1status") for op in result.patch)
    second = apply(first, result.patch)
    validate_pod(second)
    status = orjson.loads(second["metadata"]["annotations"]["meshswitch.io/status"])
    assert status["plugins"] == ["istio", "dapr"]
    # daprd joins a pod already meshed after the mesh's containers, where Dapr's injector appends it.
    assert [c["name"] for c in second["spec"]["initContainers"]] == ["istio-init", "istio-proxy", "daprd"]
    restored = uninject(second)
    # What the other webhook added stays; everything meshswitch added goes.
    assert restored["metadata"].pop("annotations") == {"dapr.io/enabled": "true"}
    assert restored == pod


def test_patch_never_diffs_or_copies_the_whole_pod() -> None:
    big = make_pod(containers=[{"name": "app", "image": "x", "env": [{"name": f"V{i}", "value": "x" * 50} for i in range(1500)]}])
    result = INJECTOR.inject(big, namespace("demo", ISTIO))
    assert all(not op["path"].startswith("/spec/containers/0/env") for op in result.patch)
    assert len(orjson.dumps(result.patch)) < 20_000


@pytest.mark.parametrize("probe", [
    {"exec": {"command": ["true"]}},
])
def test_exec_probes_are_left_alone(probe: dict[str, Any]) -> None:
    pod = make_pod(containers=[{"name": "app", "image": "x", "livenessProbe": probe}])
    injected, patch = inject(pod)
    assert injected["spec"]["containers"][0]["livenessProbe"] == probe
    assert not any(op["op"] == "replace" for op in patch)


def test_probe_rewrite_can_be_turned_off() -> None:
    probe = {"httpGet": {"path": "/h", "port": 8080}}
    pod = make_pod(containers=[{"name": "app", "image": "x", "readinessProbe": probe}],
                   annotations={"sidecar.istio.io/rewriteAppHTTPProbers": "false"})
    injected, _ = inject(pod)
    assert injected["spec"]["containers"][0]["readinessProbe"] == probe


def test_labels_a_plugin_overwrites_replace_the_pods_and_come_back_on_uninject() -> None:
    # Dapr's "add /metadata/labels/..." replaces a label the pod has; an equal value is left alone.
    own = {"app": "orders", "dapr.io/app-id": "orders-v1", "dapr.io/metrics-enabled": "true", "dapr.io/sidecar-injected": "true"}
    pod = make_pod(labels=own, annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "orders", "dapr.io/enable-metrics": "false"})
    injected, patch = inject(pod, {})  # uninject gives back `own`
    assert injected["metadata"]["labels"] == {**own, "dapr.io/app-id": "orders", "dapr.io/metrics-enabled": "false"}
    assert [op["op"] for op in patch if op["path"].startswith("/metadata/labels")] == ["replace", "replace"]
    status = orjson.loads(injected["metadata"]["annotations"]["meshswitch.io/status"])
    assert status["replacedLabels"] == {"dapr.io/app-id": "orders-v1", "dapr.io/metrics-enabled": "true"}
    assert status["labels"] == []


PULL_SECRETS_INJECTOR = Injector(plugins=apply_values(load_plugins(), {"istio": {"imagePullSecrets": ["regcred", "mirror-pull"]}}), config=Config())


@pytest.mark.parametrize(
    ("own", "after"),
    [
        (None, ["regcred", "mirror-pull"]),
        ([], ["regcred", "mirror-pull"]),
        (["app-cred"], ["regcred", "mirror-pull", "app-cred"]),
        # Istio's strategic merge: one of the same name is not repeated, and the pod's others go
        # before the first of ours that followed them in the pod's list.
        (["app-cred", "mirror-pull", "other-cred"], ["regcred", "app-cred", "mirror-pull", "other-cred"]),
        (["regcred", "mirror-pull"], ["regcred", "mirror-pull"]),
        # The pod's own reordered: uninject puts its order back (replacedImagePullSecrets).
        (["mirror-pull", "regcred"], ["regcred", "mirror-pull"]),
    ],
)
def test_image_pull_secrets_merge_by_name_and_come_off_on_uninject(own: list[str] | None, after: list[str]) -> None:
    pod = make_pod() if own is None else make_pod(imagePullSecrets=[{"name": n} for n in own])
    injected, patch = inject(pod, injector=PULL_SECRETS_INJECTOR)  # uninject gives the pod back
    assert [s["name"] for s in injected["spec"]["imagePullSecrets"]] == after
    status = orjson.loads(injected["metadata"]["annotations"]["meshswitch.io/status"])
    assert status.get("imagePullSecrets", []) == [n for n in ("regcred", "mirror-pull") if n not in (own or ())]
    istio_status = orjson.loads(injected["metadata"]["annotations"]["sidecar.istio.io/status"])
    assert istio_status["imagePullSecrets"] == ["regcred", "mirror-pull"]
    if own == after:
        assert all(op["path"] != "/spec/imagePullSecrets" for op in patch)



@pytest.mark.parametrize(
    ("names", "own", "after"),
    [
        # An empty name is an entry without one, as Istio's typed pod writes it; into a pod without
        # a list the install's go as written, a repeated one too (install/pull-secrets-empty).
        ([""], None, [{}]),
        (["regcred", "", "regcred"], None, [{"name": "regcred"}, {}, {"name": "regcred"}]),
        (["regcred", "", "regcred"], ["app-cred", "regcred"], [{"name": "app-cred"}, {"name": "regcred"}, {}]),
    ],
)
def test_image_pull_secrets_empty_and_repeated_names_come_off_on_uninject(names: list[str], own: list[str] | None, after: list[Any]) -> None:
    injector = Injector(plugins=apply_values(load_plugins(), {"istio": {"imagePullSecrets": names}}), config=Config())
    pod = make_pod() if own is None else make_pod(imagePullSecrets=[{"name": n} for n in own])
    injected, _ = inject(pod, injector=injector)  # uninject gives the pod back
    assert injected["spec"]["imagePullSecrets"] == after
    assert orjson.loads(injected["metadata"]["annotations"]["sidecar.istio.io/status"])["imagePullSecrets"] == names


@pytest.mark.parametrize(
    ("names", "own", "templates", "field"),
    [
        (["regcred"], [{"name": "app-cred"}, {}], "sidecar", r"spec.imagePullSecrets\[1\] has no name"),
        (["regcred"], [{"name": ""}], "sidecar", r"spec.imagePullSecrets\[0\] has no name"),
        (["", ""], [{"name": "app-cred"}], "sidecar", "holds an empty name more than once"),
        ([""], None, "sidecar,gateway", "cannot merge a second time"),
    ],
)
def test_image_pull_secrets_istio_cannot_merge_deny_the_pod(names: list[str], own: list[Any] | None, templates: str, field: str) -> None:
    injector = Injector(plugins=apply_values(load_plugins(), {"istio": {"imagePullSecrets": names}}), config=Config(sidecar_style="classic"))
    pod = make_pod(annotations={"inject.istio.io/templates": templates}) if own is None else make_pod(imagePullSecrets=own)
    with pytest.raises(PodDenied, match=field):
        inject(pod, injector=injector)

def test_no_image_pull_secrets_leave_the_pods_list_alone() -> None:
    pod = make_pod(imagePullSecrets=[{"name": "app-cred"}])
    injected, patch = inject(pod)
    assert injected["spec"]["imagePullSecrets"] == [{"name": "app-cred"}]
    assert all("imagePullSecrets" not in op["path"] for op in patch)
    assert "imagePullSecrets" not in orjson.loads(injected["metadata"]["annotations"]["meshswitch.io/status"])
    assert orjson.loads(injected["metadata"]["annotations"]["sidecar.istio.io/status"])["imagePullSecrets"] is None
