"""`meshswitch check`, the pure half: objects in, findings out."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from webhook import certs
from webhook.cluster.check import cluster_plugins
from webhook.cluster.findings import (
    ERROR,
    INFO,
    OK,
    WARNING,
    Finding,
    Observed,
    Served,
    evaluate,
    exit_code,
    namespace_mode,
    report,
    verify_chain,
)
from webhook.engine.config import Config
from webhook.cluster.layout import pem_certificates
from webhook.engine.plugins import PluginSet, load_plugins
from webhook.engine.values import apply_values

NOW = dt.datetime(2030, 6, 1, tzinfo=dt.timezone.utc)
NS = "meshswitch-system"
SVC_NAME = "meshswitch.meshswitch-system.svc"
PLUGINS = load_plugins()


def pair(tmp: Path, *, dns: Sequence[str] = (SVC_NAME,), ips: Sequence[str] = (), issued: dt.datetime = NOW) -> tuple[bytes, bytes]:
    """(CA PEM, serving certificate PEM) from webhook/certs.py, as if made at `issued`."""
    certs.generate(tmp, list(dns), list(ips), now=issued)
    return (tmp / "ca.crt").read_bytes(), (tmp / "tls.crt").read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def webhook_config(bundle: bytes | None, *, url: str | None = None, entries: int = 3) -> dict[str, Any]:
    client: dict[str, Any] = {"url": url} if url else {"service": {"name": "meshswitch", "namespace": NS, "path": "/mutate", "port": 443}}
    if bundle is not None:
        client["caBundle"] = b64(bundle)
    return {
        "metadata": {"name": "meshswitch"},
        "webhooks": [{"name": f"w{i}.meshswitch.io", "clientConfig": dict(client)} for i in range(entries)],
    }


def tls_secret(cert: bytes, ca: bytes) -> dict[str, Any]:
    return {"type": "kubernetes.io/tls", "data": {"tls.crt": b64(cert), "tls.key": b64(b"k"), "ca.crt": b64(ca)}}


def validating_config(bundle: bytes | None, *, path: str = "/validate", policy: str = "Ignore") -> dict[str, Any]:
    client: dict[str, Any] = {"service": {"name": "meshswitch", "namespace": NS, "path": path, "port": 443}}
    if bundle is not None:
        client["caBundle"] = b64(bundle)
    rule = {"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["namespaces"], "scope": "Cluster"}
    return {"metadata": {"name": "meshswitch"}, "webhooks": [{"name": "namespace-labels.meshswitch.io", "clientConfig": client, "rules": [rule], "failurePolicy": policy}]}


def ready_slice(*ready: bool | None) -> dict[str, Any]:
    endpoints = []
    for i, state in enumerate(ready):
        conditions = {} if state is None else {"ready": state}
        endpoints.append({"addresses": [f"10.244.0.{i + 10}"], "conditions": conditions})
    return {"metadata": {"name": "meshswitch-abcde"}, "endpoints": endpoints}


def namespace(name: str, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}, "annotations": dict(annotations or {})}}


ISTIOD = ("Deployment", "istio-system", "istiod")


@pytest.fixture
def healthy(tmp_path: Path) -> Observed:
    ca, cert = pair(tmp_path)
    return Observed(
        webhook_config=webhook_config(ca),
        validating_config=validating_config(ca),
        tls_secret=tls_secret(cert, ca),
        service={"metadata": {"name": "meshswitch"}},
        endpoint_slices=[ready_slice(True, None)],
        namespaces=[namespace("shop", {"meshswitch.io/mode": "istio"}), namespace("plain"), namespace("legacy", {"meshswitch.io/mode": "native"})],
        control_plane={ISTIOD: True},
        now=NOW,
    )


def bad(findings: Sequence[Finding], severity: str = ERROR) -> list[Finding]:
    return [f for f in findings if f.severity == severity]


def text(findings: Sequence[Finding]) -> str:
    return "\n".join(f"{f.check} {f.subject}: {f.message}" for f in findings)


def test_a_healthy_installation_has_no_errors_and_no_warnings(healthy: Observed) -> None:
    findings = evaluate(healthy, PLUGINS)
    assert bad(findings) == [] and bad(findings, WARNING) == [], text(findings)
    assert exit_code(findings) == 0
    checks = {f.check for f in findings if f.severity == OK}
    assert {"webhook-config", "ca-bundle", "serving-certificate", "certificate-expiry", "endpoints", "namespace-labels", "control-plane"} <= checks
    assert "2 ready endpoints" in text(findings), "a slice endpoint without a ready condition counts as ready"
    out = report(findings)
    assert out.splitlines()[-1] == "no errors, 0 warnings: meshswitch is healthy"
    assert "[ok]" in out and "[FAIL]" not in out


def test_no_webhook_configuration(healthy: Observed) -> None:
    healthy.webhook_config = None
    findings = evaluate(healthy, PLUGINS)
    assert [f.check for f in bad(findings)] == ["webhook-config"]
    assert "not found" in bad(findings)[0].message
    assert exit_code(findings) == 1


def test_no_ca_bundle_is_named_for_each_webhook(healthy: Observed) -> None:
    healthy.webhook_config = webhook_config(None)
    errors = bad(evaluate(healthy, PLUGINS))
    assert [f.check for f in errors] == ["ca-bundle"] * 3
    assert all("no caBundle" in f.message and "certs install" in f.message for f in errors)
    assert report(evaluate(healthy, PLUGINS)).splitlines()[-1].startswith("3 errors, 0 warnings")


def test_a_ca_bundle_of_another_ca(healthy: Observed, tmp_path: Path) -> None:
    other_ca, _ = pair(tmp_path / "other")
    healthy.webhook_config = webhook_config(other_ca)
    healthy.validating_config = validating_config(other_ca)
    errors = bad(evaluate(healthy, PLUGINS))
    assert [f.check for f in errors] == ["serving-certificate"]
    assert f"does not verify against the caBundle for {SVC_NAME}" in errors[0].message


def test_a_certificate_for_other_names(healthy: Observed, tmp_path: Path) -> None:
    ca, cert = pair(tmp_path / "x", dns=["meshswitch.elsewhere.svc"])
    healthy.webhook_config, healthy.tls_secret = webhook_config(ca), tls_secret(cert, ca)
    healthy.validating_config = validating_config(ca)
    errors = bad(evaluate(healthy, PLUGINS))
    assert [f.check for f in errors] == ["serving-certificate"]
    assert "subjectAltName" in errors[0].message


def test_a_certificate_close_to_its_end_warns(healthy: Observed, tmp_path: Path) -> None:
    ca, cert = pair(tmp_path / "old", issued=NOW - dt.timedelta(days=certs.LEAF_DAYS - 10))
    healthy.webhook_config, healthy.tls_secret = webhook_config(ca), tls_secret(cert, ca)
    healthy.validating_config = validating_config(ca)
    findings = evaluate(healthy, PLUGINS)
    assert bad(findings) == []
    (warning,) = bad(findings, WARNING)
    assert warning.check == "certificate-expiry" and "expires in 10 days" in warning.message
    assert exit_code(findings) == 0
    assert evaluate(healthy, PLUGINS, warn_days=5) and not bad(evaluate(healthy, PLUGINS, warn_days=5), WARNING)


def test_an_expired_certificate_fails(healthy: Observed, tmp_path: Path) -> None:
    ca, cert = pair(tmp_path / "old", issued=NOW - dt.timedelta(days=certs.LEAF_DAYS + 3))
    healthy.webhook_config, healthy.tls_secret = webhook_config(ca), tls_secret(cert, ca)
    healthy.validating_config = validating_config(ca)
    errors = bad(evaluate(healthy, PLUGINS))
    assert [f.check for f in errors] == ["certificate-expiry"], text(errors)
    assert "expired on" in errors[0].message
    assert verify_chain(pem_certificates(cert), pem_certificates(ca), SVC_NAME, NOW) is None, "trust is checked apart from time"


def test_no_secret_for_a_service_backed_webhook(healthy: Observed) -> None:
    healthy.tls_secret = None
    errors = bad(evaluate(healthy, PLUGINS))
    assert [f.check for f in errors] == ["serving-certificate"] and "not found" in errors[0].message


@pytest.mark.parametrize(
    ("service", "slices", "expected"),
    [
        (None, [], "not found"),
        ({"metadata": {"name": "meshswitch"}}, [], "no ready endpoints (0 not ready)"),
        ({"metadata": {"name": "meshswitch"}}, [ready_slice(False, False)], "no ready endpoints (2 not ready)"),
    ],
)
def test_endpoints(healthy: Observed, service: Any, slices: list[Any], expected: str) -> None:
    healthy.service, healthy.endpoint_slices = service, slices
    errors = bad(evaluate(healthy, PLUGINS))
    assert [f.check for f in errors] == ["endpoints"]
    assert expected in errors[0].message


def test_a_webhook_reached_by_url(tmp_path: Path) -> None:
    ca, cert = pair(tmp_path, dns=[], ips=["127.0.0.1"])
    url = "https://127.0.0.1:9443/mutate"
    observed = Observed(
        webhook_config=webhook_config(ca, url=url),
        validating_config=validating_config(ca),
        served=[Served(url, certificate=cert, ready_status=200)],
        now=NOW,
    )
    findings = evaluate(observed, PLUGINS)
    assert bad(findings) == [] and bad(findings, WARNING) == [], text(findings)
    infos = " ".join(f.message for f in findings if f.severity == INFO)
    assert "endpoints are not checked" in infos and "only what it serves is checked" in infos
    assert "its certificate verifies against the caBundle for 127.0.0.1" in text(findings)


def test_a_webhook_reached_by_url_beside_another_installations_secret(tmp_path: Path) -> None:
    """`make run` (meshswitch-dev, by URL) then `kubectl apply -k manifests/` and `certs install`:
    the Secret meshswitch-tls is the in-cluster install's. `check --webhook-config meshswitch-dev`
    failed it ("does not verify ... for 127.0.0.1") and warned that the healthy dev server "serves
    another certificate" (not reloaded yet)."""
    ca, cert = pair(tmp_path / "dev", dns=[], ips=["127.0.0.1"])
    other_ca, other_cert = pair(tmp_path / "installed")
    url = "https://127.0.0.1:9443/mutate"
    observed = Observed(
        webhook_config=webhook_config(ca, url=url),
        validating_config=validating_config(ca),
        tls_secret=tls_secret(other_cert, other_ca),
        served=[Served(url, certificate=cert, ready_status=200)],
        now=NOW,
    )
    findings = evaluate(observed, PLUGINS)
    assert bad(findings) == [] and bad(findings, WARNING) == [], text(findings)
    assert "not issued by a CA this configuration trusts" in " ".join(f.message for f in findings if f.severity == INFO)


