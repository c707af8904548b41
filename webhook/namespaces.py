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


class ApiError(MeshswitchError):
    """The API server answered a namespace request with an error status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        self.status = status


def kube_namespace_cache(
    kubeconfig: Path | None = None,
    *,
    get_timeout: float = 2.0,
    watch_timeout: int = 290,
) -> NamespaceCache:
    """A NamespaceCache on the kubernetes client (in-cluster config unless a kubeconfig is given).

    Only the client's configuration, authentication and connection pool are used: the three
    requests go through ``ApiClient.call_api`` and their JSON is decoded with orjson. CoreV1Api
    would import some 250 pydantic models (about 20 MB) and deserialise every namespace into them,
    for a cache that needs names, labels and annotations.
    """
    # Imported here: --no-kube needs none of the client.
    from kubernetes import client, config

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

    def request(
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        name: str | None = None,
        timeout: float | tuple[float, float],
    ) -> Any:
        method, url, headers, _, _ = api_client.param_serialize(
            "GET",
            path,
            path_params={"name": name} if name is not None else None,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        # The client returns the urllib3 response unread; an error status is ours to raise.
        response = api_client.call_api(method, url, header_params=headers, _request_timeout=timeout)
        if not 200 <= response.status < 300:
            raise ApiError(response.status, response.read())
        return response

    def list_namespaces() -> tuple[list[RawNamespace], str]:
        document = orjson.loads(request("/api/v1/namespaces", timeout=(5, 60)).read())
        return list(document.get("items") or []), str(document["metadata"]["resourceVersion"])

    def watch_namespaces(resource_version: str) -> Iterator[Mapping[str, Any]]:
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", watch_timeout),
        ]
        try:
            # The read timeout outlives the server-side one, so a silent drop still ends the read.
            response = request("/api/v1/namespaces", query=query, timeout=(5, watch_timeout + 30)).response
        except ApiError as exc:
            if exc.status == 410:
                raise Gone(str(exc)) from None
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
            response = request("/api/v1/namespaces/{name}", name=name, timeout=get_timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        document: RawNamespace = orjson.loads(response.read())
        return document

    return NamespaceCache(
        list_namespaces=list_namespaces,
        watch_namespaces=watch_namespaces,
        get_namespace=get_namespace,
    )
