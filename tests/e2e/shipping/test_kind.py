"""meshswitch as installed in a kind cluster by `make kind-e2e` (mk/kind.mk): the image from the
Dockerfile, manifests/, `certs install`. Collected only when MESHSWITCH_KIND_KUBECONFIG names that
cluster's kubeconfig (see conftest.py). Not marked e2e on purpose: the e2e marker means the local control plane (and skips without
Go), while these need Docker and kind instead."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.shipping.conftest import injected, pod_containers
from webhook.cli.main import main as cli_main
from webhook.cluster.client import KubeApi, api_client

KUBECONFIG = os.environ.get("MESHSWITCH_KIND_KUBECONFIG")
NS = "meshswitch-system"


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeApi]:
    client = api_client(Path(KUBECONFIG or ""))
    yield KubeApi(client)
    client.close()


@pytest.fixture
def namespace(kube: KubeApi) -> Iterator[Any]:
    made: list[str] = []

    def make(labels: dict[str, str] | None = None) -> str:
        name = f"kind-{uuid.uuid4().hex[:8]}"
        kube.call("POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels or {}}})
        made.append(name)
        deadline = time.monotonic() + 60
        while kube.get(f"/api/v1/namespaces/{name}/serviceaccounts/default") is None:
            assert time.monotonic() < deadline, "no default ServiceAccount"
            time.sleep(0.5)
        return name

    yield make
    for name in made:
        kube.call("DELETE", f"/api/v1/namespaces/{name}")


def dry_run_pod(kube: KubeApi, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "probe-", "labels": labels or {}}, "spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]}}
    created: dict[str, Any] = kube.call("POST", f"/api/v1/namespaces/{namespace}/pods", body=pod, query=[("dryRun", "All")])
    return created


def test_the_installation_is_healthy(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["check", "--kubeconfig", str(KUBECONFIG), "-l", "e2e.meshswitch.io/kind=none"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Service {NS}/meshswitch: 2 ready endpoints" in out, out


def test_pods_get_the_mesh_their_namespace_selects(kube: KubeApi, namespace: Any) -> None:
    shop = namespace({"meshswitch.io/mode": "istio"})
    pod = dry_run_pod(kube, shop)
    assert injected(pod) == ["istio"] and "istio-proxy" in pod_containers(pod)
    assert injected(dry_run_pod(kube, shop, {"meshswitch.io/inject": "false"})) == []
    assert injected(dry_run_pod(kube, namespace())) == []


def test_mode_set_restart(kube: KubeApi, namespace: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shop = namespace({"meshswitch.io/mode": "istio"})
    labels = {"app": "web"}
    deployment = {"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "busybox:1.37", "command": ["sleep", "3600"]}]}}}}
    kube.call("POST", f"/apis/apps/v1/namespaces/{shop}/deployments", body=deployment)
    assert cli_main(["mode", "set", shop, "linkerd", "--restart", "--kubeconfig", str(KUBECONFIG)]) == 0
    assert "deployment.apps/web restarted" in capsys.readouterr().out
    deadline = time.monotonic() + 120
    while True:
        pods = kube.items(f"/api/v1/namespaces/{shop}/pods", query=[("labelSelector", "app=web")])
        if any(injected(p) == ["linkerd"] for p in pods):
            break
        assert time.monotonic() < deadline, [injected(p) for p in pods]
        time.sleep(1)
