"""The few API server requests meshswitch makes, as JSON dicts, on the kubernetes client's connection.

Only the client's configuration, authentication and connection pool are used: requests go through
``ApiClient.call_api`` and their JSON is decoded with orjson. The typed APIs (CoreV1Api, ...) would
import some 250 pydantic models (about 20 MB) and deserialise every object into them, for caches
that need a few fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from webhook.errors import ConfigError, MeshswitchError
from webhook.listwatch import Gone


class ApiError(MeshswitchError):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        self.status = status


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
    its status (an error status is the caller's to raise, in its own terms)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, _ = client.param_serialize(
        method, path, query_params=list(query), header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    return client.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)


class KubeApi:
    """GET, list and watch by path; in-cluster config unless a kubeconfig is given."""

    def __init__(self, kubeconfig: Path | None = None, *, watch_timeout: int = 290) -> None:
        from kubernetes import client, config  # imported here: --no-kube needs none of the client

        if kubeconfig is not None:
            try:
                self.client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
            except (config.ConfigException, OSError) as exc:
                raise ConfigError(f"{kubeconfig}: {exc}") from None
        else:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException as exc:
                raise ConfigError(f"no in-cluster config ({exc}); pass --kubeconfig or --no-kube") from None
            self.client = client.ApiClient()
        self.watch_timeout = watch_timeout

    def request(self, path: str, *, query: list[tuple[str, Any]] | None = None, timeout: float | tuple[float, float]) -> Any:
        response = send(self.client, "GET", path, query=query or (), timeout=timeout)
        if not 200 <= response.status < 300:
            raise ApiError(response.status, response.read())
        return response

    def get(self, path: str, *, timeout: float = 2.0) -> Mapping[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            response = self.request(path, timeout=timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        document: Mapping[str, Any] = orjson.loads(response.read())
        return document

    def list_items(self, path: str, *, query: list[tuple[str, Any]] | None = None) -> tuple[list[Mapping[str, Any]], str]:
        """The items and the list's resourceVersion."""
        document = orjson.loads(self.request(path, query=query, timeout=(5, 60)).read())
        return list(document.get("items") or []), str(document["metadata"]["resourceVersion"])

    def watch(self, path: str, resource_version: str, *, query: list[tuple[str, Any]] | None = None) -> Iterator[Mapping[str, Any]]:
        """Watch events from a resourceVersion, one decoded dict per line; raises Gone on 410."""
        params = [
            *(query or []),
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", self.watch_timeout),
        ]
        try:
            # The read timeout outlives the server-side one, so a silent drop still ends the read.
            response = self.request(path, query=params, timeout=(5, self.watch_timeout + 30)).response
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
