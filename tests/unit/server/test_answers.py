"""One answer for identical pods, keyed on the raw body: a cached answer is byte for byte the answer
a fresh review gets, for every pod of the corpora and every mode; an answer is stored on the second
sight of its body, not the first; any byte of the body outside the
uid, the namespace's labels and annotations and the discovered values change what is answered; a
body in any other layout than the apiserver's is answered fresh and never cached.

Everything goes through MutateHandler with a fake ASGI receive and send, so the raw path is tested.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import sys
import tracemalloc
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from tests.api.pods import V1, V1BETA1, make_pod, make_review
from tests.corpora import pods
from tests.helpers import make_injector
from webhook.engine.discovery import Discovery
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.server.answers import SEEN_KEY_BYTES, SEEN_MAX_BYTES, AnswerCache, body_key, make_entry, split
from webhook.server.admission import Admission, Remembered
from webhook.server.endpoint import Drain
from webhook.server.mutate import MutateHandler
from webhook.server.reviewlog import ReviewLog
from webhook.server.metrics import Metrics

PODS = pods()
INJECTOR = make_injector()
MODES = ("istio", "linkerd", "envoy", "dapr-on-istio")
ISTIO = {"meshswitch.io/mode": "istio"}


# --- a handler, its namespaces and its log --------------------------------------------------------


class Namespaces:
    """A NamespaceSource whose namespaces a test changes; ``lookup`` misses a name it does not hold."""

    def __init__(self, *metas: NamespaceMeta) -> None:
        self.metas = {meta.name: meta for meta in metas}
        self.fetched: list[str] = []

    synced = True

    def lookup(self, name: str) -> NamespaceMeta | None:
        return self.metas.get(name)

    def fetch(self, name: str) -> NamespaceMeta:
        self.fetched.append(name)
        return NamespaceMeta(name, {}, {})

    def __len__(self) -> int:
        return len(self.metas)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class RecordedLog(ReviewLog):
    """The review log's lines as dicts, without their duration."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def write(self, fields: dict[str, Any]) -> None:
        self.lines.append({k: v for k, v in fields.items() if k != "duration_ms"})


@dataclass
class Server:
    handler: MutateHandler
    metrics: Metrics
    log: RecordedLog
    cache: AnswerCache[Remembered] | None
    namespaces: Namespaces
    injector: Injector = field(default=INJECTOR)

    @property
    def hits(self) -> float:
        return self.metrics.tally.hits

    def post(self, body: bytes) -> bytes:
        return asyncio.run(call(self.handler, body))

    def store(self, body_for: Callable[[], bytes]) -> None:
        """Two reviews of one body, fresh uids each: its answer is stored from the second on."""
        self.post(body_for())
        self.post(body_for())


def server(namespaces: Namespaces, *, cached: bool = True, injector: Injector = INJECTOR, lane_bytes: int | None = None) -> Server:
    metrics, log = Metrics(), RecordedLog()
    cache: AnswerCache[Remembered] | None = AnswerCache() if cached else None
    admission = Admission(injector=injector, namespaces=namespaces, metrics=metrics, answers=cache)
    extra = {"lane_bytes": lane_bytes} if lane_bytes is not None else {}
    handler = MutateHandler(admission, metrics=metrics, drain=Drain(), max_body_bytes=1 << 22, review_log=log, **extra)
    return Server(handler, metrics, log, cache, namespaces, injector)