def test_a_webhook_reached_by_url_with_its_own_secret_still_compares_them(tmp_path: Path) -> None:
    """A Secret of this webhook's CA (the e2e stack copies it into the server's --cert-dir) is
    still checked, and a server still serving the older leaf is still told."""
    ca, older = pair(tmp_path / "same", dns=[], ips=["127.0.0.1"])
    _, newer = pair(tmp_path / "same", dns=[], ips=["127.0.0.1"])
    url = "https://127.0.0.1:9443/mutate"
    observed = Observed(
        webhook_config=webhook_config(ca, url=url),
        validating_config=validating_config(ca),
        tls_secret=tls_secret(newer, ca),
        served=[Served(url, certificate=older, ready_status=200)],
        now=NOW,
    )
    findings = evaluate(observed, PLUGINS)
    assert bad(findings) == []
    (warning,) = bad(findings, WARNING)
    assert "serves another certificate" in warning.message
    assert "tls.crt verifies against the caBundle for 127.0.0.1" in text(findings)


@pytest.mark.parametrize(
    ("served", "check", "expected"),
    [
        (Served("https://127.0.0.1:9443/mutate", error="ConnectionRefusedError: refused"), "reachable", "cannot connect"),
        (Served("https://127.0.0.1:9443/mutate", certificate=b"", ready_status=200), "reachable", "cannot connect"),
        (None, "ready", "/readyz answers 503"),
    ],
)
def test_a_url_that_does_not_serve(tmp_path: Path, served: Served | None, check: str, expected: str) -> None:
    ca, cert = pair(tmp_path, dns=[], ips=["127.0.0.1"])
    url = "https://127.0.0.1:9443/mutate"
    served = served or Served(url, certificate=cert, ready_status=503, ready_body='{"namespaces":"not synced"}')
    observed = Observed(webhook_config=webhook_config(ca, url=url), served=[served], now=NOW)
    errors = bad(evaluate(observed, PLUGINS))
    assert [f.check for f in errors] == [check]
    assert expected in errors[0].message


