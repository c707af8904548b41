"""The review tally exports what prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from webhook.server.metrics import LATENCY_BUCKETS, Metrics

LABELS = st.tuples(st.sampled_from(["istio", "linkerd+dapr", "none"]), st.sampled_from(["injected", "skipped"]), st.sampled_from(["a", "b"]))
# Every bound itself (le is inclusive), and values around and beyond them.
SECONDS = st.one_of(st.sampled_from(LATENCY_BUCKETS), st.floats(min_value=0.0, max_value=30.0, allow_nan=False))


def library_exposition(reviews: list[tuple[tuple[str, str, str], float]], hits: int) -> set[str]:
    registry = CollectorRegistry()
    counter = Counter("meshswitch_reviews", "h", ["plugin", "outcome", "reason"], registry=registry)
    histogram = Histogram("meshswitch_review_duration_seconds", "h", buckets=LATENCY_BUCKETS, registry=registry)
    hit_counter = Counter("meshswitch_answer_cache_hits", "h", registry=registry)
    for labels, seconds in reviews:
        counter.labels(*labels).inc()
        histogram.observe(seconds)
    hit_counter.inc(hits)
    return samples(generate_latest(registry))


def samples(exposition: bytes) -> set[str]:
    """The sample lines of the three families (HELP texts and other families left out)."""
    names = ("meshswitch_reviews_total", "meshswitch_review_duration_seconds_", "meshswitch_answer_cache_hits_total")
    return {line for line in exposition.decode().splitlines() if line.startswith(names)}


@given(st.lists(st.tuples(LABELS, SECONDS), max_size=30), st.integers(min_value=0, max_value=5))
def test_the_tally_exports_the_librarys_samples(reviews: list[tuple[tuple[str, str, str], float]], hits: int) -> None:
    metrics = Metrics()
    for (plugins, outcome, reason), seconds in reviews:
        metrics.count_review(plugins=plugins.split("+") if plugins != "none" else [], outcome=outcome, reason=reason, seconds=seconds)
    for _ in range(hits):
        metrics.count_answer_cache_hit()
    assert samples(metrics.render()) == library_exposition(reviews, hits)


def test_the_families_are_typed_as_before() -> None:
    text = Metrics().render().decode()
    assert "# TYPE meshswitch_reviews_total counter" in text
    assert "# TYPE meshswitch_review_duration_seconds histogram" in text
    assert "# TYPE meshswitch_answer_cache_hits_total counter" in text
