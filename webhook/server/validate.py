"""POST /validate: the validating webhook on Namespace CREATE and UPDATE (failurePolicy Ignore).

It is built from the same plumbing as /mutate (webhook/server/endpoint.py: limits, logging,
metrics); the verdict itself is webhook/engine/validate.py's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from webhook.engine import review as wire
from webhook.engine.errors import BadRequest
from webhook.engine.injector import Injector
from webhook.engine.validate import namespace_objects, validate_namespace
from webhook.server.endpoint import ReviewEndpoint
from webhook.server.verdict import ReviewFacts, Verdict, internal_error

CHECKED_OPERATIONS = ("CREATE", "UPDATE")


@dataclass(frozen=True, slots=True)
class NamespaceReview(wire.Review):
    """A review of a Namespace write: the envelope's facts and the Namespace object."""

    namespace_object: dict[str, Any] | None = None
    old_namespace_object: dict[str, Any] | None = None  # on UPDATE, the Namespace it replaces


def parse_namespace_review(body: bytes) -> wire.Review:
    """The review in the body; a Namespace CREATE or UPDATE keeps its Namespace (and the old one)."""
    review = wire.parse(body)
    if review.kind != "Namespace" or review.group or review.operation not in CHECKED_OPERATIONS:
        return review
    fields = {f.name: getattr(review, f.name) for f in dataclasses.fields(review)}
    obj, old = namespace_objects(body)
    return NamespaceReview(**fields, namespace_object=obj, old_namespace_object=old)


class NamespaceAdmission:
    """Answers Namespace reviews: refuse a label that would deny every pod, warn about unknown keys."""

    def __init__(self, *, injector: Injector, fail_open: bool = False) -> None:
        self.injector = injector
        self.fail_open = fail_open

    def answer(self, review: wire.Review) -> tuple[bytes, Verdict]:
        """The encoded answer; a failure inside the verdict is this review's internal error."""
        answer, verdict = self._validate(review)
        return wire.encode(answer), verdict

    def _validate(self, review: wire.Review) -> tuple[wire.AdmissionReview, Verdict]:
        obj = review.namespace_object if isinstance(review, NamespaceReview) else None
        if obj is None:
            return wire.allow(review), Verdict("skipped", "not-namespace-write")
        try:
            old = review.old_namespace_object if isinstance(review, NamespaceReview) else None
            verdict = validate_namespace(obj, plugins=self.injector.plugins, config=self.injector.config, old=old)
        except Exception as exc:
            return internal_error(review, exc, fail_open=self.fail_open)
        if not verdict.allowed:
            answer = wire.deny(review, message=verdict.message, code=400, reason="BadRequest")
            return answer, Verdict("denied", verdict.code)
        return wire.allow(review, warnings=verdict.warnings), Verdict("allowed", verdict.code)


class ValidateHandler(ReviewEndpoint[NamespaceAdmission]):
    """POST /validate as a bare ASGI callable; a large body is parsed on the side lane."""


    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        body = await self._accept(scope, receive, send)
        if body is None:
            return
        try:
            if len(body) > self.lane_bytes:
                review = await asyncio.get_running_loop().run_in_executor(self.lane, parse_namespace_review, body)
            else:
                review = parse_namespace_review(body)
        except BadRequest as exc:
            await self._refuse(send, exc.status, str(exc))
            return
        try:
            payload, verdict = self.admission.answer(review)
        except Exception as exc:  # an answer that does not encode is still one review's failure
            answer, verdict = internal_error(review, exc, fail_open=self.admission.fail_open)
            payload = wire.encode(answer)
        await self._finish(send, started, review.uid, ReviewFacts.of(review), verdict, payload)
