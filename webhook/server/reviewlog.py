"""The one JSON line per review, written straight to a file descriptor, a loop turn's lines at once."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import time
from typing import Any

import orjson

from webhook.server.logs import iso_time

review_logger = logging.getLogger("meshswitch.review")

# A write(2) of at most PIPE_BUF bytes to a pipe is atomic: the lines of workers sharing one
# stderr pipe never interleave inside a line.
BATCH_BYTES: int = getattr(select, "PIPE_BUF", 512)


class ReviewLog:
    """Writes review lines with as few write(2)s as whole lines allow.

    It bypasses logging's records and handlers, but honours the level of the ``meshswitch.review``
    logger, so --log-level warning silences it. The lines written in one turn of the event loop go
    out together at the start of the next turn, in writes of whole lines of at most ``BATCH_BYTES``
    (a saturated webhook spent a sixth of its time in one write per review). Outside a running
    loop, a line is written at once.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.pid = os.getpid()  # which worker answered, under --workers
        self._batch = bytearray()
        self._flush_due = False

    def write(self, fields: dict[str, Any]) -> None:
        if not review_logger.isEnabledFor(logging.INFO):
            return
        line = {"time": iso_time(time.time()), "level": "info", "logger": review_logger.name, "msg": "review", "pid": self.pid, **fields}
        encoded = orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        if len(self._batch) + len(encoded) > BATCH_BYTES:
            self.flush()
        self._batch += encoded
        if self._flush_due:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()
            return
        self._flush_due = True

    def flush(self) -> None:
        """Write the lines held so far (the server's shutdown calls it too)."""
        self._flush_due = False
        if not self._batch:
            return
        batch = bytes(self._batch)
        self._batch.clear()
        try:
            os.write(self.fd, batch)
        except OSError:
            pass  # a full or closed log pipe must not fail a review
