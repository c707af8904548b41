"""A local etcd, kube-apiserver and kube-controller-manager for the e2e tests and `make run`."""

from __future__ import annotations

import argparse
import atexit
import base64
import datetime
import ipaddress
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhook import certs
from webhook.dev.binaries import ControlPlaneError, find_binaries, resolve_binaries

STATUS_ANNOTATION = "meshswitch.io/status"
READY_TIMEOUT = 300.0
KCM_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "serviceaccount-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
)
SERVICE_CIDR = "10.0.0.0/24"
LOG_TAIL_LINES = 80
T = TypeVar("T")


# --- certificates -------------------------------------------------------------------------------


def _hosts(hosts: Sequence[str]) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """Split host strings into DNS names and IP addresses."""
    names: list[str] = []
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for host in hosts:
        try:
            addresses.append(ipaddress.ip_address(host))
        except ValueError:
            names.append(host)
    return names, addresses


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA that signs serving and client certificates (built by webhook.certs)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str, days: int = 365) -> CertificateAuthority:
        """Make a new self-signed ECDSA P-256 CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        return cls(key, certs.build_ca(key, now, common_name=common_name, days=days))

    @property
    def cert_pem(self) -> bytes:
        """Return the CA certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        hosts: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        days: int = 365,
    ) -> tuple[bytes, bytes]:
        """Issue a leaf certificate; return (cert PEM, key PEM). Hosts become IP or DNS SANs."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names, addresses = _hosts(hosts)
        cert = certs.build_leaf(
            key, self.cert, self.key, now, dns_names=names, addresses=addresses, common_name=common_name,
            organizations=organizations, server=server, client=client, days=days,
        )  # fmt: skip
        return cert.public_bytes(serialization.Encoding.PEM), certs.key_pem(key)


# --- files, ports, processes --------------------------------------------------------------------


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    """Write bytes to `path` (mode 0600 when private) and return it."""
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def free_ports(count: int) -> list[int]:
    """Return `count` distinct free TCP ports on 127.0.0.1."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str) -> Path:
    """Write a self-contained kubeconfig for a client-certificate user."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "meshswitch", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": "meshswitch", "context": {"cluster": "meshswitch", "user": user}}],
        "current-context": "meshswitch",
    }
    return _write(path, yaml.safe_dump(config, sort_keys=False).encode(), private=True)


def _set_parent_death_signal() -> None:
    """Ask Linux to SIGKILL the child if the Python process dies without cleaning up."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 == PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Process:
    """A started control-plane binary, its log file and its exit state."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Tell whether the process is still running."""
        return self.popen.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM this pid, then SIGKILL it after `grace` seconds."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log_file.close()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def start_process(name: str, argv: Sequence[str], log_dir: Path) -> Process:
    """Start `argv` with stdout and stderr going to log_dir/<name>.log."""
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Own session: Ctrl-C reaches only Python, which then stops the children in order.
        start_new_session=True,
        preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
    )
    return Process(name, popen, log_path, log_file)


