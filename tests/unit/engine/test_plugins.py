"""Plugins as data: loading, compiling once, and start-up errors that name the file and the line."""

from __future__ import annotations

from typing import Any

from pathlib import Path

import pytest

from tests.helpers import apply, make_pod, namespace, validate_pod
from webhook.engine.config import Config
from webhook.engine.errors import ConfigError, PodDenied
from webhook.engine.kube import NamespaceMeta
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins

MINIMAL = """\
name: {name}
kind: {kind}
description: test plugin
on:
  - {{in: pod-annotation, key: example.com/inject, values: ["true"]}}
settings:
  cpu: {{key: example.com/cpu, type: cpu, default: 10m}}
fragment:
  sidecars:
    - name: {name}-agent
      image: "example.com/agent:1"
      resources: {{requests: {{cpu: "{{{{ settings.cpu }}}}"}}}}
"""


def write(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(text)
    return path


def test_shipped_plugins() -> None:
    plugins = load_plugins()
    assert {p.name: p.kind for p in plugins} == {
        "dapr": "runtime", "envoy": "mesh", "istio": "mesh", "istio-delegate": "mesh", "linkerd": "mesh",
        "linkerd-delegate": "mesh", "native": "native",
    }  # fmt: skip
    assert plugins.modes == ("envoy", "istio", "istio-delegate", "linkerd", "linkerd-delegate", "native")
    assert all(p.description for p in plugins)


def test_a_new_file_adds_a_plugin_without_python(tmp_path: Path) -> None:
    write(tmp_path, "agent.yaml", MINIMAL.format(name="agent", kind="runtime"))
    injector = Injector(plugins=load_plugins([tmp_path]), config=Config())
    pod = make_pod(annotations={"example.com/inject": "true", "example.com/cpu": "250m"})
    result = injector.inject(pod, namespace())
    injected = apply(pod, result.patch)
    validate_pod(injected)
    agent = injected["spec"]["initContainers"][0]
    assert agent["name"] == "agent-agent" and agent["resources"] == {"requests": {"cpu": "250m"}}


@pytest.mark.parametrize(("given", "image"), [("agent:2", "example.com/agent:1"), ("not an image!", "example.com/agent:1"), ("example.com/agent:2", "example.com/agent:2")])
def test_a_value_used_if_does_not_find_is_the_default_neither_parsed_nor_checked(tmp_path: Path, given: str, image: str) -> None:
    # Istio's proxyImage: its template takes the value only with a '/' in it.
    text = MINIMAL.format(name="agent", kind="runtime").replace(
        "settings:\n", "settings:\n  image: {key: example.com/image, type: image, usedIf: /}\n"
    ).replace('image: "example.com/agent:1"', 'image: "{{ settings.image or \'example.com/agent:1\' }}"')
    write(tmp_path, "agent.yaml", text)
    config = Config(allowed_registries=("example.com",))
    pod = make_pod(annotations={"example.com/inject": "true", "example.com/image": given})
    injected = apply(pod, Injector(plugins=load_plugins([tmp_path]), config=config).inject(pod, namespace()).patch)
    assert injected["spec"]["initContainers"][0]["image"] == image


def test_a_new_mesh_becomes_a_mode(tmp_path: Path) -> None:
    write(tmp_path, "kuma.yaml", MINIMAL.format(name="kuma", kind="mesh"))
    plugins = load_plugins([tmp_path])
    assert "kuma" in plugins.modes
    injector = Injector(plugins=plugins, config=Config())
    assert injector.inject(make_pod(), namespace("demo", {"meshswitch.io/mode": "kuma"})).plugins == ("kuma",)


def test_templates_dir_replaces_a_shipped_plugin(tmp_path: Path) -> None:
    write(tmp_path, "my-istio.yaml", MINIMAL.format(name="istio", kind="mesh"))
    plugins = load_plugins([tmp_path])
    assert plugins["istio"].path.endswith("my-istio.yaml")


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = MINIMAL.format(name="agent", kind="runtime").replace("example.com/agent:1", "{{ values.tag")
    write(tmp_path, "agent.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_plugins([tmp_path])
    assert "agent.yaml:11:" in str(caught.value)


def test_undefined_name_fails_at_start_up_with_its_line(tmp_path: Path) -> None:
    text = MINIMAL.format(name="agent", kind="runtime").replace("example.com/agent:1", "{{ values.no_such_value }}")
    write(tmp_path, "agent.yaml", text)
    plugins = load_plugins([tmp_path])  # compiles; the probe render at start-up catches it
    with pytest.raises(ConfigError) as caught:
        Injector(plugins=plugins, config=Config())
    assert "agent.yaml:11:" in str(caught.value) and "no_such_value" in str(caught.value)


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "name: bad\nkind: mesh\nfragment:\n  sidecars: [\n")
    with pytest.raises(ConfigError) as caught:
        load_plugins([tmp_path])
    assert "bad.yaml:5" in str(caught.value) and "YAML" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: runtime", "kind: sidecar"), "kind 'sidecar'; accepted: mesh, runtime, native"),
        (("type: cpu", "type: decimal"), "type 'decimal' is not one of"),
        (("default: 10m", "default: lots"), "default 'lots' is not a CPU quantity"),
        (("sidecars:", "extras:"), "fragment section 'extras'"),
        (("pod-annotation", "pod-spec"), "in='pod-spec'"),
        (("name: agent-agent", "name: \"{{ workload.name }}\""), "needs a literal name"),
        (("description: test plugin", "descripton: typo"), "unknown fields ['descripton']"),
        (("description: test plugin", "description: t\ndeclared: adopt"), "declared 'adopt'; accepted: skip, merge"),
        (("description: test plugin", "description: t\nrevisions: {key: 1}"), "revisions needs key"),
        (("type: cpu, default: 10m", "type: mapping, fields: {a: float}"), "fields map names to one of"),
        (("    - name: agent-agent", "    - $splice: \"{{ [] }}\"\n    - name: agent-agent"), "needs a literal name"),
    ],
)
def test_bad_plugin_file_fails_start_up_with_a_clear_message(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    write(tmp_path, "agent.yaml", MINIMAL.format(name="agent", kind="runtime").replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_plugins([tmp_path])
    assert "agent.yaml" in str(caught.value) and message in str(caught.value)


def test_same_plugin_twice_in_one_directory(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL.format(name="agent", kind="runtime"))
    write(tmp_path, "b.yaml", MINIMAL.format(name="agent", kind="runtime"))
    with pytest.raises(ConfigError, match="also defined"):
        load_plugins([tmp_path])


def test_missing_templates_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_plugins([tmp_path / "nope"])


def test_unknown_default_mode_fails_start_up() -> None:
    with pytest.raises(ConfigError, match="default mode 'consul'"):
        Injector(plugins=load_plugins(), config=Config(default_mode="consul"))


def test_templates_compile_once_not_per_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    injector = Injector(plugins=load_plugins(), config=Config())
    import builtins

    import jinja2

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled on the hot path")

    monkeypatch.setattr(jinja2.Environment, "compile", forbidden)
    monkeypatch.setattr(jinja2.Environment, "parse", forbidden)
    # Nor does Python compile anything per pod: the per-pod leaves are a function made at load.
    monkeypatch.setattr(builtins, "compile", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    for mode in ("istio", "linkerd"):
        assert injector.inject(make_pod(), namespace("demo", {"meshswitch.io/mode": mode})).plugins == (mode,)
    dapr = make_pod(annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "web"})
    assert injector.inject(dapr, namespace("demo")).plugins == ("dapr",)


def test_values_file_changes_images_addresses_and_resources(tmp_path: Path) -> None:
    from webhook.engine.values import load_values

    (tmp_path / "values.yaml").write_text(
        "istio:\n  hub: gcr.io/istio-release\n  tag: '1.28.0'\n  caAddress: istiod-canary.istio-system.svc:15012\n"
        "  resources: {requests: {cpu: 50m, memory: 64Mi}}\n"
    )
    plugins = load_values(tmp_path / "values.yaml", load_plugins())
    injector = Injector(plugins=plugins, config=Config())
    pod = make_pod()
    injected = apply(pod, injector.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"})).patch)
    proxy = injected["spec"]["initContainers"][1]
    assert proxy["image"] == "gcr.io/istio-release/proxyv2:1.28.0"
    assert {"name": "CA_ADDR", "value": "istiod-canary.istio-system.svc:15012"} in proxy["env"]
    assert proxy["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}}
    # A per-pod setting still overrides the install value where allowed.
    pod = make_pod(annotations={"sidecar.istio.io/proxyCPU": "300m"})
    injected = apply(pod, injector.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"})).patch)
    assert injected["spec"]["initContainers"][1]["resources"] == {"requests": {"cpu": "300m"}}
    assert load_plugins()["istio"].values["tag"] == "1.30.3", "shipped defaults are not changed"


@pytest.mark.parametrize(
    ("annotations", "image"),
    [
        ({}, "docker.io/istio/proxyv2:1.30.3-distroless"),
        # Istio's ProxyImage: proxy.istio.io/config's image, once given, replaces the install's variant...
        ({"proxy.istio.io/config": "image: {}"}, "docker.io/istio/proxyv2:1.30.3"),
        ({"proxy.istio.io/config": "image: {imageType: debug}"}, "docker.io/istio/proxyv2:1.30.3-debug"),
        # ...and the annotation, once there (even empty), replaces both.
        ({"proxy.istio.io/config": "image: {imageType: debug}", "sidecar.istio.io/proxyImageType": ""}, "docker.io/istio/proxyv2:1.30.3"),
        ({"sidecar.istio.io/proxyImageType": ""}, "docker.io/istio/proxyv2:1.30.3"),
    ],
)
def test_istio_image_type_is_the_annotations_then_the_proxy_configs_then_the_variant(
    tmp_path: Path, annotations: dict[str, str], image: str
) -> None:
    from webhook.engine.values import load_values

    (tmp_path / "values.yaml").write_text("istio:\n  variant: distroless\n")
    injector = Injector(plugins=load_values(tmp_path / "values.yaml", load_plugins()), config=Config())
    pod = make_pod(annotations=annotations)
    injected = apply(pod, injector.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"})).patch)
    assert {c["image"] for c in injected["spec"]["initContainers"]} == {image}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("consul: {tag: x}", "plugin 'consul' is not installed"),
        ("istio: {hubb: x}", "istio: unknown value 'hubb'; accepted: hub, tag"),
        ("istio: {proxyUID: abc}", "istio.proxyUID='abc' is not a whole number"),
        ("istio: [1]", "istio: values must be a mapping"),
        ("istio: {tag: [", "not valid YAML"),
        # A plugin with no values: the message says so, instead of ending on "accepted: ".
        ("istio-delegate: {hub: x}", "istio-delegate: unknown value 'hub'; accepted: none (istio-delegate has no installation values"),
        ("native: 5", "native: values must be a mapping; accepted keys: none (native has no installation values"),
    ],
)
def test_bad_values_file_fails_start_up(tmp_path: Path, text: str, message: str) -> None:
    from webhook.engine.values import load_values

    (tmp_path / "values.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_values(tmp_path / "values.yaml", load_plugins())
    assert "values.yaml" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "where", "key", "value"),
    [("istio-delegate", "labels", "sidecar.istio.io/inject", "true"), ("linkerd-delegate", "annotations", "linkerd.io/inject", "enabled")],
)
def test_delegate_sets_the_mesh_key_and_injects_nothing(mode: str, where: str, key: str, value: str) -> None:
    from webhook.engine.patch import uninject

    injector = Injector(plugins=load_plugins(), config=Config())
    pod = make_pod()
    result = injector.inject(pod, namespace("demo", {"meshswitch.io/mode": mode}))
    injected = apply(pod, result.patch)
    validate_pod(injected)
    assert result.plugins == (mode,)
    assert injected["metadata"][where][key] == value
    assert injected["spec"] == pod["spec"]
    assert uninject(injected) == pod


def test_bad_control_plane_section_fails_start_up(tmp_path: Path) -> None:
    text = MINIMAL.format(name="agent", kind="runtime") + "controlPlane:\n  - {kind: Service, namespace: x, name: y}\n"
    write(tmp_path, "agent.yaml", text)
    with pytest.raises(ConfigError, match="agent.yaml: each controlPlane entry needs kind"):
        Injector(plugins=load_plugins([tmp_path]), config=Config())


SPLICING = """\
name: agent
kind: runtime
on:
  - {in: pod-annotation, key: example.com/inject, values: ["*"]}
settings:
  extra: {key: example.com/extra, type: mapping, fields: {count: int}}
fragment:
  sidecars:
    - name: agent
      image: example.com/agent:1
      env:
        - {name: FIRST, value: "1"}
        - $splice: "{{ named((settings.extra or {}).get('env'), 'value') }}"
        - {name: LAST, value: "{{ annotations.get('example.com/inject') }}"}
  volumes:
    - {name: fixed, emptyDir: {}}
    - $splice: "{{ named((settings.extra or {}).get('volumes')) }}"
"""


def test_splice_spreads_a_list_and_any_value_matches_star(tmp_path: Path) -> None:
    write(tmp_path, "agent.yaml", SPLICING)
    injector = Injector(plugins=load_plugins([tmp_path]), config=Config(default_mode="native"))
    extra = "env: {A: x, B: 2}\nvolumes: {data: {emptyDir: {}}}\n"
    pod = make_pod(annotations={"example.com/inject": "anything", "example.com/extra": extra})
    result = injector.inject(pod, namespace("demo"))
    injected = apply(pod, result.patch)
    agent = next(c for c in injected["spec"]["initContainers"] if c["name"] == "agent")
    assert [e["name"] for e in agent["env"]] == ["FIRST", "A", "B", "LAST"] and agent["env"][2]["value"] == "2"
    assert [v["name"] for v in injected["spec"]["volumes"]] == ["fixed", "data"]
    validate_pod(injected)


def test_mapping_setting_checks_its_typed_fields(tmp_path: Path) -> None:
    from webhook.engine.errors import PodDenied

    write(tmp_path, "agent.yaml", SPLICING)
    injector = Injector(plugins=load_plugins([tmp_path]), config=Config(default_mode="native"))
    for bad, why in (("count: lots", "count is not int"), ("[1, 2]", "not a mapping"), ("a: [", "not YAML or JSON")):
        with pytest.raises(PodDenied) as caught:
            injector.inject(make_pod(annotations={"example.com/inject": "1", "example.com/extra": bad}), namespace("demo"))
        assert "example.com/extra" in caught.value.message and why in caught.value.message
def _linkerd(pod: dict[str, Any], injector: Injector | None = None) -> dict[str, Any]:
    injector = injector or Injector(plugins=load_plugins(), config=Config())
    injected = apply(pod, injector.inject(pod, namespace("demo", None, {"linkerd.io/inject": "enabled"})).patch)
    validate_pod(injected)
    return injected


def _proxy(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for s in ("initContainers", "containers") for c in pod["spec"].get(s, []) if c["name"] == "linkerd-proxy")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("cr.l5d.io/linkerd/proxy", "cr.l5d.io/linkerd/proxy:edge-26.8.3"),
        ("cr.l5d.io/linkerd/proxy:edge-26.7.1", "cr.l5d.io/linkerd/proxy:edge-26.7.1"),
        ("cr.l5d.io/linkerd/proxy@sha256:" + "a" * 64, "cr.l5d.io/linkerd/proxy@sha256:" + "a" * 64),
        ("localhost:5000/linkerd/proxy", "localhost:5000/linkerd/proxy:edge-26.8.3"),
    ],
)
def test_linkerd_proxy_image_with_a_tag_or_digest_is_kept_as_given(image: str, expected: str) -> None:
    config = Config(allowed_registries=(*Config().allowed_registries, "localhost:5000"))
    pod = _linkerd(make_pod(annotations={"config.linkerd.io/proxy-image": image}), Injector(plugins=load_plugins(), config=config))
    assert _proxy(pod)["image"] == expected
    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == "linkerd-init")
    assert init["image"] == expected  # edge-26.8: proxy-init runs from the proxy image


