"""Bounded work per review: setting lengths checked before parsing, int32, short quotes, a cache bounded in bytes."""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import pytest

from tests.api.pods import PLUGIN_ANNOTATIONS, make_pod, maximal_annotations
from webhook.engine import fragment
from webhook.engine.config import Config
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector, NamespaceMeta
from webhook.engine.plugins import load_plugins
from webhook.engine.settings import INT32_MAX, INT32_MIN, TYPES, Setting, SettingError, load_setting, show

PLUGINS = load_plugins()
NAMESPACE = NamespaceMeta("demo", {}, {})


@pytest.fixture(scope="module")
def injector() -> Injector:
    return Injector(plugins=PLUGINS, config=Config())


ALL_SETTINGS = [(p.name, s) for p in PLUGINS for s in p.settings]


@pytest.mark.parametrize("plugin, setting", ALL_SETTINGS, ids=[f"{p}:{s.name}" for p, s in ALL_SETTINGS])
def test_every_setting_has_a_maximum_checked_before_parsing(plugin: str, setting: Setting, monkeypatch: pytest.MonkeyPatch) -> None:
    assert 0 < setting.longest <= 64 * 1024
    parsed: list[str] = []
    kind = TYPES[setting.type]
    monkeypatch.setitem(TYPES, setting.type, type(kind)(lambda raw, s: parsed.append(raw), kind.accepts, kind.max_length))
    with pytest.raises(SettingError, match=f"longer than {setting.longest} characters"):
        setting.parse("1" * (setting.longest + 1))
    assert parsed == [], "the parser must not see an over-long value"
    setting.parse("1" * setting.longest)
    assert parsed, "a value at the maximum is parsed"


@pytest.mark.parametrize("plugin", ["istio", "linkerd", "envoy", "dapr"])
def test_maximal_values_parse_and_are_cheap(plugin: str) -> None:
    settings = {s.keys[0]: s for s in PLUGINS[plugin].settings}
    # Not a speed measurement: a pattern that backtracks catastrophically takes seconds to hours on
    # its longest value; the CPU time of this thread, not the wall clock, so a busy machine passes.
    for key, value in maximal_annotations(PLUGINS[plugin]).items():
        started = time.thread_time()
        settings[key].parse(value)
        assert time.thread_time() - started < 0.5, key


def test_int_settings_are_bounded_by_int32() -> None:
    plain = load_setting("n", {"key": "x/n", "type": "int"}, where="test")
    assert plain.bounds == (INT32_MIN, INT32_MAX)
    assert plain.parse(str(INT32_MAX)) == INT32_MAX and plain.parse(str(INT32_MIN)) == INT32_MIN
    for value in (INT32_MAX + 1, INT32_MIN - 1, 999999999999999999):
        with pytest.raises(SettingError, match="maximum|minimum"):
            plain.parse(str(value))
    wide = load_setting("n", {"key": "x/n", "type": "int", "min": -(2**40), "max": 2**40}, where="test")
    assert wide.bounds == (INT32_MIN, INT32_MAX), "a declared range never widens the field"
    narrow = load_setting("n", {"key": "x/n", "type": "int", "min": 1, "max": 10}, where="test")
    assert narrow.bounds == (1, 10) and "from 1 to 10" in narrow.accepts()


def test_max_length_can_be_declared_per_setting() -> None:
    setting = load_setting("config", {"key": "x/config", "type": "string", "maxLength": 100}, where="test")
    assert setting.longest == 100
    with pytest.raises(SettingError, match="longer than 100"):
        setting.parse("x" * 101)
    with pytest.raises(Exception, match="maxLength"):
        load_setting("config", {"key": "x/config", "type": "string", "maxLength": 0}, where="test")


def test_show_quotes_a_short_prefix() -> None:
    assert show("8080") == "'8080'"
    shown = show("9" * 3_900_000)
    assert len(shown) < 100 and "3900000 characters" in shown


@pytest.mark.parametrize(
    "key", ["traffic.sidecar.istio.io/excludeOutboundPorts", "traffic.sidecar.istio.io/excludeOutboundIPRanges", "meshswitch.io/mode", "meshswitch.io/sidecar"]
)
def test_refusals_never_repeat_a_long_value(injector: Injector, key: str) -> None:
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], key: "1," * 100_000})
    started = time.perf_counter()
    with pytest.raises(PodDenied) as denied:
        injector.inject(pod, NAMESPACE)
    assert time.perf_counter() - started < 0.05
    assert key in denied.value.message and len(denied.value.message) < 600


def _distinct_maximal(index: int) -> dict[str, Any]:
    annotations = {**PLUGIN_ANNOTATIONS["istio"], **maximal_annotations(PLUGINS["istio"])}
    annotations["sidecar.istio.io/proxyCPU"] = f"{index + 1}m"
    return make_pod(annotations=annotations)


