"""The one JSON line per review, written straight to a file descriptor."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson

from webhook.server.logs import iso_time

review_logger = logging.getLogger("meshswitch.review")


class ReviewLog:
    """Writes a review's line with one write(2).

    It bypasses logging's records and handlers (about a tenth of a review's cost) but honours
    the level of the ``meshswitch.review`` logger, so --log-level warning silences it.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.pid = os.getpid()  # which worker answered, under --workers

    def write(self, fields: dict[str, Any]) -> None:
        if not review_logger.isEnabledFor(logging.INFO):
            return
        line = {"time": iso_time(time.time()), "level": "info", "logger": review_logger.name, "msg": "review", "pid": self.pid, **fields}
        try:
            # One write(2) per line: lines from concurrent writers never interleave.
            os.write(self.fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        except OSError:
            pass  # a full or closed log pipe must not fail a review
