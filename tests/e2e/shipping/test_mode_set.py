"""`meshswitch mode set NAMESPACE MODE --restart` against a real API server, kube-controller-manager
and the webhook: the label changes, the workloads' pod templates are stamped, and the pods the
rollout creates carry the new mesh."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.shipping.conftest import Stack, eventually, injected, pod_containers
from webhook.cli.main import main as cli_main
from webhook.cluster import modes

pytestmark = pytest.mark.e2e


def workload(kind: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"]}]}},
    }
    if kind != "DaemonSet":
        spec["replicas"] = 1
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"metadata": {"name": name}, "spec": spec}


def pods(stack: Stack, namespace: str, app: str) -> list[dict[str, Any]]:
    return stack.kube.items(f"/api/v1/namespaces/{namespace}/pods", query=[("labelSelector", f"app={app}")])


def test_mode_set_restart_moves_the_pods_to_the_new_mesh(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    shop = stack.make_namespace({"meshswitch.io/mode": "istio"})
    apps = f"/apis/apps/v1/namespaces/{shop}"
    for kind, plural, name in (("Deployment", "deployments", "web"), ("Deployment", "deployments", "api"), ("StatefulSet", "statefulsets", "db"), ("DaemonSet", "daemonsets", "agent")):
        stack.kube.call("POST", f"{apps}/{plural}", body=workload(kind, name))
    first = eventually("the istio pod of web", lambda: [p for p in pods(stack, shop, "web") if injected(p) == ["istio"]])
    assert "istio-proxy" in pod_containers(first[0])

    code = cli_main(["mode", "set", shop, "linkerd", "--restart", "--kubeconfig", str(stack.kubeconfig), "--webhook-namespace", stack.namespace])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0] == f"namespace/{shop} labelled meshswitch.io/mode=linkerd (was istio)"
    assert sorted(lines[1:]) == sorted(
        ["deployment.apps/api restarted", "deployment.apps/web restarted", "statefulset.apps/db restarted", "daemonset.apps/agent restarted"]
    )
    # The linkerd control plane is not installed here: said, not fatal.
    assert "linkerd's control plane is missing" in captured.err

    namespace = stack.kube.get(f"/api/v1/namespaces/{shop}")
    assert namespace is not None and namespace["metadata"]["labels"]["meshswitch.io/mode"] == "linkerd"
    stamps = set()
    for plural, name in (("deployments", "web"), ("deployments", "api"), ("statefulsets", "db"), ("daemonsets", "agent")):
        found = stack.kube.get(f"{apps}/{plural}/{name}")
        assert found is not None
        stamps.add(found["spec"]["template"]["metadata"]["annotations"][modes.RESTARTED_AT])
    assert len(stamps) == 1, "one restart stamp for the whole namespace"

    # The Deployments roll: their new ReplicaSets' pods carry linkerd (the webhook saw the new label).
    def linkerd_pods(app: str) -> list[dict[str, Any]]:
        return [p for p in pods(stack, shop, app) if injected(p) == ["linkerd"]]

    for app in ("web", "api"):
        fresh = eventually(f"a linkerd pod of {app}", lambda: linkerd_pods(app))
        assert "linkerd-proxy" in pod_containers(fresh[0]) and "istio-proxy" not in pod_containers(fresh[0])
        assert fresh[0]["metadata"]["annotations"]["linkerd.io/proxy-version"]


def test_mode_set_refuses_a_mode_that_is_not_installed(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    shop = stack.make_namespace({"meshswitch.io/mode": "istio"})
    assert cli_main(["mode", "set", shop, "cilium", "--kubeconfig", str(stack.kubeconfig), "--webhook-namespace", stack.namespace]) == 1
    err = capsys.readouterr().err
    assert "'cilium' is not an installed mode; accepted: envoy, istio, istio-delegate, linkerd, linkerd-delegate, native" in err
    namespace = stack.kube.get(f"/api/v1/namespaces/{shop}")
    assert namespace is not None and namespace["metadata"]["labels"]["meshswitch.io/mode"] == "istio"


def test_mode_set_without_restart_and_a_paused_deployment(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    shop = stack.make_namespace()
    paused = workload("Deployment", "paused")
    paused["spec"]["paused"] = True
    stack.kube.call("POST", f"/apis/apps/v1/namespaces/{shop}/deployments", body=paused)
    args = ["--kubeconfig", str(stack.kubeconfig), "--webhook-namespace", stack.namespace]
    assert cli_main(["mode", "set", shop, "native", *args]) == 0
    assert capsys.readouterr().out.splitlines() == [f"namespace/{shop} labelled meshswitch.io/mode=native"]
    assert cli_main(["mode", "set", shop, "native", "--restart", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"namespace/{shop} already has meshswitch.io/mode=native", "deployment.apps/paused not restarted: paused (kubectl rollout resume it first)"]
