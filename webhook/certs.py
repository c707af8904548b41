"""A CA and the serving certificate it signs, written as a Secret-style directory (ca.crt, tls.crt, ...)."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DNS_NAMES = ("localhost", "meshswitch.meshswitch-system.svc")
DEFAULT_IPS = ("127.0.0.1",)
# An RFC 1123 label: letters, digits and '-', neither first nor last, at most 63 characters.
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?")
_DNS_ACCEPTED = "a DNS name (RFC 1123: dot-separated labels of letters, digits and '-', at most 63 characters each and 253 in all), optionally starting with '*.'"
CA_DAYS = 3650
LEAF_DAYS = 365
# A CA closer than this to its end is replaced: a leaf must never outlive its issuer.
CA_MIN_REMAINING = dt.timedelta(days=LEAF_DAYS + 30)

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote; ``ca_reused`` says the existing CA was kept."""

    ca_cert: Path
    ca_key: Path
    tls_cert: Path
    tls_key: Path
    ca_reused: bool
    not_after: dt.datetime


def check_names(dns_names: Sequence[str], ips: Sequence[str]) -> None:
    """ValueError naming the first --dns or --ip a certificate must not carry (a TLS client would
    never match a SAN like `bad name!`, and the certificate would be written anyway)."""
    for name in dns_names:
        labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
        if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"--dns {name!r}: not a DNS name; accepted: {_DNS_ACCEPTED}")
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"--ip {ip!r}: not an IP address; accepted: IPv4 such as 10.0.0.7 or IPv6 such as fd00::7") from None


def generate(
    out_dir: Path,
    dns_names: Sequence[str] = DEFAULT_DNS_NAMES,
    ips: Sequence[str] = DEFAULT_IPS,
    *,
    now: dt.datetime | None = None,
) -> Generated:
    """Write a CA (kept when a valid one is there) and a fresh serving certificate signed by it.

    Keys are written with mode 0600, certificates 0644, each by rename so a reader never sees half.
    """
    if not dns_names and not ips:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    check_names(dns_names, ips)
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    now = now or dt.datetime.now(dt.timezone.utc)
    out_dir.mkdir(parents=True, exist_ok=True)

    existing = _load_ca(out_dir, now)
    if existing is not None:
        ca_cert, ca_key = existing
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = build_ca(ca_key, now)
        _write(out_dir / CA_KEY, key_pem(ca_key), mode=0o600)
        _write(out_dir / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = build_leaf(leaf_key, ca_cert, ca_key, now, dns_names=dns_names, addresses=addresses)
    # Key first: a poller that sees the new certificate with the old key fails the pair and waits.
    _write(out_dir / TLS_KEY, key_pem(leaf_key), mode=0o600)
    _write(out_dir / TLS_CERT, leaf.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return Generated(
        ca_cert=out_dir / CA_CERT,
        ca_key=out_dir / CA_KEY,
        tls_cert=out_dir / TLS_CERT,
        tls_key=out_dir / TLS_KEY,
        ca_reused=existing is not None,
        not_after=leaf.not_valid_after_utc,
    )


def _load_ca(
    out_dir: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA in ``out_dir`` if it is a CA, matches its key and has a leaf's lifetime left."""
    try:
        cert = x509.load_pem_x509_certificate((out_dir / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((out_dir / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        return None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None
    if not is_ca or cert.not_valid_before_utc > now or cert.not_valid_after_utc - now < CA_MIN_REMAINING:
        return None
    return cert, key


def key_usage(*, ca: bool) -> x509.KeyUsage:
    """Digital signature for an ECDSA key; certificate and CRL signing for a CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def subject(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    """A subject name; Kubernetes maps CN to the user and each O to a group."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def build_ca(
    key: ec.EllipticCurvePrivateKey, now: dt.datetime, *, common_name: str = "meshswitch CA", days: int = CA_DAYS
) -> x509.Certificate:
    """A self-signed CA that signs leaves only (path length 0)."""
    name = subject(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour of slack for clocks that run behind ours.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_leaf(
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    *,
    dns_names: Sequence[str] = (),
    addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
    common_name: str | None = None,
    organizations: Sequence[str] = (),
    server: bool = True,
    client: bool = False,
    days: int = LEAF_DAYS,
) -> x509.Certificate:
    """A certificate signed by the CA: serving (SANs from names and addresses), client, or both."""
    # Go's TLS ignores the common name; the SANs are what the apiserver checks.
    common_name = common_name or (dns_names[0] if dns_names else str(addresses[0]))
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(address) for address in addresses]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _public_der(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    # Created with its final mode: a key must never exist, even briefly, readable by others.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def add_certs_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``meshswitch certs generate``."""
    parser.add_argument("--out", type=Path, required=True, help="directory to write ca.crt, ca.key, tls.crt, tls.key")
    parser.add_argument(
        "--dns",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name for the serving certificate (repeatable); with no --dns and no --ip: "
        + ", ".join(DEFAULT_DNS_NAMES + DEFAULT_IPS),
    )
    parser.add_argument("--ip", action="append", default=[], metavar="IP", help="an IP address SAN (repeatable)")


def generate_from_args(args: argparse.Namespace) -> int:
    """Run ``generate`` for parsed ``add_certs_arguments`` flags; print what was written."""
    dns_names: Sequence[str] = args.dns
    ips: Sequence[str] = args.ip
    if not dns_names and not ips:
        dns_names, ips = DEFAULT_DNS_NAMES, DEFAULT_IPS
    try:
        result = generate(args.out, dns_names, ips)
    except ValueError as exc:
        print(f"meshswitch certs generate: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError):  # --out, or a directory on its way, is a file
        print(f"meshswitch certs generate: --out {args.out}: not a directory (a file is in the way); give a directory to write the four files to", file=sys.stderr)
        return 2
    except OSError as exc:
        where = exc.filename or args.out
        print(f"meshswitch certs generate: --out {args.out}: cannot write {where}: {exc.strerror}", file=sys.stderr)
        return 2
    kept = "kept" if result.ca_reused else "created"
    print(f"CA {kept}: {result.ca_cert}")
    print(f"serving certificate: {result.tls_cert} (valid until {result.not_after:%Y-%m-%d})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webhook.certs", description="generate dev certificates")
    add_certs_arguments(parser)
    return generate_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
