"""Plain-dict aliases for the Kubernetes objects meshswitch reads and writes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

# Raw objects stay dicts straight from the JSON (or YAML) decoder; these aliases only document
# intent. Runtime checks on them test `dict`, not `Mapping`: an ABC check costs more than the lookup.
Obj: TypeAlias = Mapping[str, Any]
Pod: TypeAlias = Mapping[str, Any]
JsonPatch: TypeAlias = list[dict[str, Any]]


@dataclass(frozen=True)
class NamespaceMeta:
    """The labels and annotations of the pod's namespace, as the namespace cache knows them."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


# What Go's json.Marshal writes escaped that orjson writes as it is: the HTML characters and the
# two JavaScript line separators. They occur only inside strings, so replacing them in the text is exact.
_GO_ESCAPES = {ord("&"): "\\u0026", ord("<"): "\\u003c", ord(">"): "\\u003e", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_GO_ESCAPED = re.compile("[&<>\u2028\u2029]")


def go_json(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON as Go's json.Marshal writes it (the meshes' injectors write their JSON so)."""
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    return text.translate(_GO_ESCAPES) if _GO_ESCAPED.search(text) else text


def listed_containers(annotations: Mapping[str, Any], key: str, section: str) -> frozenset[str]:
    """The container names a mesh's own status annotation (Istio's `sidecar.istio.io/status`)
    lists under ``section`` (containers or initContainers); none when it is absent or malformed."""
    raw = annotations.get(key)
    try:
        status = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        return frozenset()
    listed = status.get(section) if isinstance(status, dict) else None
    return frozenset(n for n in listed if isinstance(n, str)) if isinstance(listed, list) else frozenset()
