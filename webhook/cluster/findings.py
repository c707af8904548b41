"""What `meshswitch check` concludes, the pure half: an `Observed` snapshot of the cluster in,
`Finding`s out (certificates, endpoints, and the mode each namespace selects). In the spirit of
`istioctl analyze` and `linkerd check`; webhook/cluster/check.py fetches the snapshot.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from webhook.engine.config import Config
from webhook.engine.decide import MODE_KEY, decide
from webhook.engine.discovery import ControlPlaneObject, control_plane_of
from webhook.engine.errors import PodDenied
from webhook.engine.keys import unknown_keys
from webhook.engine.validate import mode_label_conflicts, namespace_keys_selecting
from webhook.cluster.layout import (
    DEFAULT_NAMESPACE,
    TLS_SECRET,
    WEBHOOK_CONFIG,
    ca_bundle_of,
    fingerprint,
    pem_certificates,
    secret_bytes,
)
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import PluginSet
from webhook.engine.reasons import PLUGIN_DISABLED

OK, WARNING, ERROR, INFO = "ok", "warning", "error", "info"
WARN_DAYS = 30
TEMPLATES_CONFIGMAP = "meshswitch-templates"
VALUES_CONFIGMAP = "meshswitch-values"
VALUES_KEY = "values.yaml"
_PROBE_POD: Mapping[str, Any] = {
    "metadata": {"name": "meshswitch-check"},
    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
}


@dataclass(frozen=True)
class Finding:
    """One line of the report: how bad (ok, info, warning, error), which check, about what, and why."""

    severity: str
    check: str
    subject: str
    message: str


@dataclass(frozen=True)
class Served:
    """What a TLS connection to the webhook showed: its certificate (PEM) and its /readyz status."""

    url: str
    certificate: bytes | None = None
    error: str | None = None
    ready_status: int | None = None
    ready_body: str = ""
    validate_refuses: bool | None = None  # POST /validate refused a namespace with a made-up mode
    validate_error: str = ""


@dataclass
class Observed:
    """Everything `evaluate` looks at: the objects as the API server returned them, as dicts."""

    webhook_config_name: str = WEBHOOK_CONFIG
    namespace: str = DEFAULT_NAMESPACE
    secret_name: str = TLS_SECRET
    webhook_config: Mapping[str, Any] | None = None
    validating_config: Mapping[str, Any] | None = None
    tls_secret: Mapping[str, Any] | None = None
    service: Mapping[str, Any] | None = None
    endpoint_slices: Sequence[Mapping[str, Any]] = ()
    namespaces: Sequence[Mapping[str, Any]] = ()
    control_plane: dict[tuple[str, str, str], bool] = field(default_factory=dict)
    served: Sequence[Served] = ()
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


# Namespaces `make run` and the e2e harness create to see the webhook called; check leaves them out.
PROBE_NAMESPACE_PREFIX = "meshswitch-dev-probe-"
# The mode POST /validate must refuse when check probes it.
PROBE_BAD_MODE = "meshswitch-check-no-such-mode"


# --- pure evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the API server sends reviews: a Service (namespace, name) or a URL; and the TLS name it checks."""

    service: tuple[str, str] | None
    url: str | None
    server_name: str

    def describe(self) -> str:
        if self.service is not None:
            return f"Service {self.service[0]}/{self.service[1]}"
        return f"URL {self.url}"


def target_of(entry: Mapping[str, Any]) -> Target | None:
    client = entry.get("clientConfig") or {}
    service = client.get("service")
    if isinstance(service, Mapping) and service.get("name"):
        namespace, name = str(service.get("namespace") or "default"), str(service["name"])
        return Target((namespace, name), None, f"{name}.{namespace}.svc")
    url = client.get("url")
    if isinstance(url, str) and url:
        return Target(None, url, urllib.parse.urlsplit(url).hostname or "")
    return None


