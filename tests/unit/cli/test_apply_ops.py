"""The CLI applies the engine's patches itself (no deep copies); it must agree with an RFC 6902
implementation on every operation the engine emits, removals included."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.cli.offline import apply_ops
from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import load_plugins

INJECTOR = {style: Injector(plugins=load_plugins(), config=Config(sidecar_style=style)) for style in ("native", "classic")}


def _pod(containers: list[dict[str, Any]], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "shop", "annotations": annotations or {}}, "spec": {"containers": containers}}


APP = {"name": "app", "image": "ghcr.io/example/app:1"}
# Pods whose patch removes something: a declared proxy that moves section, a metrics annotation
# variant that Istio's merge drops.
REMOVING = {
    "declared istio-proxy, native": ("native", _pod([APP, {"name": "istio-proxy", "image": "auto"}])),
    "prometheus.io.port variant, classic": ("classic", _pod([APP], {"prometheus.io.port": "9090"})),
}


@pytest.mark.parametrize(("style", "pod"), list(REMOVING.values()), ids=list(REMOVING))
def test_apply_ops_agrees_with_json_patch(style: str, pod: dict[str, Any]) -> None:
    namespace = NamespaceMeta("shop", {"istio-injection": "enabled"}, {})
    patch = INJECTOR[style].inject(pod, namespace).patch
    assert any(op["op"] == "remove" for op in patch), "the case must exercise a removal"
    assert apply_ops(copy.deepcopy(pod), patch) == jsonpatch.apply_patch(pod, patch)
