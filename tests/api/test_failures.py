"""Failing closed (or open), namespace misses, and the serve flags: the app in-process, the CLI as a process."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from webhook import certs
from webhook.engine.config import Config
from webhook.engine.errors import ConfigError
from webhook.engine.injector import Injection, NamespaceMeta, Reason
from webhook.server.metrics import Metrics
from webhook.cluster.namespaces import NamespaceCache, StaticNamespaces
from webhook.server.app import create_app
from webhook.server.reviewlog import ReviewLog
from webhook.server.options import ServeOptions, add_serve_arguments

from .conftest import ROOT
from .pods import PLUGIN_ANNOTATIONS, V1BETA1, make_pod, make_review


class Broken:
    """An engine with a bug."""

    plugins = ()
    discovery = None

    def inject(self, pod: Mapping[str, Any], namespace: NamespaceMeta) -> Injection:
        raise KeyError("spec")


class Recording:
    """An engine that records the namespace it was given and injects nothing."""

    plugins = ()
    discovery = None

    def __init__(self) -> None:
        self.seen: list[NamespaceMeta] = []

    def inject(self, pod: Mapping[str, Any], namespace: NamespaceMeta) -> Injection:
        self.seen.append(namespace)
        return Injection(reason=Reason("no-mode", "nothing selected"), plugins=(), patch=[])


def post(app: Any, review: dict[str, Any]) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook") as client:
            return await client.post("/mutate", content=orjson.dumps(review), headers={"Content-Type": "application/json"})

    return asyncio.run(call())


def quiet() -> ReviewLog:
    return ReviewLog(fd=os.open(os.devnull, os.O_WRONLY))


@pytest.fixture
def review() -> dict[str, Any]:
    return make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]), api_version=V1BETA1)


def test_internal_error_fails_closed_with_a_message(review: dict[str, Any]) -> None:
    metrics = Metrics()
    app = create_app(injector=Broken(), namespaces=StaticNamespaces(), metrics=metrics, review_log=quiet())  # type: ignore[arg-type]
    answer = post(app, review)
    assert answer.status_code == 200
    out = answer.json()
    assert out["apiVersion"] == V1BETA1
    response = out["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert "KeyError" in response["status"]["message"] and "fails closed" in response["status"]["message"]
    assert 'outcome="error"' in metrics.render().decode()


def test_internal_error_with_fail_open_admits_with_a_warning(review: dict[str, Any]) -> None:
    app = create_app(injector=Broken(), namespaces=StaticNamespaces(), fail_open=True, review_log=quiet())  # type: ignore[arg-type]
    response = post(app, review).json()["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert "--fail-open" in response["warnings"][0]


def cache(get: Any) -> NamespaceCache:
    return NamespaceCache(list_namespaces=lambda: ([], "1"), watch_namespaces=lambda _: iter(()), get_namespace=get)


def test_namespace_miss_costs_one_get_off_the_event_loop(review: dict[str, Any]) -> None:
    engine, gets = Recording(), []

    def get(name: str) -> dict[str, Any]:
        gets.append(name)
        return {"metadata": {"name": name, "labels": {"istio-injection": "enabled"}}}

    metrics = Metrics()
    app = create_app(injector=engine, namespaces=cache(get), metrics=metrics, review_log=quiet())  # type: ignore[arg-type]
    assert post(app, review).json()["response"]["allowed"] is True
    assert gets == ["demo"]
    assert engine.seen == [NamespaceMeta("demo", {"istio-injection": "enabled"}, {})]
    assert "meshswitch_namespace_cache_misses_total 1.0" in metrics.render().decode()


def test_namespace_unreachable_fails_closed(review: dict[str, Any]) -> None:
    def get(name: str) -> dict[str, Any]:
        raise TimeoutError("apiserver did not answer in 2 s")

    app = create_app(injector=Recording(), namespaces=cache(get), review_log=quiet())  # type: ignore[arg-type]
    response = post(app, review).json()["response"]
    assert response["allowed"] is False
    assert "demo" in response["status"]["message"]


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(flags))


def test_serve_options_from_flags(tmp_path: Path) -> None:
    options = ServeOptions.from_args(
        parse("--cert-dir", str(tmp_path), "--namespace-labels-file", "ns.yaml", "--ignore-namespace", "legacy", "--fail-open")
    )
    assert options.cert_file == tmp_path / "tls.crt" and options.key_file == tmp_path / "tls.key"
    assert options.no_kube and options.fail_open and options.port == 8443
    assert options.config == Config(extra_ignored_namespaces=frozenset({"legacy"}))
    files = ServeOptions.from_args(parse("--cert-file", "a.crt", "--key-file", "a.key", "--port", "9443"))
    assert files.cert_file == Path("a.crt") and files.port == 9443 and not files.no_kube


@pytest.mark.parametrize(
    "flags",
    [
        (),
        ("--cert-file", "a.crt"),
        ("--cert-dir", "d", "--cert-file", "a.crt", "--key-file", "a.key"),
        ("--cert-dir", "d", "--no-kube", "--kubeconfig", "k"),
        ("--cert-dir", "d", "--namespace-labels-file", "n", "--kubeconfig", "k"),
    ],
)
def test_serve_options_refuse_contradictions(flags: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        ServeOptions.from_args(parse(*flags))


def test_serve_exits_2_on_a_pair_that_does_not_load(tmp_path: Path) -> None:
    certs.generate(tmp_path)
    (tmp_path / "tls.key").write_text("not a key")
    done = subprocess.run(
        [sys.executable, "-m", "webhook.server", "--cert-dir", str(tmp_path), "--no-kube", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "tls.crt" in done.stderr


def test_serve_exits_2_on_a_bad_namespace_file(tmp_path: Path) -> None:
    certs.generate(tmp_path)
    labels = tmp_path / "ns.yaml"
    labels.write_text("- not a mapping\n")
    done = subprocess.run(
        [sys.executable, "-m", "webhook.server", "--cert-dir", str(tmp_path), "--namespace-labels-file", str(labels)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ns.yaml" in done.stderr
