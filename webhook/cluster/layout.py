"""Where meshswitch's install lives in a cluster (the names of its objects and their API paths), and
the certificates those objects hold, read as data. Shared by `certs install` (install.py), which
writes them, and `check` (check.py, findings.py), which reads them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

DEFAULT_NAMESPACE = "meshswitch-system"
SERVICE = "meshswitch"
TLS_SECRET = "meshswitch-tls"
CA_SECRET = "meshswitch-ca"
WEBHOOK_CONFIG = "meshswitch"


# --- the API server, as plain dicts ---------------------------------------------------------------


def secret_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


def webhook_config_path(name: str) -> str:
    return f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}"


def validating_config_path(name: str) -> str:
    return f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}"


# --- certificates as data --------------------------------------------------------------------------


def pem_certificates(data: bytes | str | None) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; an empty list for nothing or garbage."""
    if not data:
        return []
    raw = data.encode() if isinstance(data, str) else data
    try:
        return list(x509.load_pem_x509_certificates(raw))
    except ValueError:
        return []


def pem_of(certificates: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()[:16]


def secret_bytes(secret: Mapping[str, Any] | None, key: str) -> bytes | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value) if value else None


def ca_bundle_of(webhook: Mapping[str, Any]) -> bytes:
    value = (webhook.get("clientConfig") or {}).get("caBundle")
    return base64.b64decode(value) if value else b""