def wait_until(
    what: str, probe: Callable[[], T], timeout: float, processes: Sequence[Process] = (), interval: float = 0.25
) -> T:
    """Poll `probe` until it returns something truthy, and return that; fail early if one of `processes` exits."""
    deadline = time.monotonic() + timeout
    while True:
        dead = [p for p in processes if not p.alive()]
        if dead:
            codes = ", ".join(f"{p.name} (pid {p.pid}) exited with {p.popen.returncode}" for p in dead)
            raise ControlPlaneError(f"while waiting for {what}: {codes}")
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """Tell whether GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


# --- the control plane --------------------------------------------------------------------------


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on loopback, with a kubeconfig in `run_dir`."""

    bin_dir: Path
    run_dir: Path | None = None
    ready_timeout: float = READY_TIMEOUT
    extra_apiserver_args: Sequence[str] = ()
    processes: list[Process] = field(default_factory=list, init=False)
    startup_seconds: float = field(default=0.0, init=False)
    _own_run_dir: bool = field(default=False, init=False)
    _ca: CertificateAuthority | None = field(default=None, init=False)
    _api_port: int = field(default=0, init=False)

    @property
    def api_url(self) -> str:
        """Return the apiserver's base URL."""
        return f"https://127.0.0.1:{self._api_port}"

    @property
    def kubeconfig(self) -> Path:
        """Return the path of the admin (system:masters) kubeconfig."""
        return self._dir / "kubeconfig"

    @property
    def ca_pem(self) -> bytes:
        """Return the CA that signed the apiserver's serving certificate (and the client certs)."""
        if self._ca is None:
            raise ControlPlaneError("control plane not started")
        return self._ca.cert_pem

    @property
    def _dir(self) -> Path:
        """Return the run dir, which start() creates when none was given."""
        if self.run_dir is None:
            raise ControlPlaneError("control plane not started")
        return self.run_dir

    def start(self) -> ControlPlane:
        """Start etcd, kube-apiserver and kube-controller-manager and wait until they are ready."""
        began = time.monotonic()
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="meshswitch-controlplane-"))
            self._own_run_dir = True
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            etcd_port, peer_port, self._api_port, kcm_port = free_ports(4)
            self._write_certificates()
            self._start_etcd(etcd_port, peer_port)
            self._start_apiserver(etcd_port)
            self._start_controller_manager(kcm_port)
        except KeyboardInterrupt:
            self.stop()
            raise
        except BaseException:
            self.stop(failed=True)
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _write_certificates(self) -> None:
        """Create the CA, the serving cert, the SA signing key and the client kubeconfigs."""
        d = self._dir
        self._ca = ca = CertificateAuthority.create("meshswitch-controlplane-ca")
        _write(d / "ca.crt", ca.cert_pem)
        hosts = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
        hosts.append(str(next(ipaddress.ip_network(SERVICE_CIDR).hosts())))
        cert, key = ca.issue("kube-apiserver", hosts=hosts, server=True)
        _write(d / "apiserver.crt", cert)
        _write(d / "apiserver.key", key, private=True)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write(d / "sa.key", certs.key_pem(sa_key), private=True)
        sa_pub = sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(d / "sa.pub", sa_pub)
        for filename, user in (("kubeconfig", "admin"), ("kcm.kubeconfig", "system:kube-controller-manager")):
            cert, key = ca.issue(user, organizations=["system:masters"], client=True)
            write_kubeconfig(d / filename, self.api_url, ca.cert_pem, cert, key, user)
            if filename == "kubeconfig":
                _write(d / "admin.crt", cert)
                _write(d / "admin.key", key, private=True)

    def _start_etcd(self, port: int, peer_port: int) -> None:
        """Start a single-member etcd and wait for /health."""
        client_url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer_port}"
        data_dir = self._dir / "etcd-data"
        # A reused --run-dir must start empty: old objects and tokens refer to the previous run's CA and keys.
        shutil.rmtree(data_dir, ignore_errors=True)
        argv = [
            str(self.bin_dir / "etcd"),
            "--name=meshswitch",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=meshswitch={peer_url}",
            # Test data is disposable; fsync would dominate start-up and request latency on slow disks.
            "--unsafe-no-fsync=true",
        ]
        proc = self._spawn("etcd", argv)
        wait_until("etcd /health", lambda: _http_ok(f"{client_url}/health"), self.ready_timeout, [proc])

    def _start_apiserver(self, etcd_port: int) -> None:
        """Start kube-apiserver and wait for an authenticated /readyz."""
        d = self._dir
        argv = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            # Loopback bind makes the apiserver look for a default route unless the address is explicit.
            "--advertise-address=127.0.0.1",
            f"--secure-port={self._api_port}",
            f"--cert-dir={d / 'apiserver-certs'}",
            f"--tls-cert-file={d / 'apiserver.crt'}",
            f"--tls-private-key-file={d / 'apiserver.key'}",
            f"--client-ca-file={d / 'ca.crt'}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer={self.api_url}",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--allow-privileged=true",
            # 127.0.0.1 is not a valid Endpoints address, so the reconciler would only log errors.
            "--endpoint-reconciler-type=none",
            *self.extra_apiserver_args,
        ]
        self._spawn("kube-apiserver", argv)
        context = self.ssl_context()
        wait_until(
            "kube-apiserver /readyz",
            lambda: _http_ok(f"{self.api_url}/readyz", context),
            self.ready_timeout,
            self.processes,
            interval=0.5,
        )

    def _start_controller_manager(self, port: int) -> None:
        """Start kube-controller-manager and wait until it created the default ServiceAccount."""
        d = self._dir
        kcm_kubeconfig = d / "kcm.kubeconfig"
        argv = [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            # Without a requestheader CA in the cluster the lookup only logs an error every few seconds.
            "--authentication-skip-lookup=true",
            f"--client-ca-file={d / 'ca.crt'}",
            # Controllers act as KCM itself (system:masters), so no per-controller RBAC is needed.
            "--use-service-account-credentials=false",
            f"--controllers={','.join(KCM_CONTROLLERS)}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={d / 'kcm-certs'}",
            f"--service-account-private-key-file={d / 'sa.key'}",
            f"--root-ca-file={d / 'ca.crt'}",
        ]
        self._spawn("kube-controller-manager", argv)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        wait_until(
            "kube-controller-manager /healthz",
            lambda: _http_ok(f"https://127.0.0.1:{port}/healthz", insecure),
            self.ready_timeout,
            self.processes,
            interval=0.5,
        )
        wait_until(
            "ServiceAccount default/default",
            lambda: self._get_ok("/api/v1/namespaces/default/serviceaccounts/default"),
            self.ready_timeout,
            self.processes,
            interval=0.5,
        )

    def _spawn(self, name: str, argv: Sequence[str]) -> Process:
        """Start a binary and remember it for stop()."""
        proc = start_process(name, argv, self._dir)
        self.processes.append(proc)
        return proc

    def ssl_context(self) -> ssl.SSLContext:
        """Return a TLS context that trusts the CA and presents the admin client certificate."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        context.load_cert_chain(self._dir / "admin.crt", self._dir / "admin.key")
        return context

    def _get_ok(self, path: str) -> bool:
        """Tell whether an admin GET of `path` answers 200."""
        return _http_ok(f"{self.api_url}{path}", self.ssl_context())

    def failed_processes(self) -> list[Process]:
        """Return the started processes that have exited by themselves."""
        return [p for p in self.processes if not p.alive()]

    def stop(self, failed: bool = False) -> None:
        """Stop every started process by pid (newest first); on failure print logs and keep the run dir."""
        atexit.unregister(self.stop)
        failed = failed or bool(self.failed_processes())
        if failed and self.processes:
            self._dump_logs(sys.stderr)
        while self.processes:
            self.processes.pop().stop()
        if self._own_run_dir and self.run_dir is not None and not failed:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _dump_logs(self, out: IO[str]) -> None:
        """Print each process's exit state and log tail."""
        for proc in self.processes:
            state = "running" if proc.alive() else f"exited with {proc.popen.returncode}"
            print(f"===== {proc.name} (pid {proc.pid}, {state}) {proc.log_path} =====", file=out)
            print(proc.log_tail(), file=out)
        out.flush()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(failed=exc_type is not None and not issubclass(exc_type, (KeyboardInterrupt, SystemExit)))


