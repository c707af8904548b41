"""The webhook's Prometheus metrics, in a registry of their own (not the process-global one)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from webhook.server.tally import ReviewTally

# From 0.5 ms (an ordinary review) up to the apiserver's 10 s default webhook timeout; 5 ms, 25 ms
# and 100 ms line up with the buckets of apiserver_admission_webhook_admission_duration_seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

if TYPE_CHECKING:
    from webhook.engine.discovery import Discovery
    from webhook.engine.plugins import Plugin

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric the server exports; one instance per app so tests never share counters."""

    def __init__(self) -> None:
        # The *_created series double the exposition for nothing a webhook dashboard uses.
        # (The switch is process-wide; this process exports no other metrics.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        # The per-review counts (reviews, their latency, answer-cache hits): plain numbers.
        self.tally = ReviewTally(LATENCY_BUCKETS)
        self.registry.register(self.tally)
        self.bad_requests = Counter(
            "meshswitch_bad_requests",
            "Requests to /mutate or /validate refused before review, by HTTP status (400, 405, 413, 415).",
            ["status"],
            registry=self.registry,
        )
        self.certificate_expiry = Gauge(
            "meshswitch_certificate_expiry_timestamp_seconds",
            "Unix time at which the serving certificate in use expires.",
            registry=self.registry,
        )
        self.certificate_loads = Counter(
            "meshswitch_certificate_loads",
            "Certificate pairs loaded, at start-up or after their files changed, by result (loaded, failed).",
            ["result"],
            registry=self.registry,
        )
        self.namespace_cache_size = Gauge(
            "meshswitch_namespace_cache_size",
            "Namespaces whose labels and annotations the cache holds.",
            registry=self.registry,
        )
        self.namespace_misses = Counter(
            "meshswitch_namespace_cache_misses",
            "Reviews whose namespace was not in the cache and cost a GET.",
            registry=self.registry,
        )
        self.answer_cache_bytes = Gauge(
            "meshswitch_answer_cache_bytes",
            "Bytes the cache of finished answers holds.",
            registry=self.registry,
        )

        self.control_plane_present = Gauge(
            "meshswitch_control_plane_present",
            "1 when every object a plugin's control plane has was found in the cluster, else 0.",
            ["plugin"],
            registry=self.registry,
        )

    def count_review(self, *, plugins: Sequence[str], outcome: str, reason: str, seconds: float) -> None:
        self.tally.count(("+".join(plugins) or "none", outcome, reason), seconds)

    def count_answer_cache_hit(self) -> None:
        self.tally.hits += 1

    def track_namespace_cache(self, size: Callable[[], int]) -> None:
        self.namespace_cache_size.set_function(lambda: float(size()))

    def track_control_planes(self, plugins: Iterable[Plugin], discovery: Discovery) -> None:
        for plugin in plugins:
            if discovery.objects.get(plugin.name):
                self.control_plane_present.labels(plugin.name).set_function(
                    lambda plugin=plugin: 0.0 if discovery.missing_for(plugin) else 1.0  # type: ignore[misc]
                )

    def render(self) -> bytes:
        return generate_latest(self.registry)
