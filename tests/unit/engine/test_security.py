"""Hostile input: annotation values reach the pod as data, never as template or YAML text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import apply, make_injector, make_pod, namespace, validate_pod
from webhook.engine import reasons
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector

INJECTOR = make_injector()
HOSTILE = [
    "x\nprivileged: true",
    "{{ settings }}",
    "{{ ''.__class__.__mro__ }}",
    "{% for x in range(10**9) %}{% endfor %}",
    'a: b\n  c: "d"',
    "' or '1'='1",
    '"},{"name":"evil","image":"evil"}',
    "---\nkind: Pod",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_free_text_setting_lands_as_a_plain_string(value: str) -> None:
    # envoy's log level is an enum; linkerd's proxy-version is free-ish text with a pattern: both refuse.
    # The Dapr app-id is the one value that reaches a label: it must be refused, not interpolated.
    pod = make_pod(annotations={"dapr.io/enabled": "true", "dapr.io/app-id": value})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("demo"))
    assert caught.value.code == reasons.INVALID_SETTING


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_labels_and_annotations_the_templates_read(value: str) -> None:
    # Istio reads the pod's app label for its canonical name: the value is copied, never evaluated.
    pod = make_pod(labels={"app": value}, annotations={"prometheus.io/scrape": value})
    result = INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    injected = apply(pod, result.patch)
    # Istio's rule: the first 63 characters, less one trailing "-" (trimSuffix).
    assert injected["metadata"]["labels"]["service.istio.io/canonical-name"] == value[:63].removesuffix("-")
    proxy = next(c for c in injected["spec"]["initContainers"] if c["name"] == "istio-proxy")
    assert set(proxy) == {
        "name", "image", "args", "ports", "env", "startupProbe", "readinessProbe", "lifecycle",
        "resources", "securityContext", "volumeMounts", "restartPolicy",
    }  # fmt: skip
    assert "privileged" not in orjson.dumps(proxy["securityContext"]).decode().replace('"privileged":false', "")
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["istio-init", "istio-proxy"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_container_name_is_copied_as_data(value: str) -> None:
    pod = make_pod(containers=[{"name": value, "image": "x", "ports": [{"containerPort": 80, "name": value}]}])
    result = INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    proxy = next(op for op in result.patch if op["path"] == "/spec/initContainers")["value"][1]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["ISTIO_META_APP_CONTAINERS"] == value
    assert orjson.loads(env["ISTIO_META_POD_PORTS"]) == [{"containerPort": 80, "name": value}]


def test_image_override_from_an_allowed_registry() -> None:
    pod = make_pod(annotations={"sidecar.istio.io/proxyImage": "gcr.io/istio-release/proxyv2:1.27.3"})
    injected = apply(pod, INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"})).patch)
    validate_pod(injected)
    assert {c["image"] for c in injected["spec"]["initContainers"]} == {"gcr.io/istio-release/proxyv2:1.27.3"}


@pytest.mark.parametrize(
    "image",
    ["evil.example.com/proxyv2:1.0", "docker.io/istio-evil/proxyv2:1", "istio-evil/proxyv2", "gcr.io/istio-release.evil.com/proxyv2"],
)
def test_image_override_from_another_registry_is_denied(image: str) -> None:
    pod = make_pod(annotations={"sidecar.istio.io/proxyImage": image})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "istio"}))
    assert caught.value.code == reasons.IMAGE_NOT_ALLOWED
    assert "sidecar.istio.io/proxyImage" in caught.value.message and image in caught.value.message


def test_image_override_that_is_not_an_image_is_denied() -> None:
    pod = make_pod(annotations={"config.linkerd.io/proxy-image": "cr.l5d.io/linkerd/proxy\nprivileged: true"})
    with pytest.raises(PodDenied) as caught:
        INJECTOR.inject(pod, namespace("demo", {"meshswitch.io/mode": "linkerd"}))
    assert caught.value.code == reasons.INVALID_SETTING and "image reference" in caught.value.message


def test_template_sandbox_blocks_python_internals(tmp_path: Path) -> None:
    from webhook.engine.errors import ConfigError
    from webhook.engine.injector import Injector
    from webhook.engine.config import Config
    from webhook.engine.plugins import load_plugins

    (tmp_path / "evil.yaml").write_text(
        "name: evil\nkind: runtime\non: [{in: pod-annotation, key: evil, values: ['1']}]\n"
        "fragment:\n  labels:\n    x: \"{{ pod.__class__.__mro__[1].__subclasses__() }}\"\n"
    )
    with pytest.raises(ConfigError) as caught:
        Injector(plugins=load_plugins([tmp_path]), config=Config())
    assert "evil.yaml:6" in str(caught.value)


def test_serve_allow_registry_replaces_the_allowed_prefixes(tmp_path: Path) -> None:
    import argparse

    from webhook.server.options import ServeOptions, add_serve_arguments

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--cert-dir", str(tmp_path), "--no-kube", "--allow-registry", "registry.example.com/mesh"])
    config = ServeOptions.from_args(args).config
    assert config.allowed_registries == ("registry.example.com/mesh",)
    injector = make_injector(allowed_registries=config.allowed_registries)
    ok = make_pod(annotations={"sidecar.istio.io/proxyImage": "registry.example.com/mesh/proxyv2:1.27.3"})
    assert injector.inject(ok, namespace("demo", {"meshswitch.io/mode": "istio"})).plugins == ("istio",)
    with pytest.raises(PodDenied):
        injector.inject(make_pod(annotations={"sidecar.istio.io/proxyImage": "docker.io/istio/proxyv2:1.27.3"}),
                        namespace("demo", {"meshswitch.io/mode": "istio"}))


EVIL_LEAVES = [
    "{{ labels.clear() }}",
    "{{ pod.spec.containers.append(1) }}",
    "{{ labels|attr('__class__') }}",
    "{{ 'x{0.__class__}'.format(pod) }}",
    "{{ pod['__class__'] }}",
    "{{ pod.items()|map(attribute='__class__')|list }}",
    "{{ cycler(1) }}",
    "{{ labels|map('attr', '__class__')|list }}",
]


@pytest.mark.parametrize("leaf", EVIL_LEAVES)
def test_per_pod_leaves_are_checked_at_load_since_they_run_without_the_sandbox(tmp_path: Path, leaf: str) -> None:
    from webhook.engine.config import Config
    from webhook.engine.errors import ConfigError
    from webhook.engine.injector import Injector
    from webhook.engine.plugins import load_plugins

    (tmp_path / "evil.yaml").write_text(
        "name: evil\nkind: runtime\non: [{in: pod-annotation, key: evil, values: ['1']}]\n"
        f"fragment:\n  labels:\n    x: \"{leaf}\"\n"
    )
    with pytest.raises(ConfigError) as caught:
        Injector(plugins=load_plugins([tmp_path]), config=Config())
    assert "evil.yaml:6: template error:" in str(caught.value) and "not allowed" in str(caught.value)


def test_a_key_taken_from_the_pod_reads_items_never_attributes(tmp_path: Path) -> None:
    from webhook.engine.config import Config
    from webhook.engine.errors import ConfigError
    from webhook.engine.injector import Injector
    from webhook.engine.plugins import load_plugins

    (tmp_path / "lookup.yaml").write_text(
        "name: lookup\nkind: runtime\non: [{in: pod-annotation, key: lookup, values: ['1']}]\n"
        "fragment:\n  labels:\n    x: \"{{ labels[annotations.get('which', 'app')] | string }}\"\n"
    )
    injector = Injector(plugins=load_plugins([tmp_path]), config=Config())
    pod = make_pod(labels={"app": "web"}, annotations={"lookup": "1", "which": "app"})
    assert labels_after(injector, pod)["x"] == "web"
    hostile = make_pod(labels={"app": "web"}, annotations={"lookup": "1", "which": "__class__"})
    with pytest.raises(ConfigError) as caught:  # StrictUndefined: a missing item, not the dict's class
        labels_after(injector, hostile)
    assert "__class__" in str(caught.value) and "dict" not in str(caught.value).split("__class__")[-1][:10]


def labels_after(injector: Injector, pod: dict[str, Any]) -> dict[str, str]:
    result = injector.inject(pod, namespace("demo"))
    labels: dict[str, str] = apply(pod, result.patch)["metadata"]["labels"]
    return labels
