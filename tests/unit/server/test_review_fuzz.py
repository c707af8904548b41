"""Fuzz /mutate in-process: random JSON and mutated AdmissionReviews never give a 5xx or a crash."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.engine.config import Config
from webhook.engine.injector import Injector, NamespaceMeta
from webhook.cluster.namespaces import StaticNamespaces
from webhook.engine.review import API_VERSIONS
from webhook.server.app import create_app

from tests.api.pods import PLUGIN_ANNOTATIONS, make_pod, make_review

# MESHSWITCH_FUZZ_EXAMPLES=5000 for a longer hunt than make test's.
FUZZ = settings(max_examples=int(os.environ.get("MESHSWITCH_FUZZ_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMESPACES = {
    "demo": NamespaceMeta("demo", {}, {}),
    "istio-demo": NamespaceMeta("istio-demo", {"istio-injection": "enabled"}, {}),
    "linkerd-demo": NamespaceMeta("linkerd-demo", {}, {"linkerd.io/inject": "enabled"}),
}


class Client:
    """The ASGI app driven in-process by httpx on one event loop, called synchronously by hypothesis."""

    def __init__(self) -> None:
        from webhook.engine.plugins import load_plugins

        injector = Injector(plugins=load_plugins(), config=Config())
        app = create_app(injector=injector, namespaces=StaticNamespaces(NAMESPACES), max_body_bytes=256 * 1024)
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook")

    def post(self, body: bytes) -> httpx.Response:
        request = self.http.post("/mutate", content=body, headers={"Content-Type": "application/json"})
        return self.loop.run_until_complete(request)

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    client = Client()
    yield client
    client.close()


def encode(value: Any) -> bytes:
    # The stdlib encoder, not orjson: it also writes integers past 64 bits, which clients may send.
    return json.dumps(value).encode()


def check(client: Client, sent: Any, body: bytes, *, engine_may_fail: bool = False) -> None:
    """The contract of one answer: 4xx with a Status, or 200 with a well-formed review.

    ``engine_may_fail`` admits a fail-closed refusal: for shapes no apiserver sends (an env var
    named by a list), the engine failing is handled, and the pod refused, not a crash.
    """
    answer = client.post(body)
    assert answer.status_code < 500, answer.text
    payload = answer.json()
    if answer.status_code != 200:
        assert answer.status_code in (400, 413, 415)
        assert payload["kind"] == "Status" and payload["message"]
        return
    request = sent["request"]
    assert payload["apiVersion"] == sent["apiVersion"] in API_VERSIONS
    assert payload["kind"] == "AdmissionReview"
    response = payload["response"]
    assert response["uid"] == request["uid"]
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        status = response["status"]
        assert isinstance(status["message"], str) and status["message"]
        if not engine_may_fail:
            assert status.get("reason") != "InternalError", status["message"]
        assert "patch" not in response
    if "patch" in response:
        assert response["patchType"] == "JSONPatch"
        ops = orjson.loads(base64.b64decode(response["patch"], validate=True))
        assert isinstance(ops, list) and ops
        for op in ops:
            assert op["op"] in ("add", "remove", "replace", "copy", "move", "test")
            assert isinstance(op["path"], str)
        # What the apiserver does with it must work on the object it sent.
        jsonpatch.apply_patch(request["object"], ops)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(value=json_values)
def test_fuzz_random_json_is_a_4xx(client: Client, value: Any) -> None:
    answer = client.post(encode(value))
    assert answer.status_code == 400
    assert answer.json()["message"]


@FUZZ
@given(body=st.binary(max_size=200))
def test_fuzz_random_bytes_never_5xx(client: Client, body: bytes) -> None:
    answer = client.post(body)
    assert answer.status_code in (200, 400), answer.text


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def base_reviews() -> list[dict[str, Any]]:
    reviews = []
    for api_version in API_VERSIONS:
        for _plugin, pod_annotations in sorted(PLUGIN_ANNOTATIONS.items()):
            reviews.append(make_review(make_pod(annotations=pod_annotations, containers=2, env=4), api_version=api_version))
        reviews.append(make_review(make_pod(namespace="istio-demo"), api_version=api_version))
        reviews.append(make_review(make_pod(namespace="linkerd-demo"), api_version=api_version))
    return reviews


BASES = base_reviews()


@st.composite
def mutated_reviews(draw: st.DrawFn) -> dict[str, Any]:
    review: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        candidates = list(paths(review))[1:]
        if not candidates:
            break
        where = draw(st.sampled_from(candidates))
        parent = review
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "swap-type"]))
        if action == "delete":
            del parent[where[-1]]
        elif action == "replace":
            parent[where[-1]] = draw(json_values)
        else:
            old = parent[where[-1]]
            parent[where[-1]] = [old] if not isinstance(old, list) else {"item": old}
    return review


def request_uid_intact(review: dict[str, Any]) -> bool:
    request = review.get("request")
    return isinstance(request, dict) and isinstance(request.get("uid"), str)


@FUZZ
@given(review=mutated_reviews())
def test_fuzz_mutated_reviews_answer_well_formed(client: Client, review: dict[str, Any]) -> None:
    check(client, review, encode(review), engine_may_fail=True)


setting_keys = st.sampled_from(
    [
        "meshswitch.io/mode",
        "meshswitch.io/inject",
        "meshswitch.io/sidecar",
        "meshswitch.io/status",
        "sidecar.istio.io/inject",
        "sidecar.istio.io/proxyCPU",
        "sidecar.istio.io/proxyMemory",
        "sidecar.istio.io/proxyImage",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
        "linkerd.io/inject",
        "config.linkerd.io/proxy-cpu-request",
        "dapr.io/enabled",
        "dapr.io/app-id",
        "dapr.io/app-port",
    ]
)
hostile_values = st.text(max_size=40) | st.sampled_from(
    ["istio", "linkerd", "envoy", "dapr", "native", "true", "false", "enabled", "disabled", "{{ 7*7 }}", "a\n  b: c", "100m", "-1", "0", "1,2,x", "10.0.0.0/33", "{}", "[]"]
)


@FUZZ
@given(
    base=st.sampled_from(BASES),
    labels=st.dictionaries(setting_keys, hostile_values, max_size=3),
    annotations=st.dictionaries(setting_keys, hostile_values, max_size=5),
)
def test_fuzz_hostile_labels_and_annotations_answer_well_formed(
    client: Client, base: dict[str, Any], labels: dict[str, str], annotations: dict[str, str]
) -> None:
    review = copy.deepcopy(base)
    metadata = review["request"]["object"]["metadata"]
    metadata["labels"].update(labels)
    metadata["annotations"].update(annotations)
    check(client, review, encode(review))
