"""`meshswitch mode set NAMESPACE MODE [--restart]`: switch a namespace's mesh, and roll its workloads.

The mode is checked against the installed plugins (the shipped ones, the cluster's templates
ConfigMap and its values, as `meshswitch check` sees them), then the namespace gets the label
`meshswitch.io/mode`. With --restart, meshswitch first waits until the webhook answers for the new
mode (a server-side dry-run pod: its namespace cache is fed by a watch, so the label reaches it a
moment later), then does what `kubectl rollout restart` does to every Deployment, StatefulSet and
DaemonSet of the namespace: it stamps the pod template's `kubectl.kubernetes.io/restartedAt`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.findings import namespace_mode, namespace_modes
from webhook.engine.config import Config
from webhook.engine.decide import MODE_KEY
from webhook.engine.status import read_status
from webhook.engine.discovery import control_plane_of
from webhook.cluster.client import ApiError, KubeApi
from webhook.cluster.discovery_watch import get_control_plane_object
from webhook.cluster.layout import DEFAULT_NAMESPACE
from webhook.engine.plugins import PluginSet

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WORKLOADS = (
    ("Deployment", "deployment.apps", "/apis/apps/v1/namespaces/{namespace}/deployments"),
    ("StatefulSet", "statefulset.apps", "/apis/apps/v1/namespaces/{namespace}/statefulsets"),
    ("DaemonSet", "daemonset.apps", "/apis/apps/v1/namespaces/{namespace}/daemonsets"),
)
DEFAULT_WAIT_SECONDS = 15.0


class ModeError(Exception):
    """The mode cannot be set; the message says why and what is accepted."""


@dataclass
class ModeResult:
    """What `mode set` did (or, with dry_run, would do) to the namespace and its workloads."""

    namespace: str
    mode: str
    previous: str | None
    labelled: bool
    restarted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (workload, why)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False


def validate_mode(mode: str, plugins: PluginSet) -> None:
    if mode not in plugins.modes:
        raise ModeError(f"{mode!r} is not an installed mode; accepted: {', '.join(plugins.modes)}")


def get_namespace(kube: KubeApi, name: str) -> dict[str, Any]:
    """The Namespace object; ModeError when there is none."""
    found = kube.get(f"/api/v1/namespaces/{name}")
    if found is None:
        raise ModeError(f"namespace {name} not found")
    return found


def restart_stamp(now: dt.datetime | None = None) -> str:
    """The value `kubectl rollout restart` writes: RFC 3339, local time with its offset."""
    return (now or dt.datetime.now().astimezone()).isoformat(timespec="seconds")


def _probe_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "meshswitch-mode-probe-"},
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "1"]}]},
    }


def _injected(pod: dict[str, Any]) -> set[str]:
    """The plugins the webhook recorded in the dry-run pod's status annotation (a JSON string the
    client hands over as text), read by the engine's one reader of that record."""
    status = read_status((pod.get("metadata") or {}).get("annotations") or {})
    return set((status or {}).get("plugins") or ())