# --- client helpers -----------------------------------------------------------------------------


def wait_for_service_account(client: Any, namespace: str, timeout: float = 60.0) -> None:
    """Wait until the serviceaccount controller created `default` in `namespace` (pods need it)."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    core: Any = k8s.CoreV1Api(client)

    def exists() -> bool:
        try:
            core.read_namespaced_service_account("default", namespace)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    wait_until(f"ServiceAccount {namespace}/default", exists, timeout)


def apply_mutating_webhook(client: Any, body: Mapping[str, Any]) -> None:
    """Create the MutatingWebhookConfiguration `body`, or replace it if it exists."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    # Any: the generated stubs want model objects, but the client accepts plain dicts.
    api: Any = k8s.AdmissionregistrationV1Api(client)
    name = body["metadata"]["name"]
    try:
        api.create_mutating_webhook_configuration(body=dict(body))
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    current = api.read_mutating_webhook_configuration(name)
    replacement = json.loads(json.dumps(body))
    replacement["metadata"]["resourceVersion"] = current.metadata.resource_version
    api.replace_mutating_webhook_configuration(name, body=replacement)


def probe_pod(name: str = "meshswitch-probe") -> dict[str, Any]:
    """Return a minimal pod used to see whether the webhook mutates."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"]}]},
    }


def wait_for_webhook(
    client: Any, namespace: str, pod: Mapping[str, Any] | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Dry-run create a pod in `namespace` until the webhook really mutated it; return that pod."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    core: Any = k8s.CoreV1Api(client)
    body = dict(pod or probe_pod())
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        try:
            # The apiserver's webhook informer lags behind the create, and the ServiceAccount may not exist yet.
            response = core.create_namespaced_pod(namespace, body, dry_run="All", _preload_content=False)
            created: dict[str, Any] = json.loads(response.data)
            annotations = created.get("metadata", {}).get("annotations") or {}
            if STATUS_ANNOTATION in annotations:
                return created
            last = f"pod came back without the {STATUS_ANNOTATION} annotation"
        except ApiException as exc:
            last = f"HTTP {exc.status}: {exc.body!r}"
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"webhook not called in namespace {namespace} within {timeout:.0f} s: {last}")
        time.sleep(0.5)


# --- CLI ----------------------------------------------------------------------------------------


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so `with ControlPlane()` still cleans up."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_control_plane(args: argparse.Namespace) -> int:
    """Run the control plane until Ctrl-C or SIGTERM."""
    bin_dir = resolve_binaries(build=not args.no_build)
    run_dir = Path(args.run_dir).resolve() if args.run_dir else None
    with sigterm_as_interrupt():
        try:
            with ControlPlane(bin_dir, run_dir=run_dir) as plane:
                print(f"# control plane ready in {plane.startup_seconds:.1f} s at {plane.api_url}", file=sys.stderr)
                print(f"# logs and certificates: {plane.run_dir}; Ctrl-C stops everything", file=sys.stderr)
                print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
                while not plane.failed_processes():
                    time.sleep(1)
                print("# a control-plane process exited; stopping", file=sys.stderr)
                return 1
        except KeyboardInterrupt:
            print("# stopped", file=sys.stderr)
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m webhook.dev.controlplane`."""
    parser = argparse.ArgumentParser(prog="python -m webhook.dev.controlplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start etcd, kube-apiserver and kube-controller-manager; block until Ctrl-C")
    up.add_argument("--run-dir", help="keep kubeconfig, certificates and logs here (default: a temp dir)")
    up.add_argument("--no-build", action="store_true", help="fail instead of building missing binaries")
    sub.add_parser("build", help="build the binaries if missing and print their dir")
    sub.add_parser("bin-dir", help="print the bin dir if all binaries exist, else exit 1")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return run_control_plane(args)
        if args.command == "build":
            print(resolve_binaries())
            return 0
        found = find_binaries()
        if found is None:
            return 1
        print(found)
        return 0
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