def test_linkerd_official_registry_is_allowed_and_others_are_not() -> None:
    _linkerd(make_pod(annotations={"config.linkerd.io/proxy-image": "cr.l5d.io/linkerd/proxy"}))
    from webhook.engine.errors import PodDenied

    with pytest.raises(PodDenied) as caught:
        _linkerd(make_pod(annotations={"config.linkerd.io/proxy-image": "registry.example.com/proxy"}))
    assert caught.value.code == "image-not-allowed"


def test_linkerd_defaults_are_the_releases() -> None:
    pod = _linkerd(make_pod())
    proxy, env = _proxy(pod), {e["name"]: e.get("value") for e in _proxy(pod)["env"]}
    init = pod["spec"]["initContainers"][0]
    assert init["args"][:5] == ["--firewall-bin-path", "iptables-nft", "--firewall-save-bin-path", "iptables-nft-save", "--ipv6=false"]
    assert init["args"][init["args"].index("--inbound-ports-to-ignore") + 1] == "4190,4191,4567,4568"
    assert init["args"][init["args"].index("--outbound-ports-to-ignore") + 1] == "4567,4568"
    assert "resources" not in proxy and "resources" not in init  # Linkerd's defaults set none
    assert env["LINKERD2_PROXY_INBOUND_LISTEN_ADDR"] == "0.0.0.0:4143"
    assert env["LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS"] == "127.0.0.1:4140"
    assert env["LINKERD2_PROXY_LOG"].endswith(",[{headers}]=off,[{request}]=off")
    assert {"_pod_containerName", "LINKERD2_PROXY_CORES", "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED"} <= set(env)
    assert "linkerd.io/identity-mode" not in pod["metadata"]["annotations"]