async def call(handler: MutateHandler, body: bytes) -> bytes:
    """One POST /mutate through the bare ASGI handler; the answer's body (status 200 checked)."""
    scope = {"type": "http", "method": "POST", "path": "/mutate", "headers": [(b"content-type", b"application/json")]}
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await handler(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    payload: bytes = sent[1]["body"]
    return payload


def demo(mode: str = "istio") -> Namespaces:
    return Namespaces(NamespaceMeta("demo", {"meshswitch.io/mode": mode.removeprefix("dapr-on-")}, {}))


def body_of(pod: dict[str, Any], uid: str, *, mode: str = "istio", namespace: str = "demo", api_version: str = V1) -> bytes:
    pod = copy.deepcopy(pod)
    pod.setdefault("metadata", {})["namespace"] = namespace
    if mode.startswith("dapr-on-"):
        pod["metadata"].setdefault("annotations", {})["dapr.io/enabled"] = "true"
    return orjson.dumps(make_review(pod, uid=uid, namespace=namespace, api_version=api_version))


def uid() -> str:
    return str(uuid.uuid4())


def fresh(namespaces: Namespaces, body: bytes, injector: Injector = INJECTOR) -> tuple[bytes, dict[str, Any]]:
    """The answer and log line of a server without a cache."""
    uncached = server(namespaces, cached=False, injector=injector)
    return uncached.post(body), uncached.log.lines[-1]


# --- cached equals fresh --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("workload", "pod"), PODS, ids=[w for w, _ in PODS])
def test_cached_answer_equals_a_fresh_one(mode: str, workload: str, pod: dict[str, Any]) -> None:
    cached = server(demo(mode))
    cached.store(lambda: body_of(pod, uid(), mode=mode))
    assert cached.cache is not None and len(cached.cache) == 1 and cached.hits == 0
    third = body_of(pod, uid(), mode=mode)
    from_cache = cached.post(third)
    assert cached.hits == 1
    expected, expected_line = fresh(demo(mode), third)
    assert from_cache == expected
    assert cached.log.lines[-1] == expected_line


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
@pytest.mark.parametrize("kind_first", [True, False], ids=["kind-first", "apiVersion-first"])
def test_both_envelope_orders_and_versions_are_cached(api_version: str, kind_first: bool) -> None:
    def body(request_uid: str) -> bytes:
        review = orjson.loads(body_of(make_pod(annotations=ISTIO), request_uid, api_version=api_version))
        if not kind_first:
            review = {"apiVersion": review["apiVersion"], "kind": review["kind"], "request": review["request"]}
        return orjson.dumps(review)

    cached = server(demo())
    cached.store(lambda: body(uid()))
    third = body(uid())
    assert cached.post(third) == fresh(demo(), third)[0] and cached.hits == 1


def test_a_denial_is_cached_and_replayed() -> None:
    pod = make_pod(annotations={"meshswitch.io/mode": "nosuchmesh"})
    cached = server(demo())
    cached.store(lambda: body_of(pod, uid()))
    third = body_of(pod, uid())
    answer = cached.post(third)
    assert cached.hits == 1 and orjson.loads(answer)["response"]["allowed"] is False
    assert (answer, cached.log.lines[-1]) == fresh(demo(), third)


def test_an_internal_error_is_never_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    injector = make_injector()

    def fail(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(injector, "inject", fail)
    cached = server(demo(), injector=injector)
    for _ in range(3):
        answer = orjson.loads(cached.post(body_of(make_pod(annotations=ISTIO), uid())))
        assert answer["response"]["status"]["code"] == 500
    assert cached.cache is not None and len(cached.cache) == 0 and cached.hits == 0


# --- what the key covers --------------------------------------------------------------------------


def test_the_key_leaves_out_only_the_uid() -> None:
    pod = make_pod(annotations=ISTIO)
    first, second = body_key(body_of(pod, "a")), body_key(body_of(pod, "0" * 128))
    assert first is not None and second is not None
    assert first.key == second.key and (first.uid, second.uid) == ("a", "0" * 128)


def test_the_key_changes_with_any_byte_outside_the_uid_and_managed_fields_time() -> None:
    body = body_of(make_pod(annotations=ISTIO, env=2), "0d8a7b4e-5d1c-4f38-9a0e-6c1f1b2d3e4f")
    base = body_key(body)
    assert base is not None
    start = body.index(base.uid.encode())
    end = start + len(base.uid)
    time_start = body.index(b',"time":"') + len(b',"time":"')
    time_end = body.index(b'"', time_start)
    keys = []
    for position in (*range(start), *range(end, len(body))):
        changed = bytearray(body)
        changed[position] ^= 0x01
        keyed = body_key(bytes(changed))
        # A change in the envelope (up to the comma after the uid) leaves no key at all.
        assert (keyed is None) == (position < start or position <= end + 1)
        if keyed is None:
            continue
        if time_start <= position < time_end:
            assert keyed.key == base.key  # the engine never reads managedFields
        else:
            keys.append(keyed.key)
    assert base.key not in keys and len(set(keys)) == len(keys) == len(body) - end - 2 - (time_end - time_start)


# --- a rollout's pods as the API server writes them -------------------------------------------------

TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def as_admitted(pod: dict[str, Any], token: str, time: str) -> dict[str, Any]:
    """The pod as the API server's admission chain hands it to webhooks: the ServiceAccount plugin's
    projected token volume, named ``token``, mounted in every container (unless the pod opts out),
    and managedFields written at ``time``."""
    # In the API server's order: a Pod's metadata before its spec.
    pod = {key: copy.deepcopy(pod[key]) for key in ("apiVersion", "kind", "metadata", "spec", *pod) if key in pod}
    metadata = pod.setdefault("metadata", {})
    metadata["managedFields"] = [
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": time,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:generateName": {}}}},
    ]  # fmt: skip
    spec = pod.setdefault("spec", {})
    if spec.get("automountServiceAccountToken") is False:
        return pod
    sources = [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]
    # make_pod's pods carry the volume under its old fixed name: it is the plugin's to name.
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v.get("name") != "kube-api-access"]
    spec["volumes"].append({"name": token, "projected": {"sources": sources, "defaultMode": 420}})
    for section in ("initContainers", "containers"):
        for container in spec.get(section) or []:
            mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != "kube-api-access"]
            if not any(m.get("mountPath") == TOKEN_MOUNT for m in mounts):
                mounts.append({"name": token, "readOnly": True, "mountPath": TOKEN_MOUNT})
            container["volumeMounts"] = mounts
    return pod


