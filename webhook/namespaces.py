"""Namespace labels and annotations for the engine: a list+watch-fed cache, or a static file (--no-kube)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml

from webhook.errors import ConfigError, MeshswitchError
from webhook.injector import NamespaceMeta

log = logging.getLogger("meshswitch.namespaces")

# A namespace as the API returns it, kept as decoded JSON.
RawNamespace = Mapping[str, Any]
ListNamespaces = Callable[[], tuple[list[RawNamespace], str]]
WatchNamespaces = Callable[[str], Iterable[Mapping[str, Any]]]
GetNamespace = Callable[[str], "RawNamespace | None"]


class NamespaceUnavailable(MeshswitchError):
    """The namespace could not be read from the API server (timeout, refused, forbidden)."""


class Gone(MeshswitchError):
    """The watch's resourceVersion is older than the API server keeps (HTTP 410): list again."""


class WatchFailed(MeshswitchError):
    """The watch stream sent an ERROR event other than 410; resume after a pause."""


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
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read namespace labels: {exc}") from None
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


class NamespaceCache:
    """Namespaces by name, filled by a list and kept current by a watch, in a thread of its own.

    The three callables are the only I/O, so tests drive ``run_once`` with recorded events.
    Readers on the event loop see whole values: every write replaces one dict entry or the dict.
    """

    def __init__(
        self,
        *,
        list_namespaces: ListNamespaces,
        watch_namespaces: WatchNamespaces,
        get_namespace: GetNamespace,
        max_backoff: float = 30.0,
    ) -> None:
        self._list = list_namespaces
        self._watch = watch_namespaces
        self._get = get_namespace
        self._store: dict[str, NamespaceMeta] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._max_backoff = max_backoff
        self.resource_version: str | None = None
        self.failures = 0
        self.lists = 0
        self._synced = False

    @property
    def synced(self) -> bool:
        return self._synced

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
        store = {}
        for raw in items:
            meta = meta_from(raw)
            store[meta.name] = meta
        self._store = store
        self.resource_version = resource_version
        self._synced = True

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one watch event; raise Gone to ask for a list, WatchFailed for other ERRORs."""
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, Mapping):
            raise WatchFailed(f"watch event {kind!r} has no object")
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(str(obj.get("message", "resourceVersion too old")))
            raise WatchFailed(f"watch error {obj.get('code')}: {obj.get('message', '')}")
        metadata = obj.get("metadata") or {}
        if kind in ("ADDED", "MODIFIED"):
            meta = meta_from(obj)
            self._store[meta.name] = meta
        elif kind == "DELETED":
            self._store.pop(str(metadata.get("name", "")), None)
        elif kind != "BOOKMARK":
            log.warning("ignoring watch event of unknown type %r", kind)
        version = metadata.get("resourceVersion")
        if isinstance(version, str) and version:
            self.resource_version = version

    def run_once(self) -> None:
        """List if there is no resourceVersion to resume from, then follow one watch stream.

        Errors never escape: a 410 forgets the resourceVersion (the next call lists again), any
        other failure keeps it, counts it, and the caller waits ``backoff()`` before resuming.
        """
        try:
            if self.resource_version is None:
                items, version = self._list()
                self.lists += 1
                self.replace(items, version)
                log.info("listed %d namespaces at resourceVersion %s", len(self._store), version)
            events = 0
            for event in self._watch(self.resource_version or ""):
                events += 1
                self.apply(event)
                if self._stopped.is_set():
                    return
            # A stream that ends with nothing in it counts as a failure, so a server or proxy that
            # closes watches at once is not hammered in a tight loop.
            self.failures = 0 if events else self.failures + 1
        except Gone as exc:
            log.info("namespace watch expired (%s); listing again", exc)
            self.resource_version = None
            self.failures = 0
        except Exception as exc:
            self.failures += 1
            log.warning("namespace list/watch failed (%d in a row): %s", self.failures, exc)

    def backoff(self) -> float:
        """Seconds to wait before the next attempt: none after a clean end, then doubling from 0.5 s."""
        if self.failures == 0:
            return 0.0
        return float(min(self._max_backoff, 0.5 * 2 ** (self.failures - 1)))

    def run(self) -> None:
        while not self._stopped.is_set():
            self.run_once()
            pause = self.backoff()
            if pause and self._stopped.wait(pause):
                return

    def start(self) -> None:
        # A thread, not a task: the kubernetes client blocks, and the event loop must not.
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="namespace-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        # The watch may be blocked in a read; it is a daemon thread, so do not wait for it.
        self._stopped.set()


def kube_namespace_cache(
    kubeconfig: Path | None = None,
    *,
    get_timeout: float = 2.0,
    watch_timeout: int = 290,
) -> NamespaceCache:
    """A NamespaceCache on the kubernetes client (in-cluster config unless a kubeconfig is given).

    Responses are read raw and decoded with orjson: the client's model deserialisation is slow and
    the cache needs only names, labels and annotations.
    """
    # Imported here: the client and its models cost tens of MB that --no-kube does not need.
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    if kubeconfig is not None:
        try:
            api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise ConfigError(f"{kubeconfig}: {exc}") from None
    else:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException as exc:
            raise ConfigError(f"no in-cluster config ({exc}); pass --kubeconfig or --no-kube") from None
        api_client = client.ApiClient()
    core = client.CoreV1Api(api_client)

    def list_namespaces() -> tuple[list[RawNamespace], str]:
        # With _preload_content=False the client returns the raw urllib3 response, not the model.
        response: Any = core.list_namespace(_preload_content=False, _request_timeout=(5, 60))
        document = orjson.loads(response.data)
        return list(document.get("items") or []), str(document["metadata"]["resourceVersion"])

    def watch_namespaces(resource_version: str) -> Iterator[Mapping[str, Any]]:
        try:
            response: Any = core.list_namespace(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=watch_timeout,
                _preload_content=False,
                # The read timeout outlives the server-side one, so a silent drop still ends the read.
                _request_timeout=(5, watch_timeout + 30),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise Gone(str(exc.reason)) from None
            raise
        try:
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
        finally:
            response.release_conn()

    def get_namespace(name: str) -> RawNamespace | None:
        try:
            response: Any = core.read_namespace(name, _preload_content=False, _request_timeout=get_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        document: RawNamespace = orjson.loads(response.data)
        return document

    return NamespaceCache(
        list_namespaces=list_namespaces,
        watch_namespaces=watch_namespaces,
        get_namespace=get_namespace,
    )
