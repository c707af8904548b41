"""`make demo`: a scripted tour of every mode against a fresh dev cluster, one Deployment per mode,
then a table of the pods' containers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.dev import binaries
from webhook.dev import controlplane as cp
from webhook.dev.cluster import INJECT_KEY, MODE_LABEL, DevCluster


@dataclass(frozen=True)
class Scenario:
    """One namespace of the tour and the pod template labels and annotations of its Deployment."""

    namespace: str
    namespace_labels: Mapping[str, str]
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


SCENARIOS = (
    Scenario("demo-istio", {MODE_LABEL: "istio"}, note="namespace meshswitch.io/mode=istio"),
    Scenario("demo-linkerd", {MODE_LABEL: "linkerd"}, note="namespace meshswitch.io/mode=linkerd"),
    Scenario("demo-envoy", {MODE_LABEL: "envoy"}, note="namespace meshswitch.io/mode=envoy"),
    Scenario(
        "demo-dapr-on-istio",
        {MODE_LABEL: "istio"},
        pod_annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "web", "dapr.io/app-port": "8080"},
        note="istio namespace, pod dapr.io/enabled=true",
    ),
    Scenario("demo-native", {MODE_LABEL: "native"}, note="namespace meshswitch.io/mode=native"),
    Scenario(
        "demo-opted-out",
        {MODE_LABEL: "istio"},
        pod_labels={INJECT_KEY: "false"},
        note="istio namespace, pod meshswitch.io/inject=false",
    ),
)


def demo_deployment(scenario: Scenario) -> dict[str, Any]:
    """Return the tour's Deployment for one scenario: one replica of a small web app."""
    selector = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": selector},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": {**selector, **scenario.pod_labels},
                    "annotations": dict(scenario.pod_annotations),
                },
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]},
            },
        },
    }


def _poll(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    """Return the first truthy result of `probe`, or fail after `timeout` seconds."""
    return cp.wait_until(what, probe, timeout, interval=interval)


def _pods(core: Any, namespace: str) -> list[dict[str, Any]]:
    """Return the pods of `namespace` as plain dicts (the API's camelCase)."""
    response = core.list_namespaced_pod(namespace, _preload_content=False)
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def _names(containers: Sequence[Mapping[str, Any]]) -> str:
    """Return container names, a native sidecar (restartPolicy Always) marked with *."""
    return ", ".join(c["name"] + ("*" if c.get("restartPolicy") == "Always" else "") for c in containers) or "-"


def pod_reasons(reviews: Sequence[Mapping[str, Any]], namespace: str) -> list[str]:
    """The reasons the server logged for the pods of `namespace`, in order. Only Pod reviews: the
    Namespace's own review (/validate, `valid-labels`) is logged under its name too, and was shown
    as the webhook's first answer to the pod."""
    return [str(r.get("reason")) for r in reviews if r.get("namespace") == namespace and r.get("kind") == "Pod"]


def _said(reasons: Sequence[str]) -> str:
    """Summarize the webhook's reasons for one pod: the first call, then any reinvocation."""
    if not reasons:
        return "not called (objectSelector)"
    if len(reasons) == 1:
        return reasons[0]
    # The API server calls again (reinvocationPolicy IfNeeded) after in-tree plugins changed the injected pod.
    return f"{reasons[0]}, then {reasons[-1]} on reinvocation"


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Format rows as a left-aligned text table, the first row as the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def run_demo(cluster: DevCluster, out: Any = sys.stdout) -> list[list[str]]:
    """Create each scenario's namespace and Deployment, wait for the pods, print and return the table."""
    from kubernetes import client as k8s

    assert cluster.webhook is not None
    core: Any = k8s.CoreV1Api(cluster.client)
    apps: Any = k8s.AppsV1Api(cluster.client)
    for scenario in SCENARIOS:
        core.create_namespace({"metadata": {"name": scenario.namespace, "labels": dict(scenario.namespace_labels)}})
    for scenario in SCENARIOS:
        cp.wait_for_service_account(cluster.client, scenario.namespace)
        apps.create_namespaced_deployment(scenario.namespace, demo_deployment(scenario))
    rows = [["NAMESPACE", "SELECTED BY", "POD", "PLUGINS", "WEBHOOK SAID", "INIT CONTAINERS", "CONTAINERS"]]
    for scenario in SCENARIOS:
        namespace = scenario.namespace
        pods: list[dict[str, Any]] = _poll(f"a pod in {namespace}", lambda: _pods(core, namespace))  # noqa: B023
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            status = json.loads((meta.get("annotations") or {}).get(cp.STATUS_ANNOTATION, "{}"))
            said = pod_reasons(cluster.webhook.reviews(), scenario.namespace)
            rows.append([
                scenario.namespace,
                scenario.note,
                meta["name"],
                "+".join(status.get("plugins", [])) or "-",
                _said(said),
                _names(spec.get("initContainers", [])),
                _names(spec.get("containers", [])),
            ])  # fmt: skip
    print(_table(rows), file=out)
    print("* a native sidecar: an init container with restartPolicy: Always", file=out, flush=True)
    return rows


def demo_on_fresh_cluster(args: argparse.Namespace) -> int:
    """Start a fresh dev cluster, run the tour, print the table, stop everything."""
    bin_dir = binaries.resolve_binaries(build=not args.no_build)
    with cp.sigterm_as_interrupt():
        try:
            began = time.monotonic()
            with DevCluster(bin_dir, port=args.port) as cluster:
                took = time.monotonic() - began
                print(f"# dev cluster ready in {took:.1f} s; one Deployment per mode:", file=sys.stderr)
                run_demo(cluster)
                print(f"# demo done in {time.monotonic() - began:.1f} s; stopping", file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print("# stopped", file=sys.stderr)
            return 130
