"""`meshswitch certs install`: the webhook's CA and serving certificate in Secrets and its caBundle in
the MutatingWebhookConfiguration, without cert-manager.

Idempotent: a run that finds a valid CA, a serving certificate that is neither near its end nor
for other names, and the caBundle already right, writes nothing. The crypto is webhook/certs.py's.

Where things live (namespace `--namespace`):
- Secret `meshswitch-tls` (kubernetes.io/tls): tls.crt, tls.key and ca.crt; the Deployment mounts it.
- Secret `meshswitch-ca` (Opaque): ca.crt and ca.key, never mounted, so the webhook's pods never
  hold the CA's key; and, during a rotation, previous-ca.crt with the annotation
  meshswitch.io/previous-ca-until.

A CA rotation (``--rotate-ca``, or a CA close to its end) never fails a review: the caBundle is
patched to trust the new CA *and* the previous one before any serving certificate signed by the new
CA is written; replicas then pick the new pair up at their own pace (kubelet's Secret sync, then
--cert-poll-seconds). The previous CA leaves the caBundle at the first run after the overlap.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from webhook import certs
from webhook.engine.errors import MeshswitchError
from webhook.cluster.client import KubeApi
from webhook.cluster.layout import (
    CA_SECRET,
    DEFAULT_NAMESPACE,
    SERVICE,
    TLS_SECRET,
    WEBHOOK_CONFIG,
    ca_bundle_of,
    fingerprint,
    pem_certificates,
    pem_of,
    secret_bytes,
    secret_path,
    validating_config_path,
    webhook_config_path,
)

# A serving certificate with less than this left is renewed (check warns at 30 days).
RENEW_BEFORE = dt.timedelta(days=90)
DEFAULT_OVERLAP_SECONDS = 3600
DEFAULT_PROPAGATION_SECONDS = 5.0
PREVIOUS_KEY = "previous-ca.crt"
PREVIOUS_UNTIL = "meshswitch.io/previous-ca-until"
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshswitch", "app.kubernetes.io/name": "meshswitch"}
CERT_MANAGER_ANNOTATION = "cert-manager.io/certificate-name"


class InstallError(MeshswitchError):
    """Something in the cluster keeps the install from going on; the message says what to do."""


# --- certificates as data --------------------------------------------------------------------------


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use for a Service-backed webhook (it uses `svc.ns.svc`)."""
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}", service]


def _sans(certificate: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(extension.get_values_for_type(x509.DNSName)), {str(ip) for ip in extension.get_values_for_type(x509.IPAddress)}


def leaf_problem(
    cert_pem: bytes | None,
    key_pem: bytes | None,
    ca: x509.Certificate,
    dns_names: Sequence[str],
    ips: Sequence[str],
    now: dt.datetime,
    renew_before: dt.timedelta = RENEW_BEFORE,
) -> str | None:
    """Why the serving pair must be issued again, or None when it is fine as it is."""
    chain = pem_certificates(cert_pem)
    if not chain or not key_pem:
        return "no serving certificate yet"
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return "tls.key does not load"
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != leaf.public_key().public_bytes(*public):
        return "tls.key does not match tls.crt"
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the current CA"
    if leaf.not_valid_after_utc - now < renew_before:
        return f"ends {leaf.not_valid_after_utc:%Y-%m-%d}, within {renew_before.days} days"
    if leaf.not_valid_before_utc > now:
        return "not valid yet"
    dns, addresses = _sans(leaf)
    if dns != set(dns_names) or addresses != {str(ipaddress.ip_address(ip)) for ip in ips}:
        return "issued for other names"
    return None


# --- the install -------------------------------------------------------------------------------------


@dataclass
class InstallResult:
    """What one run found and did; `lines` is the report printed by the command."""

    ca: x509.Certificate
    ca_created: bool = False
    ca_rotated: bool = False
    leaf_issued: bool = False
    previous: list[x509.Certificate] = field(default_factory=list)
    previous_until: dt.datetime | None = None
    dropped_previous: bool = False
    written: list[str] = field(default_factory=list)
    bundle_patched: bool = False
    lines: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written) or self.bundle_patched


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _secret(name: str, namespace: str, kind: str, data: Mapping[str, bytes], annotations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY), "annotations": dict(annotations)},
        "type": kind,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def _write_secret(
    kube: KubeApi, existing: Mapping[str, Any] | None, desired: dict[str, Any], *, owned_annotations: Sequence[str] = ()
) -> bool:
    """Create, or replace when data or our annotations differ; True when something was written."""
    metadata = desired["metadata"]
    if existing is None:
        kube.call("POST", secret_path(metadata["namespace"]), body=desired)
        return True
    current_data = existing.get("data") or {}
    current_annotations = (existing.get("metadata") or {}).get("annotations") or {}
    same_data = current_data == desired["data"]
    same_annotations = all(current_annotations.get(k) == metadata["annotations"].get(k) for k in owned_annotations)
    if same_data and same_annotations:
        return False
    replacement = json.loads(json.dumps(existing))
    replacement["data"] = desired["data"]
    annotations = {k: v for k, v in current_annotations.items() if k not in owned_annotations}
    annotations.update(metadata["annotations"])
    replacement["metadata"]["annotations"] = annotations
    replacement["metadata"].setdefault("labels", {}).update(MANAGED_BY)
    # resourceVersion stays: a Secret changed meanwhile makes this a 409, not a lost update.
    kube.call("PUT", secret_path(metadata["namespace"], metadata["name"]), body=replacement)
    return True


