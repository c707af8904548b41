"""One answer for identical reviews: a rollout's pods reach the webhook identical apart from the
request's uid and what the API server writes into each pod (the token volume's random name, the
time in managedFields), so the finished answer of the first is the answer of the rest, with only
those replaced (docs/server.md says when they differ).

The key is the raw body without its uid, with managedFields' times blanked and the pod's token
volume name replaced by a placeholder, taken before anything is parsed: a hit costs those cuts and
a dictionary lookup (Python's keyed hash of the bytes and, on a match, their comparison). The
kube-apiserver serialises an AdmissionReview from its Go struct, so the body always begins with
kind, apiVersion and the request's uid, in that order; only a body that begins exactly so
(`body_key`) is cached, any other is parsed and answered fresh.

What the answer reads outside the body is kept beside it (the namespace's labels and annotations,
the generation of the discovered control-plane values) and compared on every hit. The plugins and
the config are fixed for the process. The cache is bounded in bytes and forgets the least recently
used answers first. An answer is stored on the second sight of its body only: the first is
remembered by its key alone, so bodies that never come back cost no answer's bytes.
"""

from __future__ import annotations

import binascii
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import orjson

from webhook.engine.kube import NamespaceMeta

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# A key seen once is remembered by its hash: an int (32 bytes) and its OrderedDict slot and link
# (105 bytes, measured with tracemalloc on CPython 3.11); the keys seen once take at most a
# sixteenth of the budget, and never more than 1 MiB (about 7,500 keys).
SEEN_KEY_BYTES = 140
SEEN_MAX_BYTES = 1024 * 1024
_UID_KEY = b'"uid":'

# Anchored at the body's first byte, so the uid is the top-level request's, never a string inside
# the pod. Go's TypeMeta writes kind before apiVersion; the other order is accepted too. The uid's
# characters need no JSON escape, so its raw bytes are exactly orjson.dumps(uid). The four
# prefixes before the uid differ within their common length, so the bytes around the uid name
# their split point and joining them back to back is unambiguous.
_VERSION = rb'"admission\.k8s\.io/v1(?:beta1)?"'
_ENVELOPE = re.compile(
    rb'\{(?:"kind":"AdmissionReview","apiVersion":' + _VERSION + rb'|"apiVersion":' + _VERSION + rb',"kind":"AdmissionReview")'
    rb',"request":\{"uid":"([A-Za-z0-9-]{1,128})",'
)

# The ServiceAccount admission plugin names the projected token volume of every pod that mounts its
# token kube-api-access-<5 random characters> (utilrand.String(5)), in spec.volumes and in each
# container's volumeMounts. Its characters never need a JSON escape.
_TOKEN_PREFIX = b"kube-api-access-"
_TOKEN_LENGTH = len(b"kube-api-access-xxxxx")
_QUOTED_TOKEN = re.compile(rb'"kube-api-access-[a-z0-9]{5}"')
# A ManagedFieldsEntry's time, to the second. The API server writes a struct's fields in their
# order and a map's keys sorted, so "time" followed by "fieldsType" is a ManagedFieldsEntry's and
# nothing else's; the engine never reads managedFields (wire.parse drops them).
_TIME_KEY = b',"time":"'
_FIELDS_TYPE_KEY = b'","fieldsType":'
_SPEC_KEY = b'"spec":{'
# Raw control characters never occur in JSON text: the placeholders cannot be a body's own bytes.
_TOKEN_PLACEHOLDER = b"\0" * _TOKEN_LENGTH
_BLANK = b"\0"
_PATCH_KEY = b'"patch":"'

V = TypeVar("V")


class BodyKey(NamedTuple):
    """A cacheable body's key (the body with the uid cut out and the API server's per-pod parts
    replaced), the request's uid it left out, and the pod's token volume name it replaced (None
    when the pod has none)."""

    key: bytes
    uid: str
    token: bytes | None = None


def body_key(body: bytes) -> BodyKey | None:
    """The key of a body laid out as the apiserver writes it; None for any other layout.

    The key is the body's own bytes, cut: a dict hashes bytes with SipHash (keyed per process) at
    a third of a SHA-256's cost and compares them whole on a match, so keys never collide."""
    match = _ENVELOPE.match(body)
    if match is None:
        return None
    start, end = match.span(1)
    rest = body[end:]
    token = _token_name(rest)
    if token is not None:
        # Wherever it occurs, also inside longer strings: the key then stands for the body under
        # any renaming of that name, and so does the answer (Answer.payload).
        rest = rest.replace(token, _TOKEN_PLACEHOLDER)
    raw = memoryview(rest)
    parts: list[bytes | memoryview] = [memoryview(body)[:start]]
    at = 0
    for begin, stop in _time_values(rest):
        parts += (raw[at:begin], _BLANK)
        at = stop
    parts.append(raw[at:])
    return BodyKey(b"".join(parts), match[1].decode("ascii"), token)


def _token_name(body: bytes) -> bytes | None:
    """The first token volume name in the body (a quoted one: a volume's or a mount's name)."""
    at = body.find(_TOKEN_PREFIX)
    while at >= 0:
        if _QUOTED_TOKEN.match(body, at - 1):
            return body[at : at + _TOKEN_LENGTH]
        at = body.find(_TOKEN_PREFIX, at + len(_TOKEN_PREFIX))
    return None


def _time_values(body: bytes) -> list[tuple[int, int]]:
    """Where each ManagedFieldsEntry's time is, to be blanked: the string value of a "time" key
    right before a "fieldsType" key, looked for in the metadata, before the pod's spec (missing
    one elsewhere merely keeps its time in the key)."""
    cuts = []
    spec = body.find(_SPEC_KEY)
    at = body.find(_FIELDS_TYPE_KEY, 0, spec)
    while at >= 0:
        value = body.rfind(b'"', 0, at) + 1
        if body.endswith(_TIME_KEY, 0, value) and body.find(b"\\", value, at) < 0:
            cuts.append((value, at))
        at = body.find(_FIELDS_TYPE_KEY, at + len(_FIELDS_TYPE_KEY), spec)
    return cuts


