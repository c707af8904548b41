"""Named transforms a template may ask for, where a mesh needs more than a fragment (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.engine.fragment import version_at_least
from webhook.engine.kube import Pod

PROBE_FIELDS = (("livenessProbe", "livez"), ("readinessProbe", "readyz"), ("startupProbe", "startupz"))


@dataclass(frozen=True)
class HookResult:
    """Names a template can read (``hook.<name>``) and replacements for fields of app containers."""

    context: Mapping[str, Any] = field(default_factory=dict)
    container_changes: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


def _named_port(container: Mapping[str, Any], port: Any) -> Any:
    if isinstance(port, str) and not port.isdigit():
        for declared in container.get("ports") or ():
            if isinstance(declared, dict) and declared.get("name") == port:
                return declared.get("containerPort", port)
    return int(port) if isinstance(port, str) else port


def rewrite_probes_through_agent(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """Istio's app-probe rewrite: HTTP, TCP and gRPC probes go through the agent's status port.

    The kubelet cannot reach the app through mTLS, so the probe targets
    ``/app-health/<container>/<kind>`` on the status port and the agent replays the original probe,
    which it reads from ``ISTIO_KUBE_APP_PROBERS``.
    """
    status_port = settings.get("statusPort", values.get("statusPort", 15020))
    if not settings.get("rewriteAppProbers", True) or not status_port:
        return HookResult(context={"app_probers": None})
    probers: dict[str, Any] = {}
    changes: dict[int, dict[str, Any]] = {}
    for index, container in enumerate(((pod.get("spec") or {}).get("containers")) or ()):
        if not isinstance(container, dict):
            continue
        name = container.get("name")
        for probe_field, suffix in PROBE_FIELDS:
            probe = container.get(probe_field)
            if not isinstance(probe, dict):
                continue
            original: dict[str, Any]
            if isinstance(probe.get("httpGet"), dict):
                http = dict(probe["httpGet"])
                http["port"] = _named_port(container, http.get("port"))
                http.setdefault("scheme", "HTTP")
                original = {"httpGet": http}
            elif isinstance(probe.get("tcpSocket"), dict):
                original = {"tcpSocket": {**probe["tcpSocket"], "port": _named_port(container, probe["tcpSocket"].get("port"))}}
            elif isinstance(probe.get("grpc"), dict):
                original = {"grpc": dict(probe["grpc"])}
            else:
                continue  # exec probes run inside the container and need no rewrite
            if "timeoutSeconds" in probe:
                original["timeoutSeconds"] = probe["timeoutSeconds"]
            path = f"/app-health/{name}/{suffix}"
            probers[path] = original
            rewritten = {k: v for k, v in probe.items() if k not in ("httpGet", "tcpSocket", "grpc")}
            rewritten["httpGet"] = {"path": path, "port": status_port, "scheme": "HTTP"}
            changes.setdefault(index, {})[probe_field] = rewritten
    app_probers = orjson.dumps(probers).decode() if probers else None
    return HookResult(context={"app_probers": app_probers}, container_changes=changes)


_SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _containers(spec: Mapping[str, Any], *sections: str) -> list[Mapping[str, Any]]:
    return [c for section in sections for c in spec.get(section) or () if isinstance(c, dict)]


def _declared_ports(containers: list[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    """(name, containerPort) of every declared port, in order."""
    return [(p.get("name"), p.get("containerPort")) for c in containers for p in c.get("ports") or () if isinstance(p, dict)]


def _resolve_ports(wanted: list[str], named: Mapping[str, Any]) -> str:
    """Ports and ranges as given, names replaced by their container port; unknown names dropped."""
    out = []
    for part in wanted:
        if part in named:
            out.append(str(named[part]))
        elif part[:1].isdigit():
            out.append(part)
    return ",".join(out)


def linkerd_pod_facts(pod: Pod, settings: Mapping[str, Any], values: Mapping[str, Any]) -> HookResult:
    """What Linkerd's injector reads from the pod itself: the inbound ports it computes, the opaque
    ports (named ports resolved; without the key, the default list filtered to the declared ports,
    which is also written as the pod's annotation), and the first container's capabilities and
    service-account token mount, which the proxy and linkerd-init copy."""
    spec = pod.get("spec") or {}
    # Native-sidecar servers among the init containers count from edge-25.12.2 on.
    with_inits = version_at_least(values.get("version", ""), "edge-25.12.2")
    everything = _containers(spec, "initContainers", "containers") if with_inits else _containers(spec, "containers")
    ports: set[str] = set()
    for container in everything:
        ports.update(str(p) for _, p in _declared_ports([container]) if isinstance(p, int))
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            port = (probe.get("httpGet") or {}).get("port") if isinstance(probe, dict) and isinstance(probe.get("httpGet"), dict) else None
            if isinstance(port, int) and not isinstance(port, bool):
                ports.add(str(port))
    wanted = settings.get("opaquePorts")
    opaque_annotation = None
    if wanted is not None:
        named = {n: p for n, p in _declared_ports(everything) if n}
        opaque = _resolve_ports(list(wanted), named)
    else:
        default = str(values.get("opaquePorts", "")).split(",")
        filtered = [str(p) for _, p in _declared_ports(everything) if str(p) in default]
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
                token_mount = {k: mount[k] for k in ("name", "mountPath", "readOnly") if k in mount}
                break
    return HookResult(
        context={
            "inbound_ports": ",".join(sorted(ports)),
            "opaque_ports": opaque,
            "opaque_annotation": opaque_annotation,
            "capabilities": capabilities,
            "token_mount": token_mount,
        }
    )


HOOKS: Mapping[str, Callable[[Pod, Mapping[str, Any], Mapping[str, Any]], HookResult]] = {
    "istio-probe-rewrite": rewrite_probes_through_agent,
    "linkerd-pod": linkerd_pod_facts,
}
