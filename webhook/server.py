"""The HTTPS webhook: /mutate, health, metrics, on uvicorn (uvloop, httptools) with hot-reloaded TLS."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from webhook import review as wire
from webhook.config import SIDECAR_STYLES, Config
from webhook.errors import BadRequest, ConfigError, PodDenied
from webhook.injector import Injector, NamespaceMeta
from webhook.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.metrics import Metrics
from webhook.discovery import Discovery
from webhook.discovery_watch import control_plane_watches
from webhook.kubeapi import KubeApi
from webhook.listwatch import ListWatch
from webhook.namespaces import NamespaceSource, StaticNamespaces, kube_namespace_cache
from webhook.values import load_values
from webhook.tls import CertificateReloader, LoadedPair

log = logging.getLogger("meshswitch.server")
review_logger = logging.getLogger("meshswitch.review")

DEFAULT_PORT = 8443
# The apiserver caps a request body at 3 MiB; a review wraps the object once for a CREATE.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# Longer than the 90 s idle timeout of Go's HTTP client, so the apiserver, not us, closes idle
# connections: a server-side close can cross a request already on the wire (kubernetes#127335).
DEFAULT_KEEP_ALIVE_SECONDS = 120.0
JSON = "application/json"


@dataclass(frozen=True)
class Verdict:
    """What became of one review, for the log line and the metrics."""

    outcome: str  # injected, skipped, denied, error
    reason: str
    plugins: tuple[str, ...] = ()


class Admission:
    """Answers a parsed review: the engine's decision, mapped onto the wire, failing closed."""

    def __init__(
        self,
        *,
        injector: Injector,
        namespaces: NamespaceSource,
        metrics: Metrics,
        fail_open: bool = False,
    ) -> None:
        self.injector = injector
        self.namespaces = namespaces
        self.metrics = metrics
        self.fail_open = fail_open

    async def answer(self, review: wire.Review) -> tuple[wire.AdmissionReview, Verdict]:
        """Never raises: whatever goes wrong with one review is that review's answer."""
        if review.pod is None:
            return wire.allow(review), Verdict("skipped", wire.NOT_POD_CREATE)
        try:
            namespace = self.namespaces.lookup(review.namespace)
            if namespace is None:
                self.metrics.namespace_misses.inc()
                namespace = await asyncio.to_thread(self.namespaces.fetch, review.namespace)
            return self._inject(review, namespace)
        except Exception as exc:
            return self.internal_error(review, exc)

    def _inject(self, review: wire.Review, namespace: NamespaceMeta) -> tuple[wire.AdmissionReview, Verdict]:
        assert review.pod is not None
        try:
            result = self.injector.inject(review.pod, namespace)
        except PodDenied as exc:
            answer = wire.deny(review, message=exc.message, code=400, reason="BadRequest")
            return answer, Verdict("denied", exc.code)
        answer = wire.allow(review, patch=result.patch, warnings=result.warnings)
        outcome = "injected" if result.plugins and result.patch else "skipped"
        return answer, Verdict(outcome, result.reason.code, tuple(result.plugins))

    def internal_error(self, review: wire.Review, exc: Exception) -> tuple[wire.AdmissionReview, Verdict]:
        log.exception("review %s failed", review.uid)
        detail = f"{type(exc).__name__}: {exc}"[:300]
        verdict = Verdict("error", "internal-error")
        if self.fail_open:
            warning = f"meshswitch: internal error, pod admitted without injection (--fail-open): {detail}"
            return wire.allow(review, warnings=[warning]), verdict
        message = f"meshswitch: internal error, pod refused because the webhook fails closed: {detail}"
        return wire.deny(review, message=message, code=500, reason="InternalError"), verdict


class Drain:
    """Set when shutdown starts: answers then close their connection and /readyz fails."""

    def __init__(self) -> None:
        self.draining = False


