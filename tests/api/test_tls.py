"""HTTPS only, TLS 1.2+, and certificates swapped in for new handshakes when their files change."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from webhook import certs

from .conftest import Webhook, client_context
from .pods import make_pod, make_review

POLL = ["--cert-poll-seconds", "0.1"]


def served_certificate(webhook: Webhook, context: ssl.SSLContext | None = None) -> bytes:
    """The DER certificate a new handshake presents."""
    context = context or webhook.context
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def review_ok(conn: http.client.HTTPSConnection) -> bool:
    review = make_review(make_pod())
    conn.request("POST", "/mutate", body=orjson.dumps(review), headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status == 200 and orjson.loads(response.read())["response"]["uid"] == review["request"]["uid"]


def test_tls_rotation_serves_new_certificate_to_new_handshakes_and_keeps_connections(
    own_webhook: Callable[..., Webhook], tmp_path: Path
) -> None:
    webhook = own_webhook(extra=POLL)
    first = served_certificate(webhook)
    kept = webhook.connection()
    assert review_ok(kept)

    certs.generate(webhook.cert_dir)  # same CA, new leaf
    assert wait_for(lambda: served_certificate(webhook) != first), webhook.log()
    second = served_certificate(webhook)
    assert review_ok(kept), "the connection opened before the rotation was dropped"
    kept.close()

    # A certificate whose key is elsewhere: the pair does not load, the previous one stays.
    other = tmp_path / "other"
    certs.generate(other)
    shutil.copy(other / "tls.crt", webhook.cert_dir / "tls.crt")
    assert wait_for(lambda: "did not load" in webhook.log()), webhook.log()
    assert served_certificate(webhook) == second
    # Garbage, too.
    (webhook.cert_dir / "tls.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    time.sleep(0.5)
    assert served_certificate(webhook) == second
    fresh = webhook.connection()
    assert review_ok(fresh)
    fresh.close()
    metrics = webhook.request("GET", "/metrics").body.decode()
    assert 'meshswitch_certificate_loads_total{result="failed"} 2.0' in metrics

    # A good pair again is picked up.
    certs.generate(webhook.cert_dir)
    assert wait_for(lambda: served_certificate(webhook) not in (first, second)), webhook.log()
    assert webhook.stop() == 0


def test_tls_secret_volume_symlink_swap_is_seen(own_webhook: Callable[..., Webhook], tmp_path: Path) -> None:
    """A Secret volume: tls.crt -> ..data/tls.crt, and ..data is a symlink swapped atomically."""
    volume = tmp_path / "volume"
    volume.mkdir()
    first_dir = volume / "..2026_01_01_00_00_00.1"
    certs.generate(first_dir)
    os.symlink(first_dir.name, volume / "..data")
    for name in ("ca.crt", "tls.crt", "tls.key"):
        os.symlink(f"..data/{name}", volume / name)
    webhook = own_webhook(extra=POLL, cert_dir=volume)
    first = served_certificate(webhook)

    second_dir = volume / "..2026_02_01_00_00_00.2"
    shutil.copytree(first_dir, second_dir)
    certs.generate(second_dir)
    os.symlink(second_dir.name, volume / "..data_tmp")
    os.replace(volume / "..data_tmp", volume / "..data")
    shutil.rmtree(first_dir)
    assert wait_for(lambda: served_certificate(webhook) != first), webhook.log()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_versions_below_1_2_are_refused(webhook: Webhook) -> None:
    old = client_context(webhook.cert_dir / "ca.crt")
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served_certificate(webhook, old)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = client_context(webhook.cert_dir / "ca.crt")
        context.minimum_version = context.maximum_version = version
        assert served_certificate(webhook, context)


def test_tls_plain_http_is_not_served(webhook: Webhook) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", webhook.port, timeout=5)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/healthz")
        conn.getresponse()
    conn.close()


def test_tls_certificate_has_the_default_sans(webhook: Webhook) -> None:
    context = client_context(webhook.cert_dir / "ca.crt")
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="meshswitch.meshswitch-system.svc") as tls:
            sans = tls.getpeercert()["subjectAltName"]  # type: ignore[index]
    assert ("DNS", "meshswitch.meshswitch-system.svc") in sans
    assert ("IP Address", "127.0.0.1") in sans
