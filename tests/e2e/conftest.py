"""Fixtures for the e2e tests: a real etcd, kube-apiserver and kube-controller-manager on loopback,
and `meshswitch serve` registered with it as a mutating webhook."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from webhook.cluster.client import KubeApi, api_client
from webhook.dev import binaries
from webhook.dev import controlplane as cp
from webhook.dev import cluster as dc

NamespaceFactory = Callable[..., str]
WEBHOOK_KEY = pytest.StashKey[dc.WebhookServer]()
NO_GO = "e2e: control-plane binaries not built and 'go' is not on PATH (needs Go >= 1.26: make controlplane)"


def _must_run() -> bool:
    """Tell whether a missing toolchain is an error (CI) rather than a reason to skip."""
    return os.environ.get("CI") == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every e2e test up front when nothing can provide the binaries, so pytest -ra folds it into one line."""
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    if e2e and not _must_run() and binaries.find_binaries() is None and shutil.which("go") is None:
        for item in e2e:
            item.add_marker(pytest.mark.skip(reason=NO_GO))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of the webhook's log to a failed e2e test's report; fold the no-Go skips into one line."""
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and NO_GO in str(report.longrepr[2]):
        # pytest -ra groups skips by file and line; parametrized tests would each get a line of their own.
        # pytest's own folding takes a None line (terminal._folded_skips); TestReport.longrepr's annotation says int.
        report.longrepr = (str(Path(__file__).parent), None, report.longrepr[2])  # type: ignore[assignment]
    server = item.config.stash.get(WEBHOOK_KEY, None)
    if report.failed and server is not None and item.get_closest_marker("e2e"):
        report.sections.append((f"meshswitch serve log ({server.log_path})", server.log_tail(60)))


def _bin_dir(pytestconfig: pytest.Config) -> Path:
    """Return the control-plane bin dir, building it (with visible progress) when go is available."""
    found = binaries.find_binaries()
    if found is not None:
        return found
    if shutil.which("go") is None:
        if _must_run():
            pytest.fail(NO_GO, pytrace=False)
        pytest.skip(NO_GO)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    # A cold build takes many minutes; show its progress instead of hiding it in captured output.
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        print("\ne2e: building kube-apiserver, kube-controller-manager and etcd (slow the first time)", flush=True)
        return binaries.build_binaries()


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[cp.ControlPlane]:
    """Start the control plane once per session and stop it (by pid) afterwards."""
    with cp.ControlPlane(_bin_dir(pytestconfig)) as plane:
        yield plane


@pytest.fixture(scope="session")
def kube_client(control_plane: cp.ControlPlane) -> Iterator[Any]:
    """Return a kubernetes ApiClient authenticated as admin (system:masters)."""
    client = api_client(control_plane.kubeconfig)
    yield client
    client.close()


@pytest.fixture
def namespace_factory(kube_client: Any) -> Iterator[NamespaceFactory]:
    """Create namespaces (with labels) that have their default ServiceAccount; delete them afterwards."""
    from kubernetes import client as k8s

    core: Any = k8s.CoreV1Api(kube_client)
    created: list[str] = []

    def make(labels: Mapping[str, str] | None = None, prefix: str = "e2e") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name, "labels": dict(labels or {})}})
        created.append(name)
        cp.wait_for_service_account(kube_client, name)
        return name

    yield make
    for name in created:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(namespace_factory: NamespaceFactory) -> str:
    """Return a fresh unlabeled namespace."""
    return namespace_factory()


@pytest.fixture(scope="session")
def webhook_server(
    pytestconfig: pytest.Config, control_plane: cp.ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dc.WebhookServer]:
    """Run `meshswitch serve` on a free loopback port, watching the control plane's namespaces."""
    # The API server keeps its connections open, so a stop would always wait out the whole drain (2 s).
    drain = ["--drain-seconds", "0.2"]
    server = dc.WebhookServer(control_plane.kubeconfig, tmp_path_factory.mktemp("webhook"), extra_args=drain)
    pytestconfig.stash[WEBHOOK_KEY] = server
    try:
        server.start()
    except binaries.ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def webhook(kube_client: Any, webhook_server: dc.WebhookServer) -> Iterator[dc.WebhookServer]:
    """Register the webhook (failurePolicy Fail) and wait until the API server really calls it."""
    dc.register(kube_client, webhook_server)
    try:
        dc.wait_until_called(kube_client)
    except binaries.ControlPlaneError as exc:
        pytest.fail(f"{exc}\n----- {webhook_server.log_path} -----\n{webhook_server.log_tail()}", pytrace=False)
    yield webhook_server
    dc.unregister(kube_client)


@pytest.fixture
def stopped_webhook(kube_client: Any, webhook: dc.WebhookServer) -> Iterator[dc.WebhookServer]:
    """Stop the session's webhook for one test; afterwards restore failurePolicy Fail, restart it and wait."""
    webhook.stop()
    try:
        yield webhook
    finally:
        dc.register(kube_client, webhook)
        webhook.start()
        dc.wait_until_called(kube_client)


def _refuses_a_made_up_mode(kube: KubeApi) -> bool:
    """Whether the API server, right now, refuses a (dry-run) namespace labelled with a mode that cannot exist."""
    from webhook.cluster.client import ApiError

    body = {"metadata": {"generateName": "e2e-validation-", "labels": {dc.MODE_LABEL: "no-such-mode"}}}
    try:
        kube.call("POST", "/api/v1/namespaces", body=body, query=[("dryRun", "All")])
    except ApiError:
        return True
    return False


@contextmanager
def namespace_validation_paused(client: Any) -> Iterator[None]:
    """Without the dev cluster's ValidatingWebhookConfiguration for a moment: a namespace label that
    /validate refuses can still exist (written before the install, or while the webhook was down).
    The API server sees a configuration change a moment later: both ways are waited for."""
    path = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{dc.CONFIG_NAME}"
    kube = KubeApi(client)
    found = kube.get(path)
    if found is not None:
        kube.call("DELETE", path)
        cp.wait_until("the validating webhook to be gone", lambda: not _refuses_a_made_up_mode(kube) or None, 30.0)
    try:
        yield
    finally:
        if found is not None:
            body = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": dc.CONFIG_NAME, "labels": found["metadata"].get("labels") or {}}, "webhooks": found["webhooks"]}  # fmt: skip
            dc.apply_validating_webhook(client, body)
            cp.wait_until("the validating webhook to be back", lambda: _refuses_a_made_up_mode(kube) or None, 30.0)
