"""Running the webhook: the engine and caches it needs, uvicorn with hot-reloaded TLS, a drain on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
import socket
import sys
from collections.abc import Sequence

import uvicorn

from webhook.cluster.discovery_watch import control_plane_watches
from webhook.cluster.client import KubeApi, connect
from webhook.cluster.listwatch import ListWatch
from webhook.cluster.namespaces import NamespaceSource, StaticNamespaces, kube_namespace_cache
from webhook.engine.discovery import Discovery
from webhook.engine.errors import ConfigError
from webhook.engine.injector import Injector
from webhook.engine.values import load_values
from webhook.server.app import create_app
from webhook.server.endpoint import Drain
from webhook.server.logs import configure_logging
from webhook.server.metrics import Metrics
from webhook.server.options import ServeOptions, add_serve_arguments
from webhook.server.protocol import BoundedHttpProtocol, Limits, bounded_protocol
from webhook.server.tls import CertificateReloader, LoadedPair
from webhook.server.workers import supervise

log = logging.getLogger("meshswitch.server")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain between closing the listener and closing idle connections.

    uvicorn closes idle keep-alive connections at once on shutdown; a request the client had
    already sent on one would be lost. During the drain, connections stay open and every answer
    carries ``Connection: close``, so clients leave on their own.
    """

    def __init__(
        self, config: uvicorn.Config, *, drain: Drain, drain_seconds: float, handshake_seconds: float = 5.0
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = drain_seconds
        self.handshake_seconds = handshake_seconds

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn does not pass the TLS timeouts to create_server: asyncio's defaults would let a
        # client that never finishes its handshake hold a socket for 60 s, and a peer that never
        # answers our close_notify hold one for 30 s.
        loop = asyncio.get_running_loop()
        create_server = loop.create_server
        loop.create_server = functools.partial(  # type: ignore[method-assign]
            create_server, ssl_handshake_timeout=self.handshake_seconds, ssl_shutdown_timeout=self.handshake_seconds
        )
        try:
            await super().startup(sockets)
        finally:
            del loop.create_server

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        self.drain.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        while self.server_state.connections and loop.time() < deadline and not self.force_exit:
            await asyncio.sleep(0.05)
        # A request still arriving (a client stalled mid-headers or mid-body) is not waited for:
        # its task would otherwise hold the exit until the graceful timeout.
        for connection in list(self.server_state.connections):
            if isinstance(connection, BoundedHttpProtocol):
                connection.abort_stalled()
        # Close what is still idle without the TLS goodbye: closing a TLS transport waits for the
        # peer's close_notify, and a client that is not reading never sends one.
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


def build_namespaces(options: ServeOptions, api: KubeApi | None) -> NamespaceSource:
    if options.namespace_labels_file is not None:
        return StaticNamespaces.from_file(options.namespace_labels_file)
    if api is None:
        return StaticNamespaces()
    return kube_namespace_cache(api)


def build_injector(options: ServeOptions, api: KubeApi | None) -> tuple[Injector, list[ListWatch]]:
    """The engine with its plugins and values; with a cluster, the control-plane watches that feed it."""
    # Imported here: the engine's plugin loader is not needed to import this module (tests, bench).
    from webhook.engine.plugins import load_plugins

    plugins = load_plugins(options.template_dirs)
    if options.values_file is not None:
        plugins = load_values(options.values_file, plugins)
    discovery = Discovery(plugins)
    for warning in discovery.unreported_warnings():  # the pinned versions; discovered ones: the watches
        log.warning("%s", warning)
    if api is None:
        return Injector(plugins=plugins, config=options.config), []
    watches: list[ListWatch] = list(control_plane_watches(discovery, api))
    return Injector(plugins=plugins, config=options.config, discovery=discovery), watches


def run(options: ServeOptions) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a graceful stop, 2 for a bad configuration."""
    if options.workers > 1:
        configure_logging(options.log_level)
        return supervise(options.workers, options.host, options.port, lambda sock: serve(options, sock))
    return serve(options, None)


def serve(options: ServeOptions, sock: socket.socket | None) -> int:
    """One server process: on ``sock`` when a supervisor made it, else on the options' address."""
    configure_logging(options.log_level)
    metrics = Metrics()
    try:
        api = None if options.no_kube else connect(options.kubeconfig, default_kubeconfig=False)
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
        answer_cache_bytes=options.answer_cache_bytes,
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
        http=bounded_protocol(
            Limits(
                max_header_bytes=options.max_header_bytes,
                max_header_line_bytes=options.max_header_line_bytes,
                read_timeout_seconds=options.read_timeout_seconds,
            )
        ),
        lifespan="on",
        ssl_context_factory=lambda _config, _default: certificates.server_context(),
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,  # nothing reads the client's address; no X-Forwarded-For layer per request
        timeout_keep_alive=int(options.keep_alive_seconds),
        timeout_graceful_shutdown=int(options.graceful_timeout_seconds),
    )
    # Large reviews run on a side thread (lane.LANE_BYTES); a 1 ms switch interval (Python's default
    # is 5 ms) hands the GIL back to the event loop soon enough that normal reviews barely wait.
    sys.setswitchinterval(0.001)
    server = DrainingServer(
        config, drain=drain, drain_seconds=options.drain_seconds, handshake_seconds=options.read_timeout_seconds
    )
    # uvicorn replays the SIGTERM it caught once it has shut down, which would kill the process
    # with status 143; a no-op handler absorbs the replay, so a graceful stop exits 0.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        server.run(sockets=[sock] if sock is not None else None)
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
