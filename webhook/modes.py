"""`meshswitch mode set NAMESPACE MODE [--restart]`: switch a namespace's mesh, and roll its workloads.

The mode is checked against the installed plugins (the shipped ones, the cluster's templates
ConfigMap and its values, as `meshswitch check` sees them), then the namespace gets the label
`meshswitch.io/mode`. With --restart, meshswitch first waits until the webhook answers for the new
mode (a server-side dry-run pod: its namespace cache is fed by a watch, so the label reaches it a
moment later), then does what `kubectl rollout restart` does to every Deployment, StatefulSet and
DaemonSet of the namespace: it stamps the pod template's `kubectl.kubernetes.io/restartedAt`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhook.check import cluster_plugins, namespace_mode
from webhook.config import Config
from webhook.decide import MODE_KEY, STATUS_KEY
from webhook.discovery import control_plane_of
from webhook.errors import ConfigError
from webhook.install import DEFAULT_NAMESPACE, InstallError, Kube, api_client, api_error
from webhook.plugins import PluginSet

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WORKLOADS = (
    ("Deployment", "deployment.apps", "/apis/apps/v1/namespaces/{namespace}/deployments"),
    ("StatefulSet", "statefulset.apps", "/apis/apps/v1/namespaces/{namespace}/statefulsets"),
    ("DaemonSet", "daemonset.apps", "/apis/apps/v1/namespaces/{namespace}/daemonsets"),
)
_CONTROL_PLANE_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "ConfigMap": "/api/v1/namespaces/{namespace}/configmaps/{name}",
}
DEFAULT_WAIT_SECONDS = 15.0


class ModeError(Exception):
    """The mode cannot be set; the message says why and what is accepted."""


@dataclass
class ModeResult:
    namespace: str
    mode: str
    previous: str | None
    labelled: bool
    restarted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (workload, why)
    warnings: list[str] = field(default_factory=list)


def validate_mode(mode: str, plugins: PluginSet) -> None:
    if mode not in plugins.modes:
        raise ModeError(f"{mode!r} is not an installed mode; accepted: {', '.join(plugins.modes)}")


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
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(STATUS_KEY)
    try:
        plugins = json.loads(raw).get("plugins") if raw else []
    except (ValueError, AttributeError):
        plugins = []
    return {p for p in plugins or [] if isinstance(p, str)}


def wait_for_webhook(
    kube: Kube,
    namespace: str,
    mode: str,
    plugins: PluginSet,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Dry-run a pod until the webhook injects `mode` (or, for a mode that injects no mesh, none);
    None when it does, else why not."""
    from kubernetes.client.exceptions import ApiException

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
        except ApiException as err:
            last = f"a new pod is refused: {api_error(err)}"
        if time.monotonic() >= deadline:
            return last
        sleep(0.25)


def set_mode(
    kube: Kube,
    namespace: str,
    mode: str,
    plugins: PluginSet,
    *,
    restart: bool = False,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    webhook_namespace: str = DEFAULT_NAMESPACE,
    now: dt.datetime | None = None,
) -> ModeResult:
    """Label the namespace with the mode; with `restart`, roll its workloads. Raises ModeError."""
    validate_mode(mode, plugins)
    found = kube.get(f"/api/v1/namespaces/{namespace}")
    if found is None:
        raise ModeError(f"namespace {namespace} not found")
    labels = dict((found.get("metadata") or {}).get("labels") or {})
    previous = labels.get(MODE_KEY)
    result = ModeResult(namespace, mode, previous, labelled=previous != mode)
    if result.labelled:
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
            if not o.namespace or kube.get(_CONTROL_PLANE_PATHS[o.kind].format(namespace=o.namespace, name=o.name)) is None
        ]
        if missing:
            result.warnings.append(f"{mode}'s control plane is missing ({', '.join(missing)}): its proxies will not work until it is installed")
    if not restart:
        return result

    if wait_seconds > 0:
        problem = wait_for_webhook(kube, namespace, mode, plugins, wait_seconds)
        if problem:
            result.warnings.append(f"the webhook did not answer for {mode} within {wait_seconds:g} s ({problem}); restarting anyway")
    stamp = restart_stamp(now)
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    for kind, resource, path in WORKLOADS:
        for item in kube.items(path.format(namespace=namespace)):
            name = item["metadata"]["name"]
            if kind == "Deployment" and (item.get("spec") or {}).get("paused"):
                result.skipped.append((f"{resource}/{name}", "paused (kubectl rollout resume it first)"))
                continue
            kube.call(
                "PATCH",
                f"{path.format(namespace=namespace)}/{name}",
                body=patch,
                content_type="application/strategic-merge-patch+json",
            )
            result.restarted.append(f"{resource}/{name}")
    return result


