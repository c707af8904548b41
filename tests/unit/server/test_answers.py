"""One answer for identical pods: a cached answer is byte for byte the answer a fresh review gets,
for every pod of the corpora and every plugin; anything the rendering reads changes the key."""

from __future__ import annotations

import asyncio
import base64
import copy
import uuid
from typing import Any

import orjson
import pytest

from tests.api.pods import make_review
from tests.corpora import pods
from tests.helpers import make_injector
from webhook.cluster.namespaces import StaticNamespaces
from webhook.engine import review as wire
from webhook.engine.discovery import Discovery
from webhook.engine.kube import NamespaceMeta
from webhook.server.answers import AnswerCache, review_key, split
from webhook.server.app import Admission, Verdict
from webhook.server.metrics import Metrics

PODS = pods()
INJECTOR = make_injector()
MODES = ("istio", "linkerd", "envoy", "dapr-on-istio")


def namespaces(mode: str) -> StaticNamespaces:
    labels = {"meshswitch.io/mode": mode.removeprefix("dapr-on-")}
    return StaticNamespaces({"demo": NamespaceMeta("demo", labels, {})})


def review_of(pod: dict[str, Any], mode: str, uid: str) -> wire.Review:
    pod = copy.deepcopy(pod)
    pod.setdefault("metadata", {})["namespace"] = "demo"
    if mode.startswith("dapr-on-"):
        pod["metadata"].setdefault("annotations", {})["dapr.io/enabled"] = "true"
    return wire.parse(orjson.dumps(make_review(pod, uid=uid, namespace="demo")))


def answer(admission: Admission, review: wire.Review) -> tuple[bytes, Verdict]:
    return asyncio.run(admission.answer(review))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("workload", "pod"), PODS, ids=[w for w, _ in PODS])
def test_cached_answer_equals_a_fresh_one(mode: str, workload: str, pod: dict[str, Any]) -> None:
    cache: AnswerCache[Verdict] = AnswerCache()
    metrics = Metrics()
    cached = Admission(injector=INJECTOR, namespaces=namespaces(mode), metrics=metrics, answers=cache)
    fresh = Admission(injector=INJECTOR, namespaces=namespaces(mode), metrics=Metrics())
    first_uid, second_uid = str(uuid.uuid4()), str(uuid.uuid4())
    answer(cached, review_of(pod, mode, first_uid))
    assert len(cache) == 1
    from_cache, verdict = answer(cached, review_of(pod, mode, second_uid))
    assert metrics.answer_cache_hits._value.get() == 1
    expected, expected_verdict = answer(fresh, review_of(pod, mode, second_uid))
    assert from_cache == expected and verdict == expected_verdict
    assert orjson.loads(from_cache)["response"]["uid"] == second_uid


def test_key_changes_with_everything_the_rendering_reads() -> None:
    pod = PODS[0][1]
    namespace = NamespaceMeta("demo", {"meshswitch.io/mode": "istio"}, {})
    base = review_key(pod=pod, api_version=wire.API_VERSIONS[0], namespace=namespace, generation=1)
    other_pod = copy.deepcopy(pod)
    other_pod["metadata"].setdefault("labels", {})["version"] = "v2"
    variants = [
        review_key(pod=other_pod, api_version=wire.API_VERSIONS[0], namespace=namespace, generation=1),
        review_key(pod=pod, api_version=wire.API_VERSIONS[1], namespace=namespace, generation=1),
        review_key(pod=pod, api_version=wire.API_VERSIONS[0], namespace=NamespaceMeta("other", namespace.labels, {}), generation=1),
        review_key(pod=pod, api_version=wire.API_VERSIONS[0], namespace=NamespaceMeta("demo", {"meshswitch.io/mode": "linkerd"}, {}), generation=1),
        review_key(pod=pod, api_version=wire.API_VERSIONS[0], namespace=NamespaceMeta("demo", namespace.labels, {"a": "b"}), generation=1),
        review_key(pod=pod, api_version=wire.API_VERSIONS[0], namespace=namespace, generation=2),
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_discovered_values_invalidate_cached_answers() -> None:
    injector = make_injector()
    injector.discovery = Discovery(injector.plugins)
    admission = Admission(injector=injector, namespaces=namespaces("istio"), metrics=Metrics(), answers=AnswerCache())
    pod = PODS[0][1]
    before, _ = answer(admission, review_of(pod, "istio", "a"))
    istiod = {"spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.99.0"}]}}}}
    injector.discovery.observe("Deployment", "istio-system", "istiod", istiod)
    after, _ = answer(admission, review_of(pod, "istio", "a"))
    assert b"1.99.0" not in base64.b64decode(orjson.loads(before)["response"]["patch"])
    assert b"1.99.0" in base64.b64decode(orjson.loads(after)["response"]["patch"])


def test_cache_is_bounded_in_bytes() -> None:
    cache: AnswerCache[str] = AnswerCache(max_bytes=64 * 1024)
    for i in range(1000):
        entry = split(orjson.dumps({"response": {"uid": f"u{i}", "patch": "x" * 1000}}), f"u{i}", "v")
        assert entry is not None
        cache.put(i.to_bytes(4, "big"), entry)
    assert cache.bytes <= 64 * 1024 and 0 < len(cache) < 1000
    assert cache.get((999).to_bytes(4, "big")) is not None and cache.get((0).to_bytes(4, "big")) is None


def test_an_answer_too_large_for_its_share_is_not_cached() -> None:
    cache: AnswerCache[str] = AnswerCache(max_bytes=64 * 1024)
    entry = split(orjson.dumps({"response": {"uid": "u", "patch": "x" * 9000}}), "u", "v")
    assert entry is not None
    cache.put(b"k", entry)
    assert len(cache) == 0


def test_split_refuses_an_answer_whose_uid_is_not_found_once() -> None:
    assert split(b'{"response":{"allowed":true}}', "u", "v") is None
    payload = orjson.dumps({"response": {"uid": "u", "warnings": ['"uid":"u"']}})
    entry = split(payload, "u", "v")
    assert entry is not None and entry.payload("w") == payload.replace(b'"uid":"u",', b'"uid":"w",', 1)
