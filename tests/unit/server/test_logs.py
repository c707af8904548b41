"""The log lines' time and the review log's batching."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.server import reviewlog
from webhook.server.logs import iso_time
from webhook.server.reviewlog import ReviewLog


def datetime_text(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="milliseconds")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_iso_time_is_datetimes_isoformat(timestamp: float) -> None:
    assert iso_time(timestamp) == datetime_text(timestamp)


def test_iso_time_rounds_as_datetime_does_at_a_seconds_edge() -> None:
    for timestamp in (1764806000.9999995, 1764806000.0000005, 1764806000.9995, 1764806001.0, 0.0):
        assert iso_time(timestamp) == datetime_text(timestamp)


@pytest.fixture(autouse=True)
def review_lines_on() -> Iterator[None]:
    level = reviewlog.review_logger.level
    reviewlog.review_logger.setLevel(logging.INFO)
    yield
    reviewlog.review_logger.setLevel(level)


def written(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_lines_outside_a_loop_are_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = ReviewLog(fd=os.open(path, os.O_WRONLY | os.O_CREAT))
    log.write({"uid": "a"})
    assert [line["uid"] for line in written(path)] == ["a"]


def test_one_turns_lines_go_out_together_at_the_next_turn(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = ReviewLog(fd=os.open(path, os.O_WRONLY | os.O_CREAT))

    async def answer_three() -> list[int]:
        sizes = []
        for uid in "abc":
            log.write({"uid": uid})
            sizes.append(path.stat().st_size)
        await asyncio.sleep(0)
        sizes.append(path.stat().st_size)
        return sizes

    sizes = asyncio.run(answer_three())
    assert sizes[:3] == [0, 0, 0]
    assert sizes[3] > 0
    assert [line["uid"] for line in written(path)] == ["a", "b", "c"]


def test_a_batch_never_splits_a_line_and_stays_within_pipe_buf(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []

    def record(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return len(data)

    monkeypatch.setattr(os, "write", record)
    log = ReviewLog(fd=-1)

    async def answer_many() -> None:
        for index in range(200):
            log.write({"uid": f"uid-{index}", "pad": "x" * 100})
        await asyncio.sleep(0)

    asyncio.run(answer_many())
    assert len(writes) > 1
    assert all(len(chunk) <= reviewlog.BATCH_BYTES and chunk.endswith(b"\n") for chunk in writes)
    uids = [orjson.loads(line)["uid"] for chunk in writes for line in chunk.splitlines()]
    assert uids == [f"uid-{index}" for index in range(200)]
