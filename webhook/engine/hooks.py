"""Named transforms a template may ask for, where a mesh needs more than a fragment (pure).

A hook sees the pod, the plugin's parsed settings and its values, and returns names the fragment
reads (``hook.<name>``) plus changes to what the pod already has: fields of app containers and of
the app's native-sidecar init containers, and annotations to set or remove. The patch records the
originals of whatever a hook replaces, so `uninject` gives the pod back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from webhook.engine import reasons
from webhook.engine.errors import PodDenied
from webhook.engine.releases import version_at_least
from webhook.engine.kube import Pod, go_json, listed_containers
from webhook.engine.leaves import Attrs
from webhook.engine.sandbox import whole_cores
from webhook.engine.schema import check_annotation
from webhook.engine.settings import go_trim, nesting_problem, show

PROBE_FIELDS = (("livenessProbe", "livez"), ("readinessProbe", "readyz"), ("startupProbe", "startupz"))
LIFECYCLE_FIELDS = (("postStart", "poststartz"), ("preStop", "prestopz"))
# Go's field order for the objects Istio serialises into env values (its agent reads them back).
_PORT_ORDER = ("name", "hostPort", "containerPort", "protocol", "hostIP")
_HTTP_ORDER = ("path", "port", "host", "scheme", "httpHeaders")


# The shared empty default of the engine's result tuples (read-only, so sharing it is safe).
NOTHING: Mapping[Any, Any] = MappingProxyType({})


class HookResult(NamedTuple):
    """Names a template can read (``hook.<name>``) and changes to what the pod already has.

    A named tuple with shared empty defaults: several hooks run per pod, and most change nothing.
    """

    context: Mapping[str, Any] = NOTHING
    container_changes: Mapping[int, Mapping[str, Any]] = NOTHING
    # Named items to append to list fields of app containers (env, volumeMounts): a patch never resends a list.
    container_appends: Mapping[int, Mapping[str, list[dict[str, Any]]]] = NOTHING
    init_container_changes: Mapping[int, Mapping[str, Any]] = NOTHING
    annotation_changes: Mapping[str, str | None] = NOTHING  # None removes the key
    # Fields to merge over a container a previous injection left (Istio's proxy.istio.io/overrides).
    reapplied: Mapping[str, Mapping[str, Any]] = NOTHING
    # Fields set over an injected container after the pod's own declared one is merged over it (what
    # the mesh's injector adjusts after its merge: Istio's proxy stays root under TPROXY).
    imposed: Mapping[str, Mapping[str, Any]] = NOTHING
    # Containers the mesh takes as declared though the pod may not carry them, by the section an
    # injected container goes to and its name: merged over ours after the pod's own (Istio's
    # proxy.istio.io/overrides on a pod without its status).
    overlaid: Mapping[str, Mapping[str, Mapping[str, Any]]] = NOTHING


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _go_bool(value: Any, *, default: bool) -> bool:
    """A bool as Go's strconv.ParseBool reads it; text it does not take leaves the default."""
    if isinstance(value, bool):
        return value
    text = str(value).strip() if value is not None else ""
    return True if text in _GO_TRUE else False if text in _GO_FALSE else default


# What `_ordered` leaves out; compared with `in`, as Go's omitempty sees it.
_EMPTY: tuple[Any, ...] = (None, "", [])


