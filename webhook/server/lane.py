"""The side lane: one paced thread where large reviews are parsed and answered, off the event loop."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Reviews of pods the API server sends are mostly under 64 KiB, with a few hundred characters of
# annotations; a larger body, or long annotations (per-pod settings), goes to the side lane.
LANE_BYTES = 64 * 1024
LANE_ANNOTATION_CHARS = 4 * 1024
# The side lane rests three times as long as it works: large reviews get at most a quarter of the CPU.
LANE_REST_RATIO = 3.0


class SideLane(ThreadPoolExecutor):
    """One thread for large reviews, which rests ``rest_ratio`` times as long as it worked.

    Large reviews queue among themselves, one at a time, and take at most 1 / (1 + rest_ratio)
    of the CPU: a client that sends nothing but maximal settings slows its own reviews, not the
    others'. Resting is a sleep, which hands the GIL to the event loop.
    """

    def __init__(self, rest_ratio: float = LANE_REST_RATIO) -> None:
        super().__init__(max_workers=1, thread_name_prefix="large-review")
        self.rest_ratio = rest_ratio
        self._free_at = 0.0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(self._paced, fn, *args, **kwargs)

    def _paced(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        wait = self._free_at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            finished = time.perf_counter()
            self._free_at = finished + (finished - started) * self.rest_ratio
