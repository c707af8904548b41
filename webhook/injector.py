"""The engine's front door: decide, render and patch one pod (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.config import Config
from webhook.kube import JsonPatch, Pod


@dataclass(frozen=True)
class NamespaceMeta:
    """The labels and annotations of the pod's namespace, as the namespace cache knows them."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class Reason:
    """Why a pod was or was not injected: a stable code for machines, a sentence for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Injection:
    """What the engine decided for one pod and the RFC 6902 ops that carry it out."""

    reason: Reason
    plugins: tuple[str, ...]
    patch: JsonPatch
    warnings: tuple[str, ...] = ()


class Injector:
    """Holds the compiled plugins and the config; ``inject`` is called once per pod."""

    def __init__(self, *, plugins: Any, config: Config) -> None:
        self.plugins = plugins
        self.config = config

    def inject(self, pod: Pod, namespace: NamespaceMeta) -> Injection:
        """Raise PodDenied when the pod must be refused."""
        raise NotImplementedError("engine lands shortly")
