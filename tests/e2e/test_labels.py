"""End to end, Namespace labels: the API server calls POST /validate on Namespace CREATE and UPDATE.
A misspelt mode is refused when it is written, with the message a pod would get; a valid one is
accepted; with the webhook stopped, labels still work (failurePolicy Ignore). And `meshswitch mode
set --dry-run`, `mode get` and `check` against the same cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from webhook.dev import cluster as dc
from webhook.dev import controlplane as cp

from .conftest import NamespaceFactory

pytestmark = pytest.mark.e2e

MODE = dc.MODE_LABEL
REFUSED = f'admission webhook "{dc.VALIDATE_WEBHOOK_NAME}" denied the request'
SCRIPT = Path(sys.executable).parent / "meshswitch"


def label(client: Any, namespace: str, labels: dict[str, str | None]) -> dict[str, Any]:
    core: Any = k8s.CoreV1Api(client)
    response = core.patch_namespace(namespace, {"metadata": {"labels": labels}}, _preload_content=False)
    found: dict[str, Any] = json.loads(response.data)
    return found


def read(client: Any, namespace: str) -> dict[str, Any]:
    core: Any = k8s.CoreV1Api(client)
    found: dict[str, Any] = json.loads(core.read_namespace(namespace, _preload_content=False).data)
    return found


def refusal(client: Any, namespace: str, labels: dict[str, str | None]) -> str | None:
    """The API server's message when it refuses the label write, None when it accepts it."""
    try:
        label(client, namespace, labels)
    except ApiException as exc:
        return str(json.loads(exc.body or "{}").get("message") or exc.body)
    return None


def test_a_misspelt_mode_is_refused_with_the_message(webhook: dc.WebhookServer, kube_client: Any, namespace: str) -> None:
    # The namespace cache of the validating webhook does not matter: the Namespace is in the review.
    message = cp.wait_until("the validating webhook to refuse", lambda: refusal(kube_client, namespace, {MODE: "istoi"}), 30.0)
    assert message is not None and REFUSED in message
    assert "namespace label meshswitch.io/mode='istoi' is not an installed mode; accepted: " in message
    assert MODE not in (read(kube_client, namespace)["metadata"].get("labels") or {}), "the label was not written"


def test_a_new_namespace_with_a_misspelt_mode_is_not_created(webhook: dc.WebhookServer, kube_client: Any) -> None:
    core: Any = k8s.CoreV1Api(kube_client)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ApiException) as caught:
        core.create_namespace({"metadata": {"name": name, "labels": {MODE: "consul"}}})
    assert caught.value.body is not None
    message = json.loads(caught.value.body)["message"]
    assert REFUSED in message and "namespace label meshswitch.io/mode='consul' is not an installed mode" in message


def test_two_meshes_at_once_are_refused(webhook: dc.WebhookServer, kube_client: Any, namespace_factory: NamespaceFactory) -> None:
    namespace = namespace_factory({"istio-injection": "enabled"})
    core: Any = k8s.CoreV1Api(kube_client)
    with pytest.raises(ApiException) as caught:
        core.patch_namespace(namespace, {"metadata": {"annotations": {"linkerd.io/inject": "enabled"}}})
    assert caught.value.body is not None
    message = json.loads(caught.value.body)["message"]
    assert REFUSED in message and "the namespace asks for two meshes at once" in message


@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy", "native"])
def test_a_valid_mode_is_accepted(webhook: dc.WebhookServer, kube_client: Any, namespace: str, mode: str) -> None:
    assert label(kube_client, namespace, {MODE: mode})["metadata"]["labels"][MODE] == mode


def test_labels_still_work_with_the_webhook_stopped(stopped_webhook: dc.WebhookServer, kube_client: Any, namespace: str) -> None:
    # failurePolicy Ignore: with /validate unreachable, even a misspelt label is written (and pods will say why).
    written = label(kube_client, namespace, {MODE: "istoi"})
    assert written["metadata"]["labels"][MODE] == "istoi"
    assert label(kube_client, namespace, {MODE: "istio"})["metadata"]["labels"][MODE] == "istio"


def meshswitch(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args, "--kubeconfig", str(kubeconfig)], capture_output=True, text=True, timeout=120)


def test_mode_set_dry_run_changes_nothing(
    webhook: dc.WebhookServer, kube_client: Any, control_plane: cp.ControlPlane, namespace_factory: NamespaceFactory
) -> None:
    namespace = namespace_factory({MODE: "istio"})
    apps: Any = k8s.AppsV1Api(kube_client)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
        },
    }
    apps.create_namespaced_deployment(namespace, deployment)
    before_ns = read(kube_client, namespace)["metadata"]["resourceVersion"]
    # The deployment controller writes status meanwhile: generation counts spec changes only.
    before_web = apps.read_namespaced_deployment("web", namespace).metadata.generation

    result = meshswitch(control_plane.kubeconfig, "mode", "set", namespace, "linkerd", "--dry-run", "--restart")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"namespace/{namespace} meshswitch.io/mode: istio -> linkerd (dry run: nothing changed)",
        "deployment.apps/web would restart",
    ]
    assert read(kube_client, namespace)["metadata"]["resourceVersion"] == before_ns
    assert read(kube_client, namespace)["metadata"]["labels"][MODE] == "istio"
    after_web = apps.read_namespaced_deployment("web", namespace)
    assert after_web.metadata.generation == before_web and not after_web.spec.template.metadata.annotations

    got = meshswitch(control_plane.kubeconfig, "mode", "get", namespace)
    assert got.returncode == 0 and got.stdout.split("\t")[0] == "istio"
    diff = meshswitch(control_plane.kubeconfig, "diff", namespace, "linkerd")
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[0] == "deployment.apps/web: istio -> linkerd"
    assert read(kube_client, namespace)["metadata"]["resourceVersion"] == before_ns

    refused = meshswitch(control_plane.kubeconfig, "mode", "set", namespace, "consul", "--dry-run")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("meshswitch mode set: 'consul' is not an installed mode; accepted: ")


def test_check_verifies_the_validating_webhook(webhook: dc.WebhookServer, control_plane: cp.ControlPlane, namespace: str) -> None:
    result = meshswitch(control_plane.kubeconfig, "check", "--webhook-config", dc.CONFIG_NAME)
    lines = result.stdout.splitlines()
    assert any("validating-webhook" in line and "checks Namespace CREATE and UPDATE at /validate" in line for line in lines), result.stdout
    assert any("validating-webhook" in line and "/validate refuses meshswitch.io/mode=meshswitch-check-no-such-mode" in line for line in lines), result.stdout
    assert not any(dc.CONFIG_NAME in line and "[FAIL]" in line for line in lines), result.stdout
    assert "meshswitch-dev-probe-" not in result.stdout, "check leaves make run's probe namespaces out"