def token_name(index: int) -> str:
    return "kube-api-access-" + "".join("bcdfghjklmnpqrstvwxz2456789"[(index * 7 + i) % 27] for i in range(5))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("workload", "pod"), PODS, ids=[w for w, _ in PODS])
def test_a_rollouts_pods_share_an_answer_across_token_names_and_times(mode: str, workload: str, pod: dict[str, Any]) -> None:
    """Each pod of a ReplicaSet gets its own token volume name and the second it was written in; the
    answer cached for two of them is, for a third, byte for byte that pod's fresh answer."""
    cached = server(demo(mode))
    seconds = iter(range(10))
    names = iter(range(1, 10))
    cached.store(lambda: body_of(as_admitted(pod, token_name(next(names)), f"2026-12-03T10:00:0{next(seconds)}Z"), uid(), mode=mode))
    assert cached.cache is not None and len(cached.cache) == 1 and cached.hits == 0
    third = body_of(as_admitted(pod, token_name(7), "2026-12-03T10:00:09Z"), uid(), mode=mode)
    from_cache = cached.post(third)
    assert cached.hits == 1
    expected, expected_line = fresh(demo(mode), third)
    assert from_cache == expected
    assert cached.log.lines[-1] == expected_line


def test_the_token_name_is_renamed_wherever_it_occurs() -> None:
    """The name also inside a longer string (an annotation Linkerd copies nowhere, but the key and the
    answer must agree on every occurrence)."""
    def body(index: int) -> bytes:
        name = token_name(index)
        pod = make_pod(annotations={"meshswitch.io/mode": "linkerd", "example.com/note": f"token at {name}/token"})
        return body_of(as_admitted(pod, name, "2026-12-03T10:00:00Z"), uid(), mode="linkerd")

    cached = server(demo("linkerd"))
    cached.post(body(1))
    cached.post(body(2))
    third = body(3)
    from_cache = cached.post(third)
    assert cached.hits == 1
    assert from_cache == fresh(demo("linkerd"), third)[0]
    patch = orjson.loads(base64.b64decode(orjson.loads(from_cache)["response"]["patch"]))
    assert token_name(3) in orjson.dumps(patch).decode() and token_name(2) not in orjson.dumps(patch).decode()


def test_only_the_first_token_name_is_left_out_of_the_key() -> None:
    """A pod with a second such volume keeps that one in the key: renaming the first name only is
    still a renaming of the body. (make_pod writes the mounts, which name the first, before the
    volumes.)"""
    def body(first: int, second: int) -> bytes:
        pod = as_admitted(make_pod(annotations={"meshswitch.io/mode": "linkerd"}), token_name(first), "2026-12-03T10:00:00Z")
        pod["spec"]["volumes"].append({**pod["spec"]["volumes"][-1], "name": token_name(second)})
        return body_of(pod, uid(), mode="linkerd")

    def key(first: int, second: int) -> bytes:
        keyed = body_key(body(first, second))
        assert keyed is not None and keyed.token == token_name(first).encode()
        return keyed.key

    assert key(1, 2) == key(3, 2) != key(1, 4)
    cached = server(demo("linkerd"))
    cached.store(iter([body(1, 5), body(2, 5)]).__next__)
    third = body(3, 5)
    assert cached.post(third) == fresh(demo("linkerd"), third)[0] and cached.hits == 1
    cached.post(body(4, 6))
    assert cached.hits == 1


