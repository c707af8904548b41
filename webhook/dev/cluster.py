"""A dev cluster: the local control plane, `meshswitch serve` on loopback, and its registration.

`python -m webhook.dev up` is `make run`; `python -m webhook.dev demo` is `make demo` (webhook/dev/demo.py).
The e2e fixtures use the same pieces (WebhookServer, webhook_configuration, register, wait_until_called).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from webhook import certs
from webhook.cluster.client import api_client
from webhook.cluster.findings import PROBE_NAMESPACE_PREFIX
from webhook.dev import binaries
from webhook.dev import controlplane as cp

# Not `meshswitch`: `kubectl apply -k manifests/` on a dev cluster must create its own configurations,
# never merge into these (which send reviews to a loopback URL).
CONFIG_NAME = "meshswitch-dev"
WEBHOOK_NAME = "inject.meshswitch.io"
VALIDATE_WEBHOOK_NAME = "namespace-labels.meshswitch.io"
WEBHOOK_NAMESPACE = "meshswitch-system"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", WEBHOOK_NAMESPACE)
MODE_LABEL = "meshswitch.io/mode"
INJECT_KEY = "meshswitch.io/inject"
DEFAULT_PORT = 8443
READY_TIMEOUT = 30.0
CALLED_TIMEOUT = 60.0


class DevClusterError(binaries.ControlPlaneError):
    """The webhook could not be started, registered or reached by the API server."""


# --- registration ---------------------------------------------------------------------------------


def webhook_configuration(
    url: str,
    ca_pem: bytes,
    *,
    failure_policy: str = "Fail",
    name: str = CONFIG_NAME,
    excluded_namespaces: Sequence[str] = SYSTEM_NAMESPACES,
) -> dict[str, Any]:
    """Return the MutatingWebhookConfiguration that sends pod CREATEs to `url`, trusting `ca_pem`."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "meshswitch"}},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "timeoutSeconds": 5,
                "reinvocationPolicy": "IfNeeded",
                "failurePolicy": failure_policy,
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded_namespaces)}
                    ]
                },
                "objectSelector": {"matchExpressions": [{"key": INJECT_KEY, "operator": "NotIn", "values": ["false"]}]},
            }
        ],
    }


def validating_configuration(url: str, ca_pem: bytes, *, name: str = CONFIG_NAME) -> dict[str, Any]:
    """Return the ValidatingWebhookConfiguration that sends Namespace CREATE and UPDATE to `url` (policy Ignore)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "meshswitch"}},
        "webhooks": [
            {
                "name": VALIDATE_WEBHOOK_NAME,
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["namespaces"],
                        "scope": "Cluster",
                    }
                ],
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "timeoutSeconds": 5,
                "failurePolicy": "Ignore",
            }
        ],
    }


def apply_validating_webhook(client: Any, body: dict[str, Any]) -> None:
    """Create the ValidatingWebhookConfiguration `body`, or replace it if it exists."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    api: Any = k8s.AdmissionregistrationV1Api(client)
    name = body["metadata"]["name"]
    try:
        api.create_validating_webhook_configuration(body=body)
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    current = api.read_validating_webhook_configuration(name)
    replacement = json.loads(json.dumps(body))
    replacement["metadata"]["resourceVersion"] = current.metadata.resource_version
    api.replace_validating_webhook_configuration(name, body=replacement)


def register(
    client: Any, server: WebhookServer, *, failure_policy: str = "Fail", name: str = CONFIG_NAME
) -> dict[str, Any]:
    """Create or replace the Mutating- and ValidatingWebhookConfiguration for `server`; return the mutating one."""
    body = webhook_configuration(server.mutate_url, server.ca_pem, failure_policy=failure_policy, name=name)
    cp.apply_mutating_webhook(client, body)
    apply_validating_webhook(client, validating_configuration(server.validate_url, server.ca_pem, name=name))
    return body


