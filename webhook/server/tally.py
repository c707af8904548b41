"""The per-review metrics as plain numbers, exported as Prometheus families when scraped.

prometheus_client's Counter and Histogram take a lock on every increment and walk the buckets in
Python; for a review answered from the answer cache that was a sixth of the server's own work.
Reviews are counted on the event loop's thread only (the side lane's reviews too: their answers
are finished on the loop), and scrapes run there too, so plain ints are enough.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class ReviewTally(Collector):
    """Reviews by (plugin, outcome, reason), their latency histogram and the answer-cache hits."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self._le = [floatToGoString(bound) for bound in (*self.bounds, float("inf"))]  # type: ignore[no-untyped-call]
        self.counts: dict[tuple[str, str, str], int] = {}
        # One slot per bound and one for +Inf; made cumulative at scrape time.
        self.latency_counts = [0] * (len(self.bounds) + 1)
        self.latency_sum = 0.0
        self.hits = 0

    def count(self, labels: tuple[str, str, str], seconds: float) -> None:
        self.counts[labels] = self.counts.get(labels, 0) + 1
        # bisect_left: a value equal to a bound falls in that bound's bucket (le is inclusive).
        self.latency_counts[bisect_left(self.bounds, seconds)] += 1
        self.latency_sum += seconds

    def collect(self) -> Iterator[Metric]:
        reviews = CounterMetricFamily(
            "meshswitch_reviews",
            "AdmissionReviews answered, by plugins injected, outcome (injected, skipped, denied, error; allowed on /validate) and reason code.",
            labels=["plugin", "outcome", "reason"],
        )
        for labels, count in self.counts.items():
            reviews.add_metric(labels, count)
        yield reviews
        cumulative, buckets = 0, []
        for le, count in zip(self._le, self.latency_counts):
            cumulative += count
            buckets.append((le, cumulative))
        latency = HistogramMetricFamily(
            "meshswitch_review_duration_seconds",
            "Time to answer one AdmissionReview, from the handler's start to the response body.",
        )
        latency.add_metric([], buckets, self.latency_sum)
        yield latency
        hits = CounterMetricFamily(
            "meshswitch_answer_cache_hits",
            "Reviews answered from the cache of finished answers (identical pods, as a rollout makes).",
        )
        hits.add_metric([], self.hits)
        yield hits
