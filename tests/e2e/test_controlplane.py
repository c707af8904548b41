"""Smoke test: the local control plane answers and kube-controller-manager creates pods from workloads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s

from webhook.dev import binaries
from webhook.dev import controlplane as cp

pytestmark = pytest.mark.e2e

IMAGE = "busybox:1.37"


def _container() -> dict[str, Any]:
    """Return a container spec; it never runs, as there is no kubelet."""
    return {"name": "main", "image": IMAGE, "command": ["sleep", "3600"]}


def _eventually(what: str, probe: Callable[[], list[Any]], timeout: float = 60.0) -> list[Any]:
    """Poll `probe` until it returns a non-empty list."""
    deadline = time.monotonic() + timeout
    while True:
        items = probe()
        if items:
            return items
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.5)


def test_apiserver_version(control_plane: cp.ControlPlane, kube_client: Any) -> None:
    """The apiserver reports the pinned Kubernetes version to the admin kubeconfig."""
    info = k8s.VersionApi(kube_client).get_code()
    assert info.git_version == binaries.versions()[0]
    assert control_plane.kubeconfig.is_file()


def test_deployment_makes_replicaset_and_pod(kube_client: Any, namespace: str) -> None:
    """The deployment and replicaset controllers turn a Deployment into a ReplicaSet and a Pod."""
    apps: Any = k8s.AppsV1Api(kube_client)
    core: Any = k8s.CoreV1Api(kube_client)
    labels = {"app": "smoke"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "smoke", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [_container()]}},
            },
        },
    )
    selector = "app=smoke"
    sets = _eventually("ReplicaSet", lambda: apps.list_namespaced_replica_set(namespace, label_selector=selector).items)
    pods = _eventually("Pod", lambda: core.list_namespaced_pod(namespace, label_selector=selector).items)
    owner = pods[0].metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("ReplicaSet", sets[0].metadata.name)
    assert pods[0].spec.containers[0].image == IMAGE


def test_job_makes_pod(kube_client: Any, namespace: str) -> None:
    """The job controller creates a Pod for a Job."""
    batch: Any = k8s.BatchV1Api(kube_client)
    core: Any = k8s.CoreV1Api(kube_client)
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "smoke-job"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [_container()]}}},
        },
    )
    pods = _eventually("Job Pod", lambda: core.list_namespaced_pod(namespace, label_selector="job-name=smoke-job").items)
    assert pods[0].metadata.owner_references[0].kind == "Job"
