"""`make bench`, CLI part: `meshswitch inject` of 2,000 Deployments, as a ratio to a bare libyaml
load-and-dump of the same file (yaml.CSafeLoader, yaml.CSafeDumper) in the same run.

Both are timed in this process, by CPU time (the machine may be shared), best of three.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from webhook.cli.main import main as meshswitch

DEPLOYMENTS = 2000
TARGET = 3.0


def deployment(i: int) -> dict[str, Any]:
    labels = {"app": f"web-{i}", "tier": "frontend"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"web-{i}", "namespace": "shop", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": f"registry.example.com/shop/web:1.{i % 10}",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "eu-west-1"}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                        }
                    ]
                },
            },
        },
    }


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def bare_libyaml(path: Path) -> str:
    documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
    return yaml.dump_all(documents, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)


def inject(path: Path) -> None:
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        code = meshswitch(["inject", "-f", str(path), "--mode", "istio", "-q"])
    assert code == 0, "inject failed"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="meshswitch-bench-") as scratch:
        path = Path(scratch) / "deployments.yaml"
        text = yaml.dump_all([deployment(i) for i in range(DEPLOYMENTS)], Dumper=yaml.CSafeDumper, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        inject(path)  # warm: plugins compiled, caches filled once, as in any run
        baseline = best_of(3, lambda: bare_libyaml(path))
        injected = best_of(3, lambda: inject(path))
        size = os.path.getsize(path) / 1e6
    ratio = injected / baseline
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"meshswitch inject, {DEPLOYMENTS:,} Deployments ({size:.1f} MB), istio, CPU seconds, best of 3")
    print("| case | seconds | ratio |")
    print("|---|---|---|")
    print(f"| bare libyaml load + dump (CSafeLoader, CSafeDumper) | {baseline:.2f} | 1.0x |")
    print(f"| meshswitch inject -q | {injected:.2f} | {ratio:.2f}x ({verdict} the {TARGET:g}x target) |")


if __name__ == "__main__":
    main()
