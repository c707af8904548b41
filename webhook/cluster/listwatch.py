"""The list+watch loop, in a thread: list, follow the watch, re-list on 410 Gone, back off on errors.

Subclasses say what a listing and an object event mean; the I/O is two callables, so tests drive
``run_once`` with recorded events and no network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from webhook.engine.errors import MeshswitchError

log = logging.getLogger("meshswitch.listwatch")

RawObject = Mapping[str, Any]
ListObjects = Callable[[], tuple[list[RawObject], str]]
WatchObjects = Callable[[str], Iterable[Mapping[str, Any]]]


class Gone(MeshswitchError):
    """The watch's resourceVersion is older than the API server keeps (HTTP 410): list again."""


class WatchFailed(MeshswitchError):
    """The watch stream sent an ERROR event other than 410; resume after a pause."""


class ListWatch:
    """Keeps a local view current; ``replace`` takes a listing, ``on_object`` one event's object."""

    what = "objects"

    def __init__(self, *, list_objects: ListObjects, watch_objects: WatchObjects, max_backoff: float = 30.0) -> None:
        self._list = list_objects
        self._watch = watch_objects
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._max_backoff = max_backoff
        self.resource_version: str | None = None
        self.failures = 0
        self.lists = 0
        self._synced = False

    @property
    def synced(self) -> bool:
        return self._synced

    def replace(self, items: Iterable[RawObject], resource_version: str) -> None:
        raise NotImplementedError

    def on_object(self, kind: str, obj: RawObject) -> None:
        """ADDED, MODIFIED or DELETED."""
        raise NotImplementedError

    def _replace_listing(self, items: Iterable[RawObject], resource_version: str) -> None:
        self.replace(items, resource_version)
        self.resource_version = resource_version
        self._synced = True

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one watch event; raise Gone to ask for a list, WatchFailed for other ERRORs."""
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, Mapping):
            raise WatchFailed(f"watch event {kind!r} has no object")
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(str(obj.get("message", "resourceVersion too old")))
            raise WatchFailed(f"watch error {obj.get('code')}: {obj.get('message', '')}")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.on_object(kind, obj)
        elif kind != "BOOKMARK":
            log.warning("ignoring watch event of unknown type %r", kind)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if isinstance(version, str) and version:
            self.resource_version = version

    def run_once(self) -> None:
        """List if there is no resourceVersion to resume from, then follow one watch stream.

        Errors never escape: a 410 forgets the resourceVersion (the next call lists again), any
        other failure keeps it, counts it, and the caller waits ``backoff()`` before resuming.
        """
        try:
            if self.resource_version is None:
                items, version = self._list()
                self.lists += 1
                self._replace_listing(items, version)
                log.info("listed %s at resourceVersion %s", self.what, version)
            events = 0
            for event in self._watch(self.resource_version or ""):
                events += 1
                self.apply(event)
                if self._stopped.is_set():
                    return
            # A stream that ends with nothing in it counts as a failure, so a server or proxy that
            # closes watches at once is not hammered in a tight loop.
            self.failures = 0 if events else self.failures + 1
        except Gone as exc:
            log.info("%s watch expired (%s); listing again", self.what, exc)
            self.resource_version = None
            self.failures = 0
        except Exception as exc:
            self.failures += 1
            # The API server's and the network's failures are expected and said in one line; anything
            # else is a bug in what consumes the objects, and keeps its traceback.
            expected = isinstance(exc, (MeshswitchError, OSError))
            log.warning("%s list/watch failed (%d in a row): %s", self.what, self.failures, exc, exc_info=not expected)

    def backoff(self) -> float:
        """Seconds to wait before the next attempt: none after a clean end, then doubling from 0.5 s."""
        if self.failures == 0:
            return 0.0
        return float(min(self._max_backoff, 0.5 * 2 ** (self.failures - 1)))

    def run(self) -> None:
        while not self._stopped.is_set():
            self.run_once()
            pause = self.backoff()
            if pause and self._stopped.wait(pause):
                return

    def start(self) -> None:
        # A thread, not a task: the kubernetes client blocks, and the event loop must not.
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=f"watch-{self.what}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        # The watch may be blocked in a read; it is a daemon thread, so do not wait for it.
        self._stopped.set()