def unregister(client: Any, name: str = CONFIG_NAME) -> None:
    """Delete the Mutating- and ValidatingWebhookConfiguration `name` where they exist."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    api: Any = k8s.AdmissionregistrationV1Api(client)
    for delete in (api.delete_mutating_webhook_configuration, api.delete_validating_webhook_configuration):
        try:
            delete(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def wait_until_called(client: Any, timeout: float = CALLED_TIMEOUT) -> dict[str, Any]:
    """Dry-run create a pod in a throwaway istio namespace until the API server really calls the webhook."""
    from kubernetes import client as k8s

    core: Any = k8s.CoreV1Api(client)
    name = f"{PROBE_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"  # `meshswitch check` leaves these out
    core.create_namespace({"metadata": {"name": name, "labels": {MODE_LABEL: "istio"}}})
    try:
        cp.wait_for_service_account(client, name, timeout)
        return cp.wait_for_webhook(client, name, timeout=timeout)
    finally:
        core.delete_namespace(name, propagation_policy="Background")


# --- the webhook process --------------------------------------------------------------------------


def serve_command() -> list[str]:
    """Return the argv prefix of `meshswitch serve`: the console script beside this Python, else -m."""
    script = Path(sys.executable).parent / "meshswitch"
    prefix = [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "webhook.cli.main"]
    return [*prefix, "serve"]


@dataclass
class WebhookServer:
    """`meshswitch serve` on 127.0.0.1 with certificates generated into `work_dir`; restartable on its port."""

    kubeconfig: Path
    work_dir: Path
    port: int = 0
    extra_args: Sequence[str] = ()
    ready_timeout: float = READY_TIMEOUT
    process: cp.Process | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    @property
    def cert_dir(self) -> Path:
        """Return the dir holding ca.crt, tls.crt and tls.key."""
        return self.work_dir / "certs"

    @property
    def log_path(self) -> Path:
        """Return the server's log (every start appends to it)."""
        return self.work_dir / "webhook.log"

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def mutate_url(self) -> str:
        """Return the URL the API server posts AdmissionReviews to."""
        return f"{self.url}/mutate"

    @property
    def validate_url(self) -> str:
        """Return the URL the API server posts Namespace reviews to."""
        return f"{self.url}/validate"

    @property
    def ca_pem(self) -> bytes:
        """Return the CA that signed the serving certificate (the caBundle)."""
        return (self.cert_dir / "ca.crt").read_bytes()

    @property
    def pid(self) -> int | None:
        """Return the running server's pid, if any."""
        return self.process.pid if self.process is not None and self.process.alive() else None

    def alive(self) -> bool:
        """Tell whether the server process runs."""
        return self.process is not None and self.process.alive()

    def start(self) -> WebhookServer:
        """Generate certificates if missing, start the server and wait until /readyz answers 200."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not (self.cert_dir / "tls.crt").is_file():
            certs.generate(self.cert_dir, dns_names=["localhost"], ips=["127.0.0.1"])
        if self.port == 0:
            self.port = cp.free_ports(1)[0]
        argv = [
            *serve_command(),
            "--cert-dir", str(self.cert_dir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--kubeconfig", str(self.kubeconfig),
            "--webhook-namespace", WEBHOOK_NAMESPACE,
            *self.extra_args,
        ]  # fmt: skip
        log_file = self.log_path.open("ab")
        self.starts += 1
        log_file.write(f"===== start {self.starts}: {' '.join(argv)}\n".encode())
        log_file.flush()
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only Python, which stops the server by pid
            preexec_fn=cp._set_parent_death_signal if sys.platform.startswith("linux") else None,
        )
        self.process = cp.Process("meshswitch-serve", popen, self.log_path, log_file)
        atexit.register(self.stop)
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        try:
            cp.wait_until(
                f"meshswitch serve {self.url}/readyz",
                lambda: cp._http_ok(f"{self.url}/readyz", context),
                self.ready_timeout,
                [self.process],
                interval=0.1,
            )
        except binaries.ControlPlaneError as exc:
            self.stop()
            raise DevClusterError(f"{exc}\n----- {self.log_path} -----\n{self.log_tail()}") from None
        return self

    def stop(self) -> int | None:
        """SIGTERM the server by pid (SIGKILL after a grace period); return its exit status."""
        atexit.unregister(self.stop)
        if self.process is None:
            return None
        process, self.process = self.process, None
        process.stop(grace=30.0)
        return process.popen.returncode

    def restart(self) -> WebhookServer:
        """Stop the server if it runs and start it again on the same port with the same certificates."""
        self.stop()
        return self.start()

    def log_tail(self, lines: int = cp.LOG_TAIL_LINES) -> str:
        """Return the last lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def reviews(self) -> list[dict[str, Any]]:
        """Return the per-review JSON log lines written so far."""
        found = []
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("msg") == "review":
                    found.append(entry)
        return found


