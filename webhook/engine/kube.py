"""Plain-dict aliases for the Kubernetes objects meshswitch reads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

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
