"""Setting types that parse the meshes' own value formats, and the filters templates compare releases with."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.engine.errors import ConfigError
from webhook.engine.releases import version_at_least
from webhook.engine.sandbox import _append_missing, _go_float, _go_snakecase, _snake_env, _with_image_type, whole_cores
from webhook.engine.settings import SettingError, load_setting


def setting(**spec: object):  # type: ignore[no-untyped-def]
    return load_setting("x", {"key": "example.com/x", **spec}, where="test.yaml")


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("300ms", 0.3), ("1m30s", 90.0), ("0", 0.0), ("1.5h", 5400.0), ("2s500ms", 2.5), ("100us", 0.0001), ("-1s", -1.0)],
)
def test_duration_is_a_go_duration(raw: str, seconds: float) -> None:
    assert setting(type="duration").parse(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["", "5", "s", "1x", "1.s5", "ms", "1 s"])
def test_duration_that_go_rejects_is_refused(raw: str) -> None:
    with pytest.raises(SettingError, match="not a duration"):
        setting(type="duration").parse(raw)


def test_duration_minimum() -> None:
    with pytest.raises(SettingError, match="below the minimum"):
        setting(type="duration", min=0).parse("-1s")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("0x1p-2", 0.25), ("0.2_5", 0.25), ("0x_1p-2", 0.25), ("0X.8P0", 0.5), ("1_0e-2", 0.1), (".5", 0.5), ("5.", 5.0)],
)
def test_float_as_go_parsefloat_reads_it(raw: str, value: float) -> None:
    assert setting(type="float").parse(raw) == value


@pytest.mark.parametrize("raw", ["0x1", "0x1.8", "1_.5", "1._5", "_1", "1_", "0_.5", "1e_1", "0x_.8p0", "1__0", "nan", "inf", "0b1"])
def test_float_that_go_parsefloat_refuses_is_refused(raw: str) -> None:
    with pytest.raises(SettingError, match="not a number"):
        setting(type="float").parse(raw)


def test_float_with_exclusive_bounds() -> None:
    ratio = setting(type="float", min=0, max=1, exclusive=True)
    assert ratio.parse("0.25") == 0.25
    for raw in ("0", "1", "1.5", "abc"):
        with pytest.raises(SettingError):
            ratio.parse(raw)
    assert "strictly between 0 and 1" in ratio.accepts()


def test_env_list() -> None:
    env = setting(type="env")
    assert env.parse('[{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]')[1]["name"] == "B"
    for raw in ("{}", "[1]", '[{"value": "1"}]', '[{"name": "A", "value": 1}]', "not json"):
        with pytest.raises(SettingError):
            env.parse(raw)
    # A field an EnvVar does not have is dropped, as Go's decoder (and so the mesh) drops it.
    assert env.parse('[{"name": "A", "image": "x"}]') == [{"name": "A"}]


@pytest.mark.parametrize("raw", ["+3306,8080", "0-100,8080", "0", "+1-+5", "008080"])
def test_ports_as_go_atoi_reads_them_where_the_setting_says(raw: str) -> None:
    # Linkerd's ParsePortRange: strconv.Atoi on each bound, 0 to 65535.
    assert setting(type="ports", min=0, plusSign=True).parse(raw) == raw.split(",")
    with pytest.raises(SettingError):
        setting(type="ports").parse(raw.replace("008080", "+8080"))


def test_unsigned_int_as_go_parseuint_reads_it() -> None:
    wait = setting(type="int", bits=64, unsigned=True)
    assert wait.parse("3000000000") == 3000000000 and wait.parse("0018446744073709551615") == 2**64 - 1
    for raw in ("+5", "-0", "18446744073709551616", "1" * 40):
        with pytest.raises(SettingError):
            wait.parse(raw)
    assert setting(type="int", bits=64).parse("-5") == -5


@pytest.mark.parametrize(("number", "text"), [(5, "5"), (999999, "999999"), (1000000, "1e+06"), (3000000000, "3e+09"), (123456789, "1.23456789e+08")])
def test_go_float_writes_a_number_as_go_prints_a_float64(number: int, text: str) -> None:
    assert _go_float(number) == text


def test_enum_with_an_empty_choice_names_it() -> None:
    assert setting(type="enum", choices=["apache", "json", ""]).accepts() == "one of apache, json or empty"
    assert setting(type="enum", choices=["a", "b"]).accepts() == "one of a, b"


def test_ports_reversed_range_says_so() -> None:
    with pytest.raises(SettingError) as error:
        setting(type="ports").parse("9090-9080")
    assert str(error.value) == "a list whose item '9090-9080' is a range whose upper bound is below its lower bound"
    with pytest.raises(SettingError, match="out of the range 0-65535"):
        setting(type="ports", min=0, plusSign=True).parse("10-70000")
    with pytest.raises(SettingError, match="out of the range 1-65535"):
        setting(type="ports").parse("0-100")


def test_ports_with_names() -> None:
    assert setting(type="ports", names=True).parse("http,9090,7000-7002") == ["http", "9090", "7000-7002"]
    with pytest.raises(SettingError):
        setting(type="ports").parse("http")


def test_namespace_keys_must_be_the_settings_own() -> None:
    assert setting(type="bool", namespace=False).on_namespace("example.com/x") is False
    assert setting(type="bool", keys=["a/b", "c/d"], namespace=["c/d"]).on_namespace("a/b") is False
    with pytest.raises(ConfigError, match="namespace is true, false or a list of its keys"):
        setting(type="bool", namespace=["other/key"])


@pytest.mark.parametrize(
    ("version", "minimum", "expected"),
    [
        ("edge-26.8.3", "edge-25.11.3", True),
        ("edge-25.10.7", "edge-25.11.3", False),
        ("edge-25.11.3", "edge-25.11.3", True),
        ("edge-25.8.10", "edge-25.8.2", True),  # numbers, not text
        ("1.27.3", "1.28.0", False),
        ("v2.4.3", "v2.4.1", True),
        ("dev-abc123", "edge-25.11.3", True),  # a development build counts as newest
        ("stable-2.14.10", "edge-25.11.3", False),  # numbers only: the old stable line is older
    ],
)
def test_version_at_least(version: str, minimum: str, expected: bool) -> None:
    assert version_at_least(version, minimum) is expected


@pytest.mark.parametrize(
    ("quantity", "cores"),
    [("100m", 1), ("1", 1), ("1500m", 2), ("2.1", 3), ("0", 0), ("1000m", 1), (".5", 1), ("1e1", 10), ("2.5m", 1), ("lots", 0),
     # Where Kubernetes' Quantity.AsInt64 fails, Linkerd's ToWholeCPUCores gives 0 (checked with apimachinery).
     ("1e19", 0), ("10E", 0), ("9E", 9 * 10**18), ("1e18", 10**18), ("1000000000000000000", 0), ("9.3e18", 0),
     ("1Ti", 2**40), ("1Pi", 0), ("1.5Ki", 0), ("0.0000000001", 0), ("1e-9", 1), ("0001.5", 2)],
)
def test_whole_cores_rounds_up(quantity: str, cores: int) -> None:
    assert whole_cores(quantity) == cores


@pytest.mark.parametrize(
    ("items", "item", "expected"),
    # As Istio's excludeInboundPort adds the status port: once, at the end; a list that has it, or
    # repeats a port, is left as it was.
    [(["8080"], "15020", ["8080", "15020"]), (["15020", "8080"], "15020", ["15020", "8080"]),
     (["8080", "8080"], "15020", ["8080", "8080", "15020"]), ([], None, []), (None, "1", ["1"])],
)
def test_append_missing_adds_an_item_once(items: list[str] | None, item: str | None, expected: list[str]) -> None:
    assert _append_missing(items, item) == expected


@pytest.mark.parametrize(
    ("tag", "image_type", "expected"),
    # As Istio's updateImageTypeIfPresent: no type keeps the tag whole; a known type at its end is
    # replaced, not doubled; default drops it; an unknown suffix stays.
    [("1.30.3", None, "1.30.3"), ("1.30.3-debug", "", "1.30.3-debug"), ("1.30.3", "distroless", "1.30.3-distroless"),
     ("1.30.3-distroless", "distroless", "1.30.3-distroless"), ("1.30.3-debug", "distroless", "1.30.3-distroless"),
     ("1.30.3-distroless", "default", "1.30.3"), ("1.30.3", "default", "1.30.3"), ("1.30.3-asm", "debug", "1.30.3-asm-debug"),
     ("1.30.3-distroless", "custom", "1.30.3-custom")],
)
def test_with_image_type_replaces_a_known_type_at_the_tags_end(tag: str, image_type: str | None, expected: str) -> None:
    assert _with_image_type(tag, image_type, ["distroless", "debug"], "default") == expected


# Every spelling resource.ParseQuantity takes (Istio validates proxyCPU with it; Linkerd and Dapr
# parse theirs with it), and nothing it refuses.
QUANTITIES_ACCEPTED = ["250000000n", "1500u", "100m", "2", ".5", "1.", "1.5", "1e3", "1E-3", "2.5m", "+1", "0.0001", "128Mi", "1Ki", "1.5Gi", "64M", "3k", "1e+2"]
QUANTITIES_REFUSED = ["lots", "", "128K", "1KiB", "-1", "1.2.3", "1 Gi", "0x10", "e3", "1e", "Mi", "1U", "5N", "1mi"]


@pytest.mark.parametrize("kind", ["cpu", "memory"])
def test_quantities_follow_kubernetes_grammar(kind: str) -> None:
    setting = load_setting("q", {"key": "k", "type": kind}, where="test")
    for raw in QUANTITIES_ACCEPTED:
        assert setting.parse(raw) == raw, raw
    for raw in QUANTITIES_REFUSED:
        with pytest.raises(SettingError, match=f"not a {'CPU' if kind == 'cpu' else 'memory'} quantity"):
            setting.parse(raw)


# proxy.istio.io/config's int32 field, as Istio's decoder takes it (tests/reference/istio/cases/
# proxy-config-number-spellings.yaml holds the same values against Istio's own code).
@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("concurrency: '2'", {"concurrency": 2}), ("concurrency: 2.0", {"concurrency": 2}), ("concurrency: null", {}),
     ("concurrency: ' 2'", {"concurrency": 2}), ("concurrency: -1", {"concurrency": -1})],
)  # fmt: skip
def test_mapping_int_fields_take_what_istio_takes(raw: str, parsed: dict[str, Any]) -> None:
    setting = load_setting("proxyConfig", {"key": "k", "type": "mapping", "fields": {"concurrency": "int"}}, where="test")
    assert setting.parse(raw) == parsed


@pytest.mark.parametrize("raw", ["concurrency: 2.5", "concurrency: '2.5'", "concurrency: 2147483648", "concurrency: true"])
def test_mapping_int_fields_refuse_what_istio_refuses(raw: str) -> None:
    setting = load_setting("proxyConfig", {"key": "k", "type": "mapping", "fields": {"concurrency": "int"}}, where="test")
    with pytest.raises(SettingError, match="concurrency is not int"):
        setting.parse(raw)


@pytest.mark.parametrize("raw", ["1", "t", "T", "TRUE", "true", "True"])
def test_bool_takes_go_spellings_of_true(raw: str) -> None:
    assert load_setting("b", {"key": "k", "type": "bool"}, where="test").parse(raw) is True


@pytest.mark.parametrize("raw", ["yes", "on", "y", "tRuE", " true", "enabled", ""])
def test_bool_refuses_what_go_does_not_read(raw: str) -> None:
    with pytest.raises(SettingError, match="not a boolean"):
        load_setting("b", {"key": "k", "type": "bool"}, where="test").parse(raw)


# Dapr and Linkerd read their numbers with Go's strconv.ParseInt: a sign and leading zeros are fine.
@pytest.mark.parametrize(("raw", "port"), [("+50011", 50011), ("009091", 9091), ("0000000000065535", 65535), (" 8080 ", 8080)])
def test_port_as_strconv_reads_it(raw: str, port: int) -> None:
    assert setting(type="port").parse(raw) == port


@pytest.mark.parametrize("raw", ["0", "-0", "-8080", "65536", "1_000", "0x50", "٣", "8080-8081", ""])
def test_port_outside_1_to_65535_or_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(SettingError, match="not a port number"):
        setting(type="port").parse(raw)


def test_int_with_bits_64_takes_go_int64() -> None:
    wide = setting(type="int", bits=64)
    assert wide.parse("3000000000") == 3_000_000_000
    assert wide.parse("+9223372036854775807") == 2**63 - 1 and wide.parse("-9223372036854775808") == -(2**63)
    assert wide.parse("0000000000000000000000000001") == 1
    for raw in ("9223372036854775808", "99999999999999999999999999999"):
        with pytest.raises(SettingError, match="above the maximum 9223372036854775807"):
            wide.parse(raw)
    with pytest.raises(SettingError, match="above the maximum 2147483647"):
        setting(type="int").parse("3000000000")  # an int32 field by default
    with pytest.raises(ConfigError, match="bits"):
        setting(type="port", bits=64)


@pytest.mark.parametrize(("raw", "milliseconds"), [("1360ms", 1359), ("1.235s", 1234), ("100ms", 100), ("1000ms", 1000), ("-0s", 0)])
def test_duration_seconds_are_go_float64_seconds(raw: str, milliseconds: int) -> None:
    # Linkerd writes int(d.Seconds()*1000): whole nanoseconds, then seconds + nanoseconds/1e9 in float64.
    assert int(setting(type="duration", min=0).parse(raw) * 1000) == milliseconds


@pytest.mark.parametrize(("spec", "raw"), [({"type": "ports"}, "80,x_y"), ({"type": "cidrs"}, "10.0.0.0/8,nope"), ({"type": "string", "pattern": "[a-z]+"}, "")])
def test_refusals_read_after_the_value_is(spec: dict[str, Any], raw: str) -> None:
    # decide words a refusal as "<key>=<value> is <error>": the error must read on from "is".
    with pytest.raises(SettingError) as caught:
        setting(**spec).parse(raw)
    assert not str(caught.value).startswith(("'", "is ", "does "))


def test_names_trim_blanks_as_go_and_keep_the_order() -> None:
    names = setting(type="names", choices=["sidecar", "gateway"])
    assert names.parse(" sidecar ,\tgateway") == ["sidecar", "gateway"]
    assert names.parse("gateway,sidecar") == ["gateway", "sidecar"]
    for raw in ("waypoint", "sidecar,", "Sidecar", "sidecar;gateway"):
        with pytest.raises(SettingError, match="not one of the choices"):
            names.parse(raw)
    with pytest.raises(ConfigError, match="needs choices"):
        setting(type="names")


def test_mapping_reads_proto_names_enums_and_nested_fields_as_protojson() -> None:
    config = setting(
        type="mapping", protoNames=True,
        fields={"interceptionMode": ["REDIRECT", "TPROXY", "NONE"], "image": "mapping", "image.imageType": "string", "proxyMetadata": "mapping of strings"},
    )  # fmt: skip
    parsed = config.parse("hold_application_until_proxy_starts: true\ninterception_mode: 1\nimage: {image_type: distroless}\nproxy_metadata: {A_B: x}")
    assert parsed == {"holdApplicationUntilProxyStarts": True, "interceptionMode": "TPROXY", "image": {"imageType": "distroless"}, "proxyMetadata": {"A_B": "x"}}
    for raw, message in [
        ("interceptionMode: tproxy", "interceptionMode is not one of"),
        ("interceptionMode: 3", "interceptionMode is not one of"),
        ("image: {imageType: 5}", "image.imageType is not string"),
        ("concurrency: 1\nconcurrency_x: 2\nconcurrencyX: 3", "sets concurrencyX twice"),
    ]:
        with pytest.raises(SettingError, match=message):
            config.parse(raw)


def test_named_objects_as_a_go_template_ranges_over_them() -> None:
    """A map in sorted key order, a list by index; an object's own name wins; Go's numbers and nulls."""
    setting = load_setting("v", {"key": "v", "type": "named"}, where="t")
    assert setting.parse('{"z": {"emptyDir": {}}, "a": {"name": "own", "secret": {"defaultMode": 4.2e2, "items": null}}}') == [
        {"name": "own", "secret": {"defaultMode": 420}},
        {"name": "z", "emptyDir": {}},
    ]
    assert setting.parse('[{"mountPath": "/a"}, {"name": "b", "mountPath": "/b"}]') == [
        {"name": "0", "mountPath": "/a"},
        {"name": "b", "mountPath": "/b"},
    ]
    assert setting.parse("null") == []


@pytest.mark.parametrize("raw", ["{certs: secret}", '"certs"', "5", "true", "", '{"a": null}', '{"a": {}}', '["x"]', '[{"name": 5}]'])
def test_named_objects_refuse_what_istio_cannot_render(raw: str) -> None:
    with pytest.raises(SettingError):
        load_setting("v", {"key": "v", "type": "named"}, where="t").parse(raw)


@pytest.mark.parametrize("raw", ["10.0.0.0/08", "fd00::1", "10.0.0.0/8,", "10.0.0.0/8, 10.1.0.0/16", "10.0.0.0/255.0.0.0", "fe80::1%eth0/64", " *"])
def test_strict_cidrs_refuse_what_netip_parse_prefix_refuses(raw: str) -> None:
    with pytest.raises(SettingError):
        setting(type="cidrs", strict=True, wildcard=True).parse(raw)


def test_strict_cidrs_and_ports_take_what_istio_takes() -> None:
    assert setting(type="cidrs", strict=True, wildcard=True).parse("*") == ["*"]
    assert setting(type="cidrs", strict=True).parse("fd00::/8,10.0.0.0/0") == ["fd00::/8", "10.0.0.0/0"]
    assert setting(type="cidrs", strict=True).parse("") == []
    assert setting(type="ports", strict=True).parse(" 8080 , 09090 ") == ["8080", "09090"]
    for raw in ("8080-8090", "8080,", "+80", "0"):
        with pytest.raises(SettingError):
            setting(type="ports", strict=True).parse(raw)


def test_a_pattern_narrows_any_type() -> None:
    digits = setting(type="int", pattern="[0-9]+", min=0)
    assert digits.parse("007") == 7
    for raw in ("+5", " 5"):
        with pytest.raises(SettingError):
            digits.parse(raw)


# proxy.istio.io/config's checked fields, as Istio's ValidateMeshConfigProxyConfig and its decoder
# read them (tests/reference/istio/cases/proxy-config-validation.yaml holds the same values against
# Istio's own code).
PROXY_CONFIG_FIELDS = {
    "drainDuration": "duration in whole seconds", "terminationDrainDuration": "duration", "discoveryAddress": "address",
    "configPath": "non-empty string", "serviceCluster": "non-empty string", "proxyAdminPort": "port",
    "statsdUdpAddress": "address or empty", "tracing.zipkin.address": "tracer address",
}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("drainDuration: 1m", {"drainDuration": "60s"}), ("terminationDrainDuration: 1.5s", {"terminationDrainDuration": "1.500s"}),
     ("terminationDrainDuration: -1.5s", {"terminationDrainDuration": "-1.500s"}),
     ("terminationDrainDuration: 1h2m3.0004s", {"terminationDrainDuration": "3723.000400s"}),
     ("terminationDrainDuration: 0s", {"terminationDrainDuration": "0s"}),
     ("discoveryAddress: '[::1]:15012'", {"discoveryAddress": "[::1]:15012"}),
     ("discoveryAddress: '[fe80::1%eth0]:15012'", {"discoveryAddress": "[fe80::1%eth0]:15012"}),
     ("discoveryAddress: 'istiod.:15012'", {"discoveryAddress": "istiod.:15012"}),
     ("discoveryAddress: 'istiod:+15012'", {"discoveryAddress": "istiod:+15012"}),
     ("discoveryAddress: null", {}), ("statsdUdpAddress: ''", {"statsdUdpAddress": ""}),
     ("tracing: {zipkin: {address: '$(HOST_IP):9411'}}", {"tracing": {"zipkin": {"address": "$(HOST_IP):9411"}}}),
     ("proxyAdminPort: '15001'", {"proxyAdminPort": 15001}),
     ("tracingServiceName: APP_LABEL_AND_NAMESPACE\nserviceCluster: ''", {"tracingServiceName": "APP_LABEL_AND_NAMESPACE"})],
)  # fmt: skip
def test_proxy_config_fields_take_what_istio_takes(raw: str, parsed: dict[str, Any]) -> None:
    setting = load_setting(
        "proxyConfig", {"key": "k", "type": "mapping", "fields": PROXY_CONFIG_FIELDS, "oneofs": [["serviceCluster", "tracingServiceName"]]}, where="test"
    )  # fmt: skip
    assert setting.parse(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "message"),
    [("drainDuration: 1500ms", "drainDuration is not a duration of whole seconds"), ("drainDuration: 0s", "drainDuration is not"),
     ("drainDuration: 5", "drainDuration is not"), ("terminationDrainDuration: soon", "terminationDrainDuration is not a duration"),
     ("discoveryAddress: istiod.istio-system.svc", "discoveryAddress is without a port"),
     ("discoveryAddress: ''", "discoveryAddress is empty"), ("discoveryAddress: '::1:15012'", "discoveryAddress is not a host:port"),
     ("discoveryAddress: 'istiod:abc'", "discoveryAddress is with a port that is not"),
     ("discoveryAddress: 'istiod.123:15012'", "discoveryAddress is not a DNS name or an IP address"),
     ("discoveryAddress: '010.0.0.1:15012'", "discoveryAddress is not a DNS name or an IP address"),
     ("configPath: ''", "configPath is empty; configPath is a non-empty string"), ("configPath: 5", "configPath is not text"),
     ("serviceCluster: ''", "serviceCluster is empty"), ("proxyAdminPort: 0", "proxyAdminPort is not a port"),
     ("proxyAdminPort: 70000", "proxyAdminPort is not a port"), ("statsdUdpAddress: statsd", "statsdUdpAddress is without a port"),
     ("tracing: {zipkin: {address: zipkin}}", "tracing.zipkin.address is without a port"),
     ("tracing: {zipkin: {}}", "tracing.zipkin.address is missing")],
)  # fmt: skip
def test_proxy_config_fields_refuse_what_istio_refuses(raw: str, message: str) -> None:
    setting = load_setting("proxyConfig", {"key": "k", "type": "mapping", "fields": PROXY_CONFIG_FIELDS}, where="test")
    with pytest.raises(SettingError, match=message.replace("(", r"\(")):
        setting.parse(raw)


# huandu/xstrings' own examples of ToSnakeCase (sprig's snakecase), and the names Linkerd's chart
# builds from proxy.inbound and proxy.outbound.
@pytest.mark.parametrize(
    ("text", "snake"),
    [
        ("FirstName", "first_name"),
        ("HTTPServer", "http_server"),
        ("NoHTTPS", "no_https"),
        ("GO_PATH", "go_path"),
        ("GO PATH", "go_path"),
        ("GO-PATH", "go_path"),
        ("http2xx", "http_2xx"),
        ("HTTP20xOK", "http_20x_ok"),
        ("Duration2m3s", "duration_2m3s"),
        ("Bld4Floor3rd", "bld4_floor_3rd"),
        ("HTTP状态码404/502Error", "http_状态码404/502_error"),
        ("混合ABCWords与123数字456", "混合_abc_words_与123_数字456"),
        ("keepAliveInterval", "keep_alive_interval"),
        ("http2", "http2"),
    ],
)
def test_go_snakecase_is_sprigs(text: str, snake: str) -> None:
    assert _go_snakecase(text) == snake


def test_snake_env_ranges_nested_mappings_in_sorted_order() -> None:
    params = {"outbound": {"server": {"http2": {"maxConcurrentStreams": 100, "keepAliveTimeout": "3s"}}}, "inbound": {"server": "x"}}
    assert _snake_env(params, "LINKERD2_PROXY") == [
        {"name": "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "value": "3s"},
        {"name": "LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS", "value": "100"},
    ]
