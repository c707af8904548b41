"""POST /mutate against the real server over TLS: SPEC.md "The wire", one plugin at a time."""

from __future__ import annotations

import base64
import http.client
from typing import Any

import jsonpatch
import kubernetes_validate
import orjson
import pytest

from .conftest import Webhook
from .pods import API_VERSIONS, PLUGIN_ANNOTATIONS, V1, make_pod, make_review

SIDECARS = {"istio": "istio-proxy", "linkerd": "linkerd-proxy", "dapr": "daprd"}


def patched(review: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The object with the response's patch applied (the object itself when there is none)."""
    obj: dict[str, Any] = review["request"]["object"]
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(obj, ops)
    return result


def validate(pod: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(pod, "1.36", strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"patched pod does not validate against 1.36: {str(exc).splitlines()[0]}")


def sidecar_names(pod: dict[str, Any]) -> set[str]:
    spec = pod["spec"]
    return {c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])}


@pytest.mark.parametrize("api_version", API_VERSIONS)
@pytest.mark.parametrize("plugin", sorted(PLUGIN_ANNOTATIONS))
def test_wire_each_plugin_echoes_uid_and_api_version_and_patch_validates(
    webhook: Webhook, plugin: str, api_version: str
) -> None:
    review = make_review(make_pod(annotations=PLUGIN_ANNOTATIONS[plugin], containers=2), api_version=api_version)
    answer = webhook.post(review)
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/json"
    out = answer.json()
    assert out["apiVersion"] == api_version
    assert out["kind"] == "AdmissionReview"
    response = out["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True, response
    pod = patched(review, response)
    validate(pod)
    if plugin == "native":
        assert "patch" not in response or sidecar_names(pod) == {"web", "worker"}
        return
    assert "patch" in response
    status = orjson.loads(pod["metadata"]["annotations"]["meshswitch.io/status"])
    assert plugin in status["plugins"]
    if plugin in SIDECARS:
        assert SIDECARS[plugin] in sidecar_names(pod)


def test_wire_namespace_label_selects_istio(webhook: Webhook) -> None:
    review = make_review(make_pod(namespace="istio-demo", containers=3, env=30))
    response = webhook.post(review).json()["response"]
    pod = patched(review, response)
    validate(pod)
    assert "istio-proxy" in sidecar_names(pod)


def test_wire_namespace_annotation_selects_linkerd(webhook: Webhook) -> None:
    review = make_review(make_pod(namespace="linkerd-demo"))
    response = webhook.post(review).json()["response"]
    assert "linkerd-proxy" in sidecar_names(patched(review, response))


def test_wire_reinvocation_of_an_injected_pod_adds_nothing(webhook: Webhook) -> None:
    first = make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]))
    pod = patched(first, webhook.post(first).json()["response"])
    again = make_review(pod)
    response = webhook.post(again).json()["response"]
    assert response["allowed"] is True
    assert sidecar_names(patched(again, response)) == sidecar_names(pod)


@pytest.mark.parametrize(
    ("case", "review"),
    [
        ("update", make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]), operation="UPDATE")),
        ("delete", make_review(make_pod(), operation="DELETE")),
        (
            "deployment",
            make_review(
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo"}},
                kind={"group": "apps", "version": "v1", "kind": "Deployment"},
                resource={"group": "apps", "version": "v1", "resource": "deployments"},
            ),
        ),
        (
            "binding",
            make_review(
                {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web", "namespace": "demo"}},
                kind={"group": "", "version": "v1", "kind": "Binding"},
                resource={"group": "", "version": "v1", "resource": "pods"},
            ),
        ),
        ("kube-system", make_review(make_pod(namespace="kube-system", annotations=PLUGIN_ANNOTATIONS["istio"]))),
        ("opt-out", make_review(make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], "meshswitch.io/inject": "false"}))),
        ("namespace-off", make_review(make_pod(namespace="mesh-off", labels={"sidecar.istio.io/inject": "true"}))),
    ],
)
def test_wire_skips_are_allowed_without_patch(webhook: Webhook, case: str, review: dict[str, Any]) -> None:
    if case == "binding":
        review["request"]["subResource"] = "binding"
    answer = webhook.post(review)
    assert answer.status == 200
    response = answer.json()["response"]
    assert response == {"uid": review["request"]["uid"], "allowed": True}


@pytest.mark.parametrize("api_version", API_VERSIONS)
@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({"meshswitch.io/mode": "nosuchmesh"}, "nosuchmesh"),
        ({"meshswitch.io/mode": "istio", "sidecar.istio.io/proxyCPU": "lots"}, "lots"),
    ],
)
def test_wire_denial_is_allowed_false_with_a_message_naming_the_value(
    webhook: Webhook, api_version: str, annotations: dict[str, str], named: str
) -> None:
    review = make_review(make_pod(annotations=annotations), api_version=api_version)
    answer = webhook.post(review)
    assert answer.status == 200
    out = answer.json()
    assert out["apiVersion"] == api_version
    response = out["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is False
    assert "patch" not in response
    assert response["status"]["code"] == 400
    assert named in response["status"]["message"]


def good_body() -> dict[str, Any]:
    return make_review(make_pod())


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (orjson.dumps({**good_body(), "kind": "Pod"}), "kind must be AdmissionReview"),
        (orjson.dumps({**good_body(), "apiVersion": "admission.k8s.io/v2"}), "apiVersion"),
        (orjson.dumps({k: v for k, v in good_body().items() if k != "request"}), "request"),
        (orjson.dumps({**good_body(), "request": {**good_body()["request"], "uid": ""}}), "request.uid"),
        (
            orjson.dumps({**good_body(), "request": {**good_body()["request"], "object": [1]}}),
            "request.object",
        ),
    ],
)
def test_wire_bad_body_is_400_naming_the_problem(webhook: Webhook, body: bytes, problem: str) -> None:
    answer = webhook.post(body)
    assert answer.status == 400
    error = answer.json()
    assert error["kind"] == "Status" and error["code"] == 400
    assert problem in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/yaml", "application/x-www-form-urlencoded"])
