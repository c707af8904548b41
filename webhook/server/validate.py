"""POST /validate: the validating webhook on Namespace CREATE and UPDATE (failurePolicy Ignore).

It rides on /mutate's handler (same limits, logging and metrics); only the parse and the answer
differ. The verdict itself is webhook/engine/validate.py's.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from webhook.engine import review as wire
from webhook.engine.validate import namespace_objects, validate_namespace
from webhook.server.app import Admission, MutateHandler, Verdict

CHECKED_OPERATIONS = ("CREATE", "UPDATE")


@dataclass(frozen=True, slots=True)
class NamespaceReview(wire.Review):
    """A review of a Namespace write: the envelope's facts and the Namespace object."""

    namespace_object: dict[str, Any] | None = None
    old_namespace_object: dict[str, Any] | None = None  # on UPDATE, the Namespace it replaces


class NamespaceAdmission(Admission):
    """Answers Namespace reviews: refuse a label that would deny every pod, warn about unknown keys."""

    async def answer(self, review: wire.Review, *, lane: ThreadPoolExecutor | None = None) -> tuple[bytes, Verdict]:
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
            return self.internal_error(review, exc)
        if not verdict.allowed:
            answer = wire.deny(review, message=verdict.message, code=400, reason="BadRequest")
            return answer, Verdict("denied", verdict.code)
        return wire.allow(review, warnings=verdict.warnings), Verdict("allowed", verdict.code)


class ValidateHandler(MutateHandler):
    """POST /validate: MutateHandler's plumbing with a parse that keeps the Namespace."""

    def parse(self, body: bytes) -> wire.Review:
        review = wire.parse(body)
        if review.kind != "Namespace" or review.group or review.operation not in CHECKED_OPERATIONS:
            return review
        fields = {f.name: getattr(review, f.name) for f in dataclasses.fields(review)}
        obj, old = namespace_objects(body)
        return NamespaceReview(**fields, namespace_object=obj, old_namespace_object=old)
