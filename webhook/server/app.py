"""The webhook's ASGI app: /mutate (a bare ASGI handler), health, readiness and metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

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
from webhook.engine.errors import BadRequest, ConfigError, MeshswitchError, PodDenied
from webhook.engine.injector import Injector, NamespaceMeta
from webhook.server.answers import DEFAULT_MAX_BYTES as DEFAULT_ANSWER_CACHE_BYTES
from webhook.server.answers import AnswerCache, BodyKey, Entry, digest_body, make_entry, split
from webhook.server.logs import iso_time
from webhook.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.server.metrics import Metrics
from webhook.server.options import DEFAULT_MAX_BODY_BYTES
from webhook.server.tls import CertificateReloader

log = logging.getLogger("meshswitch.server")
review_logger = logging.getLogger("meshswitch.review")

JSON = "application/json"


@dataclass(frozen=True)
class Verdict:
    """What became of one review, for the log line and the metrics."""

    outcome: str  # injected, skipped, denied, error; allowed (a Namespace on /validate)
    reason: str
    plugins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """What the review's log line names, beside its uid and verdict."""

    namespace: str
    pod: str
    operation: str
    kind: str
    dry_run: bool

    @classmethod
    def of(cls, review: wire.Review) -> ReviewFacts:
        return cls(review.namespace, review.pod_name, review.operation, review.kind, review.dry_run)


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a cached answer replays without parsing: the verdict and the log line's facts."""

    verdict: Verdict
    facts: ReviewFacts

    @property
    def size(self) -> int:
        """The bytes of the objects it keeps alive (shared strings counted too: an upper bound)."""
        facts, verdict = self.facts, self.verdict
        strings = (facts.namespace, facts.pod, facts.operation, facts.kind, verdict.outcome, verdict.reason, *verdict.plugins)
        objects = (self, facts, verdict, verdict.plugins)
        return sum(map(sys.getsizeof, objects)) + sum(map(sys.getsizeof, strings))


