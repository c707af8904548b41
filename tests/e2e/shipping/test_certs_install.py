"""`meshswitch certs install` against a real API server: idempotent, and a CA rotation during which
every review still succeeds."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
import uuid
from typing import Any

import pytest
from cryptography import x509

from tests.e2e.shipping.conftest import Stack, eventually, injected
from webhook.cli.main import main as cli_main
from webhook.cluster import install, layout

pytestmark = pytest.mark.e2e


def bundle_of(stack: Stack) -> list[str]:
    """Fingerprints of the caBundle, which must be the same on every webhook entry."""
    bundles = {tuple(layout.fingerprint(c) for c in layout.pem_certificates(layout.ca_bundle_of(w))) for w in stack.webhook_configuration()["webhooks"]}
    assert len(bundles) == 1, bundles
    return list(bundles.pop())


def secret(stack: Stack, name: str) -> dict[str, Any]:
    found = stack.kube.get(layout.secret_path(stack.namespace, name))
    assert found is not None
    return found


def test_install_twice_keeps_the_ca_and_patches_the_bundle_once(stack_factory: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack: Stack = stack_factory()  # its start() ran the first install
    tls, ca = secret(stack, layout.TLS_SECRET), secret(stack, layout.CA_SECRET)
    assert tls["type"] == "kubernetes.io/tls" and set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert ca["type"] == "Opaque" and set(ca["data"]) == {"ca.crt", "ca.key"}
    assert tls["data"]["ca.crt"] == ca["data"]["ca.crt"]
    configuration = stack.webhook_configuration()
    first_ca = layout.pem_certificates(base64.b64decode(ca["data"]["ca.crt"]))[0]
    assert bundle_of(stack) == [layout.fingerprint(first_ca)]
    leaf = layout.pem_certificates(base64.b64decode(tls["data"]["tls.crt"]))[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"meshswitch.{stack.namespace}.svc" in names.get_values_for_type(x509.DNSName)

    # The second run, through the command: nothing to change, nothing written.
    assert cli_main(["certs", "install", *stack.cli_args()] + ["--ip", "127.0.0.1"]) == 0
    out = capsys.readouterr().out
    assert "CA kept" in out and "caBundle unchanged" in out and "nothing to change" in out, out
    assert stack.webhook_configuration()["metadata"]["resourceVersion"] == configuration["metadata"]["resourceVersion"]
    assert secret(stack, layout.TLS_SECRET)["metadata"]["resourceVersion"] == tls["metadata"]["resourceVersion"]
    assert secret(stack, layout.CA_SECRET)["metadata"]["resourceVersion"] == ca["metadata"]["resourceVersion"]

    # Other names re-issue the serving certificate, under the same CA, and leave the bundle alone.
    result = stack.install(extra_dns=["meshswitch.example.internal"])
    assert result.leaf_issued and not result.ca_rotated and not result.bundle_patched
    assert stack.webhook_configuration()["metadata"]["resourceVersion"] == configuration["metadata"]["resourceVersion"]
    assert secret(stack, layout.CA_SECRET)["data"]["ca.crt"] == ca["data"]["ca.crt"]


def test_install_without_the_webhook_configuration_says_what_to_do(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--kubeconfig", str(stack.kubeconfig), "--namespace", stack.namespace, "--webhook-config", f"absent-{uuid.uuid4().hex[:6]}"]
    assert cli_main(["certs", "install", *args]) == 1
    assert "not found: apply the manifests first" in capsys.readouterr().err


def test_reviews_keep_succeeding_across_a_ca_rotation(stack_factory: Any) -> None:
    stack: Stack = stack_factory()
    assert stack.server is not None and stack.sync is not None
    target = stack.make_namespace({"meshswitch.io/mode": "istio"})  # failurePolicy Fail: a failed call refuses the pod
    from kubernetes import client as k8s

    core: Any = k8s.CoreV1Api(stack.client)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "rotation-"}, "spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]}}

    def review() -> str | None:
        """One admission through the API server; None when the webhook injected, else what happened."""
        try:
            import json

            created = json.loads(core.create_namespaced_pod(target, pod, dry_run="All", _preload_content=False).data)
        except Exception as err:  # ApiException: the webhook call failed and the policy refused the pod
            return f"{type(err).__name__}: {getattr(err, 'body', err)!s:.300}"
        return None if injected(created) == ["istio"] else f"not injected: {injected(created)}"

    eventually("the webhook injects in the target namespace", lambda: review() is None, timeout=60)
    old_ca = layout.pem_certificates(base64.b64decode(secret(stack, layout.CA_SECRET)["data"]["ca.crt"]))[0]
    old_leaf = stack.served_certificate()

    failures: list[str] = []
    count = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal count
        deadline = time.monotonic() + 90  # bounded, whatever happens to the test
        while not stop.is_set() and time.monotonic() < deadline and count < 5000:
            problem = review()
            count += 1
            if problem:
                failures.append(problem)
            time.sleep(0.02)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        time.sleep(1)
        overlap = 4.0
        rotated = stack.install(rotate_ca=True, overlap=dt.timedelta(seconds=overlap))
        assert rotated.ca_rotated and rotated.leaf_issued and rotated.bundle_patched
        new_ca = rotated.ca
        assert layout.fingerprint(new_ca) != layout.fingerprint(old_ca)
        assert bundle_of(stack) == [layout.fingerprint(new_ca), layout.fingerprint(old_ca)], "both CAs through the overlap"
        # The replica picks the new pair up from its Secret volume.
        eventually("the server serves the new certificate", lambda: stack.served_certificate() != old_leaf, timeout=30)
        served = x509.load_der_x509_certificate(stack.served_certificate())
        served.verify_directly_issued_by(new_ca)
        time.sleep(1)
        # A run inside the overlap keeps the old CA; one after it drops it.
        assert not stack.install().changed
        assert len(bundle_of(stack)) == 2
        eventually("the overlap to end", lambda: dt.datetime.now(dt.timezone.utc) >= rotated.previous_until, timeout=overlap + 5)  # type: ignore[operator]
        dropped = stack.install()
        assert dropped.dropped_previous and dropped.bundle_patched and not dropped.leaf_issued
        assert bundle_of(stack) == [layout.fingerprint(new_ca)]
        assert install.PREVIOUS_KEY not in secret(stack, layout.CA_SECRET)["data"]
        time.sleep(2)
    finally:
        stop.set()
        worker.join(30)
    assert count >= 20, f"only {count} reviews ran"
    assert failures == [], f"{len(failures)} of {count} reviews failed: {failures[:3]}"
    assert not stack.install().changed, "and then it is settled"


def test_install_fills_the_validating_webhooks_ca_bundle_too(stack: Stack) -> None:
    validating = stack.kube.get(layout.validating_config_path(stack.config_name))
    assert validating is not None, "the stack registers the manifests' ValidatingWebhookConfiguration"
    fingerprints = [layout.fingerprint(c) for c in layout.pem_certificates(layout.ca_bundle_of(validating["webhooks"][0]))]
    assert fingerprints == bundle_of(stack)