def wait_for_webhook(
    kube: KubeApi,
    namespace: str,
    mode: str,
    plugins: PluginSet,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Dry-run a pod until the webhook injects `mode` (or, for a mode that injects no mesh, none);
    None when it does, else why not."""
    meshes = {p.name for p in plugins.meshes}
    expected = mode if mode in meshes else None
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            pod = kube.call("POST", f"/api/v1/namespaces/{namespace}/pods", body=_probe_pod(), query=[("dryRun", "All")])
            got = _injected(pod) & meshes
            if (expected is None and not got) or (expected is not None and expected in got):
                return None
            last = f"a new pod gets {', '.join(sorted(got)) or 'no mesh'}"
        except ApiError as err:
            last = f"a new pod is refused: {err.message}"
        if time.monotonic() >= deadline:
            return last
        sleep(0.25)


def set_mode(
    kube: KubeApi,
    namespace: str,
    mode: str,
    plugins: PluginSet,
    *,
    restart: bool = False,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    webhook_namespace: str = DEFAULT_NAMESPACE,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> ModeResult:
    """Label the namespace with the mode; with `restart`, roll its workloads. Raises ModeError.

    With `dry_run`, only GETs: the result says which label would change and which workloads a
    restart would roll."""
    validate_mode(mode, plugins)
    found = get_namespace(kube, namespace)
    labels = dict((found.get("metadata") or {}).get("labels") or {})
    previous = labels.get(MODE_KEY)
    result = ModeResult(namespace, mode, previous, labelled=previous != mode, dry_run=dry_run)
    if result.labelled and not dry_run:
        kube.call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}",
            body={"metadata": {"labels": {MODE_KEY: mode}}},
            content_type="application/merge-patch+json",
        )
    labels[MODE_KEY] = mode
    relabelled = {**found, "metadata": {**(found.get("metadata") or {}), "labels": labels}}
    config = Config(webhook_namespace=webhook_namespace)
    result.warnings += [f.message for f in namespace_mode(relabelled, plugins, config).findings if f.severity in ("warning", "error")]
    if mode in plugins:
        missing = [
            o.describe()
            for o in control_plane_of(plugins[mode])
            if not o.optional and (not o.namespace or get_control_plane_object(kube, o) is None)
        ]
        if missing:
            result.warnings.append(f"{mode}'s control plane is missing ({', '.join(missing)}): its proxies will not work until it is installed")
    if dry_run:
        result.restarted, result.skipped = rollable(kube, namespace)
        return result
    if not restart:
        return result

    if wait_seconds > 0:
        problem = wait_for_webhook(kube, namespace, mode, plugins, wait_seconds)
        if problem:
            result.warnings.append(f"the webhook did not answer for {mode} within {wait_seconds:g} s ({problem}); restarting anyway")
    stamp = restart_stamp(now)
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    for workload in _workloads(kube, namespace):
        if workload.left_because is not None:
            result.skipped.append((workload.name, workload.left_because))
            continue
        kube.call("PATCH", workload.path, body=patch, content_type="application/strategic-merge-patch+json")
        result.restarted.append(workload.name)
    return result


@dataclass(frozen=True)
class _Workload:
    """A Deployment, StatefulSet or DaemonSet as a restart sees it."""

    name: str  # resource/name, as kubectl prints it
    path: str
    left_because: str | None  # why a restart leaves it alone; None when it rolls


def _workloads(kube: KubeApi, namespace: str) -> Iterator[_Workload]:
    """The namespace's workloads a restart looks at, kind by kind; GETs only."""
    for kind, resource, path in WORKLOADS:
        collection = path.format(namespace=namespace)
        for item in kube.items(collection):
            name = item["metadata"]["name"]
            paused = kind == "Deployment" and (item.get("spec") or {}).get("paused")
            left_because = "paused (kubectl rollout resume it first)" if paused else None
            yield _Workload(f"{resource}/{name}", f"{collection}/{name}", left_because)


def rollable(kube: KubeApi, namespace: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The workloads a restart would roll, and those it would leave (paused Deployments); GETs only."""
    rolled: list[str] = []
    left: list[tuple[str, str]] = []
    for workload in _workloads(kube, namespace):
        if workload.left_because is None:
            rolled.append(workload.name)
        else:
            left.append((workload.name, workload.left_because))
    return rolled, left


def format_result(result: ModeResult) -> list[str]:
    if result.dry_run:
        was = result.previous if result.previous is not None else "(none)"
        change = f"{MODE_KEY}: {was} -> {result.mode}" if result.labelled else f"{MODE_KEY}={result.mode} already set, no change"
        lines = [f"namespace/{result.namespace} {change} (dry run: nothing changed)"]
        lines += [f"{name} would restart" for name in result.restarted]
        lines += [f"{name} would not restart: {why}" for name, why in result.skipped]
        if not result.restarted and not result.skipped:
            lines.append("no Deployment, StatefulSet or DaemonSet to restart")
        return lines
    if result.labelled:
        was = f" (was {result.previous})" if result.previous else ""
        lines = [f"namespace/{result.namespace} labelled {MODE_KEY}={result.mode}{was}"]
    else:
        lines = [f"namespace/{result.namespace} already has {MODE_KEY}={result.mode}"]
    lines += [f"{name} restarted" for name in result.restarted]
    lines += [f"{name} not restarted: {why}" for name, why in result.skipped]
    return lines


@dataclass(frozen=True)
class NamespaceRow:
    """One row of `mode list`: the namespace, the mode a plain pod there gets, and what selects it."""

    namespace: str
    mode: str
    selected_by: str
    problems: tuple[str, ...] = ()


def list_modes(kube: KubeApi, plugins: PluginSet, *, webhook_namespace: str = DEFAULT_NAMESPACE, only: str | None = None) -> list[NamespaceRow]:
    """Each namespace's mode as the engine decides it (probe namespaces of the dev cluster left out)."""
    config = Config(webhook_namespace=webhook_namespace)
    if only is not None:
        namespaces = [get_namespace(kube, only)]
    else:
        namespaces = kube.items("/api/v1/namespaces")
    rows = []
    for found in namespace_modes(namespaces, plugins, config):
        problems = tuple(f.message for f in found.findings if f.severity in ("warning", "error"))
        if found.name in config.ignored_namespaces:
            rows.append(NamespaceRow(found.name, "-", "never injected (system or webhook namespace)", problems))
        elif found.mode is None and not found.source:
            rows.append(NamespaceRow(found.name, "-", "nothing: the server's default mode, unless a pod selects one", problems))
        elif found.refused:
            rows.append(NamespaceRow(found.name, "refused", found.source, problems))
        elif found.mode is None:  # selected, then turned off by the mesh's own key: pods are admitted with nothing
            rows.append(NamespaceRow(found.name, "-", f"{found.source}, turned off: pods here get no mesh", problems))
        else:
            rows.append(NamespaceRow(found.name, found.mode, found.source, problems))
    return rows
