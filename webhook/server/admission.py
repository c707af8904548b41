"""A parsed pod review answered: the engine's decision mapped onto the wire, failing closed, and the
answer kept in the answer cache for the next identical body."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from webhook.cluster.namespaces import NamespaceSource
from webhook.engine import review as wire
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector, NamespaceMeta
from webhook.server.answers import AnswerCache, BodyKey, Entry, body_key, make_entry, split
from webhook.server.metrics import Metrics
from webhook.server.verdict import ReviewFacts, Verdict, internal_error


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
        return body_key(body) if self.answers is not None else None

    def recall(self, key: bytes) -> Entry[Remembered] | None:
        """The cached answer for this key, if the namespace and the discovered values are unchanged."""
        assert self.answers is not None
        entry = self.answers.get(key)
        if entry is None or not entry.holds_for(self.namespaces.lookup(entry.namespace_name), self._generation()):
            return None
        self.metrics.count_answer_cache_hit()
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
            answer, verdict = internal_error(review, exc, fail_open=self.fail_open)
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
        answer = split(payload, review.uid, Remembered(verdict, ReviewFacts.of(review)), key.token)
        if answer is None:
            return
        entry = make_entry(
            answer, key=key.key, namespace_name=review.namespace, namespace=namespace, generation=generation, extra=answer.verdict.size
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
