"""The bare ASGI plumbing /mutate and /validate share: the request's checks and its body under the
limit, refusals as HTTP 4xx, the review's metrics and log line, and the answer's bytes."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

from starlette.types import Receive, Scope, Send

from webhook.engine import review as wire
from webhook.server.lane import LANE_BYTES, SideLane
from webhook.server.metrics import Metrics
from webhook.server.reviewlog import ReviewLog
from webhook.server.verdict import ReviewFacts, Verdict

JSON = "application/json"
_JSON_HEADER = (b"content-type", b"application/json")
_CLOSE_HEADER = (b"connection", b"close")

A = TypeVar("A")  # what answers the endpoint's reviews (pod Admission, NamespaceAdmission)


class Drain:
    """Set when shutdown starts: answers then close their connection and /readyz fails."""

    def __init__(self) -> None:
        self.draining = False


class ReviewEndpoint(Generic[A]):
    """What a review endpoint is built from: no Request or Response objects, no middleware.

    An endpoint's ``__call__`` takes the body from ``_accept`` (None once it has answered), answers
    it, and ends with ``_finish``. A body over ``lane_bytes`` (far above what a pod the API server
    admits usually takes) is the endpoint's to parse on ``lane``, the one paced side thread, so that
    its author pays the time, not every other review queued on the event loop.
    """

    def __init__(
        self,
        admission: A,
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

    async def _accept(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The body of a POST of JSON within the limit; else the refusal is sent and None returned."""
        if scope["method"] != "POST":
            await self._refuse(send, 405, f"{scope['method']} is not allowed on {scope['path']}; POST an AdmissionReview")
            return None
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
        if content_type is None or content_type.partition(";")[0].strip().lower() != JSON:
            shown = repr(content_type) if content_type is not None else "none"
            await self._refuse(send, 415, f"Content-Type must be application/json, got {shown}")
            return None
        if length is not None:
            if not length.isascii() or not length.isdigit():
                await self._refuse(send, 400, f"Content-Length must be a number, got {length!r}")
                return None
            if int(length) > self.max_body_bytes:
                await self._refuse(send, 413, f"body of {length} bytes is over the limit of {self.max_body_bytes}")
                return None
        # The body; refused once it passes the limit (a chunked body has no Content-Length to check).
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # nobody is left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(send, 413, f"body is over the limit of {self.max_body_bytes} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

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
