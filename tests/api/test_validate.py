"""POST /validate: Namespace labels that would deny every pod are refused when written, with the
message a pod would get; unknown keys under a plugin's prefixes come back as admission warnings."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import orjson
import pytest

from webhook.cluster.namespaces import StaticNamespaces
from webhook.engine.config import Config
from webhook.engine.decide import decide
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import load_plugins
from webhook.engine.validate import validate_namespace
from webhook.server.app import create_app
from webhook.server.reviewlog import ReviewLog

PLUGINS = load_plugins()
CONFIG = Config()


def namespace(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, name: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


def review(
    obj: Any, *, operation: str = "UPDATE", kind: str = "Namespace", api_version: str = "admission.k8s.io/v1", old: Any = None
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "7f0c1a52-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "operation": operation,
            "name": "shop",
            "object": obj,
            "oldObject": old,
        },
    }


def post(body: dict[str, Any], path: str = "/validate") -> httpx.Response:
    app = create_app(
        injector=Injector(plugins=PLUGINS, config=CONFIG),
        namespaces=StaticNamespaces(),
        review_log=ReviewLog(fd=os.open(os.devnull, os.O_WRONLY)),
    )

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook") as client:
            return await client.post(path, content=orjson.dumps(body), headers={"Content-Type": "application/json"})

    return asyncio.run(call())


def pod_message(labels: dict[str, str]) -> str:
    pod = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
    with pytest.raises(PodDenied) as denied:
        decide(pod, NamespaceMeta("shop", labels, {}), plugins=PLUGINS, config=CONFIG)
    return denied.value.message


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        ({"meshswitch.io/mode": "istoi"}, {}, "namespace label meshswitch.io/mode='istoi' is not an installed mode; accepted: "),
        ({"meshswitch.io/mode": "consul"}, {}, "namespace label meshswitch.io/mode='consul' is not an installed mode; accepted: "),
        ({"istio-injection": "enabled"}, {"linkerd.io/inject": "enabled"}, "the namespace asks for two meshes at once"),
    ],
    ids=["misspelt-mode", "unknown-mode", "two-meshes"],
)
def test_a_label_that_would_deny_every_pod_is_refused_with_the_pods_message(
    labels: dict[str, str], annotations: dict[str, str], expected: str, operation: str
) -> None:
    response = post(review(namespace(labels, annotations), operation=operation)).json()
    assert response["apiVersion"] == "admission.k8s.io/v1"
    answer = response["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 400
    assert answer["status"]["message"].startswith(expected)
    pod = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
    with pytest.raises(PodDenied) as denied:
        decide(pod, NamespaceMeta("shop", labels, annotations), plugins=PLUGINS, config=CONFIG)
    assert answer["status"]["message"] == denied.value.message, "the same message a pod would get"


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [({"meshswitch.io/mode": "bogus"}, {}), ({"istio-injection": "enabled"}, {"linkerd.io/inject": "enabled"})],
    ids=["unknown-mode", "two-meshes"],
)
def test_an_update_that_leaves_a_refused_label_as_it_was_is_allowed_with_a_warning(
    labels: dict[str, str], annotations: dict[str, str]
) -> None:
    """Labelled so while the webhook was down: an unrelated edit passes (refusing it fixes nothing),
    with the pods' refusal as a warning; writing another bad value is still refused."""
    before = namespace(labels, annotations)
    edited = namespace({**labels, "pod-security.kubernetes.io/enforce": "baseline"}, {**annotations, "owner": "alice"})
    answer = post(review(edited, old=before)).json()["response"]
    assert answer["allowed"] is True
    assert any(w.startswith("pods here are refused, as before this update: ") for w in answer["warnings"]), answer
    worse = namespace({**labels, "meshswitch.io/mode": "consul"}, annotations)
    assert post(review(worse, old=before)).json()["response"]["allowed"] is False
    assert post(review(edited, operation="CREATE")).json()["response"]["allowed"] is False


def test_the_refusal_is_the_message_a_pod_gets() -> None:
    labels = {"meshswitch.io/mode": "istoi"}
    answer = post(review(namespace(labels))).json()["response"]
    assert answer["status"]["message"] == pod_message(labels)
    assert answer["status"]["message"].startswith("namespace label meshswitch.io/mode='istoi' is not an installed mode; accepted: ")


@pytest.mark.parametrize("mode", [p.name for p in PLUGINS if p.kind in ("mesh", "native")])
def test_every_installed_mode_is_accepted(mode: str) -> None:
    answer = post(review(namespace({"meshswitch.io/mode": mode}))).json()["response"]
    assert answer["allowed"] is True and "warnings" not in answer


def test_unlabelled_and_other_objects_pass() -> None:
    assert post(review(namespace())).json()["response"]["allowed"] is True
    assert post(review(namespace({"meshswitch.io/mode": "nope"}), operation="DELETE")).json()["response"]["allowed"] is True
    pod_review = review({"kind": "Pod", "metadata": {"name": "x"}}, kind="ConfigMap")
    assert post(pod_review).json()["response"]["allowed"] is True


