"""`make bench`, engine part: decide + render + patch per pod, median and p99 over many runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import load_plugins

RUNS = 3000
TARGET_MEDIAN_US = 50.0  # the engine alone, per pod, for the 3-container istio pod


def realistic_pod(env_vars: int = 10, *, dapr: bool = True) -> dict[str, Any]:
    """Three containers with ports, probes, resources and env; ``env_vars`` spread over the first."""

    def container(name: str, port: int, env: int) -> dict[str, Any]:
        return {
            "name": name,
            "image": f"registry.example.com/shop/{name}:1.4.2",
            "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
            "env": [{"name": f"VAR_{i}", "value": f"value-{i}" * 3} for i in range(env)],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": port}, "initialDelaySeconds": 10},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        }

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "shop-7d9f8b6c5-",
            "namespace": "shop",
            "labels": {"app": "shop", "version": "v2", "pod-template-hash": "7d9f8b6c5"},
            "annotations": {"dapr.io/enabled": "true", "dapr.io/app-id": "shop", "dapr.io/app-port": "8080"} if dapr else {},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "shop-7d9f8b6c5", "uid": "1", "controller": True}],
        },
        "spec": {
            "serviceAccountName": "shop",
            "containers": [container("web", 8080, env_vars), container("worker", 8081, 10), container("cache", 6379, 10)],
        },
    }


def measure(label: str, fn: Callable[[], object], runs: int = RUNS) -> str:
    return row(label, runs, *timings(fn, runs))


def row(label: str, runs: int, median: float, p99: float) -> str:
    return f"| {label:<44} | {runs:>5} | {median:>9.1f} | {p99:>9.1f} |"


def timings(fn: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    """Median and p99 in microseconds."""
    for _ in range(200):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    median = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99) - 1] / 1000
    return median, p99


def main() -> None:
    injector = Injector(plugins=load_plugins(), config=Config())
    print("decide + render + patch, in microseconds (one process, no I/O)")
    print(f"| {'case':<44} | {'runs':>5} | {'median':>9} | {'p99':>9} |")
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 11}|{'-' * 11}|")
    headline = 0.0
    for mode in ("istio", "linkerd", "envoy"):
        namespace = NamespaceMeta("shop", {"meshswitch.io/mode": mode}, {})
        alone, stacked = realistic_pod(10, dapr=False), realistic_pod(10)
        median, p99 = timings(lambda: injector.inject(alone, namespace))
        headline = headline or median
        print(row(f"3-container pod, {mode}", RUNS, median, p99))
        print(measure(f"3-container pod, {mode} + dapr", lambda: injector.inject(stacked, namespace)))
    namespace = NamespaceMeta("shop", {"meshswitch.io/mode": "istio"}, {})
    big = realistic_pod(1500, dapr=False)
    print(measure("3 containers, 1,500 env vars, istio", lambda: injector.inject(big, namespace)))
    big_stacked = realistic_pod(1500)
    print(measure("3 containers, 1,500 env vars, istio + dapr", lambda: injector.inject(big_stacked, namespace)))
    skipped = NamespaceMeta("shop", {}, {})
    plain = realistic_pod(10, dapr=False)
    print(measure("3-container pod, nothing selected (skip)", lambda: injector.inject(plain, skipped)))
    met = "yes" if headline < TARGET_MEDIAN_US else "NO"
    print(f"\n| target | measured | met |\n|---|---|---|\n| engine median, 3-container istio pod < {TARGET_MEDIAN_US:.0f} µs | {headline:.1f} µs | {met} |")


if __name__ == "__main__":
    main()
