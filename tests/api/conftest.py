"""A real webhook process on a free loopback port, over TLS, and an HTTPS client for it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from webhook import certs

from .pods import NAMESPACES_YAML

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def client_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Webhook:
    """A running ``python -m webhook.server``; ``post`` opens a fresh HTTPS connection each call."""

    process: subprocess.Popen[bytes]
    port: int
    cert_dir: Path
    log_file: Path
    context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = client_context(self.cert_dir / "ca.crt")

    def connection(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def post(self, review: Any, *, content_type: str = "application/json") -> Answer:
        body = review if isinstance(review, bytes) else orjson.dumps(review)
        return self.request("POST", "/mutate", body, {"Content-Type": content_type})

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def log_lines_with(self, text: str, timeout: float = 5.0) -> list[str]:
        """The log's lines holding ``text``, once there are some: review lines go out a loop turn
        after their answer (reviewlog.ReviewLog)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if text in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def start_webhook(
    tmp: Path,
    *,
    extra: Sequence[str] = (),
    cert_dir: Path | None = None,
) -> Webhook:
    """Start the server and wait until /readyz answers 200 (or fail with its log)."""
    if cert_dir is None:
        cert_dir = tmp / "certs"
        certs.generate(cert_dir)
    labels = tmp / "namespaces.yaml"
    labels.write_text(NAMESPACES_YAML)
    port = free_port()
    log_file = tmp / f"server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "webhook.server",
        "--cert-dir",
        str(cert_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-kube",
        "--namespace-labels-file",
        str(labels),
        *extra,
    ]
    with log_file.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ})
    webhook = Webhook(process=process, port=port, cert_dir=cert_dir, log_file=log_file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"webhook exited with {process.returncode}:\n{webhook.log()}")
        try:
            if webhook.request("GET", "/readyz").status == 200:
                return webhook
        except OSError:
            pass
        time.sleep(0.05)
    webhook.stop()
    pytest.fail(f"webhook not ready in 30 s:\n{webhook.log()}")


@pytest.fixture(scope="session")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """One server for the tests that only send requests (1 MiB body limit, to test 413 cheaply)."""
    server = start_webhook(tmp_path_factory.mktemp("webhook"), extra=["--max-body-bytes", str(1024 * 1024)])
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture
def own_webhook(tmp_path: Path) -> Iterator[Any]:
    """Start servers of a test's own (certificate reload, shutdown); they are stopped afterwards."""
    started: list[Webhook] = []

    def start(**kwargs: Any) -> Webhook:
        server = start_webhook(tmp_path, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