def test_a_replica_serving_an_older_certificate_warns(healthy: Observed, tmp_path: Path) -> None:
    # The same CA (kept by a second run), a newer leaf in the Secret than the one served.
    ca, older = pair(tmp_path / "same")
    _, newer = pair(tmp_path / "same")
    assert older != newer
    healthy.webhook_config, healthy.tls_secret = webhook_config(ca), tls_secret(newer, ca)
    healthy.validating_config = validating_config(ca)
    healthy.served = [Served("https://127.0.0.1:8443", certificate=older, ready_status=200)]
    findings = evaluate(healthy, PLUGINS)
    assert bad(findings) == []
    (warning,) = bad(findings, WARNING)
    assert "serves another certificate" in warning.message


def test_a_ca_bundle_with_an_expired_previous_ca_warns(healthy: Observed, tmp_path: Path) -> None:
    old_ca, _ = pair(tmp_path / "ancient", issued=NOW - dt.timedelta(days=certs.CA_DAYS + 1))
    current = base64.b64decode(healthy.webhook_config["webhooks"][0]["clientConfig"]["caBundle"])  # type: ignore[index]
    healthy.webhook_config = webhook_config(current + old_ca)
    findings = evaluate(healthy, PLUGINS)
    assert bad(findings) == []
    assert [f.check for f in bad(findings, WARNING)] == ["ca-bundle"]