def create_app(
    *,
    injector: Injector,
    namespaces: NamespaceSource,
    metrics: Metrics | None = None,
    certificates: CertificateReloader | None = None,
    fail_open: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cert_poll_seconds: float = 10.0,
    drain: Drain | None = None,
    review_log: ReviewLog | None = None,
    watches: Sequence[ListWatch] = (),
    discovery: Discovery | None = None,
) -> WebhookApp:
    """The ASGI app; it starts the namespace cache and the certificate poller in its lifespan."""
    metrics = metrics or Metrics()
    drain = drain or Drain()
    admission = Admission(injector=injector, namespaces=namespaces, metrics=metrics, fail_open=fail_open)
    metrics.track_namespace_cache(namespaces.__len__)
    if discovery is not None:
        metrics.track_control_planes(injector.plugins, discovery)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything alive now (modules, compiled templates) lives as long as the process: move it
        # out of the collector's sight, so full collections walk only what reviews allocate.
        gc.collect()
        gc.freeze()
        namespaces.start()
        for watch in watches:
            watch.start()
        poller = None
        if certificates is not None:
            poller = asyncio.create_task(_poll_certificates(certificates, cert_poll_seconds))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
            namespaces.stop()
            for watch in watches:
                watch.stop()

    app = WebhookApp(
        title="meshswitch",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    async def healthz(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(_: Request) -> Response:
        checks = {
            "templates": injector.plugins is not None,
            "certificate": certificates is None or certificates.is_valid(),
            "namespaces": namespaces.synced,
            "serving": not drain.draining,
        }
        ready = all(checks.values())
        body = orjson.dumps({"ready": ready, "checks": checks})
        return Response(body, status_code=200 if ready else 503, media_type=JSON)

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    app.mutate = MutateHandler(
        admission,
        metrics=metrics,
        drain=drain,
        max_body_bytes=max_body_bytes,
        review_log=review_log or ReviewLog(),
    )
    # Plain Starlette routes: no request or response model, no validation by FastAPI.
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint, methods=["GET"])
    return app


class ReviewLog:
    """The one JSON line per review, written straight to a file descriptor.

    It bypasses logging's records and handlers (about a tenth of a review's cost) but honours
    the level of the ``meshswitch.review`` logger, so --log-level warning silences it.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd

    def write(self, fields: dict[str, Any]) -> None:
        if not review_logger.isEnabledFor(logging.INFO):
            return
        line = {"time": _now_iso(), "level": "info", "logger": review_logger.name, "msg": "review", **fields}
        try:
            # One write(2) per line: lines from concurrent writers never interleave.
            os.write(self.fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        except OSError:
            pass  # a full or closed log pipe must not fail a review


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


_JSON_HEADER = (b"content-type", b"application/json")
_CLOSE_HEADER = (b"connection", b"close")


class MutateHandler:
    """POST /mutate as a bare ASGI callable: no Request or Response objects, no middleware.

    The body is read raw and handed to the pure wire module; the answer is orjson bytes.
    """

    def __init__(
        self,
        admission: Admission,
        *,
        metrics: Metrics,
        drain: Drain,
        max_body_bytes: int,
        review_log: ReviewLog,
    ) -> None:
        self.admission = admission
        self.metrics = metrics
        self.drain = drain
        self.max_body_bytes = max_body_bytes
        self.log = review_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if scope["method"] != "POST":
            await self._refuse(send, 405, f"{scope['method']} is not allowed on /mutate; POST an AdmissionReview")
            return
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
        if content_type is None or content_type.partition(";")[0].strip().lower() != JSON:
            shown = repr(content_type) if content_type is not None else "none"
            await self._refuse(send, 415, f"Content-Type must be application/json, got {shown}")
            return
        if length is not None:
            if not length.isascii() or not length.isdigit():
                await self._refuse(send, 400, f"Content-Length must be a number, got {length!r}")
                return
            if int(length) > self.max_body_bytes:
                await self._refuse(send, 413, f"body of {length} bytes is over the limit of {self.max_body_bytes}")
                return
        try:
            body = await self._read_body(receive)
        except _ClientGone:
            return  # nobody is left to answer
        if body is None:
            await self._refuse(send, 413, f"body is over the limit of {self.max_body_bytes} bytes")
            return
        try:
            review = wire.parse(body)
        except BadRequest as exc:
            await self._refuse(send, exc.status, str(exc))
            return
        try:
            answer, verdict = await self.admission.answer(review)
            payload = wire.encode(answer)
        except Exception as exc:  # an answer that does not encode is still one review's failure
            answer, verdict = self.admission.internal_error(review, exc)
            payload = wire.encode(answer)
        elapsed = time.perf_counter() - started
        self.metrics.count_review(
            plugins=verdict.plugins, outcome=verdict.outcome, reason=verdict.reason, seconds=elapsed
        )
        self.log.write(
            {
                "uid": review.uid,
                "namespace": review.namespace,
                "pod": review.pod_name,
                "operation": review.operation,
                "kind": review.kind,
                "outcome": verdict.outcome,
                "reason": verdict.reason,
                "plugins": verdict.plugins,
                "dry_run": review.dry_run,
                "duration_ms": round(elapsed * 1000, 3),
            }
        )
        await self._send(send, 200, payload)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The body; None once it passes the limit (a chunked body has no Content-Length to check)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        self.metrics.bad_requests.labels(str(status)).inc()
        self.log.write({"outcome": "bad-request", "status": status, "reason": message})
        await self._send(send, status, wire.error_body(status, message))

    async def _send(self, send: Send, status: int, payload: bytes) -> None:
        headers = [_JSON_HEADER, (b"content-length", str(len(payload)).encode())]
        if self.drain.draining:
            # While draining, each answer closes its connection so clients move to another replica.
            headers.append(_CLOSE_HEADER)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class _ClientGone(Exception):
    """The client went away before sending all of its body."""


class WebhookApp(FastAPI):
    """FastAPI for health and metrics; /mutate goes straight to its bare ASGI handler.

    The shortcut skips FastAPI's middleware stack (error, telemetry, body-limit, exit-stack
    layers), which costs as much as parsing a review.
    """

    mutate: MutateHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mutate":
            await self.mutate(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _poll_certificates(certificates: CertificateReloader, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(certificates.poll)
        except Exception:
            log.exception("certificate poll failed")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain between closing the listener and closing idle connections.

    uvicorn closes idle keep-alive connections at once on shutdown; a request the client had
    already sent on one would be lost. During the drain, connections stay open and every answer
    carries ``Connection: close``, so clients leave on their own.
    """

    def __init__(self, config: uvicorn.Config, *, drain: Drain, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = drain_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        self.drain.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        while self.server_state.connections and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        # Close what is still idle without the TLS goodbye: closing a TLS transport waits for the
        # peer's close_notify, up to 30 s, and a client that is not reading never sends one.
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``meshswitch serve`` takes; ``from_args`` reads ``add_serve_arguments`` flags."""

    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    kubeconfig: Path | None = None
    no_kube: bool = False
    namespace_labels_file: Path | None = None
    fail_open: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cert_poll_seconds: float = 10.0
    drain_seconds: float = 2.0
    keep_alive_seconds: float = DEFAULT_KEEP_ALIVE_SECONDS
    graceful_timeout_seconds: float = 20.0
    template_dirs: tuple[Path, ...] = ()
    values_file: Path | None = None
    config: Config = field(default_factory=Config)
    log_level: str = "info"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeOptions:
        """Raise ConfigError when the flags do not make a server."""
        if args.cert_dir is not None:
            if args.cert_file is not None or args.key_file is not None:
                raise ConfigError("give --cert-dir, or --cert-file and --key-file, not both")
            cert_file, key_file = args.cert_dir / "tls.crt", args.cert_dir / "tls.key"
        elif args.cert_file is not None and args.key_file is not None:
            cert_file, key_file = args.cert_file, args.key_file
        else:
            raise ConfigError("HTTPS needs a certificate: give --cert-dir, or --cert-file and --key-file")
        if args.namespace_labels_file is not None and args.kubeconfig is not None:
            raise ConfigError("--namespace-labels-file stands in for a cluster; it does not go with --kubeconfig")
        if args.no_kube and args.kubeconfig is not None:
            raise ConfigError("--no-kube and --kubeconfig contradict each other")
        config = Config(
            default_mode=args.default_mode,
            sidecar_style=args.sidecar_style,
            webhook_namespace=args.webhook_namespace,
            extra_ignored_namespaces=frozenset(args.ignore_namespace),
            **({"allowed_registries": tuple(args.allow_registry)} if args.allow_registry else {}),
        )
        return cls(
            cert_file=cert_file,
            key_file=key_file,
            host=args.host,
            port=args.port,
            kubeconfig=args.kubeconfig,
            no_kube=args.no_kube or args.namespace_labels_file is not None,
            namespace_labels_file=args.namespace_labels_file,
            fail_open=args.fail_open,
            max_body_bytes=args.max_body_bytes,
            cert_poll_seconds=args.cert_poll_seconds,
            drain_seconds=args.drain_seconds,
            keep_alive_seconds=args.keep_alive_seconds,
            template_dirs=tuple(args.templates_dir),
            values_file=args.values,
            config=config,
            log_level=args.log_level,
        )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``meshswitch serve`` (and ``python -m webhook.server``)."""
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--cert-dir", type=Path, help="directory holding tls.crt and tls.key (a Secret volume)")
    tls.add_argument("--cert-file", type=Path, help="serving certificate (PEM), with --key-file")
    tls.add_argument("--key-file", type=Path, help="its private key (PEM)")
    tls.add_argument("--cert-poll-seconds", type=float, default=10.0, help="how often to check the files for a new pair")
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all IPv4)")
    net.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    net.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="larger bodies get 413")
    net.add_argument(
        "--keep-alive-seconds",
        type=float,
        default=DEFAULT_KEEP_ALIVE_SECONDS,
        help="idle connection lifetime; keep it above the apiserver's 90 s",
    )
    net.add_argument(
        "--drain-seconds",
        type=float,
        default=2.0,
        help="after SIGTERM, how long open connections may still send requests",
    )
    cluster = parser.add_argument_group("namespaces")
    cluster.add_argument("--kubeconfig", type=Path, help="kubeconfig to watch namespaces with (default: in-cluster)")
    cluster.add_argument("--no-kube", action="store_true", help="run without a cluster")
    cluster.add_argument(
        "--namespace-labels-file",
        type=Path,
        help="YAML mapping namespace name to labels, instead of a cluster (implies --no-kube)",
    )
    engine = parser.add_argument_group("injection")
    engine.add_argument("--templates-dir", type=Path, action="append", default=[], metavar="DIR", help="extra plugin directory (repeatable)")
    engine.add_argument("--values", type=Path, metavar="FILE", help="installation values: YAML of plugin name to values")
    engine.add_argument("--default-mode", default="native", help="mode when nothing selects one (default: native)")
    engine.add_argument("--sidecar-style", choices=SIDECAR_STYLES, default="native", help="default proxy style")
    engine.add_argument("--webhook-namespace", default="meshswitch-system", help="the webhook's own namespace (never injected)")
    engine.add_argument("--ignore-namespace", action="append", default=[], metavar="NAME", help="another namespace never injected (repeatable)")
    engine.add_argument(
        "--allow-registry",
        action="append",
        default=[],
        metavar="PREFIX",
        help="an image prefix that per-pod image overrides may use, e.g. registry.example.com/mesh (repeatable; "
        "replaces the defaults: the meshes' own registries)",
    )
    engine.add_argument("--fail-open", action="store_true", help="admit a pod without injection when the webhook fails (default: refuse)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={"fields": {...}}`` adds keys to it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def build_namespaces(options: ServeOptions, api: KubeApi | None) -> NamespaceSource:
    if options.namespace_labels_file is not None:
        return StaticNamespaces.from_file(options.namespace_labels_file)
    if api is None:
        return StaticNamespaces()
    return kube_namespace_cache(api)


def build_injector(options: ServeOptions, api: KubeApi | None) -> tuple[Injector, list[ListWatch]]:
    """The engine with its plugins and values; with a cluster, the control-plane watches that feed it."""
    # Imported here: the engine's plugin loader is not needed to import this module (tests, bench).
    from webhook.plugins import load_plugins

    plugins = load_plugins(options.template_dirs)
    if options.values_file is not None:
        plugins = load_values(options.values_file, plugins)
    if api is None:
        return Injector(plugins=plugins, config=options.config), []
    discovery = Discovery(plugins)
    watches: list[ListWatch] = list(control_plane_watches(discovery, api))
    return Injector(plugins=plugins, config=options.config, discovery=discovery), watches


def run(options: ServeOptions) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a graceful stop, 2 for a bad configuration."""
    configure_logging(options.log_level)
    metrics = Metrics()
    try:
        api = None if options.no_kube else KubeApi(options.kubeconfig)
        injector, watches = build_injector(options, api)
        certificates = CertificateReloader(
            options.cert_file,
            options.key_file,
            on_change=lambda pair: _record_certificate(metrics, pair),
            on_failure=lambda _: metrics.certificate_loads.labels("failed").inc(),
        )
        namespaces = build_namespaces(options, api)
    except ConfigError as exc:
        log.error("cannot serve: %s", exc)
        return 2
    drain = Drain()
    app = create_app(
        injector=injector,
        namespaces=namespaces,
        metrics=metrics,
        certificates=certificates,
        fail_open=options.fail_open,
        max_body_bytes=options.max_body_bytes,
        cert_poll_seconds=options.cert_poll_seconds,
        drain=drain,
        watches=watches,
        discovery=injector.discovery,
    )
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        ssl_context_factory=lambda _config, _default: certificates.server_context(),
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=int(options.keep_alive_seconds),
        timeout_graceful_shutdown=int(options.graceful_timeout_seconds),
    )
    server = DrainingServer(config, drain=drain, drain_seconds=options.drain_seconds)
    # uvicorn replays the SIGTERM it caught once it has shut down, which would kill the process
    # with status 143; a no-op handler absorbs the replay, so a graceful stop exits 0.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits on a port it cannot bind or a failed startup
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if server.started else 1


def _record_certificate(metrics: Metrics, pair: LoadedPair) -> None:
    metrics.certificate_expiry.set(pair.not_after.timestamp())
    metrics.certificate_loads.labels("loaded").inc()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webhook.server", description="serve the meshswitch webhook")
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        options = ServeOptions.from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
