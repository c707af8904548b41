"""`meshswitch check` against a real API server: 0 on a healthy installation, and a named problem
(with exit 1) for each broken one."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import namespace_validation_paused
from tests.e2e.shipping.conftest import RUN_LABEL, Stack, manifests_webhook_configuration
from webhook.cli.main import main as cli_main
from webhook import certs
from webhook.cluster import install, layout
from webhook.dev import controlplane as cp
from webhook.dev import cluster as dc

pytestmark = pytest.mark.e2e
CHECK_LABEL = "e2e.meshswitch.io/check"


@pytest.fixture
def scope() -> str:
    """A label value that keeps check to this test's namespaces."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def cleanup(stack: Stack) -> Iterator[list[tuple[str, str]]]:
    """(kind, name) of cluster-scoped things to delete afterwards."""
    made: list[tuple[str, str]] = []
    yield made
    for kind, name in made:
        if kind == "MutatingWebhookConfiguration":
            dc.unregister(stack.client, name)


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli_main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def linkerd_control_plane(stack: Stack, tmp_path: Path, *, present: bool) -> Path:
    """A values file that puts linkerd's control plane in a namespace of its own; with `present`, its objects there."""
    home = stack.make_namespace(prefix="l5d", selected=False)
    values = tmp_path / "values.yaml"
    values.write_text(f"linkerd: {{controlPlaneNamespace: {home}}}\n")
    if present:
        stack.kube.call("POST", f"/api/v1/namespaces/{home}/configmaps", body={"metadata": {"name": "linkerd-config"}, "data": {"values": "linkerdVersion: edge-25.10.1\n"}})
        labels = {"app": "linkerd-destination"}
        deployment = {
            "metadata": {"name": "linkerd-destination"},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "destination", "image": "cr.l5d.io/linkerd/controller:edge-25.10.1"}]}}},
        }
        stack.kube.call("POST", f"/apis/apps/v1/namespaces/{home}/deployments", body=deployment)
    return values