# --- namespaces -------------------------------------------------------------------------------------


def ns_errors(observed: Observed, *namespaces: dict[str, Any], plugins: PluginSet = PLUGINS) -> list[Finding]:
    observed.namespaces = list(namespaces)
    return [f for f in bad(evaluate(observed, plugins)) + bad(evaluate(observed, plugins), WARNING) if f.check in ("namespace-labels", "control-plane")]


def test_an_unknown_mode(healthy: Observed) -> None:
    (finding,) = ns_errors(healthy, namespace("shop", {"meshswitch.io/mode": "cilium"}))
    assert finding.severity == ERROR and finding.subject == "namespace shop"
    assert "'cilium' is not an installed mode" in finding.message and "accepted: " in finding.message


def test_a_mode_label_and_another_meshs_own_label(healthy: Observed) -> None:
    found = ns_errors(healthy, namespace("shop", {"meshswitch.io/mode": "linkerd", "istio-injection": "enabled"}))
    (finding,) = [f for f in found if f.check == "namespace-labels"]
    assert finding.severity == ERROR
    assert "meshswitch.io/mode=linkerd conflicts with istio-injection=enabled (which selects istio)" in finding.message
    assert "remove istio-injection" in finding.message


def test_a_mode_its_mesh_turns_off(healthy: Observed) -> None:
    (finding,) = ns_errors(healthy, namespace("shop", {"meshswitch.io/mode": "istio", "istio-injection": "disabled"}))
    assert finding.severity == ERROR
    assert "pods here get no mesh" in finding.message and "istio-injection" in finding.message


def test_two_meshes_by_their_own_keys(healthy: Observed) -> None:
    ns = namespace("shop", {"istio-injection": "enabled"}, {"linkerd.io/inject": "enabled"})
    (finding,) = ns_errors(healthy, ns)
    assert finding.severity == ERROR and "pods here are refused" in finding.message and "two meshes" in finding.message


def test_a_mode_on_an_ignored_namespace_warns(healthy: Observed) -> None:
    (finding,) = ns_errors(healthy, namespace("kube-system", {"meshswitch.io/mode": "istio"}))
    assert finding.severity == WARNING and "has no effect" in finding.message


def test_a_missing_control_plane_names_its_objects_and_namespaces(healthy: Observed) -> None:
    healthy.control_plane = {}
    (finding,) = ns_errors(healthy, namespace("shop", {"meshswitch.io/mode": "istio"}), namespace("cart", {"istio-injection": "enabled"}))
    assert finding.check == "control-plane" and finding.subject == "istio"
    assert "Deployment istio-system/istiod" in finding.message and "namespaces cart, shop" in finding.message


