"""``certs.generate``: a CA and a leaf it signs, SANs, key modes, and a re-run that keeps the CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook import certs


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName), [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]


def test_generate_writes_secret_style_files_with_private_keys_0600(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = certs.generate(out)
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    assert not result.ca_reused
    for key in ("ca.key", "tls.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    for cert in ("ca.crt", "tls.crt"):
        assert stat.S_IMODE((out / cert).stat().st_mode) == 0o644


def test_generate_ca_is_p256_for_ten_years_and_signs_the_leaf(tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    certs.generate(tmp_path, now=now)
    ca, leaf = load(tmp_path / "ca.crt"), load(tmp_path / "tls.crt")
    for cert in (ca, leaf):
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - now).days == 3650
    assert (leaf.not_valid_after_utc - now).days == 365
    assert leaf.issuer == ca.subject
    leaf.verify_directly_issued_by(ca)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_generate_default_sans(tmp_path: Path) -> None:
    certs.generate(tmp_path)
    dns, ips = sans(load(tmp_path / "tls.crt"))
    assert dns == ["localhost", "meshswitch.meshswitch-system.svc"]
    assert ips == ["127.0.0.1"]


def test_generate_sans_from_flags(tmp_path: Path) -> None:
    certs.generate(tmp_path, ["webhook.example", "meshswitch.mesh.svc"], ["10.0.0.7", "::1"])
    dns, ips = sans(load(tmp_path / "tls.crt"))
    assert dns == ["webhook.example", "meshswitch.mesh.svc"]
    assert [ipaddress.ip_address(ip) for ip in ips] == [ipaddress.ip_address("10.0.0.7"), ipaddress.ip_address("::1")]


def test_generate_rerun_keeps_a_valid_ca_and_renews_the_leaf(tmp_path: Path) -> None:
    certs.generate(tmp_path)
    ca_before, key_before = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "ca.key").read_bytes()
    leaf_before = load(tmp_path / "tls.crt")
    result = certs.generate(tmp_path, ["other.example"], [])
    assert result.ca_reused
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert (tmp_path / "ca.key").read_bytes() == key_before
    leaf = load(tmp_path / "tls.crt")
    assert leaf.serial_number != leaf_before.serial_number
    assert sans(leaf) == (["other.example"], [])
    leaf.verify_directly_issued_by(load(tmp_path / "ca.crt"))


def test_generate_replaces_a_ca_that_is_broken_or_near_its_end(tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    certs.generate(tmp_path, now=now)
    first_ca = (tmp_path / "ca.crt").read_bytes()
    # Nine and a half years later, a one-year leaf would outlive the CA.
    assert not certs.generate(tmp_path, now=now + dt.timedelta(days=3470)).ca_reused
    assert (tmp_path / "ca.crt").read_bytes() != first_ca
    (tmp_path / "ca.key").write_text("garbage")
    assert not certs.generate(tmp_path).ca_reused


def test_generate_pair_loads_into_ssl_and_verifies_for_its_names(tmp_path: Path) -> None:
    certs.generate(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    assert client.get_ca_certs()[0]["subject"] == ((("commonName", "meshswitch CA"),),)


def test_generate_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        certs.generate(tmp_path, [], [])


def test_certs_main_uses_defaults_without_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs.main(["--out", str(tmp_path)]) == 0
    assert certs.main(["--out", str(tmp_path), "--dns", "a.example", "--ip", "10.1.2.3"]) == 0
    assert "CA kept" in capsys.readouterr().out
    assert sans(load(tmp_path / "tls.crt")) == (["a.example"], ["10.1.2.3"])


def test_certs_out_that_is_a_file_is_a_flag_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "sub"):
        assert certs.main(["--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--out {out}: not a directory (a file is in the way)" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dns", "bad name!"], "--dns 'bad name!': not a DNS name; accepted: a DNS name (RFC 1123"),
        (["--dns", "a..b"], "--dns 'a..b': not a DNS name"),
        (["--dns=-web.example.com"], "--dns '-web.example.com': not a DNS name"),
        (["--dns", "web.*.example.com"], "--dns 'web.*.example.com': not a DNS name"),
        (["--dns", "x" * 64 + ".example.com"], "not a DNS name"),
        (["--dns", ""], "--dns '': not a DNS name"),
        (["--ip", "1.2.3"], "--ip '1.2.3': not an IP address; accepted: IPv4 such as 10.0.0.7 or IPv6 such as fd00::7"),
    ],
)
def test_certs_refuse_names_no_client_would_match(flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs.main(["--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tls.crt").exists()


def test_certs_take_wildcards_and_upper_case(tmp_path: Path) -> None:
    assert certs.main(["--out", str(tmp_path), "--dns", "*.meshswitch-system.svc", "--dns", "Web.Example.com", "--ip", "fd00::7"]) == 0
    assert sans(load(tmp_path / "tls.crt")) == (["*.meshswitch-system.svc", "Web.Example.com"], ["fd00::7"])


def test_certs_install_refuses_a_bad_name_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    from webhook.cli.main import main

    assert main(["certs", "install", "--kubeconfig", "/nonexistent/kubeconfig", "--dns", "bad name!"]) == 2
    assert capsys.readouterr().err.startswith("meshswitch certs install: --dns 'bad name!': not a DNS name")
