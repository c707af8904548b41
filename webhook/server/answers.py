"""One answer for identical reviews: a rollout's pods reach the webhook byte-identical (apart from
fields that do not exist yet at CREATE), so the finished answer of the first is the answer of the
rest, with only the request's uid replaced.

The key is a digest of everything the decision and the rendering read: the pod, the review's
apiVersion, the namespace's name, labels and annotations, and the generation of the discovered
control-plane values (the plugins and the config are fixed for the process). The cache is bounded
in bytes and forgets the least recently used answers first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

from webhook.engine.kube import NamespaceMeta, Pod

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_UID_KEY = b'"uid":'
_ENTRY_OVERHEAD = 200  # the entry's objects, beside its payload bytes

V = TypeVar("V")


@dataclass(frozen=True)
class Answer(Generic[V]):
    """An encoded answer cut around its uid, and what it said (for logs and metrics)."""

    prefix: bytes
    suffix: bytes
    verdict: V

    def payload(self, uid: str) -> bytes:
        return self.prefix + orjson.dumps(uid) + self.suffix

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.suffix) + _ENTRY_OVERHEAD


def split(payload: bytes, uid: str, verdict: V) -> Answer[V] | None:
    """The answer cut around its one `"uid":"..."`; None if that is not found exactly once."""
    marker = _UID_KEY + orjson.dumps(uid)
    parts = payload.split(marker)
    if len(parts) != 2:
        return None
    return Answer(parts[0] + _UID_KEY, parts[1], verdict)


def review_key(*, pod: Pod, api_version: str, namespace: NamespaceMeta, generation: int) -> bytes:
    """The digest of what deciding and rendering this pod read."""
    digest = hashlib.blake2b(orjson.dumps(pod), digest_size=20)
    context = (api_version, namespace.name, namespace.labels, namespace.annotations, generation)
    digest.update(orjson.dumps(context, option=orjson.OPT_SORT_KEYS))
    return digest.digest()


class AnswerCache(Generic[V]):
    """Answers by review key, least recently used first out, at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, *, on_evict: Callable[[], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: OrderedDict[bytes, Answer[V]] = OrderedDict()
        self._on_evict = on_evict
        # Large reviews are answered on a side thread (see MutateHandler), small ones on the loop.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: bytes) -> Answer[V] | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: bytes, answer: Answer[V]) -> None:
        # One answer may take at most an eighth of the budget, so a few large pods never
        # flush the answers of a whole rollout.
        if answer.size > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._answers:
                return
            self._answers[key] = answer
            self.bytes += answer.size
            while self.bytes > self.max_bytes:
                _, evicted = self._answers.popitem(last=False)
                self.bytes -= evicted.size
                if self._on_evict is not None:
                    self._on_evict()