def test_only_managed_fields_times_are_blanked() -> None:
    """A map's keys are written sorted, so an annotation named "time" never precedes "fieldsType":
    its value stays in the key."""
    def key(value: str) -> bytes:
        pod = make_pod(annotations={**ISTIO, "fieldsType": "x", "time": value})
        keyed = body_key(body_of(pod, "u"))
        assert keyed is not None
        return keyed.key

    assert key("2026-12-03T10:00:00Z") != key("2026-12-03T10:00:01Z")


Change = Callable[[Server], None]


def relabel(s: Server) -> None:
    s.namespaces.metas["demo"] = NamespaceMeta("demo", {"meshswitch.io/mode": "linkerd"}, {})


def annotate(s: Server) -> None:
    s.namespaces.metas["demo"] = NamespaceMeta("demo", s.namespaces.metas["demo"].labels, {"linkerd.io/inject": "enabled"})


def discover(s: Server) -> None:
    assert s.injector.discovery is not None
    istiod = {"spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.99.0"}]}}}}
    s.injector.discovery.observe("Deployment", "istio-system", "istiod", istiod)


@pytest.mark.parametrize("change", [relabel, annotate, discover], ids=["labels", "annotations", "discovery"])
def test_an_entry_is_not_used_after_what_it_read_outside_the_body_changed(change: Change) -> None:
    injector = make_injector()
    injector.discovery = Discovery(injector.plugins)
    cached = server(Namespaces(NamespaceMeta("demo", {"istio-injection": "enabled"}, {})), injector=injector)
    pod = make_pod(annotations={"linkerd.io/inject": "enabled"} if change is annotate else {})
    cached.store(lambda: body_of(pod, uid()))
    cached.post(body_of(pod, uid()))
    assert cached.hits == 1
    change(cached)
    after = body_of(pod, uid())
    answer = cached.post(after)
    assert cached.hits == 1, "a stale entry answered"
    assert answer == fresh(cached.namespaces, after, injector)[0]
    # The stale entry was replaced at once (not added beside, nor left for a second sight), and the
    # new one serves the next review.
    assert cached.cache is not None and len(cached.cache) == 1
    cached.post(body_of(pod, uid()))
    assert cached.hits == 2


def test_discovered_values_reach_the_answer_after_a_hit() -> None:
    injector = make_injector()
    injector.discovery = Discovery(injector.plugins)
    cached = server(demo(), injector=injector)
    pod = make_pod(annotations=ISTIO)
    before = cached.post(body_of(pod, uid()))
    discover(cached)
    after = cached.post(body_of(pod, uid()))
    assert b"1.99.0" not in base64.b64decode(orjson.loads(before)["response"]["patch"])
    assert b"1.99.0" in base64.b64decode(orjson.loads(after)["response"]["patch"])


# --- namespaces -----------------------------------------------------------------------------------


def test_an_equal_namespace_object_still_hits() -> None:
    cached = server(demo())
    pod = make_pod(annotations=ISTIO)
    cached.store(lambda: body_of(pod, uid()))
    cached.namespaces.metas["demo"] = NamespaceMeta("demo", {"meshswitch.io/mode": "istio"}, {})  # a watch event, no change
    cached.post(body_of(pod, uid()))
    assert cached.hits == 1


def test_a_namespace_gone_from_the_cache_is_a_miss() -> None:
    cached = server(demo())
    pod = make_pod()
    cached.store(lambda: body_of(pod, uid()))
    assert cached.cache is not None and len(cached.cache) == 1
    del cached.namespaces.metas["demo"]
    answer = orjson.loads(cached.post(body_of(pod, uid())))
    assert cached.hits == 0 and cached.namespaces.fetched == ["demo"]
    assert "patch" not in answer["response"]  # answered with the fetched namespace, which selects nothing