def install(
    kube: KubeApi,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    service: str = SERVICE,
    tls_secret: str = TLS_SECRET,
    ca_secret: str = CA_SECRET,
    webhook_config: str = WEBHOOK_CONFIG,
    extra_dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    rotate_ca: bool = False,
    overlap: dt.timedelta = dt.timedelta(seconds=DEFAULT_OVERLAP_SECONDS),
    propagation_seconds: float = DEFAULT_PROPAGATION_SECONDS,
    renew_before: dt.timedelta = RENEW_BEFORE,
    now: dt.datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> InstallResult:
    """Bring the Secrets and the caBundle to what they should be; see the module's docstring."""
    now = now or dt.datetime.now(dt.timezone.utc)
    dns_names = list(dict.fromkeys([*service_dns_names(service, namespace), *extra_dns]))
    ips = list(dict.fromkeys(str(ipaddress.ip_address(ip)) for ip in ips))

    configuration = kube.get(webhook_config_path(webhook_config))
    if configuration is None:
        raise InstallError(
            f"MutatingWebhookConfiguration {webhook_config} not found: apply the manifests first "
            "(kubectl apply -k manifests/), or name it with --webhook-config"
        )
    if not configuration.get("webhooks"):
        raise InstallError(f"MutatingWebhookConfiguration {webhook_config} has no webhooks to give a caBundle")
    tls_obj = kube.get(secret_path(namespace, tls_secret))
    if tls_obj is not None:
        annotations = (tls_obj.get("metadata") or {}).get("annotations") or {}
        if CERT_MANAGER_ANNOTATION in annotations:
            raise InstallError(
                f"Secret {namespace}/{tls_secret} is managed by cert-manager (Certificate "
                f"{annotations[CERT_MANAGER_ANNOTATION]}); use the cert-manager overlay, not certs install"
            )
        if tls_obj.get("type") != "kubernetes.io/tls":
            raise InstallError(f"Secret {namespace}/{tls_secret} has type {tls_obj.get('type')}, not kubernetes.io/tls: delete it first")
    ca_obj = kube.get(secret_path(namespace, ca_secret))

    old_ca_pem, old_ca_key = secret_bytes(ca_obj, certs.CA_CERT), secret_bytes(ca_obj, certs.CA_KEY)
    old_cas = pem_certificates(old_ca_pem)
    old_ca = old_cas[0] if old_cas else None
    previous = [c for c in pem_certificates(secret_bytes(ca_obj, PREVIOUS_KEY)) if c.not_valid_after_utc > now]
    until = _parse_time(((ca_obj or {}).get("metadata") or {}).get("annotations", {}).get(PREVIOUS_UNTIL))

    with tempfile.TemporaryDirectory(prefix="meshswitch-certs-") as scratch:
        directory = Path(scratch)
        if old_ca_pem and old_ca_key and not rotate_ca:
            (directory / certs.CA_CERT).write_bytes(old_ca_pem)
            (directory / certs.CA_KEY).write_bytes(old_ca_key)
        generated = certs.generate(directory, dns_names, ips, now=now)
        ca_pem, ca_key = generated.ca_cert.read_bytes(), generated.ca_key.read_bytes()
        fresh_cert, fresh_key = generated.tls_cert.read_bytes(), generated.tls_key.read_bytes()
    ca = pem_certificates(ca_pem)[0]
    result = InstallResult(ca=ca)

    if previous and (until is None or now >= until):
        result.dropped_previous = True
        previous = []
    if not generated.ca_reused:
        # The CAs that may have signed what replicas serve right now stay trusted through the overlap.
        retiring = ([old_ca] if old_ca is not None else []) + pem_certificates(secret_bytes(tls_obj, "ca.crt"))
        kept = {fingerprint(ca)} | {fingerprint(c) for c in previous}
        for candidate in retiring:
            if fingerprint(candidate) not in kept and candidate.not_valid_after_utc > now:
                kept.add(fingerprint(candidate))
                previous.append(candidate)
        result.ca_created = old_ca is None
        result.ca_rotated = old_ca is not None
        if previous:
            until = now + overlap
            result.dropped_previous = False
    result.previous = previous
    result.previous_until = until if previous else None

    problem = None if not generated.ca_reused else leaf_problem(
        secret_bytes(tls_obj, "tls.crt"), secret_bytes(tls_obj, "tls.key"), ca, dns_names, ips, now, renew_before
    )
    if generated.ca_reused and problem is None:
        tls_cert, tls_key = secret_bytes(tls_obj, "tls.crt") or b"", secret_bytes(tls_obj, "tls.key") or b""
    else:
        tls_cert, tls_key = fresh_cert, fresh_key
        result.leaf_issued = True

    # 1. The CA Secret: a rerun after a failure further on continues from the new CA.
    ca_data = {certs.CA_CERT: ca_pem, certs.CA_KEY: ca_key}
    ca_annotations: dict[str, str] = {}
    if previous:
        ca_data[PREVIOUS_KEY] = pem_of(previous)
        ca_annotations[PREVIOUS_UNTIL] = (until or now).strftime("%Y-%m-%dT%H:%M:%SZ")
    if _write_secret(kube, ca_obj, _secret(ca_secret, namespace, "Opaque", ca_data, ca_annotations), owned_annotations=(PREVIOUS_UNTIL,)):
        result.written.append(f"Secret {namespace}/{ca_secret}")

    # 2. The caBundle, before any serving certificate of a new CA exists.
    bundle = pem_of([ca, *previous])
    wanted = {fingerprint(c) for c in pem_certificates(bundle)}
    operations: list[dict[str, Any]] = []
    for index, entry in enumerate(configuration["webhooks"]):
        if {fingerprint(c) for c in pem_certificates(ca_bundle_of(entry))} != wanted:
            operations.append({"op": "test", "path": f"/webhooks/{index}/name", "value": entry["name"]})
            operations.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": base64.b64encode(bundle).decode()})
    if operations:
        version = configuration["metadata"]["resourceVersion"]
        operations.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
        kube.call("PATCH", webhook_config_path(webhook_config), body=operations, content_type="application/json-patch+json")
        result.bundle_patched = True
        if not generated.ca_reused and previous:
            sleep(propagation_seconds)  # every API server sees the wider bundle before a new leaf can be served

    # 2b. The validating webhook (Namespace labels), when installed, trusts the same CAs.
    validating = kube.get(validating_config_path(webhook_config))
    fixes: list[dict[str, Any]] = []
    for index, entry in enumerate((validating or {}).get("webhooks") or ()):
        if {fingerprint(c) for c in pem_certificates(ca_bundle_of(entry))} != wanted:
            fixes.append({"op": "test", "path": f"/webhooks/{index}/name", "value": entry["name"]})
            fixes.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": base64.b64encode(bundle).decode()})
    if validating is not None and fixes:
        fixes.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": validating["metadata"]["resourceVersion"]})
        kube.call("PATCH", validating_config_path(webhook_config), body=fixes, content_type="application/json-patch+json")
        result.written.append(f"ValidatingWebhookConfiguration {webhook_config} caBundle")

    # 3. The serving Secret the replicas mount.
    tls_data = {"tls.crt": tls_cert, "tls.key": tls_key, "ca.crt": ca_pem}
    if _write_secret(kube, tls_obj, _secret(tls_secret, namespace, "kubernetes.io/tls", tls_data, {})):
        result.written.append(f"Secret {namespace}/{tls_secret}")

    result.lines = _report(result, namespace, tls_secret, webhook_config, problem, tls_cert, now)
    return result


def _report(
    result: InstallResult, namespace: str, tls_secret: str, webhook_config: str, problem: str | None, tls_cert: bytes, now: dt.datetime
) -> list[str]:
    ca = result.ca
    lines = []
    if result.ca_created:
        lines.append(f"CA created: {fingerprint(ca)} (valid until {ca.not_valid_after_utc:%Y-%m-%d})")
    elif result.ca_rotated:
        lines.append(f"CA rotated: new CA {fingerprint(ca)} (valid until {ca.not_valid_after_utc:%Y-%m-%d})")
    else:
        lines.append(f"CA kept: {fingerprint(ca)} (valid until {ca.not_valid_after_utc:%Y-%m-%d})")
    if result.previous and result.previous_until is not None:
        names = ", ".join(fingerprint(c) for c in result.previous)
        lines.append(
            f"previous CA {names} stays in the caBundle until {result.previous_until:%Y-%m-%dT%H:%M:%SZ}; "
            "run `meshswitch certs install` after that to drop it"
        )
    if result.dropped_previous:
        lines.append("previous CA dropped from the caBundle (its overlap is over)")
    leaf = pem_certificates(tls_cert)[0]
    dns, addresses = _sans(leaf)
    names = ", ".join(sorted(dns) + sorted(addresses))
    if result.leaf_issued:
        why = f" ({problem})" if problem else ""
        lines.append(f"serving certificate issued{why}: {names}, valid until {leaf.not_valid_after_utc:%Y-%m-%d}")
    else:
        lines.append(f"serving certificate kept: valid until {leaf.not_valid_after_utc:%Y-%m-%d}")
    for written in result.written:
        lines.append(f"{written}: written")
    if result.bundle_patched:
        lines.append(f"MutatingWebhookConfiguration {webhook_config}: caBundle patched ({1 + len(result.previous)} CA)")
    else:
        lines.append(f"MutatingWebhookConfiguration {webhook_config}: caBundle unchanged")
    if not result.changed:
        lines.append("nothing to change")
    return lines


# --- the command -------------------------------------------------------------------------------------
