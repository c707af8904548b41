"""POST /mutate: a pod review answered from the answer cache, or parsed and handed to Admission."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from webhook.engine import review as wire
from webhook.engine.errors import BadRequest
from webhook.server.admission import Admission
from webhook.server.endpoint import ReviewEndpoint
from webhook.server.lane import LANE_ANNOTATION_CHARS
from webhook.server.verdict import ReviewFacts, internal_error


def _annotation_chars(pod: dict[str, Any] | None) -> int:
    annotations = (pod.get("metadata") or {}).get("annotations") if pod is not None else None
    return sum(map(len, annotations.values())) if isinstance(annotations, dict) else 0


class MutateHandler(ReviewEndpoint[Admission]):
    """POST /mutate as a bare ASGI callable.

    The body is read raw and handed to the pure wire module; the answer is orjson bytes. A large
    body, or a pod with long annotations (per-pod settings), is parsed and injected on the side lane.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        body = await self._accept(scope, receive, send)
        if body is None:
            return
        large = len(body) > self.lane_bytes
        key = None if large else self.admission.key_body(body)
        if key is not None:
            entry = self.admission.recall(key.key)
            if entry is not None:
                remembered = entry.answer.verdict
                payload = entry.answer.payload(key.uid, key.token)
                await self._finish(send, started, key.uid, remembered.facts, remembered.verdict, payload)
                return
        try:
            if large:
                review = await asyncio.get_running_loop().run_in_executor(self.lane, wire.parse, body)
            else:
                review = wire.parse(body)
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
            answer, verdict = internal_error(review, exc, fail_open=self.admission.fail_open)
            payload = wire.encode(answer)
        await self._finish(send, started, review.uid, ReviewFacts.of(review), verdict, payload)