def test_the_tree_cache_is_bounded_in_bytes(injector: Injector) -> None:
    tree_cache = PLUGINS["istio"].fragment
    gc.collect()
    tracemalloc.start()
    try:
        for index in range(24):
            injector.inject(_distinct_maximal(index), NAMESPACE)
            assert tree_cache.cached_bytes <= fragment.CACHE_BYTES
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        # What the cache still holds must be within its byte bound: the estimate is an upper one.
        kept = len(tree_cache._specialized)
        tree_cache._specialized.clear()
        tree_cache._cached_bytes = 0
        gc.collect()
        released = held - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert 0 < kept < 24, "the oldest trees were evicted"
    assert released <= fragment.CACHE_BYTES, f"{released} bytes held by {kept} cached trees"


# --- values parsed from annotations: nesting and YAML aliases ------------------------------------

_ALIAS_BOMB = "\n".join(['a0: &a0 ["xxxxxxxxxx","xxxxxxxxxx"]'] + [f"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]" for i in range(1, 11)])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a: " + "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),  # the YAML constructor's recursion
        ("a: " + "[" * 70 + "]" * 70, "nested deeper than 64 levels"),
        ("a: " + "{b: " * 100 + "1" + "}" * 100, "nested deeper than 64 levels"),
        (_ALIAS_BOMB, "more than 20000 values"),  # 320 bytes that write out as 45 MB
    ],
    ids=["recursion", "deep-list", "deep-map", "alias-bomb"],
)
def test_a_proxy_config_too_deep_or_too_large_is_refused_naming_the_key(injector: Injector, value: str, problem: str) -> None:
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], "proxy.istio.io/config": value})
    with pytest.raises(PodDenied) as refused:
        injector.inject(pod, NAMESPACE)
    assert "proxy.istio.io/config" in refused.value.message and problem in refused.value.message, refused.value.message


def test_aliases_within_the_bound_are_accepted(injector: Injector) -> None:
    value = "meta: &m {A: '1'}\nproxyMetadata: *m\n"
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], "proxy.istio.io/config": value})
    assert injector.inject(pod, NAMESPACE).patch


def test_an_env_list_nested_too_deep_is_refused(injector: Injector) -> None:
    deep = '[{"name":"X","valueFrom":' + '{"a":' * 300 + "1" + "}" * 300 + "}]"
    pod = make_pod(annotations={"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-additional-env": deep})
    with pytest.raises(PodDenied, match="config.linkerd.io/proxy-additional-env.*nested deeper than 64 levels"):
        injector.inject(pod, NamespaceMeta("demo", {"meshswitch.io/mode": "linkerd"}, {}))


def test_a_user_volume_nested_too_deep_is_refused(injector: Injector) -> None:
    deep = '{"v": ' + '{"a":' * 300 + "1" + "}" * 300 + "}"
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], "sidecar.istio.io/userVolume": deep})
    with pytest.raises(PodDenied, match="sidecar.istio.io/userVolume.*nested deeper than 64 levels"):
        injector.inject(pod, NAMESPACE)


@pytest.mark.parametrize(
    "env",
    [
        '{"A": ' + "[" * 900 + "]" * 900 + "}",
        '{"A": ' + '{"b": ' * 900 + "1" + "}" * 900 + "}",
    ],
    ids=["lists", "maps"],
)
def test_a_deep_datadog_env_is_refused_naming_the_key(env: str) -> None:
    """With the install's global.proxy.tracer datadog, Istio spreads apm.datadoghq.com/env into the
    proxy's env; a value nested past the engine's bound is a refusal naming the key, never a template
    error (Go's %v would write it; Python's recursion would not)."""
    import json

    from webhook.engine.discovery import Discovery

    discovery = Discovery(PLUGINS)
    istiod = {"spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.29.6"}]}}}}
    discovery.observe("Deployment", "istio-system", "istiod", istiod)
    values = {"data": {"values": json.dumps({"global": {"proxy": {"tracer": "datadog"}}})}}
    discovery.observe("ConfigMap", "istio-system", "istio-sidecar-injector", values)
    engine = Injector(plugins=PLUGINS, config=Config(), discovery=discovery)
    istio = NamespaceMeta("demo", {"meshswitch.io/mode": "istio"}, {})
    with pytest.raises(PodDenied, match="apm.datadoghq.com/env.*nested at most 64 deep"):
        engine.inject(make_pod(annotations={"apm.datadoghq.com/env": env}), istio)
    shallow = engine.inject(make_pod(annotations={"apm.datadoghq.com/env": '{"A": {"b": [1, 2]}}'}), istio)
    proxy = next(c for op in shallow.patch if op["path"] == "/spec/initContainers" for c in op["value"] if c["name"] == "istio-proxy")
    assert {"name": "A", "value": "map[b:[1 2]]"} in proxy["env"]