@dataclass(frozen=True, slots=True)
class Answer(Generic[V]):
    """An encoded answer cut around its uid, and what it said (for logs and metrics).

    An answer whose patch carries the pod's token volume name (Linkerd's proxy mounts the token
    too) also keeps its patch's JSON cut around each occurrence of the name, in ``patch_parts``:
    ``suffix`` then ends where the patch's base64 begins and ``tail`` follows it."""

    prefix: bytes
    suffix: bytes
    verdict: V
    patch_parts: tuple[bytes, ...] = ()
    tail: bytes = b""

    def payload(self, uid: str, token: bytes | None = None) -> bytes:
        if not self.patch_parts:
            return self.prefix + orjson.dumps(uid) + self.suffix
        assert token is not None  # an equal key replaced a name in this body as in the stored one
        patch = binascii.b2a_base64(token.join(self.patch_parts), newline=False)
        return self.prefix + orjson.dumps(uid) + self.suffix + patch + self.tail

    @property
    def size(self) -> int:
        """The bytes of its own objects (the verdict not counted)."""
        return sum(map(sys.getsizeof, (self, self.prefix, self.suffix, self.tail, self.patch_parts, *self.patch_parts)))


def split(payload: bytes, uid: str, verdict: V, token: bytes | None = None) -> Answer[V] | None:
    """The answer cut around its one `"uid":"..."`, and its patch around ``token`` (the pod's token
    volume name); None if the uid is not found exactly once, or the name is found outside the patch."""
    marker = _UID_KEY + orjson.dumps(uid)
    parts = payload.split(marker)
    if len(parts) != 2:
        return None
    prefix, rest = parts[0] + _UID_KEY, parts[1]
    if token is None:
        return Answer(prefix, rest, verdict)
    if token in prefix:
        return None
    # The response's one "patch" key: inside a JSON string a quote is always escaped.
    start = rest.find(_PATCH_KEY)
    if start < 0:
        return None if token in rest else Answer(prefix, rest, verdict)
    start += len(_PATCH_KEY)
    end = rest.index(b'"', start)
    if token in rest[:start] or token in rest[end:]:
        return None
    patch = binascii.a2b_base64(rest[start:end])
    if token not in patch:
        return Answer(prefix, rest, verdict)
    return Answer(prefix, rest[:start], verdict, tuple(patch.split(token)), rest[end:])


@dataclass(frozen=True, slots=True)
class Entry(Generic[V]):
    """An answer and what it was computed with from outside the body."""

    answer: Answer[V]
    namespace_name: str
    namespace: NamespaceMeta
    generation: int
    size: int  # the bytes it holds, as counted against the budget

    def holds_for(self, namespace: NamespaceMeta | None, generation: int) -> bool:
        """Whether the answer is still the one this namespace and these discovered values give."""
        if namespace is None or generation != self.generation:
            return False
        # The namespace cache hands out the same object until the namespace changes.
        return namespace is self.namespace or namespace == self.namespace


# What every entry holds beside its key, payload and verdict: the Entry object and the
# OrderedDict's slot and link (105 bytes, measured with tracemalloc on CPython 3.11).
_ENTRY_OVERHEAD = sys.getsizeof(Entry(Answer(b"", b"", None), "", NamespaceMeta("", {}, {}), 0, 0)) + 105


def make_entry(
    answer: Answer[V], *, key: bytes, namespace_name: str, namespace: NamespaceMeta, generation: int, extra: int = 0
) -> Entry[V]:
    """An entry sized as the memory it keeps alive: its key's bytes, its payload bytes and
    objects, plus ``extra`` (what the verdict holds). The NamespaceMeta is the namespace cache's
    own and is not counted."""
    size = sys.getsizeof(key) + answer.size + _ENTRY_OVERHEAD + extra
    return Entry(answer, namespace_name, namespace, generation, size)


class AnswerCache(Generic[V]):
    """Entries by body key, least recently used first out, at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, *, on_evict: Callable[[], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, Entry[V]] = OrderedDict()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._seen_limit = max(1, min(max_bytes // 16, SEEN_MAX_BYTES) // SEEN_KEY_BYTES)
        self._on_evict = on_evict
        # Large reviews are answered on a side thread (see MutateHandler), small ones on the loop.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Entry[V] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def admits(self, key: bytes) -> bool:
        """Whether an answer for ``key`` is worth storing: only on the second sight of its key.

        Most bodies are never seen again (distinct pods); storing each of their answers costs more
        than the hits it never gets. A key seen once is remembered by its hash alone (two keys with
        one hash merely store an answer early), in a bounded set that forgets the oldest first; a
        key whose entry went stale is admitted at once."""
        with self._lock:
            if key in self._entries:  # a stale entry: its body evidently comes back
                return True
            seen = hash(key)
            if seen in self._seen:
                del self._seen[seen]
                return True
            self._seen[seen] = None
            if len(self._seen) > self._seen_limit:
                self._seen.popitem(last=False)
            return False

    def put(self, key: bytes, entry: Entry[V]) -> None:
        """Store ``entry``, replacing one whose namespace or discovered values went stale."""
        # One answer may take at most an eighth of the budget, so a few large pods never
        # flush the answers of a whole rollout.
        if entry.size > self.max_bytes // 8:
            return
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self.bytes -= replaced.size
            self._entries[key] = entry
            self.bytes += entry.size
            while self.bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= evicted.size
                if self._on_evict is not None:
                    self._on_evict()