def test_each_namespace_gets_its_own_answer() -> None:
    namespaces = Namespaces(NamespaceMeta("mesh", {"istio-injection": "enabled"}, {}), NamespaceMeta("plain", {}, {}))
    cached = server(namespaces)
    pod = make_pod()
    for namespace in ("mesh", "plain", "mesh", "plain", "mesh", "plain"):
        body = body_of(pod, uid(), namespace=namespace)
        assert cached.post(body) == fresh(namespaces, body)[0]
    assert cached.hits == 2 and cached.cache is not None and len(cached.cache) == 2


# --- bodies in other layouts ----------------------------------------------------------------------


def reorder_envelope(review: dict[str, Any]) -> bytes:
    return orjson.dumps({"request": review["request"], "kind": review["kind"], "apiVersion": review["apiVersion"]})


def with_whitespace(review: dict[str, Any]) -> bytes:
    return json.dumps(review).encode()


def uid_not_first(review: dict[str, Any]) -> bytes:
    request = review["request"]
    review["request"] = {"kind": request["kind"], **request}
    return orjson.dumps(review)


def escaped_uid(review: dict[str, Any]) -> bytes:
    body = orjson.dumps(review)
    raw = review["request"]["uid"]
    return body.replace(f'"uid":"{raw}"'.encode(), f'"uid":"\\u{ord(raw[0]):04x}{raw[1:]}"'.encode(), 1)


def long_uid(review: dict[str, Any]) -> bytes:
    review["request"]["uid"] *= 4  # 144 characters
    return orjson.dumps(review)


def odd_uid(review: dict[str, Any]) -> bytes:
    review["request"]["uid"] = review["request"]["uid"].replace("-", "_")
    return orjson.dumps(review)


LAYOUTS = [reorder_envelope, with_whitespace, uid_not_first, escaped_uid, long_uid, odd_uid]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_a_body_in_another_layout_is_answered_fresh_and_not_cached(layout: Callable[[dict[str, Any]], bytes]) -> None:
    cached = server(demo())
    pod = make_pod(annotations=ISTIO)
    for _ in range(3):
        review = make_review(copy.deepcopy(pod), uid=uid(), namespace="demo")
        body = layout(review)
        assert body_key(body) is None
        answer = cached.post(body)
        assert answer == fresh(demo(), body)[0]
        assert orjson.loads(answer)["response"]["uid"] == orjson.loads(body)["request"]["uid"]
    assert cached.cache is not None and len(cached.cache) == 0 and cached.hits == 0


def test_a_body_for_the_side_lane_is_not_cached() -> None:
    body = body_of(make_pod(annotations=ISTIO), uid())
    cached = server(demo(), lane_bytes=len(body) - 1)
    for _ in range(3):
        body = body_of(make_pod(annotations=ISTIO), uid())
        assert cached.post(body) == fresh(demo(), body)[0]
    assert cached.cache is not None and len(cached.cache) == 0 and cached.hits == 0


# --- a uid that is not only the request's ---------------------------------------------------------


def test_the_uid_also_inside_the_pod_confuses_nothing() -> None:
    pod = make_pod(annotations=ISTIO)
    owner = pod["metadata"]["ownerReferences"][0]
    shared = owner["uid"]
    cached = server(demo())
    # The answer stored is the second review's, whose uid is also its pod's owner's; the third's
    # is not; the fourth changes the owner.
    bodies = [body_of(pod, uid()), body_of(pod, shared), body_of(pod, uid())]
    owner["uid"] = uid()
    bodies.append(body_of(pod, owner["uid"]))
    answers = [cached.post(body) for body in bodies]
    assert cached.hits == 1  # the third; the fourth's body differs (its owner)
    for body, answer in zip(bodies, answers):
        assert answer == fresh(demo(), body)[0]
        assert orjson.loads(answer)["response"]["uid"] == orjson.loads(body)["request"]["uid"]


def test_a_duplicated_uid_key_is_not_cached() -> None:
    # orjson keeps the last of duplicated keys, so this review's uid is "second", not the one the key left out.
    body = body_of(make_pod(annotations=ISTIO), "first").replace(b'"uid":"first",', b'"uid":"first","uid":"second",', 1)
    cached = server(demo())
    for _ in range(2):  # a second sight would store it
        answer = cached.post(body)
    assert orjson.loads(answer)["response"]["uid"] == "second" and answer == fresh(demo(), body)[0]
    assert cached.cache is not None and len(cached.cache) == 0


# --- the cache itself -----------------------------------------------------------------------------


