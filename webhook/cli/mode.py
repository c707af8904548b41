"""`meshswitch mode ...`: its flags and handlers, over webhook.cluster.modes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from webhook.cluster.check import cluster_plugins
from webhook.cluster.client import ApiError, connect
from webhook.cluster.install import DEFAULT_NAMESPACE
from webhook.cluster.modes import DEFAULT_WAIT_SECONDS, ModeError, format_result, set_mode
from webhook.engine.errors import ConfigError


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
    try:
        kube = connect(args.kubeconfig)
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
    except ApiError as err:
        print(f"meshswitch mode set: the API server refused: {err.message}", file=sys.stderr)
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
