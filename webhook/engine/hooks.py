"""Named transforms a template may ask for, where a mesh needs more than a fragment (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.engine.kube import Pod

PROBE_FIELDS = (("livenessProbe", "livez"), ("readinessProbe", "readyz"), ("startupProbe", "startupz"))


@dataclass(frozen=True)
class HookResult:
    """Names a template can read (``hook.<name>``) and replacements for fields of app containers."""

    context: Mapping[str, Any] = field(default_factory=dict)
    container_changes: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


def _named_port(container: Mapping[str, Any], port: Any) -> Any:
    """The probe's port as a number; None for a name the container does not declare.

    Istio drops a prober whose named port it cannot resolve and leaves that probe as it was;
    the kubelet then reports the probe failing, which is the user's to fix, not a refusal.
    """
    if isinstance(port, str) and not (port.isascii() and port.isdigit()):
        for declared in container.get("ports") or ():
            if isinstance(declared, dict) and declared.get("name") == port:
                return declared.get("containerPort")
        return None
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
                if http["port"] is None:
                    continue
                http.setdefault("scheme", "HTTP")
                original = {"httpGet": http}
            elif isinstance(probe.get("tcpSocket"), dict):
                port = _named_port(container, probe["tcpSocket"].get("port"))
                if port is None:
                    continue
                original = {"tcpSocket": {**probe["tcpSocket"], "port": port}}
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


HOOKS: Mapping[str, Callable[[Pod, Mapping[str, Any], Mapping[str, Any]], HookResult]] = {
    "istio-probe-rewrite": rewrite_probes_through_agent,
}