@pytest.mark.parametrize(("annotations", "log", "log_format"), [
    ({"config.linkerd.io/proxy-log-format": "JSON"}, None, "JSON"),
    ({"config.linkerd.io/proxy-log-format": " Plain "}, None, "Plain"),
    ({"config.linkerd.io/proxy-log-format": ""}, None, ""),
    ({"config.linkerd.io/proxy-log-level": 'warn,linkerd[{name="foo"}]=debug'}, 'warn,linkerd[{name="foo"}]=debug', "plain"),
    ({"config.linkerd.io/proxy-log-level": "warn, linkerd=debug"}, "warn, linkerd=debug", "plain"),
    ({"config.linkerd.io/proxy-log-level": "{{ settings }}"}, "{{ settings }}", "plain"),
    ({"config.linkerd.io/proxy-log-level": ""}, "", "plain"),
])  # fmt: skip
def test_linkerd_log_filter_and_format_are_written_as_given(annotations: dict[str, str], log: str | None, log_format: str) -> None:
    env = {e["name"]: e.get("value", "") for e in _proxy(_linkerd(make_pod(annotations=annotations)))["env"]}
    assert env["LINKERD2_PROXY_LOG_FORMAT"] == log_format
    assert env["LINKERD2_PROXY_LOG"] == (log if log is not None else "warn,linkerd=info,hickory=error") + ",[{headers}]=off,[{request}]=off"


