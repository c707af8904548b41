"""The shape of a workload as the engine walks it, checked before injection, so that a malformed
file (`containers: "x"`, `template: 5`) is reported as the user's field, never as a template error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.engine.workloads import TEMPLATE_PATHS

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


class ShapeError(ValueError):
    """`field` (a dotted path from the object's root) is not what Kubernetes accepts there."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _mapping(value: Any, field: str, *, optional: bool = True) -> Mapping[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise ShapeError(field, f"must be a mapping, got {_kind_of(value)}")
    return value


def _string_map(value: Any, field: str) -> None:
    for key, item in _mapping(value, field).items():
        if not isinstance(item, str):
            raise ShapeError(f"{field}.{key}", f"must be a string (quote it), got {_kind_of(item)}")


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(field, f"must be a list, got {_kind_of(value)}")
    return value


def check_metadata(value: Any, field: str) -> None:
    metadata = _mapping(value, field)
    for key in ("name", "generateName", "namespace"):
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            raise ShapeError(f"{field}.{key}", f"must be a string, got {_kind_of(metadata[key])}")
    _string_map(metadata.get("labels"), f"{field}.labels")
    _string_map(metadata.get("annotations"), f"{field}.annotations")
    for index, owner in enumerate(_list(metadata.get("ownerReferences"), f"{field}.ownerReferences")):
        _mapping(owner, f"{field}.ownerReferences[{index}]", optional=False)


def _check_container(container: Any, field: str) -> None:
    container = _mapping(container, field, optional=False)
    name = container.get("name")
    if not isinstance(name, str) or not name:
        raise ShapeError(f"{field}.name", f"must be a non-empty string, got {_kind_of(name)}")
    for index, port in enumerate(_list(container.get("ports"), f"{field}.ports")):
        port = _mapping(port, f"{field}.ports[{index}]", optional=False)
        number = port.get("containerPort")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
            raise ShapeError(f"{field}.ports[{index}].containerPort", f"must be a port number 1-65535, got {_kind_of(number)}")
    for index, env in enumerate(_list(container.get("env"), f"{field}.env")):
        env = _mapping(env, f"{field}.env[{index}]", optional=False)
        if not isinstance(env.get("name"), str):
            raise ShapeError(f"{field}.env[{index}].name", f"must be a string, got {_kind_of(env.get('name'))}")
    for probe in _PROBES:
        handler = _mapping(container.get(probe), f"{field}.{probe}")
        for action in ("httpGet", "tcpSocket", "grpc"):
            _mapping(handler.get(action), f"{field}.{probe}.{action}")
    _mapping(container.get("resources"), f"{field}.resources")
    _mapping(container.get("securityContext"), f"{field}.securityContext")


def check_pod(pod: Any, field: str) -> None:
    """Raise ShapeError for the first part of a pod (or pod template) at `field` the engine cannot walk."""
    pod = _mapping(pod, field, optional=False)
    check_metadata(pod.get("metadata"), f"{field}.metadata" if field else "metadata")
    prefix = f"{field}.spec" if field else "spec"
    spec = _mapping(pod.get("spec"), prefix, optional=False)
    if "containers" not in spec:
        raise ShapeError(f"{prefix}.containers", "is missing: a pod needs a list of containers")
    for section in _CONTAINER_LISTS:
        for index, container in enumerate(_list(spec.get(section), f"{prefix}.{section}")):
            _check_container(container, f"{prefix}.{section}[{index}]")
    for index, volume in enumerate(_list(spec.get("volumes"), f"{prefix}.volumes")):
        volume = _mapping(volume, f"{prefix}.volumes[{index}]", optional=False)
        if not isinstance(volume.get("name"), str):
            raise ShapeError(f"{prefix}.volumes[{index}].name", f"must be a string, got {_kind_of(volume.get('name'))}")
    if "hostNetwork" in spec and not isinstance(spec["hostNetwork"], bool):
        raise ShapeError(f"{prefix}.hostNetwork", f"must be true or false, got {_kind_of(spec['hostNetwork'])}")


def check_list(obj: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """A List's items (none for `items: null` or no items), or None for an object that is no List;
    ShapeError for items that are not a list of objects, which kubectl refuses too."""
    from webhook.engine.workloads import list_items

    items = list_items(obj)
    if items is None:
        if obj.get("kind") == "List":
            raise ShapeError("items", f"must be a list of objects, got {_kind_of(obj.get('items'))}")
        return None
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ShapeError(f"items[{index}]", f"must be an object (a mapping with apiVersion and kind), got {_kind_of(item)}")
    return items


def check_workload(obj: Mapping[str, Any]) -> None:
    """Raise ShapeError for the first malformed field of a workload whose pod template meshswitch reads."""
    path = TEMPLATE_PATHS.get(str(obj.get("kind")))
    if path is None:
        return
    check_metadata(obj.get("metadata"), "metadata")
    node: Any = obj
    walked: list[str] = []
    for key in path:
        walked.append(key)
        node = _mapping(node, ".".join(walked[:-1]) or "object", optional=False).get(key)
        if node is None:
            raise ShapeError(".".join(walked), f"is missing: a {obj.get('kind')} needs {'.'.join(path)}")
        if not isinstance(node, Mapping):
            what = "a pod template" if key == "template" else "a mapping"
            raise ShapeError(".".join(walked), f"must be {what}, got {_kind_of(node)}")
    check_pod(node, ".".join(path))
