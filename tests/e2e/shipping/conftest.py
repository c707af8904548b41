"""Fixtures for the shipping e2e tests: a "stack" is what manifests/ + `certs install` make in a cluster,
on the local control plane: a namespace standing in for meshswitch-system, the manifests' webhook
configuration (its entries pointed at a local `meshswitch serve` by URL, since there is no kubelet or
Service routing here), the Secrets `certs install` writes, a thread that copies the serving Secret
into a directory the way kubelet updates a Secret volume, and the server reading that directory.

Every webhook configuration made here also requires the namespace label e2e.meshswitch.io/shipping=<run>,
so it never sees the namespaces of other tests sharing the control plane."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from webhook.cluster.client import KubeApi
from webhook.dev import controlplane as cp
from webhook.dev import cluster as dc
from webhook.cluster import install, layout

# The kind tests drive a cluster that `make kind-e2e` builds with Docker: they are not collected
# otherwise, rather than reported as skipped in every run on a machine without Docker.
collect_ignore = [] if os.environ.get("MESHSWITCH_KIND_KUBECONFIG") else ["test_kind.py"]

ROOT = Path(__file__).resolve().parents[3]
RUN_LABEL = "e2e.meshswitch.io/shipping"
KUBECTL = shutil.which("kubectl")


def render(path: str = "manifests") -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` renders `path` to."""
    import yaml

    if KUBECTL is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run([KUBECTL, "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def manifests_webhook_configuration(name: str, url: str, run: str) -> dict[str, Any]:
    """The manifests' MutatingWebhookConfiguration, renamed, sent to `url`, and kept to this run's namespaces."""
    (mwc,) = [o for o in render() if o["kind"] == "MutatingWebhookConfiguration"]
    mwc["metadata"]["name"] = name
    for entry in mwc["webhooks"]:
        entry["clientConfig"] = {"url": url}
        entry["namespaceSelector"]["matchExpressions"].append({"key": RUN_LABEL, "operator": "In", "values": [run]})
    return dict(mwc)


def manifests_validating_configuration(name: str, url: str) -> dict[str, Any]:
    """The manifests' ValidatingWebhookConfiguration, renamed and sent to `url`; it selects no namespace,
    so that tests may write labels the real one refuses, and `check` still finds and probes it."""
    (vwc,) = [o for o in render() if o["kind"] == "ValidatingWebhookConfiguration"]
    vwc["metadata"]["name"] = name
    for entry in vwc["webhooks"]:
        entry["clientConfig"] = {"url": url}
        entry["namespaceSelector"] = {"matchExpressions": [{"key": RUN_LABEL, "operator": "In", "values": ["never"]}]}
    return dict(vwc)


def eventually(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    return cp.wait_until(what, probe, timeout, interval=interval)


class SecretSync:
    """Copies a Secret into a directory as kubelet does for a Secret volume: the files are links into
    `..data`, a link swapped atomically to a fresh timestamped directory on every change."""

    def __init__(self, kube: KubeApi, namespace: str, name: str, directory: Path, interval: float = 0.2) -> None:
        self.kube, self.namespace, self.name, self.directory, self.interval = kube, namespace, name, directory, interval
        self.syncs = 0
        self._seen: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"secret-sync-{name}", daemon=True)

    def sync_once(self) -> bool:
        secret = self.kube.get(layout.secret_path(self.namespace, self.name))
        data = (secret or {}).get("data")
        if not data or data == self._seen:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        fresh = self.directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:6]}"
        fresh.mkdir()
        for key, value in data.items():
            (fresh / key).write_bytes(base64.b64decode(value))
        temporary = self.directory / "..data_tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(fresh.name)
        os.replace(temporary, self.directory / "..data")
        for key in data:
            link = self.directory / key
            if not link.is_symlink():
                link.symlink_to(f"..data/{key}")
        self._seen = data
        self.syncs += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_once()
            except Exception:  # a hiccup of the API server: kubelet retries too
                continue

    def start(self) -> SecretSync:
        eventually(f"Secret {self.namespace}/{self.name}", self.sync_once, timeout=30)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Stack:
    """One installation: namespace, webhook configuration, Secrets, secret sync, server."""

    client: Any
    kubeconfig: Path
    run: str
    work_dir: Path
    index: int
    namespace: str = ""
    config_name: str = ""
    server: dc.WebhookServer | None = None
    sync: SecretSync | None = None
    namespaces: list[str] = field(default_factory=list)

    @property
    def kube(self) -> KubeApi:
        return KubeApi(self.client)

    def core(self) -> Any:
        from kubernetes import client as k8s

        return k8s.CoreV1Api(self.client)

    def install(self, **overrides: Any) -> install.InstallResult:
        arguments: dict[str, Any] = {"namespace": self.namespace, "webhook_config": self.config_name, "ips": ["127.0.0.1"], "propagation_seconds": 1.0}
        arguments.update(overrides)
        return install.install(self.kube, **arguments)

    def cli_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace, "--webhook-config", self.config_name]

    def start(self) -> Stack:
        self.namespace = self.make_namespace(prefix="meshswitch-sys", selected=False)
        self.config_name = f"shipping-{self.run}-{self.index}"
        port = cp.free_ports(1)[0]
        cp.apply_mutating_webhook(self.client, manifests_webhook_configuration(self.config_name, f"https://127.0.0.1:{port}/mutate", self.run))
        dc.apply_validating_webhook(self.client, manifests_validating_configuration(self.config_name, f"https://127.0.0.1:{port}/validate"))
        self.install()
        self.sync = SecretSync(self.kube, self.namespace, layout.TLS_SECRET, self.work_dir / "certs").start()
        self.server = dc.WebhookServer(self.kubeconfig, self.work_dir, port=port, extra_args=["--cert-poll-seconds", "0.2"])
        self.server.start()
        return self

    def make_namespace(self, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None, *, prefix: str = "ship", selected: bool = True) -> str:
        """A namespace (with this run's label when `selected`, so the stack's webhook sees it)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        all_labels = {**(labels or {}), **({RUN_LABEL: self.run} if selected else {})}
        self.core().create_namespace({"metadata": {"name": name, "labels": all_labels, "annotations": dict(annotations or {})}})
        self.namespaces.append(name)
        cp.wait_for_service_account(self.client, name)
        return name

    def webhook_configuration(self) -> dict[str, Any]:
        found = self.kube.get(layout.webhook_config_path(self.config_name))
        assert found is not None
        return found

    def served_certificate(self) -> bytes:
        """The leaf the server presents right now (DER)."""
        import socket
        import ssl

        assert self.server is not None
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as raw, context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der

    def stop(self) -> None:
        from kubernetes.client.exceptions import ApiException

        if self.server is not None:
            self.server.stop()
        if self.sync is not None:
            self.sync.stop()
        dc.unregister(self.client, self.config_name)
        for name in self.namespaces:
            try:
                self.core().delete_namespace(name, propagation_policy="Background")
            except ApiException:
                pass


@pytest.fixture(scope="session")
def shipping_run() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def stack_factory(kube_client: Any, control_plane: cp.ControlPlane, shipping_run: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Stack]]:
    made: list[Stack] = []

    def make() -> Stack:
        stack = Stack(kube_client, control_plane.kubeconfig, shipping_run, tmp_path_factory.mktemp("stack"), len(made))
        made.append(stack)
        try:
            return stack.start()
        except dc.DevClusterError as err:
            pytest.fail(str(err), pytrace=False)

    yield make
    for stack in made:
        stack.stop()


@pytest.fixture(scope="session")
def stack(stack_factory: Callable[[], Stack]) -> Stack:
    """The session's installation, healthy; tests that break one make their own."""
    return stack_factory()


def pod_containers(pod: Mapping[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [c["name"] for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]


def injected(pod: Mapping[str, Any]) -> list[str]:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get("meshswitch.io/status")
    return list(json.loads(raw).get("plugins") or []) if raw else []