def test_linkerd_control_plane_where_the_values_put_it(healthy: Observed, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("linkerd: {controlPlaneNamespace: l5d}\n")
    from webhook.engine.values import load_values

    plugins = load_values(values, PLUGINS)
    healthy.control_plane = {("ConfigMap", "l5d", "linkerd-config"): True}
    (finding,) = ns_errors(healthy, namespace("shop", {}, {"linkerd.io/inject": "enabled"}), plugins=plugins)
    assert "Deployment l5d/linkerd-destination" in finding.message and "ConfigMap" not in finding.message
    healthy.control_plane[("Deployment", "l5d", "linkerd-destination")] = True
    assert ns_errors(healthy, namespace("shop", {}, {"linkerd.io/inject": "enabled"}), plugins=plugins) == []


def test_native_and_unlabelled_namespaces_need_nothing(healthy: Observed) -> None:
    healthy.control_plane = {}
    assert ns_errors(healthy, namespace("a", {"meshswitch.io/mode": "native"}), namespace("b"), namespace("c", {"meshswitch.io/mode": "envoy"})) == []


def test_namespace_mode_is_the_engines_decision() -> None:
    config = Config()
    assert namespace_mode(namespace("a", {"istio-injection": "enabled"}), PLUGINS, config).mode == "istio"
    assert namespace_mode(namespace("b", {}, {"linkerd.io/inject": "enabled"}), PLUGINS, config).mode == "linkerd"
    assert namespace_mode(namespace("c", {"meshswitch.io/mode": "envoy"}), PLUGINS, config).mode == "envoy"
    assert namespace_mode(namespace("d"), PLUGINS, config).mode is None


def test_report_lists_problems_first_class_and_counts(healthy: Observed) -> None:
    healthy.webhook_config = webhook_config(None, entries=1)
    healthy.control_plane = {}
    findings = evaluate(healthy, PLUGINS)
    quiet = report(findings, verbose=False)
    assert all(line.startswith(("[FAIL]", "[warn]")) for line in quiet.splitlines()[:-1])
    assert quiet.splitlines()[-1] == "2 errors, 0 warnings: meshswitch is not healthy"


# --- the installed plugins --------------------------------------------------------------------------


class FakeKube:
    def __init__(self, objects: Mapping[str, dict[str, Any]]) -> None:
        self.objects = objects

    def get(self, path: str, **_: Any) -> dict[str, Any] | None:
        return self.objects.get(path)


EXTRA = """name: kuma
kind: mesh
description: a mesh from the cluster's templates ConfigMap
fragment:
  labels:
    kuma.io/sidecar-injection: enabled
"""


def test_cluster_plugins_come_from_the_configmaps() -> None:
    kube = FakeKube(
        {
            f"/api/v1/namespaces/{NS}/configmaps/meshswitch-templates": {"data": {"kuma.yaml": EXTRA, "README": "not a plugin"}},
            f"/api/v1/namespaces/{NS}/configmaps/meshswitch-values": {"data": {"values.yaml": "istio: {tag: '1.28.0'}\n"}},
        }
    )
    plugins = cluster_plugins(kube, NS)  # type: ignore[arg-type]
    assert "kuma" in plugins.modes and "istio" in plugins.modes
    assert plugins["istio"].values["tag"] == "1.28.0"
    assert "kuma" not in cluster_plugins(None, NS).modes
    assert cluster_plugins(FakeKube({}), NS).modes == PLUGINS.modes  # type: ignore[arg-type]


# --- the validating webhook (Namespace labels) ------------------------------------------------------


def test_the_validating_webhook_is_verified(healthy: Observed) -> None:
    findings = evaluate(healthy, PLUGINS)
    assert [f.message for f in findings if f.check == "validating-webhook"] == [
        "checks Namespace CREATE and UPDATE at /validate, failurePolicy Ignore"
    ]


@pytest.mark.parametrize(
    ("change", "severity", "expected"),
    [
        ({"validating_config": None}, WARNING, "not found: a misspelt meshswitch.io/mode label is not refused"),
        ({"validating_config": {"metadata": {"name": "meshswitch"}, "webhooks": []}}, WARNING, "has no webhooks"),
        ({"path": "/mutate"}, ERROR, "sends reviews to path '/mutate', not /validate"),
        ({"bundle": None}, ERROR, "no caBundle"),
        ({"policy": "Fail"}, WARNING, "failurePolicy Fail: with the webhook down, no namespace can be written"),
    ],
)
def test_a_broken_validating_webhook(healthy: Observed, tmp_path: Path, change: dict[str, Any], severity: str, expected: str) -> None:
    if "validating_config" in change:
        healthy.validating_config = change["validating_config"]
    else:
        bundle = change.get("bundle", b"") if "bundle" in change else base64.b64decode(healthy.validating_config["webhooks"][0]["clientConfig"]["caBundle"])  # type: ignore[index]
        healthy.validating_config = validating_config(bundle, path=change.get("path", "/validate"), policy=change.get("policy", "Ignore"))
    found = [f for f in bad(evaluate(healthy, PLUGINS), severity) if f.check == "validating-webhook"]
    assert len(found) == 1 and expected in found[0].message, text(found)


def test_a_validating_webhook_trusting_another_ca(healthy: Observed, tmp_path: Path) -> None:
    other, _ = pair(tmp_path / "other")
    healthy.validating_config = validating_config(other)
    found = [f for f in bad(evaluate(healthy, PLUGINS)) if f.check == "validating-webhook"]
    assert [f.message for f in found] == ["its caBundle trusts another CA than the mutating webhook's (meshswitch certs install)"]


@pytest.mark.parametrize(
    ("refuses", "error", "severity", "expected"),
    [
        (True, "", OK, "/validate refuses meshswitch.io/mode=meshswitch-check-no-such-mode"),
        (False, "allowed", ERROR, "/validate lets meshswitch.io/mode=meshswitch-check-no-such-mode through: allowed"),
        (None, "answers 404 (a webhook older than /validate?)", WARNING, "/validate: answers 404"),
    ],
)
def test_what_validate_answers_a_made_up_mode(tmp_path: Path, refuses: bool | None, error: str, severity: str, expected: str) -> None:
    ca, cert = pair(tmp_path, ips=["127.0.0.1"])
    url = "https://127.0.0.1:9443/mutate"
    served = Served(url, certificate=cert, ready_status=200, validate_refuses=refuses, validate_error=error)
    observed = Observed(webhook_config=webhook_config(ca, url=url), validating_config=validating_config(ca), served=[served], now=NOW)
    found = [f for f in evaluate(observed, PLUGINS) if f.check == "validating-webhook" and f.subject.startswith("webhook at")]
    assert [(f.severity, expected in f.message) for f in found] == [(severity, True)], text(found)


def test_unknown_keys_on_a_namespace_warn(healthy: Observed) -> None:
    healthy.namespaces = [namespace("shop", {"meshswitch.io/mode": "istio"}, {"sidecar.istio.io/proxyCPUlimit": "2"})]
    warnings = [f for f in bad(evaluate(healthy, PLUGINS), WARNING) if f.check == "namespace-keys"]
    assert [f.message for f in warnings] == [
        "annotation sidecar.istio.io/proxyCPUlimit is not a key istio reads, so it has no effect; did you mean sidecar.istio.io/proxyCPULimit?"
    ]


def test_the_dev_clusters_probe_namespaces_are_left_out(healthy: Observed) -> None:
    # make run's probe namespace, labelled and being deleted, must not be reported.
    probe = namespace("meshswitch-dev-probe-1a2b3c4d", {"meshswitch.io/mode": "no-such-mode"})
    healthy.namespaces = [*healthy.namespaces, probe]
    findings = evaluate(healthy, PLUGINS)
    assert not bad(findings) and "meshswitch-dev-probe" not in text(findings)
    healthy.namespaces = [namespace("meshswitch-probe-1a2b3c4d", {"meshswitch.io/mode": "no-such-mode"})]
    assert [f.subject for f in bad(evaluate(healthy, PLUGINS))] == ["namespace meshswitch-probe-1a2b3c4d"], "only our own prefix is skipped"


@pytest.mark.parametrize(("version", "warned"), [("1.15.2", "older"), ("1.19.0", "newer"), ("1.18.3", None), ("1.17.13", None)])
def test_a_version_rendered_as_another_release_line_warns(healthy: Observed, version: str, warned: str | None) -> None:
    plugins = apply_values(PLUGINS, {"dapr": {"version": version}})
    warnings = [f.message for f in bad(evaluate(healthy, plugins), WARNING) if f.check == "release"]
    assert len(warnings) == (warned is not None) and all(str(warned) in w for w in warnings), warnings
