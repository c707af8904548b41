"""The namespace cache on recorded watch events: no network, fake list and watch callables."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from webhook.engine.errors import ConfigError
from webhook.cluster.namespaces import Gone, NamespaceCache, NamespaceUnavailable, StaticNamespaces, WatchFailed


def namespace(name: str, version: str, labels: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "resourceVersion": version, "labels": labels, "annotations": annotations or None},
    }


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


GONE = event("ERROR", {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired", "message": "too old resource version: 10 (120)"})


class FakeApi:
    """Lists return ``listing``; each watch call plays the next script (a list of events or an exception)."""

    def __init__(self, listing: list[dict[str, Any]], version: str, scripts: list[Any]) -> None:
        self.listing = listing
        self.version = version
        self.scripts = scripts
        self.watched_from: list[str] = []
        self.gets: list[str] = []

    def list(self) -> tuple[list[Mapping[str, Any]], str]:
        return list(self.listing), self.version

    def watch(self, version: str) -> Iterator[Mapping[str, Any]]:
        self.watched_from.append(version)
        script = self.scripts.pop(0) if self.scripts else []
        for item in script:
            if isinstance(item, BaseException):
                raise item
            yield item

    def get(self, name: str) -> Mapping[str, Any] | None:
        self.gets.append(name)
        if name == "down":
            raise TimeoutError("read timed out")
        return namespace(name, "99", {"fresh": "yes"}) if name == "fresh" else None

    def cache(self) -> NamespaceCache:
        return NamespaceCache(list_namespaces=self.list, watch_namespaces=self.watch, get_namespace=self.get)


def test_list_fills_the_cache_and_marks_it_synced() -> None:
    api = FakeApi([namespace("demo", "5", {"istio-injection": "enabled"}), namespace("plain", "6")], "10", [[]])
    cache = api.cache()
    assert not cache.synced and cache.lookup("demo") is None
    cache.run_once()
    assert cache.synced and len(cache) == 2 and cache.lists == 1
    demo = cache.lookup("demo")
    assert demo is not None and demo.labels == {"istio-injection": "enabled"} and demo.annotations == {}
    assert api.watched_from == ["10"]


def test_added_modified_deleted_and_bookmark_move_the_cache_and_the_resource_version() -> None:
    api = FakeApi(
        [namespace("demo", "5")],
        "10",
        [
            [
                event("ADDED", namespace("new", "11", {"meshswitch.io/mode": "linkerd"})),
                event("MODIFIED", namespace("demo", "12", {"istio-injection": "enabled"}, **{"linkerd.io/inject": "enabled"})),
                event("DELETED", namespace("new", "13")),
                event("BOOKMARK", {"kind": "Namespace", "metadata": {"resourceVersion": "14"}}),
            ]
        ],
    )
    cache = api.cache()
    cache.run_once()
    assert cache.lookup("new") is None
    demo = cache.lookup("demo")
    assert demo is not None
    assert demo.labels == {"istio-injection": "enabled"}
    assert demo.annotations == {"linkerd.io/inject": "enabled"}
    assert cache.resource_version == "14"
    assert cache.failures == 0


def test_watch_resumes_from_the_last_resource_version_after_a_clean_end() -> None:
    api = FakeApi([], "10", [[event("ADDED", namespace("a", "11"))], [event("ADDED", namespace("b", "12"))]])
    cache = api.cache()
    cache.run_once()
    cache.run_once()
    assert api.watched_from == ["10", "11"]
    assert cache.lists == 1 and len(cache) == 2


def test_error_410_in_the_stream_lists_again() -> None:
    api = FakeApi([namespace("a", "5")], "10", [[event("ADDED", namespace("b", "11")), GONE], []])
    cache = api.cache()
    cache.run_once()
    assert cache.resource_version is None
    assert cache.backoff() == 0.0  # a relist is not a failure
    api.listing, api.version = [namespace("c", "130")], "130"
    cache.run_once()
    assert cache.lists == 2
    assert api.watched_from == ["10", "130"]
    # The list replaces the cache: what the expired watch knew is gone.
    assert cache.lookup("a") is None and cache.lookup("b") is None and cache.lookup("c") is not None


def test_http_410_on_the_watch_request_lists_again() -> None:
    api = FakeApi([], "10", [[Gone("resourceVersion too old")], []])
    cache = api.cache()
    cache.run_once()
    assert cache.resource_version is None
    cache.run_once()
    assert cache.lists == 2


def test_dropped_connection_keeps_the_cache_and_resumes_with_backoff() -> None:
    api = FakeApi(
        [namespace("a", "5")],
        "10",
        [
            [event("ADDED", namespace("b", "11")), ConnectionResetError("peer reset")],
            [ConnectionResetError("again")],
            [event("MODIFIED", namespace("b", "12", {"x": "y"}))],
        ],
    )
    cache = api.cache()
    cache.run_once()
    assert cache.failures == 1 and cache.backoff() == 0.5
    assert cache.synced and cache.lookup("b") is not None
    cache.run_once()
    assert cache.failures == 2 and cache.backoff() == 1.0
    cache.run_once()
    assert cache.failures == 0 and cache.backoff() == 0.0
    assert api.watched_from == ["10", "11", "11"]
    assert cache.lists == 1
    b = cache.lookup("b")
    assert b is not None and b.labels == {"x": "y"}


def test_other_error_events_resume_without_a_list() -> None:
    api = FakeApi([], "10", [[event("ERROR", {"kind": "Status", "code": 500, "message": "etcd is sad"})], []])
    cache = api.cache()
    cache.run_once()
    assert cache.failures == 1 and cache.resource_version == "10"
    with pytest.raises(WatchFailed):
        cache.apply(event("ERROR", {"code": 500}))
    with pytest.raises(Gone):
        cache.apply(GONE)


def test_a_failing_list_is_retried_and_the_cache_is_not_synced() -> None:
    calls = {"n": 0}

    def flaky_list() -> tuple[list[Mapping[str, Any]], str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionRefusedError("apiserver down")
        return [namespace("a", "1")], "1"

    cache = NamespaceCache(list_namespaces=flaky_list, watch_namespaces=lambda _: iter(()), get_namespace=lambda _: None)
    cache.run_once()
    assert not cache.synced and cache.failures == 1
    cache.run_once()
    assert cache.synced and cache.lookup("a") is not None


def test_an_empty_watch_backs_off_so_a_closing_server_is_not_hammered() -> None:
    api = FakeApi([], "10", [[], []])
    cache = api.cache()
    cache.run_once()
    assert cache.backoff() > 0
    for _ in range(20):
        cache.run_once()
    assert cache.backoff() == 30.0


def test_a_miss_costs_one_get_and_is_not_stored() -> None:
    api = FakeApi([], "10", [])
    cache = api.cache()
    fresh = cache.fetch("fresh")
    assert fresh.labels == {"fresh": "yes"}
    assert cache.lookup("fresh") is None
    missing = cache.fetch("missing")
    assert missing.name == "missing" and missing.labels == {}
    with pytest.raises(NamespaceUnavailable, match="down"):
        cache.fetch("down")
    assert api.gets == ["fresh", "missing", "down"]


def test_run_loop_stops_when_asked() -> None:
    api = FakeApi([namespace("a", "1")], "1", [[event("ADDED", namespace("b", "2"))]])
    cache = api.cache()
    cache.start()
    deadline = time.monotonic() + 5
    while cache.lookup("b") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    cache.stop()
    assert cache.lookup("b") is not None


def test_static_namespaces_from_file(tmp_path: Path) -> None:
    path = tmp_path / "ns.yaml"
    path.write_text(
        "demo:\n  istio-injection: enabled\n  flag: true\n"
        "linkerd-demo:\n  labels: {}\n  annotations:\n    linkerd.io/inject: enabled\n"
        "empty:\n"
    )
    source = StaticNamespaces.from_file(path)
    assert source.synced and len(source) == 3
    assert source.lookup("demo").labels == {"istio-injection": "enabled", "flag": "true"}
    assert source.lookup("linkerd-demo").annotations == {"linkerd.io/inject": "enabled"}
    unknown = source.lookup("elsewhere")
    assert unknown.name == "elsewhere" and unknown.labels == {}


@pytest.mark.parametrize("text", ["- a\n- b\n", "demo: [1]\n", "demo:\n  key: [1]\n", "demo: {a: b\n"])
def test_static_namespaces_bad_file_is_a_config_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ns.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="ns.yaml"):
        StaticNamespaces.from_file(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"demo:\n  owner: caf\xe9\n", "ns.yaml:2: not UTF-8 text (byte 0xe9 at offset 18); YAML files are UTF-8 (namespace labels)"),
        (b"demo: {a: b\n", "ns.yaml:2: cannot read namespace labels: not valid YAML: "),
    ],
)
def test_static_namespaces_unreadable_file_is_one_line_naming_it(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "ns.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as caught:
        StaticNamespaces.from_file(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