def entry(uid: str, payload: bytes) -> Any:
    answer = split(payload, uid, "v")
    assert answer is not None
    return make_entry(answer, key=uid.encode(), namespace_name="demo", namespace=NamespaceMeta("demo", {}, {}), generation=0)


def test_cache_is_bounded_in_bytes() -> None:
    cache: AnswerCache[str] = AnswerCache(max_bytes=64 * 1024)
    for i in range(1000):
        cache.put(i.to_bytes(4, "big"), entry(f"u{i}", orjson.dumps({"response": {"uid": f"u{i}", "patch": "x" * 1000}})))
    assert cache.bytes <= 64 * 1024 and 0 < len(cache) < 1000
    assert cache.get((999).to_bytes(4, "big")) is not None and cache.get((0).to_bytes(4, "big")) is None


def test_an_answer_too_large_for_its_share_is_not_cached() -> None:
    cache: AnswerCache[str] = AnswerCache(max_bytes=64 * 1024)
    cache.put(b"k", entry("u", orjson.dumps({"response": {"uid": "u", "patch": "x" * 9000}})))
    assert len(cache) == 0


def test_a_replaced_entry_is_counted_once() -> None:
    cache: AnswerCache[str] = AnswerCache()
    first, second = entry("u", b'{"uid":"u","p":"' + b"x" * 100 + b'"}'), entry("u", b'{"uid":"u"}')
    cache.put(b"k", first)
    cache.put(b"k", second)
    assert len(cache) == 1 and cache.bytes == second.size and cache.get(b"k") is second


def test_the_counted_bytes_are_the_memory_the_entries_keep() -> None:
    cached = server(demo())
    bodies = [body_of(make_pod(annotations=ISTIO, labels={"serial": str(i)}), uid()) for i in range(200)]
    tracemalloc.start()
    try:
        for body in bodies:
            cached.post(body)
            cached.post(body)
        cached.log.lines.clear()
        kept = tracemalloc.get_traced_memory()[0]
        assert cached.cache is not None
        cached.cache._entries.clear()
        kept -= tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    counted = cached.cache.bytes
    assert 0.8 <= counted / kept <= 1.25, (counted, kept)


def test_split_refuses_an_answer_whose_uid_is_not_found_once() -> None:
    assert split(b'{"response":{"allowed":true}}', "u", "v") is None
    payload = orjson.dumps({"response": {"uid": "u", "warnings": ['"uid":"u"']}})
    answer = split(payload, "u", "v")
    assert answer is not None and answer.payload("w") == payload.replace(b'"uid":"u",', b'"uid":"w",', 1)


def test_sizes_are_counted_with_their_object_headers() -> None:
    payload = orjson.dumps({"response": {"uid": "u", "patch": "x" * 1000}})
    assert entry("u", payload).size > len(payload) + sys.getsizeof(b"")


def test_an_answer_is_stored_on_the_second_sight_of_its_body() -> None:
    cached = server(demo())
    pod = make_pod(annotations=ISTIO)
    cached.post(body_of(pod, uid()))
    assert cached.cache is not None and len(cached.cache) == 0 and cached.cache.bytes == 0
    cached.post(body_of(pod, uid()))
    assert len(cached.cache) == 1 and cached.hits == 0
    cached.post(body_of(pod, uid()))
    assert cached.hits == 1


def test_bodies_seen_once_leave_only_their_keys_and_the_oldest_are_forgotten() -> None:
    cache: AnswerCache[str] = AnswerCache(max_bytes=64 * 1024)
    limit = 64 * 1024 // 16 // SEEN_KEY_BYTES
    keys = [i.to_bytes(4, "big") for i in range(limit + 1)]
    assert not any(cache.admits(key) for key in keys)
    assert len(cache) == 0 and cache.bytes == 0
    assert not cache.admits(keys[0]), "the oldest key seen once was kept beyond the limit"
    assert cache.admits(keys[-1]) and not cache.admits(keys[-1]), "a key is admitted once per sighting pair"


def test_the_keys_seen_once_are_bounded_by_a_mebibyte() -> None:
    cache: AnswerCache[str] = AnswerCache()
    for i in range(SEEN_MAX_BYTES // SEEN_KEY_BYTES + 100):
        cache.admits(i.to_bytes(4, "big"))
    assert len(cache._seen) * SEEN_KEY_BYTES <= SEEN_MAX_BYTES