def _ordered(value: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    return {k: value[k] for k in order if k in value and value[k] not in _EMPTY}


def _named_port(container: Mapping[str, Any], port: Any) -> Any:
    """The probe's port as a number; None for a name the container does not declare.

    Istio gives the agent no prober for a named port it cannot resolve (it still points the probe
    at the agent, which answers 404); the probe is left as it was here, which the kubelet fails
    too, naming the user's port (docs/fidelity.md): the user's to fix, not a refusal.
    """
    if isinstance(port, str) and not (port.isascii() and port.isdigit()):
        for declared in container.get("ports") or ():
            if isinstance(declared, dict) and declared.get("name") == port:
                return declared.get("containerPort")
        return None
    return int(port) if isinstance(port, str) else port


_HANDLER_KINDS = ("httpGet", "tcpSocket", "grpc")


def _original(container: Mapping[str, Any], handler: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the agent replays for one probe or lifecycle handler, named ports resolved."""
    # Runs for every probe of every app container: the fields are read once each, in Go's order,
    # without the intermediate copies a merge-then-filter would make.
    original: dict[str, Any]
    http = handler.get("httpGet")
    if isinstance(http, dict):
        port = http.get("port")
        if isinstance(port, str):
            port = _named_port(container, port)
        if port is None:
            return None
        fields: dict[str, Any] = {}
        path = http.get("path")
        if path not in _EMPTY:
            fields["path"] = path
        if port not in _EMPTY:
            fields["port"] = port
        if len(http) > 2 or "path" not in http:  # http has more than path and port (the usual two)
            for key in _HTTP_ORDER[2:]:
                value = http.get(key)
                if value not in _EMPTY:
                    fields[key] = value
        original = {"httpGet": fields}
    elif isinstance(tcp := handler.get("tcpSocket"), dict):
        port = tcp.get("port")
        if isinstance(port, str):
            port = _named_port(container, port)
        if port is None:
            return None
        fields = {"port": port} if port not in _EMPTY else {}
        host = tcp.get("host")
        if host not in _EMPTY:
            fields["host"] = host
        original = {"tcpSocket": fields}
    elif isinstance(grpc := handler.get("grpc"), dict):
        original = {"grpc": {"port": grpc.get("port"), "service": grpc.get("service")}}
    else:
        return None  # exec probes and hooks run inside the container and need no rewrite
    timeout = handler.get("timeoutSeconds")
    if timeout:
        original["timeoutSeconds"] = timeout
    return original


def _through_agent(handler: Mapping[str, Any], path: str, port: int) -> dict[str, Any]:
    """The handler pointed at the agent, as Istio's rewriteHTTPGetAction does: an httpGet keeps its
    host, headers and scheme (HTTPS becomes HTTP: the agent calls the app over TLS itself); a TCP or
    gRPC one becomes a plain httpGet."""
    rewritten = dict(handler)
    for kind in _HANDLER_KINDS:  # removed, so that httpGet goes last, as Istio writes it
        if kind in rewritten:
            del rewritten[kind]
    original = handler.get("httpGet")
    http = {**original, "path": path, "port": port} if isinstance(original, dict) else {"path": path, "port": port}
    if http.get("scheme") == "HTTPS":
        http["scheme"] = "HTTP"
    rewritten["httpGet"] = http
    return rewritten


def _on_agent(original: Mapping[str, Any], handler: Mapping[str, Any], agent_port: Any) -> bool:
    """An HTTP or TCP handler whose port is written as the agent's number: Istio takes it as
    rewritten already and hands the agent nothing to replay (a named port is not compared)."""
    kind = "httpGet" if "httpGet" in original else "tcpSocket" if "tcpSocket" in original else None
    port = handler[kind].get("port") if kind is not None else None
    return type(port) is int and port == agent_port


def _rewrite_container(container: Mapping[str, Any], status_port: int, agent_port: Any, probers: dict[str, Any]) -> dict[str, Any]:
    name = container.get("name")
    changes: dict[str, Any] = {}
    for probe_field, suffix in PROBE_FIELDS:
        probe = container.get(probe_field)
        if not isinstance(probe, dict):
            continue
        original = _original(container, probe)
        if original is None:
            continue
        path = f"/app-health/{name}/{suffix}"
        if not _on_agent(original, probe, agent_port):
            probers[path] = original
        changes[probe_field] = _through_agent(probe, path, status_port)
    hooks = container.get("lifecycle")
    if isinstance(hooks, dict):
        rewritten_hooks = dict(hooks)
        for hook_field, suffix in LIFECYCLE_FIELDS:
            handler = hooks.get(hook_field)
            original = _original(container, handler) if isinstance(handler, dict) else None
            if original is None or not isinstance(handler, dict):
                continue
            path = f"/app-lifecycle/{name}/{suffix}"
            if not _on_agent(original, handler, agent_port):
                probers[path] = original
            rewritten_hooks[hook_field] = _through_agent(handler, path, status_port)
        if rewritten_hooks != hooks:
            changes["lifecycle"] = rewritten_hooks
    return changes


# Where Istio's injector lists what it injected; a pod carrying it was injected before.
_ISTIO_STATUS = "sidecar.istio.io/status"
_PROBERS_ENV = "ISTIO_KUBE_APP_PROBERS"
# Go's field order for one entry of ISTIO_KUBE_APP_PROBERS and for the actions in it.
_PROBER_ORDER = ("httpGet", "tcpSocket", "grpc", "timeoutSeconds")
_ACTION_ORDER = {"httpGet": _HTTP_ORDER, "tcpSocket": ("port", "host"), "grpc": ("port", "service")}
_ACTION_KEPT = {"httpGet": ("port",), "tcpSocket": ("port",), "grpc": ("port", "service")}  # no omitempty


def _previous_probers(pod: Pod) -> str | None:
    """ISTIO_KUBE_APP_PROBERS of the istio-proxy an earlier Istio injection left. Istio merges its
    template over that container, so the agent keeps serving the probes rewritten back then, which
    now point at the status port and are no longer in the app's own probes."""
    metadata = pod.get("metadata") or {}
    if _ISTIO_STATUS not in (metadata.get("annotations") or {}):
        return None
    spec = pod.get("spec") or {}
    proxy = _first_named("istio-proxy", spec.get("containers"), spec.get("initContainers"))
    for env in (proxy or {}).get("env") or ():
        if isinstance(env, dict) and env.get("name") == _PROBERS_ENV:
            return str(env.get("value") or "")
    return None


def _go_prober(entry: Any) -> dict[str, Any] | None:
    """One entry of ISTIO_KUBE_APP_PROBERS as Go decodes it into Istio's Prober and writes it back:
    its known fields in struct order, empty ones left out. ValueError where Go's decoding fails."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ValueError("a prober is an object")
    out: dict[str, Any] = {}
    for key in _PROBER_ORDER:
        value = entry.get(key)
        if key == "timeoutSeconds":
            if value is not None and (type(value) is not int):
                raise ValueError("timeoutSeconds is a number")
            if value:
                out[key] = value
        elif value is not None:
            if not isinstance(value, dict):
                raise ValueError(f"{key} is an object")
            kept = _ACTION_KEPT[key]
            out[key] = {f: value.get(f) for f in _ACTION_ORDER[key] if f in kept or value.get(f) not in _EMPTY}
    return out


def _merged_probers(previous: str, probers: Mapping[str, Any]) -> str:
    """Istio's merge on re-injection: the new probers, then the previous ones over them (a path in
    both keeps its previous target). A previous value Go cannot decode is left as it was."""
    try:
        parsed = orjson.loads(previous)
        if parsed is not None and not isinstance(parsed, dict):
            raise ValueError("ISTIO_KUBE_APP_PROBERS is an object")
        merged = {**probers, **{str(k): _go_prober(v) for k, v in (parsed or {}).items()}}
    except ValueError:  # orjson's decode error is one too
        return previous
    return go_json(dict(sorted(merged.items())))


def rewrite_probes_through_agent(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """Istio's app-probe rewrite: HTTP, TCP and gRPC probes (and HTTP lifecycle hooks) of app
    containers and of the app's native-sidecar init containers go through the agent's status port.

    The kubelet cannot reach the app through mTLS, so the probe targets
    ``/app-health/<container>/<kind>`` on the status port and the agent replays the original,
    which it reads from ``ISTIO_KUBE_APP_PROBERS``.
    """
    # The probes point at the pod's status port; what counts as already rewritten is a probe on the
    # install's (Istio compares with the MeshConfig's port, not the annotation's).
    agent_port = values.get("statusPort", 15020)
    status_port = settings.get("statusPort")
    if status_port is None:  # no annotation: the MeshConfig's port (not the chart's global.proxy.statusPort)
        status_port = agent_port
    # Every template's (a gateway's other containers too), as Istio rewrites once istio-proxy exists.
    enabled = _go_bool(settings.get("rewriteAppProbers"), default=values.get("rewriteAppProbers", True)) and status_port
    previous = _previous_probers(pod)
    if not enabled:
        return HookResult(context={"app_probers": previous})
    spec = pod.get("spec") or {}
    probers: dict[str, Any] = {}
    changes: dict[int, dict[str, Any]] = {}
    init_changes: dict[int, dict[str, Any]] = {}
    for index, container in enumerate(spec.get("initContainers") or ()):
        # The proxy is skipped wherever it is declared (a native-sidecar istio-proxy too), as in Istio.
        if isinstance(container, dict) and container.get("restartPolicy") == "Always" and container.get("name") != "istio-proxy":
            if found := _rewrite_container(container, status_port, agent_port, probers):
                init_changes[index] = found
    for index, container in enumerate(spec.get("containers") or ()):
        if isinstance(container, dict) and container.get("name") != "istio-proxy":
            if found := _rewrite_container(container, status_port, agent_port, probers):
                changes[index] = found
    if not probers:
        app_probers = previous
    elif previous is not None:
        app_probers = _merged_probers(previous, probers)
    else:  # Go writes a map's keys sorted and each probe's fields in struct order
        app_probers = go_json(dict(sorted(probers.items())))  # the paths are unique
    return HookResult(context={"app_probers": app_probers}, container_changes=changes, init_container_changes=init_changes)


def describe_pod_ports(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """The app containers' ports and names as Istio's agent reads them (ISTIO_META_POD_PORTS is
    Istio's own layout: one port per line, each in Go's field order)."""
    ports: list[str] = []
    names: list[str] = []
    containers = list((pod.get("spec") or {}).get("containers") or ())
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if "proxy.istio.io/overrides" in annotations and _ISTIO_STATUS not in annotations:
        # Istio's template sees the recorded containers the pod lacks as the pod's own (reinsertOverrides).
        present = {c.get("name") for c in containers if isinstance(c, dict)}
        recorded = _recorded_sections(annotations["proxy.istio.io/overrides"])["containers"]
        containers += [c for c in recorded if c.get("name") not in present]
    for container in containers:
        if not isinstance(container, dict):
            continue
        if container.get("name") == "istio-proxy":
            # Istio lists a declared proxy's ports too, but not those of one it injected before
            # (its status lists that one, which it strips first).
            if _injected_before(pod):
                continue
        else:
            names.append(str(container.get("name")))
        for port in container.get("ports") or ():
            if isinstance(port, dict):
                ports.append(go_json(_ordered(port, _PORT_ORDER)))
    text = "[\n    " + "\n    ,".join(ports) + "\n]" if ports else "[\n]"
    return HookResult(context={"pod_ports": text, "app_containers": ",".join(names), "first_app": names[0] if names else None})


def _injected_before(pod: Pod) -> bool:
    """Whether Istio's sidecar.istio.io/status lists an istio-proxy container (a previous injection)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return "istio-proxy" in listed_containers(annotations, _ISTIO_STATUS, "containers")


_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")
_PROMETHEUS = ("scrape", "path", "port")
_SANITIZED_PARTS = {f"prometheus_io_{part}": part for part in _PROMETHEUS}


def merge_prometheus(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """Istio's metrics merge: the agent serves the app's metrics with its own on the status port, so
    the pod's prometheus.io annotations point there and the originals go to the agent's env. Where
    nothing is merged now (a pod injected before, its annotations already on the agent), the
    proxy already in the pod keeps the originals it was given: Istio renders over the pod as it is."""
    merged = _merge_prometheus(pod, settings, values)
    if merged.context["prometheus_annotations"] is None:
        kept = _previous_prometheus_annotations(pod)
        if kept is not None:
            return merged._replace(context={"prometheus_annotations": kept})
    return merged


def _previous_prometheus_annotations(pod: Pod) -> str | None:
    """ISTIO_PROMETHEUS_ANNOTATIONS of an istio-proxy the pod already has, or None."""
    spec = pod.get("spec") or {}
    for section in ("containers", "initContainers"):
        for container in spec.get(section) or ():
            if not isinstance(container, dict) or container.get("name") != "istio-proxy":
                continue
            for var in container.get("env") or ():
                if isinstance(var, dict) and var.get("name") == "ISTIO_PROMETHEUS_ANNOTATIONS" and isinstance(var.get("value"), str):
                    return str(var["value"])
    return None


def _merge_prometheus(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    merge = settings.get("mergeMetrics")  # the pod's annotation, else the MeshConfig's enablePrometheusMerge
    if not (values.get("enablePrometheusMerge", True) if merge is None else merge):
        return HookResult(context={"prometheus_annotations": None})
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    found: dict[str, tuple[str, str]] = {}  # scrape|path|port -> (key as spelled, value)
    for key, value in annotations.items():
        text = str(key)
        # Sanitising only rewrites what is no letter, digit or `_`: the key must start as written.
        if not text.startswith("prometheus"):
            continue
        part = _SANITIZED_PARTS.get(_SANITIZE.sub("_", text))
        if part is not None:
            found.setdefault(part, (key, str(value)))
    # Istio reads scrape with Go's ParseBool: only its spellings of false turn the merge off
    # (`fAlse` or `no` is no bool to Go, so the merge goes on).
    if not _go_bool(found.get("scrape", ("", ""))[1], default=True):
        return HookResult(context={"prometheus_annotations": None})
    agent_port = str(values.get("statusPort", 15020))
    if found.get("port", ("", ""))[1] == agent_port:
        return HookResult(context={"prometheus_annotations": None})
    changes: dict[str, str | None] = {key: None for key, _ in found.values()}
    changes.update({"prometheus.io/scrape": "true", "prometheus.io/port": agent_port, "prometheus.io/path": "/stats/prometheus"})
    originals = {part: found[part][1] if part in found else "" for part in _PROMETHEUS}
    # Istio hands the agent the originals only when one of them has a value (`path: ""` alone
    # gives it nothing); the annotations are pointed at the agent either way.
    has_value = any(originals.values())
    return HookResult(context={"prometheus_annotations": go_json(originals) if has_value else None}, annotation_changes=changes)


# Istio's ProxyConfig (mesh/v1alpha1/proxy.proto) in declaration order, the order its injector's JSON
# encoder writes PROXY_CONFIG in (1.30's fields; 1.28 lacks the last three). "scalar": a string,
# number, enum, list or map, left out when empty or zero; "oneof": written whenever set; "message":
# a message or wrapper (concurrency, holdApplicationUntilProxyStarts), written whenever set, even empty.
_PROXY_CONFIG_FIELDS: Mapping[str, str] = {
    "configPath": "scalar", "binaryPath": "scalar", "serviceCluster": "oneof", "tracingServiceName": "oneof",
    "drainDuration": "message", "discoveryAddress": "scalar", "discoveryRefreshDelay": "message",
    "zipkinAddress": "scalar", "statsdUdpAddress": "scalar", "envoyMetricsServiceAddress": "scalar",
    "proxyAdminPort": "scalar", "availabilityZone": "scalar", "controlPlaneAuthPolicy": "scalar",
    "customConfigFile": "scalar", "statNameLength": "scalar", "concurrency": "message",
    "proxyBootstrapTemplatePath": "scalar", "interceptionMode": "scalar", "tracing": "message", "sds": "message",
    "envoyAccessLogService": "message", "envoyMetricsService": "message", "proxyMetadata": "scalar",
    "runtimeValues": "scalar", "statusPort": "scalar", "extraStatTags": "scalar", "gatewayTopology": "message",
    "terminationDrainDuration": "message", "meshId": "scalar", "readinessProbe": "message",
    "proxyStatsMatcher": "message", "holdApplicationUntilProxyStarts": "message", "caCertificatesPem": "scalar",
    "image": "message", "privateKeyProvider": "message", "proxyHeaders": "message", "fileFlushInterval": "message",
    "fileFlushMinSizeKb": "scalar", "statsCompression": "message",
}  # fmt: skip
# The enums' zero names (their first), left out as any zero is.
_PROXY_CONFIG_ENUM_ZERO = {"interceptionMode": "REDIRECT", "controlPlaneAuthPolicy": "NONE"}
# Istio's DefaultProxyConfig: its injector leaves these out of PROXY_CONFIG when they hold the default
# (cleanProxyConfig), whoever set them.
_PROXY_CONFIG_DEFAULTS: Mapping[str, Any] = {
    "configPath": "./etc/istio/proxy", "binaryPath": "/usr/local/bin/envoy", "serviceCluster": "istio-proxy",
    "drainDuration": "45s", "terminationDrainDuration": "5s", "discoveryAddress": "istiod.istio-system.svc:15012",
    "proxyAdminPort": 15000, "controlPlaneAuthPolicy": "MUTUAL_TLS", "statNameLength": 189, "statusPort": 15020,
}  # fmt: skip
_PROXY_CONFIG_ONEOF = ("serviceCluster", "tracingServiceName")


def istio_proxy_config(settings: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The pod's ProxyConfig as Istio's injector builds it: the install's MeshConfig defaultConfig
    (values `defaultConfig`) with the pod's proxy.istio.io/config laid over it field by field (a
    field set replaces the default's whole, a null leaves it), except proxyMetadata, merged key by
    key, and five proxyHeaders fields, the install's where the pod's leaves them unset
    (mesh.MergeProxyConfig). A field absent holds Istio's own default."""
    base: Mapping[str, Any] = values.get("defaultConfig") or {}
    over: Mapping[str, Any] = settings.get("proxyConfig") or {}
    if not over:
        return dict(base)
    merged = dict(base)
    for name, value in over.items():
        if value is None:
            continue
        if name in _PROXY_CONFIG_ONEOF:  # setting one member of the oneof clears the other
            for other in _PROXY_CONFIG_ONEOF:
                merged.pop(other, None)
        merged[name] = value
    if isinstance(base.get("proxyMetadata"), Mapping) and isinstance(over.get("proxyMetadata"), Mapping):
        merged["proxyMetadata"] = {**base["proxyMetadata"], **over["proxyMetadata"]}
    installed, own = base.get("proxyHeaders"), over.get("proxyHeaders")
    if isinstance(installed, Mapping) and isinstance(own, Mapping):
        headers = dict(own)
        for name, unset in _KEPT_PROXY_HEADERS.items():
            if headers.get(name) in unset and installed.get(name) not in unset:
                headers[name] = installed[name]
        merged["proxyHeaders"] = headers
    return merged


# The fields of ProxyConfig's nested messages in their declaration order, which protojson writes them
# in (by path from the top; the fields of a message not listed here, and map keys, go sorted).
_MESSAGE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "proxyHeaders": ("forwardedClientCert", "setCurrentClientCertDetails", "requestId", "server", "attemptCount",
                     "envoyDebugHeaders", "metadataExchangeHeaders", "preserveHttp1HeaderCase", "xForwardedHost", "xForwardedPort"),
    "proxyHeaders.server": ("disabled", "value"),
    "proxyHeaders.setCurrentClientCertDetails": ("subject", "cert", "chain", "dns", "uri"),
    "tracing": ("zipkin", "lightstep", "datadog", "stackdriver", "openCensusAgent", "customTags", "maxPathTagLength",
                "sampling", "tlsSettings", "enableIstioTags"),
    "tracing.lightstep": ("address", "accessToken"),
    "tracing.stackdriver": ("debug", "maxNumberOfAttributes", "maxNumberOfAnnotations", "maxNumberOfMessageEvents"),
    "tracing.openCensusAgent": ("address", "context"),
    "tracing.tlsSettings": ("mode", "clientCertificate", "privateKey", "caCertificates", "credentialName",
                            "subjectAltNames", "sni", "insecureSkipVerify", "caCrl"),
    "privateKeyProvider.cryptomb": ("pollDelay", "fallback"),
    "privateKeyProvider.qat": ("pollDelay", "fallback"),
}  # fmt: skip
# The ProxyHeaders fields Istio keeps from the install where the pod's proxyHeaders leaves them unset
# (mesh.MergeProxyConfig's correctProxyHeaders), with the value that counts as unset.
_KEPT_PROXY_HEADERS: Mapping[str, tuple[Any, ...]] = {
    "forwardedClientCert": (None, "UNDEFINED", 0), "requestId": (None,), "attemptCount": (None,),
    "server": (None,), "envoyDebugHeaders": (None,),
}  # fmt: skip


def _key_sorted(value: Any, path: str = "") -> Any:
    if not isinstance(value, Mapping):
        return value
    order = _MESSAGE_FIELDS.get(path, ())
    names = [k for k in order if k in value] + sorted(k for k in value if k not in order)
    return {k: _key_sorted(value[k], f"{path}.{k}" if path else k) for k in names}


def _proxy_config_zero(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return value in ("", 0, [], {}) or value == _PROXY_CONFIG_ENUM_ZERO.get(name)


def proxy_config_text(config: Mapping[str, Any]) -> str:
    """PROXY_CONFIG as Istio's injector writes it (protoToJSON): the fields in declaration order, those
    at Istio's default and the empty or zero ones left out, unknown ones dropped; maps and (here) the
    fields of nested messages in sorted order."""
    written = {}
    for name, kind in _PROXY_CONFIG_FIELDS.items():
        value = config.get(name)
        if value is None or (name in _PROXY_CONFIG_DEFAULTS and value == _PROXY_CONFIG_DEFAULTS[name]):
            continue
        if kind == "scalar" and _proxy_config_zero(name, value):
            continue
        written[name] = _key_sorted(value, name)
    return go_json(written)


def proxy_config(settings: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The pod's ProxyConfig (the install's defaultConfig under its proxy.istio.io/config), for every
    field the template reads from it (`hook.proxy_config`), and PROXY_CONFIG (`hook.proxy_config_text`)."""
    config = istio_proxy_config(settings, values)
    return {"proxy_config": config, "proxy_config_text": proxy_config_text(config)}


def hold_application(settings: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """holdApplicationUntilProxyStarts (the pod's ProxyConfig; or the chart's global.proxy value, which
    Istio ORs in): the classic proxy waits for itself in postStart (the template's
    `sidecar.classicFirst` puts it first)."""
    hold = istio_proxy_config(settings, values).get("holdApplicationUntilProxyStarts")
    return {"hold_application": hold is True or values.get("proxyHoldApplicationUntilProxyStarts") is True}


_SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _containers(spec: Mapping[str, Any], *sections: str) -> list[Mapping[str, Any]]:
    return [c for section in sections for c in spec.get(section) or () if isinstance(c, dict)]


def _declared_ports(containers: list[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    """(name, containerPort) of every declared port, in order."""
    return [(p.get("name"), p.get("containerPort")) for c in containers for p in c.get("ports") or () if isinstance(p, dict)]


_PORT_OR_RANGE = re.compile(r"\+?([0-9]+)(?:-\+?([0-9]+))?")


def _resolve_ports(wanted: list[str], named: Mapping[str, Any]) -> str:
    """Ports and ranges as Linkerd writes them back (`08080` is 8080, `80-80` is 80), names replaced
    by their container port; unknown names dropped."""
    out = []
    for part in wanted:
        if part in named:
            out.append(str(named[part]))
        elif match := _PORT_OR_RANGE.fullmatch(part):
            low, high = int(match[1]), int(match[2] or match[1])
            out.append(str(low) if low == high else f"{low}-{high}")
    return ",".join(out)


def _linkerd_owner(metadata: Mapping[str, Any]) -> Attrs:
    """The owner Linkerd's webhook names in `linkerd.io/proxy-<kind>`, as far as the pod tells: its
    one owner reference (controller or not; none with two or more), kind in lower case; a
    ReplicaSet whose name ends in the pod's `pod-template-hash` stands for its Deployment and a Job
    named `<cronjob>-<minutes>` for its CronJob, where Linkerd looks the grandparent up in the
    cluster (a Rollout's ReplicaSet stays a ReplicaSet there too)."""
    refs = metadata.get("ownerReferences") or ()
    if not isinstance(refs, list) or len(refs) != 1 or not isinstance(refs[0], dict):
        return Attrs(kind="pod", name=str(metadata.get("name") or ""))
    kind, name = str(refs[0].get("kind") or ""), str(refs[0].get("name") or "")
    kind, name = controller_behind(kind, name, metadata.get("labels")) or (kind, name)
    return Attrs(kind=kind.lower(), name=name)


def linkerd_pod_facts(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """What Linkerd's injector reads from the pod itself: the inbound ports it computes, the opaque
    ports (named ports resolved; without the key, the default list filtered to the declared ports,
    which is also written as the pod's annotation), the first container's capabilities (else
    linkerd-config's proxy.capabilities) and
    service-account token mount (else linkerd-config's proxy.saMountPath), which the proxy and
    linkerd-init copy, and its owner."""
    spec = pod.get("spec") or {}
    # Native-sidecar servers among the init containers count from edge-25.12.2 on.
    with_inits = version_at_least(values.get("version", ""), "edge-25.12.2")
    everything = _containers(spec, "initContainers", "containers") if with_inits else _containers(spec, "containers")
    declared = _declared_ports(everything)  # read once, for the inbound and the opaque ports
    ports = {str(p) for _, p in declared if isinstance(p, int)}
    for container in everything:
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            port = (probe.get("httpGet") or {}).get("port") if isinstance(probe, dict) and isinstance(probe.get("httpGet"), dict) else None
            if isinstance(port, int) and not isinstance(port, bool):
                ports.add(str(port))
    wanted = settings.get("opaquePorts")
    opaque_annotation = None
    if wanted is not None:
        named = {n: p for n, p in declared if n}
        opaque = _resolve_ports(list(wanted), named)
    else:
        default = str(values.get("opaquePorts", "")).split(",")
        filtered = [str(p) for _, p in declared if str(p) in default]
        opaque_annotation = ",".join(filtered) if filtered else None
        opaque = opaque_annotation or ",".join(default)
    first = _containers(spec, "containers")[:1]
    capabilities = None
    token_mount = None
    if first:
        security = first[0].get("securityContext")
        if isinstance(security, dict) and isinstance(security.get("capabilities"), dict):
            capabilities = {k: list(security["capabilities"].get(k) or []) for k in ("add", "drop")}
        for mount in first[0].get("volumeMounts") or ():
            if isinstance(mount, dict) and mount.get("mountPath") == _SERVICE_ACCOUNT_MOUNT:
                # Linkerd copies name, path and the readOnly bool, which it always writes (false when unset).
                token_mount = _token_mount(mount)
                break
    install_mount = values.get("proxySAMountPath")
    if token_mount is None and isinstance(install_mount, Mapping) and install_mount:
        # linkerd-config's proxy.saMountPath, where the first container mounts no token: the same three fields.
        token_mount = _token_mount(install_mount)
    if capabilities is None and isinstance(values.get("proxyCapabilities"), Mapping) and values["proxyCapabilities"]:
        # linkerd-config's proxy.capabilities, where the pod's first container sets none.
        capabilities = {k: [str(c) for c in values["proxyCapabilities"].get(k) or ()] for k in ("add", "drop")}
    return HookResult(
        context={
            "inbound_ports": ",".join(sorted(ports)),
            "opaque_ports": opaque,
            "opaque_annotation": opaque_annotation,
            "capabilities": capabilities,
            "token_mount": token_mount,
            "owner": _linkerd_owner(pod.get("metadata") or {}),
            "trace_attributes": _linkerd_trace_attributes(pod.get("metadata") or {}, values) if values.get("tracingEnabled") else "",
        }
    )


def linkerd_workers(settings: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The proxy's worker counts (`hook.workers_minimum`, `hook.workers_maximum`): the pod's cpu
    request and limit in whole cores, as Linkerd's ToWholeCPUCores, else the install's
    proxy.runtime.workers minimum and maximum."""
    request, limit = settings.get("proxyCPURequest"), settings.get("proxyCPULimit")
    return {
        "workers_minimum": whole_cores(request) if request is not None else values.get("proxyWorkersMinimum"),
        "workers_maximum": whole_cores(limit) if limit is not None else values.get("proxyWorkersMaximum"),
    }


def _linkerd_trace_attributes(metadata: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    """LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES as Linkerd writes it: one `key=value` line per attribute,
    in key order. The attributes are linkerd-config's proxy.tracing.labels, service.name from the
    pod's app.kubernetes.io/instance label (else app.kubernetes.io/name), and each of the pod's
    resource.opentelemetry.io/<key> annotations as <key>."""
    attributes = {str(k): str(v) for k, v in (values.get("tracingLabels") or {}).items()} if isinstance(values.get("tracingLabels"), Mapping) else {}
    labels = metadata.get("labels") or {}
    for label in ("app.kubernetes.io/instance", "app.kubernetes.io/name"):
        if label in labels:
            attributes["service.name"] = str(labels[label])
            break
    for key, value in (metadata.get("annotations") or {}).items():
        if key.startswith(_TRACE_ANNOTATION_PREFIX):
            attributes[key.removeprefix(_TRACE_ANNOTATION_PREFIX)] = str(value)
    return "".join(f"{key}={attributes[key]}\n" for key in sorted(attributes))


_TRACE_ANNOTATION_PREFIX = "resource.opentelemetry.io/"


def _token_mount(mount: Mapping[str, Any]) -> dict[str, Any]:
    """The three fields of a token mount the proxy and linkerd-init copy."""
    copied = {k: mount[k] for k in ("name", "mountPath") if k in mount}
    copied["readOnly"] = mount.get("readOnly") is True
    return copied


def _missing(existing: Any, fresh: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The fresh items the container's list lacks: none of `fields` (name, mountPath) already taken."""
    if not fresh:
        return []
    current = existing if isinstance(existing, list) else ()
    if len(fields) == 1:  # env by name: one set, no per-item generator (runs per app container)
        field = fields[0]
        names = {i.get(field) for i in current if isinstance(i, dict)}
        return [item for item in fresh if item[field] not in names]
    taken = [{i.get(f) for i in current if isinstance(i, dict)} for f in fields]
    return [item for item in fresh if not any(item[f] in seen for f, seen in zip(fields, taken))]


def _app_protocol(settings: Mapping[str, Any]) -> str | None:
    """APP_PROTOCOL for app containers: https/grpcs/h2c as written, http/grpc upgraded by app-ssl,
    empty -> http, anything else -> no env (daprd still gets the arg)."""
    protocol = str(settings.get("appProtocol") or "").lower()
    if protocol in ("https", "grpcs", "h2c"):
        return protocol
    if protocol in ("http", "grpc"):
        return protocol + "s" if settings.get("appSsl") else protocol
    return "http" if protocol == "" else None


def dapr_app_containers(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """Dapr's edits to the pod's own containers: the app containers get DAPR_HTTP_PORT,
    DAPR_GRPC_PORT, APP_PROTOCOL and the unix-socket mount; the containers named in
    pluggable-components get the components' socket folder instead. A name or mount path the
    container already has is kept. `hook.components` tells the fragment whether any matched."""
    components = set(str(settings.get("pluggableComponents") or "").split(","))
    folder = settings.get("componentsSocketsFolder") or "/tmp/dapr-components-sockets"
    app_env = [{"name": "DAPR_HTTP_PORT", "value": "3500"}, {"name": "DAPR_GRPC_PORT", "value": str(settings.get("grpcPort", 50001))}]
    protocol = _app_protocol(settings)
    if protocol:
        app_env.append({"name": "APP_PROTOCOL", "value": protocol})
    socket_path = settings.get("unixDomainSocketPath")
    app_mounts = [{"name": "dapr-unix-domain-socket", "mountPath": socket_path}] if socket_path else []
    component_env = [{"name": "DAPR_COMPONENT_SOCKETS_FOLDER", "value": folder}]
    component_mounts = [{"name": "dapr-components-unix-domain-socket", "mountPath": folder}]
    appends: dict[int, dict[str, list[dict[str, Any]]]] = {}
    matched = False
    for index, container in enumerate(((pod.get("spec") or {}).get("containers")) or ()):
        if not isinstance(container, dict):
            continue
        is_component = container.get("name") in components
        matched = matched or is_component
        env = _missing(container.get("env"), component_env if is_component else app_env, ("name",))
        mounts = _missing(container.get("volumeMounts"), component_mounts if is_component else app_mounts, ("name", "mountPath"))
        fields = {k: v for k, v in (("env", env), ("volumeMounts", mounts)) if v}
        if fields:
            appends[index] = fields
    daprd_env = _daprd_env(settings)
    tolerations = ((pod.get("spec") or {}).get("tolerations")) or []
    context = {
        "components": matched,
        "env": daprd_env,
        "ssl_cert_dir": any(e["name"] == "SSL_CERT_DIR" for e in daprd_env),
        "volume_mounts": _daprd_mounts(pod, settings),
        # A pod with one of these tolerations keeps the image's entrypoint: command + args.
        "keep_entrypoint": any(t in tolerations for t in values.get("ignoreEntrypointTolerations") or ()),
    }
    return HookResult(context=context, container_appends=appends)


def _secret_ref(spec: str) -> dict[str, Any] | None:
    """`secret` -> name = key = secret; `secret:key`; more than one `:` -> dropped."""
    clean = go_trim(spec)
    if ":" not in clean:
        return {"secretKeyRef": {"name": clean, "key": clean}}
    parts = clean.split(":")
    return {"secretKeyRef": {"name": go_trim(parts[0]), "key": go_trim(parts[1])}} if len(parts) == 2 else None


def _daprd_env(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """daprd's env from dapr.io/env and dapr.io/env-from-secret, then DAPR_ENV_KEYS naming them all."""
    env: list[dict[str, Any]] = []
    names = []
    for name, value in settings.get("env") or ():
        names.append(name)
        env.append({"name": name, "value": value})
    for name, spec in settings.get("envFromSecret") or ():
        names.append(name)
        ref = _secret_ref(spec)
        if ref is not None:
            env.append({"name": name, "valueFrom": ref})
    if names:
        env.append({"name": "DAPR_ENV_KEYS", "value": " ".join(names)})
    return env


def _daprd_mounts(pod: Pod, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """dapr.io/volume-mounts (read-only), then -rw: only volumes the pod has."""
    volumes = {v.get("name") for v in ((pod.get("spec") or {}).get("volumes")) or () if isinstance(v, dict)}
    mounts = []
    for key, read_only in (("volumeMounts", True), ("volumeMountsRw", False)):
        for name, path in settings.get(key) or ():
            if name in volumes:
                mounts.append({"name": name, "mountPath": path, **({"readOnly": True} if read_only else {})})
    return mounts


# Go's field order for a container, as Istio records a declared one in proxy.istio.io/overrides.
_CONTAINER_ORDER = (
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
    "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
    "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
)  # fmt: skip


def _recorded(container: Mapping[str, Any]) -> dict[str, Any]:
    """A declared container as Istio records it: no `image: auto`, only the resources' own fields,
    Go's field order."""
    fields = {k: v for k, v in container.items() if not (k == "image" and v == "auto")}
    resources = fields.get("resources") or {}
    fields["resources"] = {k: resources[k] for k in ("limits", "requests", "claims") if k in resources}
    ordered = {k: fields[k] for k in _CONTAINER_ORDER if k in fields}
    ordered.update({k: v for k, v in fields.items() if k not in ordered})
    return ordered


def _first_named(name: str, *sections: Any) -> Mapping[str, Any] | None:
    for section in sections:
        for container in section or ():
            if isinstance(container, dict) and container.get("name") == name:
                return container
    return None


def _overrides(containers: list[Mapping[str, Any] | None], init_containers: list[Mapping[str, Any] | None]) -> str | None:
    record = {"containers": [_recorded(c) for c in containers if c is not None]}
    record["initContainers"] = [_recorded(c) for c in init_containers if c is not None]
    kept = {k: v for k, v in record.items() if v}  # Go's omitempty
    return go_json(kept) if kept else None


# proxy.istio.io/overrides as Istio reads it back (its ParsedContainers).
_OVERRIDES_KIND = {"containers": "[Container]", "initContainers": "[Container]"}


def _recorded_overrides(raw: Any) -> list[dict[str, Any]]:
    """The containers a previous injection recorded, both lists in one."""
    sections = _recorded_sections(raw)
    return sections["containers"] + sections["initContainers"]


def _recorded_sections(raw: Any) -> dict[str, list[dict[str, Any]]]:
    """The containers a previous injection recorded, by list, typed as Istio's json.Unmarshal reads
    them: text that is not JSON, or a field of the wrong type, refuses the pod, as Istio refuses it."""
    key = "proxy.istio.io/overrides"
    try:
        parsed = orjson.loads(str(raw))
    except orjson.JSONDecodeError:
        raise PodDenied(reasons.INVALID_SETTING, f"annotation {key}={show(str(raw))} is not JSON") from None
    if (problem := nesting_problem(parsed)) is not None:
        raise PodDenied(reasons.INVALID_SETTING, f"annotation {key} is JSON {problem}")
    overrides = check_annotation(parsed, _OVERRIDES_KIND, key=key) or {}
    return {part: list(overrides.get(part) or ()) for part in ("containers", "initContainers")}


def _declared_proxy_user(
    spec: Mapping[str, Any], settings: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """What Istio adjusts after its merge (adjustInitContainerUser) when the pod's own istio-proxy sets
    securityContext.runAsUser: that uid, unless 0, becomes istio-init's `-u` (`hook.proxy_uid`), and
    under TPROXY (the annotation's or the pod's ProxyConfig's) the proxy still runs as root. Istio
    adjusts nothing in a pod that ends with no istio-init or istio-validation init container: under
    the gateway template alone, which renders no istio-init, only if the pod declares one itself."""
    proxy = _first_named("istio-proxy", spec.get("containers"), spec.get("initContainers"))
    security = proxy.get("securityContext") if proxy is not None else None
    uid = security.get("runAsUser") if isinstance(security, dict) else None
    if not isinstance(uid, int) or isinstance(uid, bool):
        return {"proxy_uid": None}, NOTHING
    templates = settings.get("templates") or ()
    if "gateway" in templates and "sidecar" not in templates:
        if not any(_first_named(name, spec.get("initContainers")) for name in ("istio-init", "istio-validation")):
            return {"proxy_uid": None}, NOTHING
    tproxy = settings.get("interceptionMode") == "TPROXY" or istio_proxy_config(settings, values).get("interceptionMode") == "TPROXY"
    return {"proxy_uid": uid or None}, ({"istio-proxy": {"securityContext": {"runAsUser": 0}}} if tproxy else NOTHING)


# The containers of Istio's sidecar template a pod may declare itself.
_TEMPLATE_CONTAINERS = frozenset({"istio-proxy", "istio-init"})
_NONE_DECLARED = HookResult(context=MappingProxyType({"overrides": None, "overrides_native": None, "proxy_uid": None}))


def _declares(spec: Mapping[str, Any], names: frozenset[str]) -> bool:
    """Whether any container or init container of the pod is named one of `names`."""
    for section in ("containers", "initContainers"):
        for container in spec.get(section) or ():
            name = container.get("name") if isinstance(container, dict) else None
            if isinstance(name, str) and name in names:
                return True
    return False


def record_declared_proxy(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """Istio records the pod's own containers that carry the names of its template's (what it
    merges over them) in proxy.istio.io/overrides, so that a later re-injection applies them again.

    As Istio matches them: a template container only with one in the pod's `containers`, a template
    init container with one in either list. So the record depends on the sidecar style, which the
    fragment knows: `overrides` for classic sidecars, `overrides_native` for native ones.
    """
    spec = pod.get("spec") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if "proxy.istio.io/overrides" not in annotations and not _declares(spec, _TEMPLATE_CONTAINERS):
        return _NONE_DECLARED  # the common pod: nothing to record, no uid, nothing imposed
    user, imposed = _declared_proxy_user(spec, settings, values)
    if "proxy.istio.io/overrides" in annotations and _ISTIO_STATUS not in annotations:
        # A record without Istio's status (annotations copied from an injected pod): Istio takes the
        # recorded containers as declared ones, over the pod's own of the same name, merges them
        # whole and writes the record again.
        sections = _recorded_sections(annotations["proxy.istio.io/overrides"])
        proxy = _first_named("istio-proxy", sections["containers"]) or _first_named("istio-proxy", spec.get("containers"))
        proxy_native = _first_named("istio-proxy", sections["initContainers"]) or _first_named(
            "istio-proxy", spec.get("containers"), spec.get("initContainers")
        )
        declared_init = _first_named("istio-init", sections["initContainers"]) or _first_named(
            "istio-init", spec.get("containers"), spec.get("initContainers")
        )
        overlaid = {
            section: {str(c["name"]): {k: v for k, v in c.items() if k != "name"} for c in sections[section] if c.get("name")}
            for section in ("containers", "initContainers")
        }
        return HookResult(
            context={
                "overrides": _overrides([proxy], [declared_init]),
                "overrides_native": _overrides([], [declared_init, proxy_native]),
                **user,
            },
            imposed=imposed,
            overlaid=overlaid,
        )
    if "proxy.istio.io/overrides" in annotations:
        # A re-injection: Istio applies the recorded fields again over its fresh containers
        # (all but resources, which the annotations and the install decide).
        recorded = _recorded_overrides(annotations["proxy.istio.io/overrides"])
        again = {
            str(c["name"]): {k: v for k, v in c.items() if k not in ("name", "resources")}
            for c in recorded if c.get("name")
        }  # fmt: skip
        return HookResult(context={"overrides": None, "overrides_native": None, **user}, reapplied=again, imposed=imposed)
    if _ISTIO_STATUS in annotations:
        # Injected before, without a record: the containers Istio lists are its own, to be replaced,
        # and Istio writes no record for a pod it injected already.
        return HookResult(context={"overrides": None, "overrides_native": None, **user}, imposed=imposed)
    containers, init_containers = spec.get("containers"), spec.get("initContainers")
    declared_init = _first_named("istio-init", containers, init_containers)
    return HookResult(
        context={
            "overrides": _overrides([_first_named("istio-proxy", containers)], [declared_init]),
            "overrides_native": _overrides([], [declared_init, _first_named("istio-proxy", containers, init_containers)]),
            **user,
        },
        imposed=imposed,
    )


# A Job a CronJob made: `<cronjob>-<scheduled time in minutes>` (Istio's cronJobNameRegexp); a pod
# tells no more than that, so every owner rule reads the name this way.
CRON_JOB = re.compile(r"(.+)-[0-9]{8,10}")


def controller_behind(kind: str, name: str, labels: Any) -> tuple[str, str] | None:
    """What made the pod's owner, as far as the pod tells: a ReplicaSet named
    `<deployment>-<pod-template-hash>` stands for its Deployment, a Job named `<cronjob>-<minutes>`
    for its CronJob; None for any other owner. (Istio's own rule differs and is istio_owner's.)"""
    template_hash = labels.get("pod-template-hash") if isinstance(labels, dict) else None
    kind = kind.lower()  # Linkerd compares the kind in lower case
    if kind == "replicaset" and template_hash and name.endswith("-" + str(template_hash)):
        return "Deployment", name[: -len(str(template_hash)) - 1]
    if kind == "job" and (cron := CRON_JOB.fullmatch(name)):
        return "CronJob", cron[1]
    return None


def istio_owner(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """The workload Istio names in ISTIO_META_WORKLOAD_NAME and ISTIO_META_OWNER, as its
    GetDeployMetaFromPod derives it from the pod alone: the controller is followed only for a pod
    whose name is generated (a StatefulSet's `web-0` stays a Pod), its apiVersion is the owner
    reference's, and a ReplicaSet, a Rollout's ReplicaSet, a DeploymentConfig's controller and a
    CronJob's Job map back to what made them. Offline, the fragment names the workload the file
    holds instead, as Istio's offline injection does."""
    metadata = pod.get("metadata") or {}
    name = str(metadata.get("name") or "")
    kind, api_version, owner_name = "Pod", "v1", name
    if metadata.get("generateName"):
        labels = metadata.get("labels") or {}
        ref = next((r for r in metadata.get("ownerReferences") or () if isinstance(r, dict) and r.get("controller") is True), None)
        if ref is not None:
            kind, api_version, owner_name = str(ref.get("kind") or ""), str(ref.get("apiVersion") or ""), str(ref.get("name") or "")
            template_hash, rollout_hash = labels.get("pod-template-hash"), labels.get("rollouts-pod-template-hash")
            if kind == "ReplicaSet" and template_hash and owner_name.endswith(template_hash):
                kind, owner_name = "Deployment", owner_name.removesuffix("-" + template_hash)
            elif kind == "ReplicaSet" and rollout_hash and owner_name.endswith(rollout_hash):
                kind, api_version, owner_name = "Rollout", "v1alpha1", owner_name.removesuffix("-" + rollout_hash)
            elif kind == "ReplicationController" and labels.get("deploymentconfig"):
                kind, owner_name = "DeploymentConfig", str(labels["deploymentconfig"])
            elif kind == "Job" and (cron := CRON_JOB.fullmatch(owner_name)):
                kind, api_version, owner_name = "CronJob", "batch/v1", cron[1]
    owner = Attrs(name=owner_name or name, apiVersion=api_version, plural=kind.lower() + "s")
    return HookResult(context={"owner": owner})


# Istio's templates that write global.imagePullSecrets into the pod (grpc-simple writes none).
_PULL_SECRET_TEMPLATES = frozenset({"sidecar", "gateway", "grpc-agent"})


def _pull_secret_names(settings: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[list[str], int]:
    """global.imagePullSecrets as names, and how many of the pod's templates merge them into the pod."""
    names = [str(n) for n in values.get("imagePullSecrets") or ()]
    return names, sum(1 for t in settings.get("templates") or () if t in _PULL_SECRET_TEMPLATES)


def pull_secrets(settings: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """global.imagePullSecrets as Istio's templates hand them to the pod (`hook.pull_secrets`): each
    template that writes them is strategic-merged into the pod by name, where an empty name is an
    entry without one (`{}`). Into a pod with no list the first template's entries go as written, a
    repeated name too; a second template's merge groups a repeated name at its first place."""
    names, merges = _pull_secret_names(settings, values)
    if merges > 1:
        first = {name: n for n, name in reversed(list(enumerate(names)))}
        names = sorted(names, key=first.__getitem__)
    return {"pull_secrets": names}


def check_pull_secrets(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """Denies the pod where Istio's merge of global.imagePullSecrets by name fails: an entry without
    a name in a list it merges into (the pod's own, or the empty name a template wrote before), or
    the empty name twice merged into the pod's own list (the second loses its key)."""
    names, merges = _pull_secret_names(settings, values)
    if not names or not merges:
        return _UNCHANGED
    own = (pod.get("spec") or {}).get("imagePullSecrets")
    if isinstance(own, list) and own:
        for index, entry in enumerate(own):
            if isinstance(entry, dict) and not entry.get("name"):
                raise PodDenied(
                    reasons.INVALID_SETTING,
                    f"spec.imagePullSecrets[{index}] has no name, and the install's global.imagePullSecrets are merged into "
                    "this list by name (Istio's injector refuses the pod); accepted: a name on every entry",
                )
        if names.count("") > 1:
            raise PodDenied(
                reasons.INVALID_SETTING,
                "the install's global.imagePullSecrets holds an empty name more than once, which Istio's injector cannot merge "
                "into the pod's own spec.imagePullSecrets; accepted: a pod without imagePullSecrets of its own, or an install "
                "with the empty name at most once",
            )
    if merges > 1 and "" in names:
        raise PodDenied(
            reasons.INVALID_SETTING,
            "the install's global.imagePullSecrets holds an empty name, which Istio's injector cannot merge a second time "
            f"(inject.istio.io/templates {','.join(settings.get('templates') or ())} each add them); accepted: one of those templates",
        )
    return _UNCHANGED


_UNCHANGED = HookResult()


# Per pod: what reads the pod itself.
HOOKS: Mapping[str, Callable[[Pod, Mapping[str, Any], Mapping[str, Any]], HookResult]] = {
    "istio-owner": istio_owner,
    "istio-pull-secrets": check_pull_secrets,
    "istio-probe-rewrite": rewrite_probes_through_agent,
    "istio-pod-ports": describe_pod_ports,
    "istio-prometheus-merge": merge_prometheus,
    "istio-declared-proxy": record_declared_proxy,
    "linkerd-pod": linkerd_pod_facts,
    "dapr-app-containers": dapr_app_containers,
}


class Derivation(NamedTuple):
    """A hook's part that reads only the plugin's settings and values: the names it gives
    (`hook.<name>`, declared so that the leaves reading only them are known at load) and the function.
    It runs with the fragment's static half, once per distinct settings, not once per pod."""

    names: frozenset[str]
    derive: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]


DERIVED: Mapping[str, Derivation] = {
    "istio-proxy-config": Derivation(frozenset({"proxy_config", "proxy_config_text"}), proxy_config),
    "istio-hold-application": Derivation(frozenset({"hold_application"}), hold_application),
    "istio-pull-secrets": Derivation(frozenset({"pull_secrets"}), pull_secrets),
    "linkerd-workers": Derivation(frozenset({"workers_minimum", "workers_maximum"}), linkerd_workers),
}
# Every hook a plugin may name: a per-pod part, a derived part, or both.
HOOK_NAMES = tuple(dict.fromkeys([*HOOKS, *DERIVED]))
