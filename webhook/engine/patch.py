"""Patch: what to add + the pod -> RFC 6902 operations, built directly (no whole-pod diff); uninject.

Injected list items go first in `initContainers` (native sidecars: the redirect init container, then
the proxies, then the app's own init containers, so those run inside the mesh). In classic mode the
redirect init container goes last, so the app's init containers are not black-holed before a proxy
exists, and the proxies are appended to `containers`. `meshswitch.io/status` records exactly what
was added, so that `uninject` can take exactly that away.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from webhook.engine.decide import STATUS_KEY, malformed_status_warning
from webhook.engine.decide import read_status as _read_status
from webhook.engine.kube import JsonPatch, Pod
from webhook.engine.render import Addition

_EMPTY: Mapping[str, Any] = {}
_LIST_FIELDS = ("plugins", "initContainers", "containers", "volumes", "labels", "annotations")


def escape(key: str) -> str:
    """RFC 6901: `~` and `/` inside a key become `~0` and `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _names(items: Any) -> set[str]:
    return {str(i.get("name")) for i in items if isinstance(i, dict)} if isinstance(items, list) else set()


def _as_native_sidecar(container: Mapping[str, Any]) -> dict[str, Any]:
    return {**container, "restartPolicy": "Always"}


def read_status(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed `meshswitch.io/status`, or an empty record when it is absent or malformed."""
    return _read_status(annotations) or {}


class _PatchBuilder:
    """Collects ops and the status record for one pod."""

    def __init__(self, pod: Pod, status: dict[str, Any]) -> None:
        self.ops: JsonPatch = []
        self.spec = _mapping(pod.get("spec"))
        self.metadata = _mapping(pod.get("metadata"))
        self.status = status
        for name in _LIST_FIELDS:
            status.setdefault(name, [])
        status.setdefault("env", {})
        status.setdefault("probes", {})
        status.setdefault("created", [])
        self.app_offset = 0  # containers inserted before the app's own, which shifts their indices

    def add_list_items(self, base: str, existing: Any, items: Sequence[Any], *, front: bool) -> None:
        """Insert items at the front or the end of a list that may be absent."""
        if not items:
            return
        if not isinstance(existing, list):
            self.ops.append({"op": "add", "path": base, "value": list(items)})
            self.status["created"].append(base)
            return
        for offset, item in enumerate(items):
            self.ops.append({"op": "add", "path": f"{base}/{offset}" if front else f"{base}/-", "value": item})

    def add_map_entries(self, base: str, existing: Any, entries: Mapping[str, str]) -> list[str]:
        """Add keys the map lacks (an existing value is the user's and is kept); returns keys added."""
        current = _mapping(existing)
        fresh = {k: v for k, v in entries.items() if k not in current}
        if not fresh:
            return []
        if not isinstance(existing, dict):
            self.ops.append({"op": "add", "path": base, "value": fresh})
            self.status["created"].append(base)
        else:
            self.ops.extend({"op": "add", "path": f"{base}/{escape(k)}", "value": v} for k, v in fresh.items())
        return list(fresh)


def build_patch(
    pod: Pod, additions: Sequence[Addition], *, native_sidecar: bool, reason: str = "injected"
) -> tuple[JsonPatch, list[str]]:
    """The ops that add every addition to the pod, and warnings (e.g. a volume the pod already has)."""
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    had_status = STATUS_KEY in annotations
    status = read_status(annotations)
    builder = _PatchBuilder(pod, status)
    spec, warnings = builder.spec, []
    malformed = malformed_status_warning(annotations) if had_status else None
    if malformed is not None:
        warnings.append(malformed)
    if not isinstance(pod.get("metadata"), dict):
        builder.ops.append({"op": "add", "path": "/metadata", "value": {}})
        status["created"].append("/metadata")  # a template without metadata gets it back without

    redirects = [c for a in additions for c in a.init_containers]
    proxies = [c for a in additions for c in a.sidecars]
    plain = [c for a in additions for c in a.containers]
    if native_sidecar:
        proxies = [_as_native_sidecar(c) for c in proxies]
        builder.add_list_items("/spec/initContainers", spec.get("initContainers"), redirects + proxies, front=True)
        builder.add_list_items("/spec/containers", spec.get("containers"), plain, front=False)
        status["containers"] += [c["name"] for c in plain]
    else:
        builder.add_list_items("/spec/initContainers", spec.get("initContainers"), redirects, front=False)
        # A mesh whose proxy must start before the app (Linkerd's linkerd-await) goes first.
        first = [c for a in additions if a.sidecars_first for c in a.sidecars]
        last = [c for a in additions if not a.sidecars_first for c in a.sidecars] + plain
        if first and isinstance(spec.get("containers"), list):
            builder.add_list_items("/spec/containers", spec.get("containers"), first, front=True)
            builder.app_offset = len(first)
        else:
            first, last = [], first + last
        builder.add_list_items("/spec/containers", spec.get("containers"), last, front=False)
        status["containers"] += [c["name"] for c in first + last]
    status["initContainers"] += [c["name"] for c in redirects + (proxies if native_sidecar else [])]

    taken = _names(spec.get("volumes"))
    volumes = []
    for volume in (v for a in additions for v in a.volumes):
        if volume["name"] in taken:
            warnings.append(f"the pod already has a volume named {volume['name']}; it is kept and not replaced")
            continue
        taken.add(volume["name"])
        volumes.append(volume)
    builder.add_list_items("/spec/volumes", spec.get("volumes"), volumes, front=False)
    status["volumes"] += [v["name"] for v in volumes]

    labels: dict[str, str] = {}
    extra_annotations: dict[str, str] = {}
    for addition in additions:
        labels.update({k: v for k, v in addition.labels.items() if k not in labels})
        extra_annotations.update({k: v for k, v in addition.annotations.items() if k not in extra_annotations})
    status["labels"] += builder.add_map_entries("/metadata/labels", builder.metadata.get("labels"), labels)

    _add_app_env(builder, [e for a in additions for e in a.app_env])
    _replace_app_fields(builder, additions)
    _append_app_items(builder, additions)

    status["plugins"] += [a.plugin.name for a in additions]
    status["digest"] = {**status.get("digest", {}), **{a.plugin.name: a.plugin.digest for a in additions}}
    status["reason"] = reason
    extra_annotations.pop(STATUS_KEY, None)
    fresh = {k: v for k, v in extra_annotations.items() if k not in annotations}
    status["annotations"] += list(fresh)
    if not isinstance(builder.metadata.get("annotations"), dict):
        status["created"].append("/metadata/annotations")
        fresh[STATUS_KEY] = orjson.dumps(status).decode()
        builder.ops.append({"op": "add", "path": "/metadata/annotations", "value": fresh})
    else:
        builder.ops.extend({"op": "add", "path": f"/metadata/annotations/{escape(k)}", "value": v} for k, v in fresh.items())
        op = "replace" if had_status else "add"
        path = f"/metadata/annotations/{escape(STATUS_KEY)}"
        builder.ops.append({"op": op, "path": path, "value": orjson.dumps(status).decode()})
    return builder.ops, warnings


def _add_app_env(builder: _PatchBuilder, env: Sequence[Mapping[str, Any]]) -> None:
    """Env for app containers (Dapr's DAPR_HTTP_PORT...): only names the container does not define."""
    if not env:
        return
    for index, container in enumerate(builder.spec.get("containers") or ()):
        if not isinstance(container, dict):
            continue
        existing = container.get("env")
        defined = _names(existing)
        fresh = [e for e in env if e["name"] not in defined]
        if not fresh:
            continue
        base = f"/spec/containers/{index + builder.app_offset}/env"
        created_before = len(builder.status["created"])
        builder.add_list_items(base, existing, fresh, front=False)
        record = builder.status["env"].setdefault(str(container.get("name")), {"names": [], "created": False})
        record["names"] += [e["name"] for e in fresh]
        if len(builder.status["created"]) > created_before:
            builder.status["created"].pop()  # the env list is recorded per container name, not by index
            record["created"] = True


def _append_app_items(builder: _PatchBuilder, additions: Sequence[Addition]) -> None:
    """Hook items appended to app containers' lists (Dapr's env and socket mounts), by name, so
    that uninject removes exactly them."""
    containers = builder.spec.get("containers") or ()
    merged: dict[int, dict[str, list[Any]]] = {}  # one list per field, so an absent list is created once
    for addition in additions:
        for index, lists in addition.container_appends.items():
            for field, items in lists.items():
                merged.setdefault(index, {}).setdefault(field, []).extend(items)
    for index, lists in merged.items():
        container = containers[index]
        record = builder.status.setdefault("appended", {}).setdefault(str(container.get("name")), {})
        for field, items in lists.items():
            created_before = len(builder.status["created"])
            path = f"/spec/containers/{index + builder.app_offset}/{field}"
            builder.add_list_items(path, container.get(field), items, front=False)
            entry = record.setdefault(field, {"names": [], "created": False})
            entry["names"] += [item["name"] for item in items]
            if len(builder.status["created"]) > created_before:
                builder.status["created"].pop()  # recorded per container name, not by index
                entry["created"] = True


def _replace_app_fields(builder: _PatchBuilder, additions: Sequence[Addition]) -> None:
    """Hook changes to app containers (Istio's probe rewrite); originals kept for uninject."""
    containers = builder.spec.get("containers") or ()
    for addition in additions:
        for index, fields in addition.container_changes.items():
            container = containers[index]
            saved = builder.status["probes"].setdefault(str(container.get("name")), {})
            for name, value in fields.items():
                path = f"/spec/containers/{index + builder.app_offset}/{name}"
                builder.ops.append({"op": "replace", "path": path, "value": value})
                saved.setdefault(name, container.get(name))


def uninject(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the pod without what `meshswitch.io/status` says was injected (CLI only)."""
    result: dict[str, Any] = copy.deepcopy(dict(pod))
    metadata = result.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    status = read_status(annotations)
    if not status:
        return result
    spec = result.get("spec") or {}
    for section in ("initContainers", "containers", "volumes"):
        drop = set(status.get(section) or ())
        if isinstance(spec.get(section), list):
            spec[section] = [i for i in spec[section] if not (isinstance(i, dict) and i.get("name") in drop)]
    for container in spec.get("containers") or ():
        name = str(container.get("name"))
        record = (status.get("env") or {}).get(name)
        if record:
            drop = set(record["names"])
            container["env"] = [e for e in container.get("env") or () if e.get("name") not in drop]
            if record.get("created") and not container["env"]:
                del container["env"]
        for field, entry in ((status.get("appended") or {}).get(name) or {}).items():
            drop = set(entry.get("names") or ())
            container[field] = [i for i in container.get(field) or () if i.get("name") not in drop]
            if entry.get("created") and not container[field]:
                del container[field]
        for field, original in ((status.get("probes") or {}).get(name) or {}).items():
            container[field] = original
    for key in status.get("labels") or ():
        (metadata.get("labels") or {}).pop(key, None)
    for key in list(status.get("annotations") or ()) + [STATUS_KEY]:
        annotations.pop(key, None)
    # Innermost first: /metadata/annotations empties /metadata, which then goes too.
    for path in sorted(set(status.get("created") or ()), key=lambda p: -str(p).count("/")):
        _drop_if_empty(result, str(path))
    return result


def _drop_if_empty(root: dict[str, Any], path: str) -> None:
    """Remove the map or list at the RFC 6901 `path` when it is empty (meshswitch created it)."""
    *parents, key = [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]
    holder: Any = root
    for part in parents:
        holder = holder.get(part) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and key in holder and not holder[key]:
        del holder[key]
