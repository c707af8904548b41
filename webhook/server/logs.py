"""The server's logging: one JSON object per line on stderr."""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
from typing import Any

import orjson


def iso_time(timestamp: float) -> str:
    """A Unix time as every log line writes it: UTC, to the millisecond (as ``isoformat`` writes it)."""
    global _second
    # datetime's own rounding: the fraction to the nearest microsecond, half to even.
    fraction, whole = math.modf(timestamp)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    second = int(whole)
    # Formatting a date is a tenth of a review's log line; reviews in one second share it.
    cached_second, prefix = _second
    if second != cached_second:
        prefix = dt.datetime.fromtimestamp(second, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (second, prefix)
    return f"{prefix}.{micros // 1000:03d}+00:00"


_second: tuple[int, str] = (-(2**63), "")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={"fields": {...}}`` adds keys to it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: str = "info") -> None:
    """Every logger writes JSON lines to stderr, from ``level`` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
