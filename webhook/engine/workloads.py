"""Find the pod template inside workloads and Lists, for the offline CLI (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from webhook.engine.render import Workload, find_workload

# Where each workload kind keeps its pod template.
TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

PodTransform = Callable[[dict[str, Any], Workload, str], dict[str, Any]]


def pod_template(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod (or pod template) inside a workload, or None for kinds that hold none."""
    path = TEMPLATE_PATHS.get(str(obj.get("kind")))
    if path is None:
        return None
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def namespace_of(obj: Mapping[str, Any], default: str) -> str:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return str(namespace) if namespace else default


def workload_of(obj: Mapping[str, Any]) -> Workload:
    """The workload a pod template belongs to; for a Pod, its owner as the pod itself tells."""
    if obj.get("kind") == "Pod":
        return find_workload(obj)
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    return Workload(str(obj.get("kind")), str(metadata.get("name") or metadata.get("generateName") or ""))


def list_items(obj: Mapping[str, Any]) -> list[Any] | None:
    """The items of a List (kind `List`, or a kind ending in `List` whose items is a list), else None.
    A `List` with no or null items has none (kubectl applies it as nothing); one whose items is not a
    list is no List here (the CLI's shape check refuses it first)."""
    items = obj.get("items")
    if isinstance(items, list) and str(obj.get("kind", "")).endswith("List"):
        return items
    if obj.get("kind") == "List" and items is None:
        return []
    return None


def transform(obj: dict[str, Any], fn: PodTransform, *, default_namespace: str) -> dict[str, Any]:
    """Apply ``fn`` to every pod template in the object (Lists recursively); other kinds unchanged."""
    items = list_items(obj)
    if items is not None:
        if not items:
            return obj  # `items: null` or none at all stays as written
        return {**obj, "items": [transform(i, fn, default_namespace=default_namespace) if isinstance(i, dict) else i for i in items]}
    path = TEMPLATE_PATHS.get(str(obj.get("kind")))
    template = pod_template(obj)
    if path is None or template is None:
        return obj
    new_template = fn(dict(template), workload_of(obj), namespace_of(obj, default_namespace))
    if not path:
        return new_template
    return _replace_at(obj, path, new_template)


def _replace_at(obj: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    head, rest = path[0], path[1:]
    return {**obj, head: _replace_at(obj[head], rest, value) if rest else value}


def iter_workloads(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every object in a document, Lists flattened."""
    items = list_items(obj)
    if items is not None:
        for item in items:
            if isinstance(item, Mapping):
                yield from iter_workloads(item)
    else:
        yield obj
