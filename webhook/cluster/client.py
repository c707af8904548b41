"""The one way meshswitch talks to an API server: a client from a kubeconfig or the pod's service
account, and plain-dict requests on its connection.

Only the kubernetes client's configuration, authentication and connection pool are used: requests
go through ``ApiClient.call_api`` and JSON is decoded with orjson. The typed APIs (CoreV1Api, ...)
would import some 250 models (about 20 MB) and deserialise every object into them, for callers that
need a few fields.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from webhook.cluster.listwatch import Gone
from webhook.engine.errors import ConfigError, MeshswitchError, not_utf8


class ApiError(MeshswitchError):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: bytes, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        self.body = body.decode("utf-8", "replace") if body else ""
        super().__init__(f"HTTP {status}: {self.message}")

    @property
    def message(self) -> str:
        """The Status message when the body is a Status, else the start of the body."""
        try:
            status = orjson.loads(self.body)
            if isinstance(status, dict) and status.get("message"):
                return str(status["message"])
        except orjson.JSONDecodeError:
            pass
        return self.body[:200] or self.reason


class Unreachable(MeshswitchError):
    """The API server did not answer: no connection, TLS refused, a timeout, a connection cut mid-answer."""


def _transport_errors() -> tuple[type[Exception], ...]:
    """What the kubernetes client raises when the API server cannot be reached (urllib3's errors, and
    its own ApiException for a TLS failure); imported when needed, as the client itself is."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return (urllib3.exceptions.HTTPError, ApiException, OSError)


def _unreachable(exc: Exception) -> Unreachable:
    # ApiException's text spans lines ("(0)\nReason: SSLError\n..."): one line for the user.
    return Unreachable(f"{type(exc).__name__}: {' '.join(str(exc).split())}")


def api_client(kubeconfig: Path | None = None, *, default_kubeconfig: bool = True) -> Any:
    """A kubernetes ApiClient: the kubeconfig given; else, with `default_kubeconfig` (the CLI's
    habit), $KUBECONFIG or ~/.kube/config; else the in-cluster service account (the server's)."""
    from kubernetes import client, config  # imported here: --no-kube and offline commands need none of it

    # The loaders have no annotations; the client is passed around as Any with plain-dict bodies.
    from_file: Any = config.new_client_from_config
    in_cluster: Any = config.load_incluster_config
    if kubeconfig is None and default_kubeconfig:
        default = Path(os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config")
        if default.is_file():
            kubeconfig = default
    if kubeconfig is not None:
        try:
            return from_file(config_file=str(kubeconfig))
        except UnicodeDecodeError as exc:  # the codec's own message names neither the line nor what is accepted
            raise ConfigError(not_utf8(kubeconfig, exc, "a kubeconfig is UTF-8 YAML")) from None
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{kubeconfig}: {exc}") from None
    try:
        in_cluster()
    except config.ConfigException:
        where = "--kubeconfig, $KUBECONFIG or ~/.kube/config" if default_kubeconfig else "--kubeconfig"
        raise ConfigError(f"no kubeconfig ({where}) and not running in a cluster") from None
    return client.ApiClient()


def send(
    client: Any,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, Any]] = (),
    body: Any = None,
    content_type: str = "application/json",
    timeout: float | tuple[float, float],
) -> Any:
    """One request on the client's connection pool; the urllib3 response comes back unread, whatever
    its status (an error status is the caller's to raise)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, _ = client.param_serialize(
        method, path, query_params=list(query), header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    try:
        return client.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
    except _transport_errors() as exc:
        raise _unreachable(exc) from exc


def read_body(response: Any) -> bytes:
    """The whole body of a response `send` returned; Unreachable when the connection fails mid-read."""
    try:
        data: bytes = response.read()
    except _transport_errors() as exc:
        raise _unreachable(exc) from exc
    return data


class KubeApi:
    """Requests by path with plain-dict bodies: GET, list and watch for the server's caches, and
    any method for the CLI's writes."""

    def __init__(self, client: Any, *, watch_timeout: int = 290) -> None:
        self.client = client
        self.watch_timeout = watch_timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = (5, 30),
    ) -> Any:
        """The urllib3 response, unread; ApiError on an error status."""
        response = send(self.client, method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        if not 200 <= response.status < 300:
            raise ApiError(response.status, read_body(response), getattr(response, "reason", "") or "")
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Sequence[tuple[str, Any]] = (),
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Any:
        """One request, its JSON answer decoded (None for an empty one)."""
        data = read_body(self.request(method, path, query=query, body=body, content_type=content_type, timeout=(5, timeout)))
        return orjson.loads(data) if data else None

    def get(self, path: str, *, query: Sequence[tuple[str, Any]] = (), timeout: float = 30.0) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            found: dict[str, Any] = self.call("GET", path, query=query, timeout=timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def items(self, path: str, *, query: Sequence[tuple[str, Any]] = ()) -> list[dict[str, Any]]:
        listed = self.get(path, query=query) or {}
        return list(listed.get("items") or [])

    def list_items(self, path: str, *, query: Sequence[tuple[str, Any]] = ()) -> tuple[list[Mapping[str, Any]], str]:
        """The items and the list's resourceVersion."""
        document = orjson.loads(read_body(self.request("GET", path, query=query, timeout=(5, 60))))
        return list(document.get("items") or []), str(document["metadata"]["resourceVersion"])

    def watch(self, path: str, resource_version: str, *, query: Sequence[tuple[str, Any]] = ()) -> Iterator[Mapping[str, Any]]:
        """Watch events from a resourceVersion, one decoded dict per line; raises Gone on 410."""
        params = [
            *query,
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", self.watch_timeout),
        ]
        try:
            # The read timeout outlives the server-side one, so a silent drop still ends the read.
            response = self.request("GET", path, query=params, timeout=(5, self.watch_timeout + 30)).response
        except ApiError as exc:
            if exc.status == 410:
                raise Gone(str(exc)) from None
            raise
        try:
            buffer = b""
            for chunk in _stream(response):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
        finally:
            response.release_conn()


def _stream(response: Any) -> Iterator[bytes]:
    """The body's chunks as they come; Unreachable when the connection fails mid-stream."""
    try:
        yield from response.stream(amt=None, decode_content=True)
    except _transport_errors() as exc:
        raise _unreachable(exc) from exc


def connect(kubeconfig: Path | None = None, *, default_kubeconfig: bool = True) -> KubeApi:
    """A KubeApi on ``api_client(kubeconfig, default_kubeconfig=...)``."""
    return KubeApi(api_client(kubeconfig, default_kubeconfig=default_kubeconfig))