def _subject_name(name: str) -> x509.DNSName | x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def verify_chain(chain: Sequence[x509.Certificate], bundle: Sequence[x509.Certificate], name: str, now: dt.datetime) -> str | None:
    """Why `chain` (leaf first) does not verify for `name` against the CAs of `bundle`, or None.

    Checked at a moment inside the leaf's validity, so that expiry is reported by its own check.
    """
    if not chain:
        return "no certificate"
    if not bundle:
        return "no CA to verify against"
    leaf = chain[0]
    moment = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    try:
        verifier = PolicyBuilder().store(Store(list(bundle))).time(moment).build_server_verifier(_subject_name(name))
        verifier.verify(leaf, list(chain[1:]))
    except VerificationError as err:
        return str(err).split(" (encountered", 1)[0]
    except ValueError as err:
        return str(err)
    return None


def _expiry(check: str, subject: str, certificate: x509.Certificate, now: dt.datetime, warn_days: int) -> Finding:
    left = certificate.not_valid_after_utc - now
    until = f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if left.total_seconds() <= 0:
        return Finding(ERROR, check, subject, f"expired on {until}: renew it (meshswitch certs install)")
    if certificate.not_valid_before_utc > now:
        return Finding(ERROR, check, subject, f"not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if left < dt.timedelta(days=warn_days):
        return Finding(WARNING, check, subject, f"expires in {left.days} days ({until}): renew it (meshswitch certs install)")
    return Finding(OK, check, subject, f"valid until {until} ({left.days} days)")


def _evaluate_webhook(observed: Observed, warn_days: int) -> list[Finding]:
    findings: list[Finding] = []
    name = observed.webhook_config_name
    subject = f"MutatingWebhookConfiguration {name}"
    configuration = observed.webhook_config
    if configuration is None:
        return [Finding(ERROR, "webhook-config", subject, "not found: install it (kubectl apply -k manifests/)")]
    entries = [e for e in configuration.get("webhooks") or () if isinstance(e, Mapping)]
    if not entries:
        return [Finding(ERROR, "webhook-config", subject, "has no webhooks")]
    targets = {e.get("name", "?"): target_of(e) for e in entries}
    broken = [n for n, t in targets.items() if t is None]
    if broken:
        findings.append(Finding(ERROR, "webhook-config", subject, f"webhooks without a service or url: {', '.join(broken)}"))
    distinct = {t for t in targets.values() if t is not None}
    summary = "; ".join(sorted(t.describe() for t in distinct)) or "nowhere"
    findings.append(Finding(OK, "webhook-config", subject, f"{len(entries)} webhooks, sending reviews to {summary}"))

    # caBundle: each entry's, then the CAs in them.
    bundles: dict[str, list[x509.Certificate]] = {}
    for entry in entries:
        raw = ca_bundle_of(entry)
        cas = pem_certificates(raw)
        if not raw:
            findings.append(
                Finding(
                    ERROR,
                    "ca-bundle",
                    f"webhook {entry.get('name')}",
                    "no caBundle: the API server cannot verify the webhook's certificate "
                    f"(run meshswitch certs install --namespace {observed.namespace}, or use the cert-manager overlay)",
                )
            )
        elif not cas:
            findings.append(Finding(ERROR, "ca-bundle", f"webhook {entry.get('name')}", "caBundle holds no PEM certificate"))
        else:
            bundles[str(entry.get("name"))] = cas
    fingerprints = {tuple(sorted(fingerprint(c) for c in cas)) for cas in bundles.values()}
    if len(fingerprints) > 1:
        findings.append(Finding(WARNING, "ca-bundle", subject, "its webhooks trust different CAs: run meshswitch certs install"))
    union: dict[str, x509.Certificate] = {}
    for cas in bundles.values():
        union.update({fingerprint(c): c for c in cas})
    bundle = list(union.values())
    if bundle:
        valid = [c for c in bundle if c.not_valid_after_utc > observed.now]
        names = ", ".join(f"{fingerprint(c)} (until {c.not_valid_after_utc:%Y-%m-%d})" for c in bundle)
        if not valid:
            findings.append(Finding(ERROR, "ca-bundle", subject, f"every CA in the caBundle has expired: {names}"))
        elif len(valid) < len(bundle):
            findings.append(Finding(WARNING, "ca-bundle", subject, f"the caBundle holds an expired CA: {names}"))
        elif len(bundles) == len(entries):
            findings.append(Finding(OK, "ca-bundle", subject, f"caBundle on every webhook: {names}"))

    server_names = sorted({t.server_name for t in distinct})
    service_targets = sorted({t.service for t in distinct if t.service is not None})
    findings += _evaluate_secret(observed, bundle, server_names, bool(service_targets), warn_days)
    findings += _evaluate_served(observed, bundle, server_names, warn_days, compare_secret=bool(service_targets) or _secret_is_this_webhooks(observed, bundle))
    findings += _evaluate_endpoints(observed, service_targets, [t.url for t in distinct if t.url])
    findings += _evaluate_validating(observed, bundle)
    return findings


def _evaluate_secret(observed: Observed, bundle: list[x509.Certificate], names: list[str], needed: bool, warn_days: int) -> list[Finding]:
    subject = f"Secret {observed.namespace}/{observed.secret_name}"
    secret = observed.tls_secret
    if secret is None:
        if needed:
            return [Finding(ERROR, "serving-certificate", subject, "not found: the webhook's pods cannot start (run meshswitch certs install)")]
        return [Finding(INFO, "serving-certificate", subject, "not found; the webhook is reached by URL, so only what it serves is checked")]
    chain = pem_certificates(secret_bytes(secret, "tls.crt"))
    if not chain:
        return [Finding(ERROR, "serving-certificate", subject, "tls.crt holds no PEM certificate")]
    if not needed and bundle and not _secret_is_this_webhooks(observed, bundle):
        # Reached by URL, the server holds its files anywhere: a Secret no CA of this configuration
        # issued is another installation's (`make run`'s meshswitch-dev beside `kubectl apply -k manifests/`).
        return [Finding(INFO, "serving-certificate", subject, "not issued by a CA this configuration trusts, so not this webhook's; "
                        "the webhook is reached by URL, so only what it serves is checked")]
    findings = [_expiry("certificate-expiry", f"{subject} tls.crt", chain[0], observed.now, warn_days)]
    if bundle:
        findings += _verifications(chain, bundle, names, observed.now, subject=subject, what="tls.crt")
    return findings


def _verifications(
    chain: list[x509.Certificate], bundle: list[x509.Certificate], names: list[str], now: Any, *, subject: str, what: str
) -> list[Finding]:
    """One finding per name the certificate must be valid for: it verifies against the caBundle, or why not."""
    findings = []
    for name in names:
        problem = verify_chain(chain, bundle, name, now)
        if problem:
            findings.append(Finding(ERROR, "serving-certificate", subject, f"{what} does not verify against the caBundle for {name}: {problem}"))
        else:
            findings.append(Finding(OK, "serving-certificate", subject, f"{what} verifies against the caBundle for {name}"))
    return findings


def _secret_is_this_webhooks(observed: Observed, bundle: list[x509.Certificate]) -> bool:
    """The Secret's certificate was issued by a CA of the caBundle (whatever names it holds)."""
    for certificate in pem_certificates(secret_bytes(observed.tls_secret, "tls.crt")):
        for ca in bundle:
            try:
                certificate.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
    return False


def _evaluate_served(
    observed: Observed, bundle: list[x509.Certificate], names: list[str], warn_days: int, *, compare_secret: bool = True
) -> list[Finding]:
    findings: list[Finding] = []
    secret_leaf = pem_certificates(secret_bytes(observed.tls_secret, "tls.crt")) if compare_secret else []
    for served in observed.served:
        subject = f"webhook at {served.url}"
        if served.error or not served.certificate:
            findings.append(Finding(ERROR, "reachable", subject, f"cannot connect: {served.error or 'no certificate'}"))
            continue
        chain = pem_certificates(served.certificate)
        if not chain:
            findings.append(Finding(ERROR, "serving-certificate", subject, "served no parseable certificate"))
            continue
        findings.append(_expiry("certificate-expiry", f"{subject} certificate", chain[0], observed.now, warn_days))
        findings += _verifications(chain, bundle, names, observed.now, subject=subject, what="its certificate")
        if secret_leaf and fingerprint(secret_leaf[0]) != fingerprint(chain[0]):
            findings.append(
                Finding(
                    WARNING,
                    "serving-certificate",
                    subject,
                    f"serves another certificate than Secret {observed.secret_name} holds "
                    "(not reloaded yet: kubelet syncs Secrets within a minute or two, the server polls every --cert-poll-seconds)",
                )
            )
        if served.ready_status == 200:
            findings.append(Finding(OK, "ready", subject, "/readyz answers 200"))
        elif served.ready_status is not None:
            findings.append(Finding(ERROR, "ready", subject, f"/readyz answers {served.ready_status}: {served.ready_body.strip()[:300]}"))
    return findings


def _evaluate_validating(observed: Observed, bundle: list[x509.Certificate]) -> list[Finding]:
    """The validating webhook that refuses a misspelt mode label when it is written."""
    name = observed.webhook_config_name
    subject = f"ValidatingWebhookConfiguration {name}"
    configuration = observed.validating_config
    if configuration is None:
        return [Finding(WARNING, "validating-webhook", subject, "not found: a misspelt meshswitch.io/mode label is not refused when it is written, "
                        "and then every pod in that namespace is (kubectl apply -k manifests/)")]
    entries = [e for e in configuration.get("webhooks") or () if isinstance(e, Mapping)]
    if not entries:
        return [Finding(WARNING, "validating-webhook", subject, "has no webhooks: mode labels are not checked when written")]
    findings: list[Finding] = []
    trusted = {fingerprint(c) for c in bundle}
    for entry in entries:
        where = f"{subject} webhook {entry.get('name')}"
        client = entry.get("clientConfig") or {}
        path = (client.get("service") or {}).get("path") if isinstance(client.get("service"), Mapping) else urllib.parse.urlsplit(str(client.get("url") or "")).path
        resources = {r for rule in entry.get("rules") or () for r in rule.get("resources") or ()}
        operations = {o for rule in entry.get("rules") or () for o in rule.get("operations") or ()}
        cas = {fingerprint(c) for c in pem_certificates(ca_bundle_of(entry))}
        if path != "/validate":
            findings.append(Finding(ERROR, "validating-webhook", where, f"sends reviews to path {path!r}, not /validate"))
        elif "namespaces" not in resources or not {"CREATE", "UPDATE"} <= operations | ({"CREATE", "UPDATE"} if "*" in operations else set()):
            findings.append(Finding(WARNING, "validating-webhook", where, "does not cover Namespace CREATE and UPDATE: some label writes are not checked"))
        elif not cas:
            findings.append(Finding(ERROR, "validating-webhook", where, "no caBundle: the API server cannot call it, so labels are not checked (meshswitch certs install)"))
        elif trusted and not cas & trusted:
            findings.append(Finding(ERROR, "validating-webhook", where, "its caBundle trusts another CA than the mutating webhook's (meshswitch certs install)"))
        elif entry.get("failurePolicy") != "Ignore":
            findings.append(Finding(WARNING, "validating-webhook", where, f"failurePolicy {entry.get('failurePolicy')}: with the webhook down, no namespace can be written; Ignore is meant"))
        else:
            findings.append(Finding(OK, "validating-webhook", where, "checks Namespace CREATE and UPDATE at /validate, failurePolicy Ignore"))
    for served in observed.served:
        if served.validate_refuses is True:
            findings.append(Finding(OK, "validating-webhook", f"webhook at {served.url}", f"/validate refuses {MODE_KEY}={PROBE_BAD_MODE}"))
        elif served.validate_refuses is False:
            findings.append(Finding(ERROR, "validating-webhook", f"webhook at {served.url}", f"/validate lets {MODE_KEY}={PROBE_BAD_MODE} through: {served.validate_error}"))
        elif served.validate_error:
            findings.append(Finding(WARNING, "validating-webhook", f"webhook at {served.url}", f"/validate: {served.validate_error}"))
    return findings


def _ready_endpoints(slices: Sequence[Mapping[str, Any]]) -> list[str]:
    addresses = []
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or ():
            # A missing `ready` condition counts as ready (discovery.k8s.io/v1).
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            addresses += list(endpoint.get("addresses") or ())
    return addresses


def _evaluate_endpoints(observed: Observed, services: list[tuple[str, str]], urls: list[str]) -> list[Finding]:
    findings = []
    for namespace, name in services:
        subject = f"Service {namespace}/{name}"
        if observed.service is None:
            findings.append(Finding(ERROR, "endpoints", subject, "not found: install it (kubectl apply -k manifests/)"))
            continue
        ready = _ready_endpoints(observed.endpoint_slices)
        if ready:
            findings.append(Finding(OK, "endpoints", subject, f"{len(ready)} ready endpoints ({', '.join(sorted(ready)[:5])})"))
        else:
            total = sum(len(s.get("endpoints") or ()) for s in observed.endpoint_slices)
            findings.append(
                Finding(
                    ERROR,
                    "endpoints",
                    subject,
                    f"no ready endpoints ({total} not ready): no replica answers reviews; see "
                    f"kubectl -n {namespace} get pods -l app.kubernetes.io/name=meshswitch",
                )
            )
    for url in urls:
        findings.append(Finding(INFO, "endpoints", f"URL {url}", "the webhook runs outside the cluster's Services: endpoints are not checked, the URL is probed"))
    return findings


@dataclass(frozen=True)
class NamespaceMode:
    """What a namespace selects: the mode, where it came from, and what is wrong with its labels."""

    name: str
    mode: str | None
    source: str
    findings: tuple[Finding, ...]
    refused: bool = False  # pods here are denied; else a None mode with a source is one turned off


def namespace_mode(namespace: Mapping[str, Any], plugins: PluginSet, config: Config) -> NamespaceMode:
    """The mode a plain pod in `namespace` gets, decided by the engine itself, and the labels' conflicts."""
    metadata = namespace.get("metadata") or {}
    name = str(metadata.get("name") or "?")
    labels = dict(metadata.get("labels") or {})
    annotations = dict(metadata.get("annotations") or {})
    subject = f"namespace {name}"
    typos = tuple(
        Finding(WARNING, "namespace-keys", subject, message)
        for message in unknown_keys(labels, plugins, where="label") + unknown_keys(annotations, plugins, where="annotation")
    )
    found = _namespace_mode(name, labels, annotations, plugins, config)
    return NamespaceMode(found.name, found.mode, found.source, found.findings + typos, found.refused) if typos else found


def _namespace_mode(name: str, labels: dict[str, str], annotations: dict[str, str], plugins: PluginSet, config: Config) -> NamespaceMode:
    subject = f"namespace {name}"
    explicit = labels.get(MODE_KEY)
    own = [(p, keys) for p in plugins.meshes if (keys := namespace_keys_selecting(p, labels, annotations))]
    if explicit is None and not own:
        return NamespaceMode(name, None, "", ())
    asked = f"{MODE_KEY}={explicit}" if explicit is not None else ", ".join(k for _, keys in own for k in keys)
    if name in config.ignored_namespaces:
        return NamespaceMode(name, None, asked, (Finding(WARNING, "namespace-labels", subject, f"{asked} has no effect: meshswitch never injects this namespace"),))
    findings: list[Finding] = []
    try:
        decision = decide(_PROBE_POD, NamespaceMeta(name, labels, annotations), plugins=plugins, config=config)
    except PodDenied as err:
        return NamespaceMode(name, None, asked, (Finding(ERROR, "namespace-labels", subject, f"pods here are refused: {err.message}"),), refused=True)
    mode = decision.mode
    findings += [Finding(ERROR, "namespace-labels", subject, conflict) for conflict in mode_label_conflicts(labels, annotations, decision, plugins)]
    if decision.reason.code == PLUGIN_DISABLED:
        findings.append(Finding(ERROR, "namespace-labels", subject, f"{asked} selects {mode}, but {decision.reason.message}: pods here get no mesh"))
        return NamespaceMode(name, None, asked, tuple(findings))
    if not findings:
        findings.append(Finding(OK, "namespace-labels", subject, f"{asked}: mode {mode}"))
    return NamespaceMode(name, mode, asked, tuple(findings))


def _name(namespace: Mapping[str, Any]) -> str:
    return str((namespace.get("metadata") or {}).get("name"))


def namespace_modes(namespaces: Sequence[Mapping[str, Any]], plugins: PluginSet, config: Config) -> list[NamespaceMode]:
    """Each namespace's mode, leaving out the dev cluster's probe namespaces (short-lived, and being deleted)."""
    kept = [ns for ns in namespaces if not _name(ns).startswith(PROBE_NAMESPACE_PREFIX)]
    return [namespace_mode(ns, plugins, config) for ns in sorted(kept, key=_name)]


def control_plane_needed(modes: Sequence[NamespaceMode], plugins: PluginSet) -> dict[str, tuple[ControlPlaneObject, ...]]:
    """Per mesh in use, the control-plane objects its plugin names."""
    needed = {}
    for mode in modes:
        if mode.mode and mode.mode in plugins and mode.mode not in needed:
            # An optional object (Istio's ConfigMaps) only refines the values: not needed.
            needed[mode.mode] = tuple(o for o in control_plane_of(plugins[mode.mode]) if not o.optional)
    return needed


def _evaluate_namespaces(observed: Observed, plugins: PluginSet, config: Config) -> list[Finding]:
    modes = namespace_modes(observed.namespaces, plugins, config)
    findings = [f for m in modes for f in m.findings]
    users: dict[str, list[str]] = {}
    for mode in modes:
        if mode.mode:
            users.setdefault(mode.mode, []).append(mode.name)
    for mesh, objects in control_plane_needed(modes, plugins).items():
        names = ", ".join(users[mesh])
        if plugins[mesh].kind != "mesh":
            continue
        if not objects:
            findings.append(Finding(OK, "control-plane", mesh, f"names no control plane to look for (namespaces {names})"))
            continue
        missing = [o.describe() for o in objects if not observed.control_plane.get(o.key, False)]
        if missing:
            findings.append(
                Finding(
                    ERROR,
                    "control-plane",
                    mesh,
                    f"control plane missing: {', '.join(missing)}; namespaces {names} select {mesh}, "
                    "and its proxies cannot work without it (install the mesh, or set its values.yaml if it lives elsewhere)",
                )
            )
        else:
            findings.append(Finding(OK, "control-plane", mesh, f"control plane found ({', '.join(o.describe() for o in objects)}) for namespaces {names}"))
    return findings


def evaluate(observed: Observed, plugins: PluginSet, config: Config | None = None, *, warn_days: int = WARN_DAYS) -> list[Finding]:
    """Every finding about the webhook and the namespaces; pure."""
    config = config or Config(webhook_namespace=observed.namespace)
    return _evaluate_webhook(observed, warn_days) + _evaluate_namespaces(observed, plugins, config) + _evaluate_releases(plugins)


def _evaluate_releases(plugins: PluginSet) -> list[Finding]:
    """A plugin whose installed version (as its values give it) renders as a release line it is not on."""
    findings = []
    for plugin in plugins:
        if plugin.releases is not None and (warning := plugin.releases.warning(plugin.name, plugin.values)):
            findings.append(Finding(WARNING, "release", plugin.name, warning.removeprefix(f"{plugin.name}: ")))
    return findings


_MARKS = {OK: "[ok]  ", INFO: "[info]", WARNING: "[warn]", ERROR: "[FAIL]"}


def report(findings: Sequence[Finding], *, verbose: bool = True) -> str:
    """The findings as aligned lines, then a count; `verbose=False` leaves out the ok and info lines."""
    shown = [f for f in findings if verbose or f.severity in (WARNING, ERROR)]
    width = max((len(f.check) for f in shown), default=0)
    lines = [f"{_MARKS[f.severity]} {f.check:<{width}}  {f.subject}: {f.message}" for f in shown]
    errors = sum(f.severity == ERROR for f in findings)
    warnings = sum(f.severity == WARNING for f in findings)
    if errors:
        lines.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}: meshswitch is not healthy")
    else:
        lines.append(f"no errors, {warnings} warning{'s' * (warnings != 1)}: meshswitch is healthy")
    return "\n".join(lines)


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.severity == ERROR for f in findings) else 0