def test_wire_wrong_content_type_is_415(webhook: Webhook, content_type: str) -> None:
    answer = webhook.post(good_body(), content_type=content_type)
    assert answer.status == 415
    assert "Content-Type" in answer.json()["message"]


def test_wire_missing_content_type_is_415(webhook: Webhook) -> None:
    answer = webhook.request("POST", "/mutate", orjson.dumps(good_body()), {})
    assert answer.status == 415


def test_wire_content_type_with_charset_is_accepted(webhook: Webhook) -> None:
    assert webhook.post(good_body(), content_type="application/json; charset=utf-8").status == 200


def test_wire_body_over_limit_is_413(webhook: Webhook) -> None:
    review = good_body()
    review["request"]["object"]["metadata"]["annotations"]["big"] = "x" * (1024 * 1024 + 1)
    answer = webhook.post(review)
    assert answer.status == 413
    assert "limit" in answer.json()["message"]


def test_wire_chunked_body_over_limit_is_413(webhook: Webhook) -> None:
    conn = webhook.connection()
    chunks = (b"x" * 65536 for _ in range(20))  # 1.25 MiB with no Content-Length
    conn.request("POST", "/mutate", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    response.read()
    conn.close()


def test_wire_get_mutate_is_not_a_review(webhook: Webhook) -> None:
    assert webhook.request("GET", "/mutate").status == 405


def test_wire_keep_alive_connection_serves_many_reviews(webhook: Webhook) -> None:
    conn: http.client.HTTPSConnection = webhook.connection()
    for _ in range(50):
        review = make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]))
        conn.request("POST", "/mutate", body=orjson.dumps(review), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert orjson.loads(response.read())["response"]["uid"] == review["request"]["uid"]
    conn.close()


def test_ops_healthz_readyz_metrics(webhook: Webhook) -> None:
    assert webhook.request("GET", "/healthz").json() == {"status": "ok"}
    ready = webhook.request("GET", "/readyz").json()
    assert ready["ready"] is True and all(ready["checks"].values())
    webhook.post(make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"])))
    webhook.post(make_review(make_pod(annotations={"meshswitch.io/mode": "nosuchmesh"})))
    webhook.post(b"nope")
    text = webhook.request("GET", "/metrics").body.decode()
    assert 'meshswitch_reviews_total{outcome="injected",plugin="istio",reason="injected"}' in text
    assert 'outcome="denied"' in text
    assert 'meshswitch_bad_requests_total{status="400"}' in text
    assert 'meshswitch_review_duration_seconds_bucket{le="0.0005"}' in text
    assert "meshswitch_certificate_expiry_timestamp_seconds " in text
    assert "meshswitch_namespace_cache_size 4.0" in text


def test_ops_one_json_log_line_per_review(webhook: Webhook) -> None:
    review = make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["linkerd"]), api_version=V1)
    webhook.post(review)
    uid = review["request"]["uid"]
    lines = [orjson.loads(line) for line in webhook.log_lines_with(uid)]
    assert len(lines) == 1
    line = lines[0]
    assert line["namespace"] == "demo"
    assert line["pod"] == "web-7d9c8b6f5d-"
    assert line["outcome"] == "injected"
    assert line["plugins"] == ["linkerd"]
    assert line["reason"] and line["duration_ms"] >= 0


def answer_cache_hits(webhook: Webhook) -> float:
    text = webhook.request("GET", "/metrics").body.decode()
    (line,) = [line for line in text.splitlines() if line.startswith("meshswitch_answer_cache_hits_total ")]
    return float(line.split()[1])


def test_wire_a_rollouts_identical_pods_are_answered_from_the_cache(webhook: Webhook) -> None:
    # A label of its own, so the first of these pods is new to the session's server.
    pod = make_pod(namespace="istio-demo", labels={"rollout": "cache-test"}, containers=2)
    hits = answer_cache_hits(webhook)
    reviews = [make_review(pod) for _ in range(4)]
    answers = [webhook.post(review).json()["response"] for review in reviews]
    assert answer_cache_hits(webhook) == hits + 2  # stored on the second sight, replayed for the rest
    for review, response in zip(reviews, answers):
        assert response.pop("uid") == review["request"]["uid"]
    assert answers[0] == answers[1] == answers[2] == answers[3] and "istio-proxy" in sidecar_names(patched(reviews[0], answers[0]))
