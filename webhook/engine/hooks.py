"""Named transforms a template may ask for, where a mesh needs more than a fragment (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.engine.releases import version_at_least
from webhook.engine.kube import Pod

PROBE_FIELDS = (("livenessProbe", "livez"), ("readinessProbe", "readyz"), ("startupProbe", "startupz"))


@dataclass(frozen=True)
class HookResult:
    """Names a template can read (``hook.<name>``), replacements for fields of app containers, and
    named items to append to their list fields (env, volumeMounts), so a patch never resends a list."""

    context: Mapping[str, Any] = field(default_factory=dict)
    container_changes: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    container_appends: Mapping[int, Mapping[str, list[dict[str, Any]]]] = field(default_factory=dict)


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
def _missing(existing: Any, fresh: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The fresh items the container's list lacks: none of `fields` (name, mountPath) already taken."""
    if not fresh:
        return []
    current = existing if isinstance(existing, list) else ()
    taken = {(f, i.get(f)) for i in current if isinstance(i, dict) for f in fields}
    return [item for item in fresh if not any((f, item[f]) in taken for f in fields)]


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
    clean = spec.strip()
    if ":" not in clean:
        return {"secretKeyRef": {"name": clean, "key": clean}}
    parts = clean.split(":")
    return {"secretKeyRef": {"name": parts[0].strip(), "key": parts[1].strip()}} if len(parts) == 2 else None


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


HOOKS: Mapping[str, Callable[[Pod, Mapping[str, Any], Mapping[str, Any]], HookResult]] = {
    "istio-probe-rewrite": rewrite_probes_through_agent,
    "linkerd-pod": linkerd_pod_facts,
    "dapr-app-containers": dapr_app_containers,
}
