"""Exact uninject: for every workload of every corpus, in every mode (with Dapr stacked where the
workload asks for it), inject then uninject gives back the original object, key for key, including
maps and lists that were absent."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from tests.corpora import corpora, workloads
from webhook.engine.config import Config
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.patch import uninject
from webhook.engine.plugins import load_plugins
from webhook.engine.render import Workload
from webhook.engine.workloads import transform

PLUGINS = load_plugins()
MESHES = [p.name for p in PLUGINS.meshes]
WORKLOADS = [(ident, obj) for corpus in corpora() for ident, obj in workloads(corpus)]


@pytest.mark.parametrize("sidecar_style", ["native", "classic"])
@pytest.mark.parametrize("mode", MESHES)
@pytest.mark.parametrize(("ident", "original"), WORKLOADS, ids=[i for i, _ in WORKLOADS])
def test_uninject_gives_back_the_original(ident: str, original: dict[str, Any], mode: str, sidecar_style: str) -> None:
    injector = Injector(plugins=PLUGINS, config=Config(sidecar_style=sidecar_style))
    pristine = copy.deepcopy(original)
    injected_any: list[str] = []

    def inject(pod: dict[str, Any], workload: Workload, namespace: str) -> dict[str, Any]:
        try:
            result = injector.inject(pod, NamespaceMeta(namespace, {"meshswitch.io/mode": mode}, {}), workload=workload)
        except PodDenied:
            return pod
        injected_any.extend(result.plugins)
        return jsonpatch.apply_patch(pod, result.patch) if result.patch else pod

    injected = transform(copy.deepcopy(original), inject, default_namespace="shop")
    back = transform(injected, lambda pod, _w, _n: uninject(pod), default_namespace="shop")
    assert back == pristine, f"{ident} in {mode}: uninject is not exact"
    assert original == pristine, "injection must not touch its input"