def _check_port_free(port: int) -> None:
    """Fail early, before the control plane starts, when the webhook's port is taken."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DevClusterError(
                f"127.0.0.1:{port} is not free ({exc.strerror}); is another `make run` up? "
                "Pick another with --port (make run WEBHOOK_PORT=...)"
            ) from None


# --- the dev cluster ------------------------------------------------------------------------------


@dataclass
class DevCluster:
    """The control plane, the webhook, and the registration that joins them."""

    bin_dir: Path
    run_dir: Path | None = None
    port: int = DEFAULT_PORT
    fail_open: bool = False
    serve_args: Sequence[str] = ()
    plane: cp.ControlPlane | None = field(default=None, init=False)
    webhook: WebhookServer | None = field(default=None, init=False)
    client: Any = field(default=None, init=False)

    @property
    def failure_policy(self) -> str:
        """Return the registration's failurePolicy, matching the server's --fail-open."""
        return "Ignore" if self.fail_open else "Fail"

    def start(self) -> DevCluster:
        """Start everything and return once the API server really calls the webhook."""
        if self.port:
            _check_port_free(self.port)
        try:
            self.plane = cp.ControlPlane(self.bin_dir, run_dir=self.run_dir).start()
            extra = [*(["--fail-open"] if self.fail_open else []), *self.serve_args]
            assert self.plane.run_dir is not None
            self.webhook = WebhookServer(self.plane.kubeconfig, self.plane.run_dir / "webhook", self.port, extra)
            self.webhook.start()
            self.client = api_client(self.plane.kubeconfig)
            register(self.client, self.webhook, failure_policy=self.failure_policy)
            wait_until_called(self.client)
        except DevClusterError:
            self.stop()  # the webhook's own log is in the message; the control plane's would be noise
            raise
        except BaseException:
            self.stop(failed=True)
            raise
        return self

    def failed_processes(self) -> list[str]:
        """Return the names of processes that exited by themselves."""
        dead = [p.name for p in self.plane.failed_processes()] if self.plane else []
        if self.webhook is not None and not self.webhook.alive():
            dead.append("meshswitch serve")
        return dead

    def stop(self, failed: bool = False) -> None:
        """Stop the webhook, then the control plane, each by pid."""
        if self.webhook is not None:
            if failed and self.webhook.process is not None:
                header = f"===== meshswitch serve {self.webhook.log_path} ====="
                print(f"{header}\n{self.webhook.log_tail()}", file=sys.stderr)
            self.webhook.stop()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.plane is not None:
            self.plane.stop(failed=failed)

    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(failed=exc_type is not None and not issubclass(exc_type, (KeyboardInterrupt, SystemExit)))


# --- up -------------------------------------------------------------------------------------------

TRY_IT = """\
# try it (pods never run: there is no kubelet; look at the pod objects):
#   kubectl create namespace shop
#   kubectl label namespace shop meshswitch.io/mode=istio
#   kubectl create deployment web -n shop --image=nginx:1.27      # or: kubectl apply -n shop -f <workload>.yaml
#   kubectl get pods -n shop -o custom-columns='POD:.metadata.name,INIT:.spec.initContainers[*].name'
#   kubectl label namespace shop meshswitch.io/mode=linkerd --overwrite && kubectl delete pods -n shop --all"""


def run_dev_cluster(args: argparse.Namespace) -> int:
    """Run the dev cluster until Ctrl-C or SIGTERM."""
    bin_dir = binaries.resolve_binaries(build=not args.no_build)
    run_dir = Path(args.run_dir).resolve() if args.run_dir else None
    with cp.sigterm_as_interrupt():
        try:
            began = time.monotonic()
            with DevCluster(bin_dir, run_dir=run_dir, port=args.port, fail_open=args.fail_open) as cluster:
                assert cluster.plane is not None and cluster.webhook is not None
                err = sys.stderr
                print(f"# control plane ready at {cluster.plane.api_url} (kube-apiserver {binaries.versions()[0]})", file=err)
                print(f"# webhook {cluster.webhook.mutate_url} (pid {cluster.webhook.pid}), registered as "
                      f"MutatingWebhookConfiguration/{CONFIG_NAME}, failurePolicy {cluster.failure_policy}; "
                      f"{cluster.webhook.validate_url} as ValidatingWebhookConfiguration/{CONFIG_NAME} (Namespace labels)", file=err)
                print(f"# meshswitch is {Path(sys.executable).parent / 'meshswitch'}; "
                      f"check it: meshswitch check --webhook-config {CONFIG_NAME}", file=err)
                took = time.monotonic() - began
                print(f"# ready in {took:.1f} s; logs and certificates: {cluster.plane.run_dir}", file=err)
                print(TRY_IT, file=err)
                print("# Ctrl-C stops everything", file=err, flush=True)
                print(f"export KUBECONFIG={cluster.plane.kubeconfig}", flush=True)
                print(f"export PATH={Path(sys.executable).parent}:$PATH", flush=True)
                while True:
                    dead = cluster.failed_processes()
                    if dead:
                        print(f"# {', '.join(dead)} exited; stopping", file=err)
                        return 1
                    time.sleep(1)
        except KeyboardInterrupt:
            print("# stopped", file=sys.stderr)
            return 0


# --- demo -----------------------------------------------------------------------------------------