@pytest.mark.parametrize(("key", "value"), [
    ("config.linkerd.io/proxy-log-format", "xml"), ("config.linkerd.io/proxy-log-level", "warn\nlinkerd=debug"),
])  # fmt: skip
def test_linkerd_log_values_the_proxy_cannot_take_are_refused(key: str, value: str) -> None:
    pod = make_pod(annotations={key: value})
    with pytest.raises(PodDenied) as caught:
        Injector(plugins=load_plugins(), config=Config()).inject(pod, namespace("demo", None, {"linkerd.io/inject": "enabled"}))
    assert caught.value.code == "invalid-setting" and key in str(caught.value)


def test_linkerd_capabilities_of_the_first_container_are_copied() -> None:
    pod = make_pod()
    pod["spec"]["containers"][0]["securityContext"] = {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL", "NET_RAW"]}}
    injected = _linkerd(pod)
    assert _proxy(injected)["securityContext"]["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["ALL", "NET_RAW"]}
    init = injected["spec"]["initContainers"][0]["securityContext"]["capabilities"]
    assert init == {"add": ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"], "drop": ["ALL"]}


@pytest.mark.parametrize(
    ("annotations", "native"),
    [
        ({}, True),  # edge-26.8 defaults to native sidecars
        ({"config.linkerd.io/proxy-enable-native-sidecar": "false"}, False),
        ({"config.beta.linkerd.io/proxy-enable-native-sidecar": "false"}, False),
        ({"config.alpha.linkerd.io/proxy-enable-native-sidecar": "false"}, False),
        ({"config.linkerd.io/proxy-enable-native-sidecar": "true", "config.beta.linkerd.io/proxy-enable-native-sidecar": "false"}, True),
        ({"meshswitch.io/sidecar": "native", "config.linkerd.io/proxy-enable-native-sidecar": "false"}, True),
    ],
)
def test_linkerd_sidecar_style_precedence(annotations: dict[str, str], native: bool) -> None:
    pod = _linkerd(make_pod(annotations=annotations))
    assert (_proxy(pod) in pod["spec"].get("initContainers", [])) is native


def test_linkerd_release_pinned_in_values_sets_the_default_style_and_init_image(tmp_path: Path) -> None:
    from webhook.engine.values import load_values

    (tmp_path / "values.yaml").write_text("linkerd: {version: edge-25.10.7}\n")
    injector = Injector(plugins=load_values(tmp_path / "values.yaml", load_plugins()), config=Config())
    pod = _linkerd(make_pod(), injector)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["linkerd-proxy", "app"]
    assert pod["spec"]["initContainers"][0]["image"] == "cr.l5d.io/linkerd/proxy-init:v2.4.3"
    # The operator's --sidecar-style beats the release default; Linkerd's own annotation beats both.
    injector = Injector(plugins=load_values(tmp_path / "values.yaml", load_plugins()), config=Config(sidecar_style="native"))
    assert _proxy(_linkerd(make_pod(), injector)).get("restartPolicy") == "Always"
    pod = _linkerd(make_pod(annotations={"config.alpha.linkerd.io/proxy-enable-native-sidecar": "false"}), injector)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["linkerd-proxy", "app"]


def test_linkerd_without_trust_anchors_warns() -> None:
    pod = make_pod()
    result = Injector(plugins=load_plugins(), config=Config()).inject(pod, namespace("demo", None, {"linkerd.io/inject": "enabled"}))
    assert any("no identity trust anchors" in w for w in result.warnings)


def test_splice_inserts_the_items_of_a_list(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(
        MINIMAL.format(name="agent", kind="runtime").replace(
            '      image: "example.com/agent:1"',
            '      image: "example.com/agent:1"\n'
            '      args: [first, {$splice: "{{ [\'a\', \'b\'] if settings.cpu == \'10m\' else [] }}"}, last]\n'
            '      env: [{$splice: "{{ [{\'name\': labels.get(\'app\', \'x\'), \'value\': \'1\'}] }}"}]',
        )
    )
    plugins = load_plugins([tmp_path])
    pod = make_pod(labels={"app": "shop"}, annotations={"example.com/inject": "true"})
    injected = apply(pod, Injector(plugins=plugins, config=Config()).inject(pod, namespace()).patch)
    agent = next(c for c in injected["spec"]["initContainers"] if c["name"] == "agent-agent")
    assert agent["args"] == ["first", "a", "b", "last"]
    assert agent["env"] == [{"name": "shop", "value": "1"}]  # a per-pod splice


def test_plugin_wide_empty_is_unset_covers_single_value_settings_only() -> None:
    from webhook.engine.plugins import load_plugins

    plugins = load_plugins()
    by_name = {s.name: s for s in plugins["linkerd"].settings}
    assert by_name["proxyCPURequest"].empty_is_unset and by_name["inject"].empty_is_unset
    assert not by_name["skipInboundPorts"].empty_is_unset, "an empty port list is a value of its own"
    assert not any(s.empty_is_unset for s in plugins["istio"].settings), "Istio reads an empty value as given"


def test_except_counts_any_value_but_those_and_needs_a_star(tmp_path: Path) -> None:
    text = MINIMAL.format(name="agent", kind="runtime").replace(
        'values: ["true"]}', 'values: ["*"], except: ["off", "no"]}'
    )
    write(tmp_path, "agent.yaml", text)
    injector = Injector(plugins=load_plugins([tmp_path]), config=Config())
    namespace = NamespaceMeta("shop", {}, {})
    for value, injected in (("yes", True), ("OFF", False), ("off", False), ("no", False), (" ", False)):
        pod = {"metadata": {"name": "p", "annotations": {"example.com/inject": value}}, "spec": {"containers": [{"name": "app", "image": "app"}]}}
        assert bool(injector.inject(pod, namespace).plugins) is injected, value
    write(tmp_path, "agent.yaml", text.replace('values: ["*"]', 'values: ["true"]'))
    with pytest.raises(ConfigError, match=r'except is a list of values, beside values: \["\*"\] only'):
        load_plugins([tmp_path])
