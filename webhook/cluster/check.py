"""`meshswitch check`, the I/O half: fetch an `Observed` snapshot from the API server (and, for a
webhook reached by URL or with --url, from a TLS connection to the webhook itself); the plugins the
cluster installed. webhook/cluster/findings.py evaluates the snapshot.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import ssl
import tempfile
import urllib.parse
from collections.abc import Sequence
from pathlib import Path


from webhook.cluster.client import KubeApi
from webhook.cluster.discovery_watch import get_control_plane_object
from webhook.cluster.findings import (
    PROBE_BAD_MODE,
    TEMPLATES_CONFIGMAP,
    VALUES_CONFIGMAP,
    VALUES_KEY,
    Observed,
    Served,
    control_plane_needed,
    namespace_modes,
    target_of,
)
from webhook.cluster.layout import DEFAULT_NAMESPACE, TLS_SECRET, WEBHOOK_CONFIG, secret_path, validating_config_path, webhook_config_path
from webhook.engine.config import Config
from webhook.engine.decide import MODE_KEY
from webhook.engine.plugins import PluginSet, load_plugins
from webhook.engine.values import load_values


def cluster_plugins(
    kube: KubeApi | None, namespace: str, templates_dirs: Sequence[Path] = (), values: Path | None = None
) -> PluginSet:
    """The installed plugins: the shipped ones, the cluster's templates ConfigMap, then `templates_dirs`;
    with the cluster's values ConfigMap applied, or `values` when given."""
    with tempfile.TemporaryDirectory(prefix="meshswitch-plugins-") as scratch:
        extra: list[Path] = []
        values_file = values
        if kube is not None:
            templates = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{TEMPLATES_CONFIGMAP}")
            files = {k: v for k, v in ((templates or {}).get("data") or {}).items() if k.endswith((".yaml", ".yml"))}
            if files:
                directory = Path(scratch) / "templates"
                directory.mkdir()
                for key, text in files.items():
                    (directory / Path(key).name).write_text(text, encoding="utf-8")
                extra.append(directory)
            if values_file is None:
                found = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{VALUES_CONFIGMAP}")
                text = ((found or {}).get("data") or {}).get(VALUES_KEY)
                if text:
                    values_file = Path(scratch) / VALUES_KEY
                    values_file.write_text(text, encoding="utf-8")
        plugins = load_plugins([*extra, *templates_dirs])
        return load_values(values_file, plugins) if values_file is not None else plugins


def probe(url: str, timeout: float = 5.0) -> Served:
    """Connect to the webhook at `url` (no verification here: `evaluate` verifies), fetch /readyz."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return Served(url, error="not an https:// URL")
    port = parts.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError as err:
        return Served(url, error=f"{type(err).__name__}: {err}")
    if not der:
        return Served(url, error="no certificate")
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        served = Served(url, certificate=pem, ready_status=response.status, ready_body=response.read(2000).decode(errors="replace"))
    except (OSError, http.client.HTTPException) as err:
        return Served(url, certificate=pem, error=f"/readyz: {type(err).__name__}: {err}")
    finally:
        connection.close()
    refuses, problem = probe_validate(parts.hostname, port, context, timeout)
    return dataclasses.replace(served, validate_refuses=refuses, validate_error=problem)


def probe_validate(host: str, port: int, context: ssl.SSLContext, timeout: float) -> tuple[bool | None, str]:
    """POST /validate a Namespace labelled with a mode that cannot exist: (refused?, what went wrong)."""
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "meshswitch-check",
            "kind": {"group": "", "version": "v1", "kind": "Namespace"},
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "operation": "CREATE",
            "name": "meshswitch-check",
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "meshswitch-check", "labels": {MODE_KEY: PROBE_BAD_MODE}}},
        },
    }
    connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        connection.request("POST", "/validate", body=json.dumps(review), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read(20000)
    except (OSError, http.client.HTTPException) as err:
        return None, f"{type(err).__name__}: {err}"
    finally:
        connection.close()
    if response.status != 200:
        return None, f"answers {response.status} (a webhook older than /validate?)"
    try:
        answer = json.loads(body).get("response") or {}
    except (ValueError, AttributeError):
        return None, "the answer is not an AdmissionReview"
    return answer.get("allowed") is False, "" if answer.get("allowed") is False else "allowed"


def observe(
    kube: KubeApi,
    plugins: PluginSet,
    config: Config,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    webhook_config: str = WEBHOOK_CONFIG,
    secret: str = TLS_SECRET,
    urls: Sequence[str] = (),
    namespace_selector: str | None = None,
) -> Observed:
    """Fetch what `evaluate` needs; GETs only."""
    observed = Observed(webhook_config_name=webhook_config, namespace=namespace, secret_name=secret)
    observed.webhook_config = kube.get(webhook_config_path(webhook_config))
    observed.validating_config = kube.get(validating_config_path(webhook_config))
    observed.tls_secret = kube.get(secret_path(namespace, secret))
    targets = [t for e in (observed.webhook_config or {}).get("webhooks") or () if (t := target_of(e)) is not None]
    services = sorted({t.service for t in targets if t.service is not None})
    if services:
        service_namespace, service_name = services[0]
        observed.service = kube.get(f"/api/v1/namespaces/{service_namespace}/services/{service_name}")
        observed.endpoint_slices = kube.items(
            f"/apis/discovery.k8s.io/v1/namespaces/{service_namespace}/endpointslices",
            query=[("labelSelector", f"kubernetes.io/service-name={service_name}")],
        )
    query = [("labelSelector", namespace_selector)] if namespace_selector else []
    observed.namespaces = kube.items("/api/v1/namespaces", query=query)
    for objects in control_plane_needed(namespace_modes(observed.namespaces, plugins, config), plugins).values():
        for obj in objects:
            observed.control_plane[obj.key] = bool(obj.namespace) and get_control_plane_object(kube, obj) is not None
    probes = list(dict.fromkeys([*urls, *(t.url for t in targets if t.url)]))
    observed.served = [probe(url) for url in probes]
    return observed
