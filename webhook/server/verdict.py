"""What became of one review (its verdict and the facts its log line names), and the answer to a
review that failed inside the webhook."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from webhook.engine import review as wire
from webhook.engine.errors import ConfigError, MeshswitchError

log = logging.getLogger("meshswitch.server")


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


def internal_error(review: wire.Review, exc: Exception, *, fail_open: bool) -> tuple[wire.AdmissionReview, Verdict]:
    """The answer to a review that failed inside the webhook: refused (or, with --fail-open, admitted
    untouched) with a message that names no server file."""
    log.exception("review %s failed", review.uid)
    # A bug's text may name server files (a template's path and line): it goes to the log, and
    # the answer only says where to look. Our own operational errors (the API server did not
    # answer) are written for the user and are quoted.
    if isinstance(exc, MeshswitchError) and not isinstance(exc, ConfigError):
        detail = f"{type(exc).__name__}: {exc}"[:300]
    else:
        detail = f"{type(exc).__name__}; the webhook's log has the details for review {review.uid[:64]}"
    verdict = Verdict("error", "internal-error")
    if fail_open:
        warning = f"meshswitch: internal error, pod admitted without injection (--fail-open): {detail}"
        return wire.allow(review, warnings=[warning]), verdict
    message = f"meshswitch: internal error, pod refused because the webhook fails closed: {detail}"
    return wire.deny(review, message=message, code=500, reason="InternalError"), verdict