class Admission:
    """Answers a parsed review: the engine's decision, mapped onto the wire, failing closed."""

    def __init__(
        self,
        *,
        injector: Injector,
        namespaces: NamespaceSource,
        metrics: Metrics,
        fail_open: bool = False,
        answers: AnswerCache[Remembered] | None = None,
    ) -> None:
        self.injector = injector
        self.namespaces = namespaces
        self.metrics = metrics
        self.fail_open = fail_open
        self.answers = answers
        if answers is not None:
            metrics.answer_cache_bytes.set_function(lambda: answers.bytes)

    def key_body(self, body: bytes) -> BodyKey | None:
        """The cache key of a body the apiserver laid out; None without a cache or for another layout."""
        return digest_body(body) if self.answers is not None else None

    def recall(self, key: bytes) -> Entry[Remembered] | None:
        """The cached answer for this key, if the namespace and the discovered values are unchanged."""
        assert self.answers is not None
        entry = self.answers.get(key)
        if entry is None or not entry.holds_for(self.namespaces.lookup(entry.namespace_name), self._generation()):
            return None
        self.metrics.answer_cache_hits.inc()
        return entry

    async def answer(self, review: wire.Review, *, lane: ThreadPoolExecutor | None = None) -> tuple[bytes, Verdict]:
        """The encoded answer; never raises: whatever goes wrong with one review is that review's answer.

        With a ``lane``, the engine's work runs on that thread instead of the event loop.
        """
        return await self.answer_and_remember(review, None, lane=lane)

    async def answer_and_remember(
        self, review: wire.Review, key: BodyKey | None, *, lane: ThreadPoolExecutor | None = None
    ) -> tuple[bytes, Verdict]:
        """As ``answer``, and a pod's answer is cached under ``key`` (its body's)."""
        if review.pod is None:
            return wire.encode(wire.allow(review)), Verdict("skipped", wire.NOT_POD_CREATE)
        try:
            namespace = self.namespaces.lookup(review.namespace)
            if namespace is None:
                self.metrics.namespace_misses.inc()
                namespace = await asyncio.to_thread(self.namespaces.fetch, review.namespace)
            if lane is not None:
                return await asyncio.get_running_loop().run_in_executor(lane, self._answer_pod, review, namespace, key)
            return self._answer_pod(review, namespace, key)
        except Exception as exc:
            answer, verdict = self.internal_error(review, exc)
            return wire.encode(answer), verdict

    def _answer_pod(self, review: wire.Review, namespace: NamespaceMeta, key: BodyKey | None) -> tuple[bytes, Verdict]:
        """From the engine; cached under ``key`` (errors raise, so they never are)."""
        # Read before injecting: values discovered meanwhile make the entry stale, never wrong.
        generation = self._generation()
        answer, verdict = self._inject(review, namespace)
        payload = wire.encode(answer)
        if key is not None:
            self._remember(key, review, namespace, generation, payload, verdict)
        return payload, verdict

    def _remember(
        self, key: BodyKey, review: wire.Review, namespace: NamespaceMeta, generation: int, payload: bytes, verdict: Verdict
    ) -> None:
        # A body whose parsed uid is not its first one (a duplicated key, which the apiserver never
        # writes) would answer hits with the wrong uid.
        if self.answers is None or review.uid != key.uid or not self.answers.admits(key.key):
            return
        answer = split(payload, review.uid, Remembered(verdict, ReviewFacts.of(review)))
        if answer is None:
            return
        entry = make_entry(
            answer, namespace_name=review.namespace, namespace=namespace, generation=generation, extra=answer.verdict.size
        )
        self.answers.put(key.key, entry)

    def _generation(self) -> int:
        discovery = self.injector.discovery
        return discovery.generation if discovery is not None else 0

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
        # A bug's text may name server files (a template's path and line): it goes to the log, and
        # the answer only says where to look. Our own operational errors (the API server did not
        # answer) are written for the user and are quoted.
        if isinstance(exc, MeshswitchError) and not isinstance(exc, ConfigError):
            detail = f"{type(exc).__name__}: {exc}"[:300]
        else:
            detail = f"{type(exc).__name__}; the webhook's log has the details for review {review.uid[:64]}"
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
    from webhook.server.validate import NamespaceAdmission, ValidateHandler  # it builds on this module

    app.validate = ValidateHandler(
        NamespaceAdmission(injector=injector, namespaces=namespaces, metrics=metrics, fail_open=fail_open),
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


class ReviewLog:
    """The one JSON line per review, written straight to a file descriptor.

    It bypasses logging's records and handlers (about a tenth of a review's cost) but honours
    the level of the ``meshswitch.review`` logger, so --log-level warning silences it.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.pid = os.getpid()  # which worker answered, under --workers

    def write(self, fields: dict[str, Any]) -> None:
        if not review_logger.isEnabledFor(logging.INFO):
            return
        line = {"time": iso_time(time.time()), "level": "info", "logger": review_logger.name, "msg": "review", "pid": self.pid, **fields}
        try:
            # One write(2) per line: lines from concurrent writers never interleave.
            os.write(self.fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        except OSError:
            pass  # a full or closed log pipe must not fail a review


# Reviews of pods the API server sends are mostly under 64 KiB, with a few hundred characters of
# annotations; a larger body, or long annotations (per-pod settings), goes to the side lane.
LANE_BYTES = 64 * 1024
LANE_ANNOTATION_CHARS = 4 * 1024
# The side lane rests three times as long as it works: large reviews get at most a quarter of the CPU.
LANE_REST_RATIO = 3.0


def _annotation_chars(pod: dict[str, Any] | None) -> int:
    annotations = (pod.get("metadata") or {}).get("annotations") if pod is not None else None
    return sum(map(len, annotations.values())) if isinstance(annotations, dict) else 0


_JSON_HEADER = (b"content-type", b"application/json")
_CLOSE_HEADER = (b"connection", b"close")


class SideLane(ThreadPoolExecutor):
    """One thread for large reviews, which rests ``rest_ratio`` times as long as it worked.

    Large reviews queue among themselves, one at a time, and take at most 1 / (1 + rest_ratio)
    of the CPU: a client that sends nothing but maximal settings slows its own reviews, not the
    others'. Resting is a sleep, which hands the GIL to the event loop.
    """

    def __init__(self, rest_ratio: float = LANE_REST_RATIO) -> None:
        super().__init__(max_workers=1, thread_name_prefix="large-review")
        self.rest_ratio = rest_ratio
        self._free_at = 0.0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(self._paced, fn, *args, **kwargs)

    def _paced(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        wait = self._free_at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            finished = time.perf_counter()
            self._free_at = finished + (finished - started) * self.rest_ratio


class MutateHandler:
    """POST /mutate as a bare ASGI callable: no Request or Response objects, no middleware.

    The body is read raw and handed to the pure wire module; the answer is orjson bytes. A body
    over ``lane_bytes`` (far above what a pod the API server admits usually takes) is parsed and
    injected on one side thread, so that a pod carrying maximal settings costs its own author
    the time, not every other review queued on the event loop.
    """

    def __init__(
        self,
        admission: Admission,
        *,
        metrics: Metrics,
        drain: Drain,
        max_body_bytes: int,
        review_log: ReviewLog,
        lane_bytes: int = LANE_BYTES,
    ) -> None:
        self.admission = admission
        self.metrics = metrics
        self.drain = drain
        self.max_body_bytes = max_body_bytes
        self.log = review_log
        self.lane_bytes = lane_bytes
        self.lane = SideLane()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if scope["method"] != "POST":
            await self._refuse(send, 405, f"{scope['method']} is not allowed on {scope['path']}; POST an AdmissionReview")
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
        large = len(body) > self.lane_bytes
        key = None if large else self.admission.key_body(body)
        if key is not None:
            entry = self.admission.recall(key.key)
            if entry is not None:
                remembered = entry.answer.verdict
                payload = entry.answer.payload(key.uid)
                await self._finish(send, started, key.uid, remembered.facts, remembered.verdict, payload)
                return
        try:
            if large:
                review = await asyncio.get_running_loop().run_in_executor(self.lane, self.parse, body)
            else:
                review = self.parse(body)
        except BadRequest as exc:
            await self._refuse(send, exc.status, str(exc))
            return
        lane = self.lane if large or _annotation_chars(review.pod) > LANE_ANNOTATION_CHARS else None
        try:
            if key is None:
                payload, verdict = await self.admission.answer(review, lane=lane)
            else:
                payload, verdict = await self.admission.answer_and_remember(review, key, lane=lane)
        except Exception as exc:  # an answer that does not encode is still one review's failure
            answer, verdict = self.admission.internal_error(review, exc)
            payload = wire.encode(answer)
        await self._finish(send, started, review.uid, ReviewFacts.of(review), verdict, payload)

    async def _finish(
        self, send: Send, started: float, uid: str, facts: ReviewFacts, verdict: Verdict, payload: bytes
    ) -> None:
        """Count the review, write its log line and send its answer."""
        elapsed = time.perf_counter() - started
        self.metrics.count_review(
            plugins=verdict.plugins, outcome=verdict.outcome, reason=verdict.reason, seconds=elapsed
        )
        self.log.write(
            {
                "uid": uid,
                "namespace": facts.namespace,
                "pod": facts.pod,
                "operation": facts.operation,
                "kind": facts.kind,
                "outcome": verdict.outcome,
                "reason": verdict.reason,
                "plugins": verdict.plugins,
                "dry_run": facts.dry_run,
                "duration_ms": round(elapsed * 1000, 3),
            }
        )
        await self._send(send, 200, payload)

    def parse(self, body: bytes) -> wire.Review:
        """The review in the body; /validate's handler keeps more of it."""
        return wire.parse(body)

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
    validate: MutateHandler

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