def format_result(result: ModeResult) -> list[str]:
    if result.labelled:
        was = f" (was {result.previous})" if result.previous else ""
        lines = [f"namespace/{result.namespace} labelled {MODE_KEY}={result.mode}{was}"]
    else:
        lines = [f"namespace/{result.namespace} already has {MODE_KEY}={result.mode}"]
    lines += [f"{name} restarted" for name in result.restarted]
    lines += [f"{name} not restarted: {why}" for name, why in result.skipped]
    return lines


def add_mode_set_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("namespace", metavar="NAMESPACE")
    parser.add_argument("mode", metavar="MODE", help="an installed mesh plugin's name, or native")
    parser.add_argument("--restart", action="store_true", help="roll the namespace's Deployments, StatefulSets and DaemonSets")
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument("--webhook-namespace", default=DEFAULT_NAMESPACE, help=f"where meshswitch runs (default {DEFAULT_NAMESPACE})")
    parser.add_argument("--templates-dir", action="append", type=Path, default=[], help="extra plugin directory (repeatable)")
    parser.add_argument("--values", type=Path, help="installation values (default: the cluster's meshswitch-values ConfigMap)")
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        help="with --restart: wait up to this long for the webhook to answer for the new mode (0: do not wait)",
    )


def cmd_mode_set(args: argparse.Namespace) -> int:
    """Handler of `meshswitch mode set`."""
    from kubernetes.client.exceptions import ApiException

    try:
        kube = Kube(api_client(args.kubeconfig))
        plugins = cluster_plugins(kube, args.webhook_namespace, args.templates_dir, args.values)
        result = set_mode(
            kube,
            args.namespace,
            args.mode,
            plugins,
            restart=args.restart,
            wait_seconds=args.wait_seconds,
            webhook_namespace=args.webhook_namespace,
        )
    except (ModeError, ConfigError) as err:
        print(f"meshswitch mode set: {err}", file=sys.stderr)
        return 1
    except InstallError as err:
        print(f"meshswitch mode set: {err}", file=sys.stderr)
        return 1
    except ApiException as err:
        print(f"meshswitch mode set: the API server refused: {api_error(err)}", file=sys.stderr)
        return 1
    except Exception as err:  # a kubeconfig that does not load, a cluster that does not answer
        print(f"meshswitch mode set: cannot reach the cluster: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("\n".join(format_result(result)))
    return 0


def register(subcommands: Any) -> argparse.ArgumentParser:
    """Add `mode` (with `mode set`) to the subcommands of `meshswitch`."""
    parser: argparse.ArgumentParser = subcommands.add_parser("mode", help="switch a namespace's governance mode")
    modes = parser.add_subparsers(dest="mode_command", required=True)
    sub = modes.add_parser("set", help="label a namespace with a mode; --restart rolls its workloads")
    add_mode_set_arguments(sub)
    sub.set_defaults(handler=cmd_mode_set)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webhook.modes", description="meshswitch mode set")
    add_mode_set_arguments(parser)
    return cmd_mode_set(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