def test_healthy_with_the_webhook_reached_by_url(stack: Stack, scope: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = linkerd_control_plane(stack, tmp_path, present=True)
    stack.make_namespace({CHECK_LABEL: scope, "meshswitch.io/mode": "native"})
    stack.make_namespace({CHECK_LABEL: scope}, {"linkerd.io/inject": "enabled"})
    stack.make_namespace({CHECK_LABEL: scope})
    code, out = run_check(capsys, *stack.cli_args(), "-l", f"{CHECK_LABEL}={scope}", "--values", str(values))
    assert code == 0, out
    assert "[FAIL]" not in out and "[warn]" not in out, out
    assert "its certificate verifies against the caBundle for 127.0.0.1" in out
    assert "/readyz answers 200" in out
    assert "the webhook runs outside the cluster's Services: endpoints are not checked" in out
    assert "control plane found" in out and "linkerd-destination" in out
    assert out.splitlines()[-1] == "no errors, 0 warnings: meshswitch is healthy"


def service_backed(stack: Stack, name: str, bundle: bytes | None, namespace: str) -> dict[str, Any]:
    """The manifests' configuration sent to the Service `namespace`/meshswitch; its entries match no namespace."""
    assert stack.server is not None
    body = manifests_webhook_configuration(name, stack.server.mutate_url, f"never-{uuid.uuid4().hex[:6]}")
    for entry in body["webhooks"]:
        entry["clientConfig"] = {"service": {"name": layout.SERVICE, "namespace": namespace, "path": "/mutate", "port": 443}}
        if bundle is not None:
            entry["clientConfig"]["caBundle"] = base64.b64encode(bundle).decode()
    return body


def test_healthy_with_the_service_modelled_by_an_endpointslice(stack: Stack, scope: str, cleanup: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.server is not None
    name = f"shipping-{stack.run}-svc-{scope}"
    bundle = layout.ca_bundle_of(stack.webhook_configuration()["webhooks"][0])
    cp.apply_mutating_webhook(stack.client, service_backed(stack, name, bundle, stack.namespace))
    cleanup.append(("MutatingWebhookConfiguration", name))
    selector = {"app.kubernetes.io/name": "meshswitch", "app.kubernetes.io/component": "webhook"}
    stack.kube.call(
        "POST",
        f"/api/v1/namespaces/{stack.namespace}/services",
        body={"metadata": {"name": layout.SERVICE}, "spec": {"selector": selector, "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}},
    )
    endpoint_slice = {
        "metadata": {"name": f"{layout.SERVICE}-hand", "labels": {"kubernetes.io/service-name": layout.SERVICE, "endpointslice.kubernetes.io/managed-by": "e2e.meshswitch.io"}},
        "addressType": "IPv4",
        # No kubelet here: a replica is modelled by its address; check never connects to it.
        "endpoints": [{"addresses": ["10.244.0.17"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}],
    }
    slices = f"/apis/discovery.k8s.io/v1/namespaces/{stack.namespace}/endpointslices"
    stack.kube.call("POST", slices, body=endpoint_slice)
    args = ["--kubeconfig", str(stack.kubeconfig), "--namespace", stack.namespace, "--webhook-config", name, "-l", f"{CHECK_LABEL}={scope}"]
    code, out = run_check(capsys, *args, "--url", stack.server.url)
    assert code == 0, out
    assert f"Service {stack.namespace}/{layout.SERVICE}: 1 ready endpoints" in out
    assert f"tls.crt verifies against the caBundle for meshswitch.{stack.namespace}.svc" in out
    assert f"its certificate verifies against the caBundle for meshswitch.{stack.namespace}.svc" in out

    # The replica stops being ready: no endpoint answers.
    current = stack.kube.get(f"{slices}/{layout.SERVICE}-hand")
    assert current is not None
    current["endpoints"][0]["conditions"]["ready"] = False
    stack.kube.call("PUT", f"{slices}/{layout.SERVICE}-hand", body=current)
    code, out = run_check(capsys, *args)
    assert code == 1
    assert "[FAIL]" in out and "no ready endpoints (1 not ready)" in out, out


def test_no_ca_bundle(stack: Stack, scope: str, cleanup: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    body = copy.deepcopy(stack.webhook_configuration())
    name = f"shipping-{stack.run}-nobundle-{scope}"
    body = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": name}, "webhooks": body["webhooks"]}
    for entry in body["webhooks"]:
        entry["clientConfig"].pop("caBundle", None)
        entry["namespaceSelector"]["matchExpressions"] = [e for e in entry["namespaceSelector"]["matchExpressions"] if e["key"] != RUN_LABEL]
        entry["namespaceSelector"]["matchExpressions"].append({"key": RUN_LABEL, "operator": "In", "values": ["never"]})
    cp.apply_mutating_webhook(stack.client, body)
    cleanup.append(("MutatingWebhookConfiguration", name))
    code, out = run_check(capsys, "--kubeconfig", str(stack.kubeconfig), "--namespace", stack.namespace, "--webhook-config", name, "-l", f"{CHECK_LABEL}={scope}")
    assert code == 1
    assert body["webhooks"] and out.count("no caBundle: the API server cannot verify the webhook's certificate") == len(body["webhooks"]), out


def test_an_expired_certificate(stack: Stack, scope: str, tmp_path: Path, cleanup: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    home = stack.make_namespace(prefix="expired", selected=False)
    issued = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=certs.LEAF_DAYS + 2)
    made = certs.generate(tmp_path, install.service_dns_names(layout.SERVICE, home), [], now=issued)
    data = {k: base64.b64encode(p.read_bytes()).decode() for k, p in (("tls.crt", made.tls_cert), ("tls.key", made.tls_key), ("ca.crt", made.ca_cert))}
    stack.kube.call("POST", layout.secret_path(home), body={"metadata": {"name": layout.TLS_SECRET}, "type": "kubernetes.io/tls", "data": data})
    name = f"shipping-{stack.run}-expired-{scope}"
    cp.apply_mutating_webhook(stack.client, service_backed(stack, name, made.ca_cert.read_bytes(), home))
    cleanup.append(("MutatingWebhookConfiguration", name))
    code, out = run_check(capsys, "--kubeconfig", str(stack.kubeconfig), "--namespace", home, "--webhook-config", name, "-l", f"{CHECK_LABEL}={scope}")
    assert code == 1
    assert "[FAIL] certificate-expiry" in out and f"Secret {home}/{layout.TLS_SECRET} tls.crt: expired on" in out, out
    assert f"tls.crt verifies against the caBundle for meshswitch.{home}.svc" in out, "only its time is wrong"


def test_a_missing_control_plane(stack: Stack, scope: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = linkerd_control_plane(stack, tmp_path, present=False)
    home = values.read_text().split(": ")[-1].strip(" }\n")
    shop = stack.make_namespace({CHECK_LABEL: scope}, {"linkerd.io/inject": "enabled"})
    code, out = run_check(capsys, *stack.cli_args(), "-l", f"{CHECK_LABEL}={scope}", "--values", str(values), "--quiet")
    assert code == 1
    assert f"control plane missing: ConfigMap {home}/linkerd-config, Deployment {home}/linkerd-destination; namespaces {shop} select linkerd" in out, out
    assert out.splitlines()[-1] == "1 error, 0 warnings: meshswitch is not healthy"


def test_conflicting_labels_and_an_unknown_mode(stack: Stack, scope: str, capsys: pytest.CaptureFixture[str]) -> None:
    conflict = stack.make_namespace({CHECK_LABEL: scope, "meshswitch.io/mode": "native", "istio-injection": "enabled"})
    with namespace_validation_paused(stack.client):  # as if labelled before meshswitch was installed
        unknown = stack.make_namespace({CHECK_LABEL: scope, "meshswitch.io/mode": "cilium"})
    code, out = run_check(capsys, *stack.cli_args(), "-l", f"{CHECK_LABEL}={scope}", "--quiet")
    assert code == 1
    assert f"namespace {conflict}: meshswitch.io/mode=native conflicts with istio-injection=enabled" in out, out
    assert f"namespace {unknown}: pods here are refused: namespace label meshswitch.io/mode='cilium' is not an installed mode" in out, out