def test_v1beta1_is_answered_in_kind() -> None:
    response = post(review(namespace({"meshswitch.io/mode": "istoi"}), api_version="admission.k8s.io/v1beta1")).json()
    assert response["apiVersion"] == "admission.k8s.io/v1beta1" and response["response"]["allowed"] is False


def test_unknown_keys_come_back_as_warnings() -> None:
    obj = namespace({"meshswitch.io/mode": "istio", "meshswitch.io/mod": "x"}, {"sidecar.istio.io/proxyCPUlimit": "2"})
    answer = post(review(obj)).json()["response"]
    assert answer["allowed"] is True
    assert answer["warnings"] == [
        "namespace label meshswitch.io/mod is not a key meshswitch reads, so it has no effect; did you mean meshswitch.io/mode?",
        "namespace annotation sidecar.istio.io/proxyCPUlimit is not a key istio reads, so it has no effect; did you mean sidecar.istio.io/proxyCPULimit?",
    ]


@pytest.mark.parametrize(
    ("labels", "annotations", "warning"),
    [
        (
            {"meshswitch.io/mode": "linkerd", "istio-injection": "enabled"}, {},
            "meshswitch.io/mode=linkerd conflicts with istio-injection=enabled (which selects istio): meshswitch injects linkerd, "
            "but istio's own injector, if installed, would add its proxy too; remove istio-injection",
        ),
        (
            {"meshswitch.io/mode": "istio"}, {"linkerd.io/inject": "enabled"},
            "meshswitch.io/mode=istio conflicts with linkerd.io/inject=enabled (which selects linkerd)",
        ),
        (
            {"meshswitch.io/mode": "istio", "istio-injection": "disabled"}, {},
            "meshswitch.io/mode=istio selects istio, but istio is turned off by namespace-label istio-injection=disabled: pods here get no mesh",
        ),
    ],
    ids=["istio-key-under-linkerd-mode", "linkerd-key-under-istio-mode", "mode-turned-off"],
)  # fmt: skip
def test_a_mode_label_check_fails_comes_back_as_a_warning(labels: dict[str, str], annotations: dict[str, str], warning: str) -> None:
    """Pods there are not refused (the mode label wins), so neither is the write; but `meshswitch
    check` fails these labels, and the write was allowed without a word."""
    answer = post(review(namespace(labels, annotations))).json()["response"]
    assert answer["allowed"] is True
    assert any(w.startswith(warning) for w in answer["warnings"]), answer
    assert "warnings" not in post(review(namespace({"meshswitch.io/mode": "istio", "istio-injection": "enabled"}))).json()["response"]
    assert "warnings" not in post(review(namespace({"meshswitch.io/mode": "istio"}, name="kube-system"))).json()["response"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"kind": "AdmissionReview"}, 400),
        (review("not a namespace", operation="CREATE"), 400),
    ],
)
def test_a_body_that_is_no_namespace_review_is_a_bad_request(body: dict[str, Any], status: int) -> None:
    assert post(body).status_code == status


def test_validate_namespace_is_pure_and_names_the_setting_problem() -> None:
    verdict = validate_namespace(namespace({}, {"config.linkerd.io/proxy-cpu-request": "lots"}), plugins=PLUGINS, config=CONFIG)
    assert verdict.allowed is True  # only a mode that cannot be is refused; a bad setting is a warning
    verdict = validate_namespace(namespace({"meshswitch.io/mode": "linkerd"}, {"config.linkerd.io/proxy-cpu-request": "lots"}), plugins=PLUGINS, config=CONFIG)
    assert verdict.allowed is True and any("config.linkerd.io/proxy-cpu-request='lots'" in w for w in verdict.warnings)


def test_pods_get_unknown_key_warnings_and_a_strict_inject_value() -> None:
    injector = Injector(plugins=PLUGINS, config=CONFIG)
    pod = {"metadata": {"name": "web", "annotations": {"sidecar.istio.io/proxyCPUlimit": "2"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
    result = injector.inject(pod, NamespaceMeta("shop", {"meshswitch.io/mode": "istio"}, {}))
    assert result.plugins == ("istio",)
    assert "pod annotation sidecar.istio.io/proxyCPUlimit is not a key istio reads, so it has no effect; did you mean sidecar.istio.io/proxyCPULimit?" in result.warnings
    for where in ("labels", "annotations"):
        nope = {"metadata": {"name": "web", where: {"meshswitch.io/inject": "nope"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        with pytest.raises(PodDenied) as denied:
            injector.inject(nope, NamespaceMeta("shop", {"meshswitch.io/mode": "istio"}, {}))
        assert denied.value.message == f"pod {where[:-1]} meshswitch.io/inject='nope' is not a choice; accepted: true, false"
    for value in ("true", "false", "True"):
        ok = {"metadata": {"name": "web", "labels": {"meshswitch.io/inject": value}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        injector.inject(ok, NamespaceMeta("shop", {}, {}))
