"""Helpers every concern uses: the engine with its plugins, pods and namespaces, schema validation and patch application."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate

from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.36"


def make_injector(**config: Any) -> Injector:
    return Injector(plugins=load_plugins(), config=Config(**config))


def namespace(name: str = "demo", labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None) -> NamespaceMeta:
    return NamespaceMeta(name=name, labels=dict(labels or {}), annotations=dict(annotations or {}))


def make_pod(
    *,
    name: str | None = "web",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": "demo"}
    if name:
        metadata["name"] = name
    if labels is not None:
        metadata["labels"] = dict(labels)
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": containers or [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}], **spec},
    }


def apply(pod: Mapping[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply the patch as the API server would: to a copy, never touching the input."""
    return jsonpatch.apply_patch(copy.deepcopy(dict(pod)), copy.deepcopy(patch))  # type: ignore[no-any-return]


def validate_pod(pod: Mapping[str, Any]) -> None:
    """Strict schema validation against the 1.36 schemas, plus the name rules the schema cannot say."""
    full = copy.deepcopy({"apiVersion": "v1", "kind": "Pod", **pod})
    full.setdefault("metadata", {}).setdefault("name", "generated")
    try:
        kubernetes_validate.validate(full, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = "/".join(str(p) for p in err.path)
        raise AssertionError(f"schema: {path}: {err.message}") from None
    spec = full["spec"]
    names = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
    assert len(names) == len(set(names)), f"duplicate container names: {names}"
    volumes = [v["name"] for v in spec.get("volumes", [])]
    assert len(volumes) == len(set(volumes)), f"duplicate volume names: {volumes}"
    for container in spec.get("initContainers", []) + spec["containers"]:
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{container['name']} mounts missing volume {mount['name']}"
    for key, value in {**full["metadata"].get("labels", {}), **full["metadata"].get("annotations", {})}.items():
        assert isinstance(value, str), f"{key} is not a string"
