"""The webhook's ASGI app: /mutate and /validate (bare ASGI handlers), health, readiness and metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from webhook.cluster.listwatch import ListWatch
from webhook.cluster.namespaces import NamespaceSource
from webhook.engine import review as wire
from webhook.engine.discovery import Discovery
from webhook.engine.injector import Injector
from webhook.server.admission import Admission, Remembered
from webhook.server.answers import DEFAULT_MAX_BYTES as DEFAULT_ANSWER_CACHE_BYTES
from webhook.server.answers import AnswerCache
from webhook.server.endpoint import JSON, Drain
from webhook.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.server.metrics import Metrics
from webhook.server.mutate import MutateHandler
from webhook.server.options import DEFAULT_MAX_BODY_BYTES
from webhook.server.reviewlog import ReviewLog
from webhook.server.tls import CertificateReloader
from webhook.server.validate import NamespaceAdmission, ValidateHandler

log = logging.getLogger("meshswitch.server")


def create_app(
    *,
    injector: Injector,
    namespaces: NamespaceSource,
    metrics: Metrics | None = None,
    certificates: CertificateReloader | None = None,
    fail_open: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    answer_cache_bytes: int = DEFAULT_ANSWER_CACHE_BYTES,
    cert_poll_seconds: float = 10.0,
    drain: Drain | None = None,
    review_log: ReviewLog | None = None,
    watches: Sequence[ListWatch] = (),
    discovery: Discovery | None = None,
) -> WebhookApp:
    """The ASGI app; it starts the namespace cache and the certificate poller in its lifespan."""
    metrics = metrics or Metrics()
    drain = drain or Drain()
    answers: AnswerCache[Remembered] | None = AnswerCache(answer_cache_bytes) if answer_cache_bytes > 0 else None
    admission = Admission(injector=injector, namespaces=namespaces, metrics=metrics, fail_open=fail_open, answers=answers)
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
            app.mutate.log.flush()  # the last turn's review lines

    app = WebhookApp(
        title="meshswitch",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    async def http_error(request: Request, exc: Exception) -> Response:
        # An unknown path or method gets a Status, like every other refusal of ours.
        status = getattr(exc, "status_code", 400)
        message = f"{request.method} {request.url.path[:64]}: {getattr(exc, 'detail', 'refused')}"
        return Response(wire.error_body(status, message), status_code=status, media_type=JSON)

    app.add_exception_handler(StarletteHTTPException, http_error)

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
    app.validate = ValidateHandler(
        NamespaceAdmission(injector=injector, fail_open=fail_open),
        metrics=metrics,
        drain=drain,
        max_body_bytes=max_body_bytes,
        review_log=app.mutate.log,
    )
    # Plain Starlette routes: no request or response model, no validation by FastAPI.
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint, methods=["GET"])
    return app


class WebhookApp(FastAPI):
    """FastAPI for health and metrics; /mutate goes straight to its bare ASGI handler.

    The shortcut skips FastAPI's middleware stack (error, telemetry, body-limit, exit-stack
    layers), which costs as much as parsing a review.
    """

    mutate: MutateHandler
    validate: ValidateHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mutate":
            await self.mutate(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == "/validate":
            await self.validate(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _poll_certificates(certificates: CertificateReloader, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(certificates.poll)
        except Exception:
            log.exception("certificate poll failed")
