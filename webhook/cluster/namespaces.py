"""Namespace labels and annotations for the engine: a list+watch-fed cache, or a static file (--no-kube)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from webhook.engine.errors import ConfigError, MeshswitchError, not_utf8, yaml_problem
from webhook.engine.kube import NamespaceMeta
from webhook.cluster.client import KubeApi
from webhook.cluster.listwatch import Gone, ListObjects, ListWatch, WatchFailed, WatchObjects

__all__ = ["Gone", "NamespaceCache", "NamespaceSource", "NamespaceUnavailable", "StaticNamespaces", "WatchFailed"]

# A namespace as the API returns it, kept as decoded JSON.
RawNamespace = Mapping[str, Any]
GetNamespace = Callable[[str], "RawNamespace | None"]


class NamespaceUnavailable(MeshswitchError):
    """The namespace could not be read from the API server (timeout, refused, forbidden)."""


class NamespaceSource(Protocol):
    """What the server asks about namespaces; ``lookup`` never blocks, ``fetch`` may."""

    @property
    def synced(self) -> bool: ...

    def lookup(self, name: str) -> NamespaceMeta | None: ...

    def fetch(self, name: str) -> NamespaceMeta: ...

    def __len__(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def meta_from(raw: RawNamespace) -> NamespaceMeta:
    """The labels and annotations of a Namespace object (labels and annotations may be null)."""
    metadata = raw.get("metadata") or {}
    return NamespaceMeta(
        name=str(metadata.get("name", "")),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
    )


class StaticNamespaces:
    """Namespaces from a file, for running without a cluster; an unknown namespace has no labels."""

    def __init__(self, namespaces: Mapping[str, NamespaceMeta] | None = None) -> None:
        self._namespaces = dict(namespaces or {})

    @classmethod
    def from_file(cls, path: Path) -> StaticNamespaces:
        """Read YAML mapping namespace name to labels.

        A value may instead hold ``labels:`` and ``annotations:`` mappings, for namespaces whose
        annotations matter (linkerd.io/inject).
        """
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read namespace labels: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{not_utf8(path, exc)} (namespace labels)") from None
        except yaml.YAMLError as exc:  # one line: the problem and where, not the excerpt YAML adds
            where, problem = yaml_problem(path, exc)
            raise ConfigError(f"{where}: cannot read namespace labels: not valid YAML: {problem}") from None
        if document is None:
            return cls()
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: must map namespace names to labels")
        namespaces: dict[str, NamespaceMeta] = {}
        for name, value in document.items():
            value = value or {}
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: namespace {name!r}: labels must be a mapping")
            if set(value) <= {"labels", "annotations"} and all(isinstance(v, dict) for v in value.values()):
                labels, annotations = value.get("labels") or {}, value.get("annotations") or {}
            else:
                labels, annotations = value, {}
            namespaces[str(name)] = NamespaceMeta(
                name=str(name),
                labels=_strings(labels, path, name),
                annotations=_strings(annotations, path, name),
            )
        return cls(namespaces)

    @property
    def synced(self) -> bool:
        return True

    def lookup(self, name: str) -> NamespaceMeta:
        found = self._namespaces.get(name)
        return found if found is not None else NamespaceMeta(name=name, labels={}, annotations={})

    def fetch(self, name: str) -> NamespaceMeta:
        return self.lookup(name)

    def __len__(self) -> int:
        return len(self._namespaces)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _strings(values: Mapping[Any, Any], path: Path, namespace: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            # YAML reads `enabled: true` as a boolean; Kubernetes label values are strings.
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{path}: namespace {namespace!r}: value of {key!r} must be a string")
        out[str(key)] = str(value)
    return out


class NamespaceCache(ListWatch):
    """Namespaces by name, filled by a list and kept current by a watch, in a thread of its own.

    Readers on the event loop see whole values: every write replaces one dict entry or the dict.
    """

    what = "namespaces"

    def __init__(
        self,
        *,
        list_namespaces: ListObjects,
        watch_namespaces: WatchObjects,
        get_namespace: GetNamespace,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(list_objects=list_namespaces, watch_objects=watch_namespaces, max_backoff=max_backoff)
        self._get = get_namespace
        self._store: dict[str, NamespaceMeta] = {}

    def lookup(self, name: str) -> NamespaceMeta | None:
        return self._store.get(name)

    def fetch(self, name: str) -> NamespaceMeta:
        """One GET for a namespace the watch has not delivered yet.

        The answer is not stored: the watch stays the only writer, so a late GET can never
        overwrite a newer event.
        """
        try:
            raw = self._get(name)
        except Exception as exc:
            raise NamespaceUnavailable(f"cannot read namespace {name!r}: {exc}") from exc
        if raw is None:
            return NamespaceMeta(name=name, labels={}, annotations={})
        return meta_from(raw)

    def __len__(self) -> int:
        return len(self._store)

    def replace(self, items: Iterable[RawNamespace], resource_version: str) -> None:
        self._store = {meta.name: meta for meta in map(meta_from, items)}

    def on_object(self, kind: str, obj: RawNamespace) -> None:
        meta = meta_from(obj)
        if kind == "DELETED":
            self._store.pop(meta.name, None)
        else:
            self._store[meta.name] = meta


def kube_namespace_cache(api: KubeApi, *, get_timeout: float = 2.0) -> NamespaceCache:
    """A NamespaceCache on the API server."""
    path = "/api/v1/namespaces"
    return NamespaceCache(
        list_namespaces=lambda: api.list_items(path),
        watch_namespaces=lambda version: api.watch(path, version),
        get_namespace=lambda name: api.get(f"{path}/{name}", timeout=get_timeout),
    )
