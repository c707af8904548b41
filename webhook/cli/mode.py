"""`meshswitch mode list|get|set`: flags and handlers, over webhook.cluster.modes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webhook.cli.flags import seconds

DEFAULT_NAMESPACE = "meshswitch-system"  # webhook.cluster.layout.DEFAULT_NAMESPACE


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument("--webhook-namespace", default=DEFAULT_NAMESPACE, help=f"where meshswitch runs (default {DEFAULT_NAMESPACE})")
    parser.add_argument("--templates-dir", action="append", type=Path, default=[], metavar="DIR", help="extra plugin directory (repeatable)")
    parser.add_argument("--values", type=Path, metavar="FILE", help="installation values (default: the cluster's meshswitch-values ConfigMap)")


def add_mode_set_arguments(parser: argparse.ArgumentParser) -> None:
    from webhook.cluster.modes import DEFAULT_WAIT_SECONDS

    parser.add_argument("namespace", metavar="NAMESPACE", help="the namespace to label")
    parser.add_argument("mode", metavar="MODE", help="an installed mesh plugin's name, or native")
    parser.add_argument("--restart", action="store_true", help="roll the namespace's Deployments, StatefulSets and DaemonSets")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="change nothing: print the label change and the workloads a restart would roll",
    )  # fmt: skip
    _cluster_arguments(parser)
    parser.add_argument(
        "--wait-seconds",
        type=seconds,
        default=DEFAULT_WAIT_SECONDS,
        help="with --restart: wait up to this long for the webhook to answer for the new mode (0: do not wait)",
    )


def _run(name: str, body: Callable[[Any, Any], int], args: argparse.Namespace) -> int:
    """Connect, load the cluster's plugins, run `body(kube, plugins)`; every failure is one line."""
    from webhook.cluster.check import cluster_plugins
    from webhook.cluster.client import ApiError, Unreachable, connect
    from webhook.cluster.modes import ModeError
    from webhook.engine.errors import ConfigError

    try:
        kube = connect(args.kubeconfig)
        plugins = cluster_plugins(kube, args.webhook_namespace, args.templates_dir, args.values)
        return body(kube, plugins)
    except (ModeError, ConfigError) as err:  # a kubeconfig that does not load, a mode not installed
        print(f"meshswitch {name}: {err}", file=sys.stderr)
    except ApiError as err:
        print(f"meshswitch {name}: the API server refused: {err.message}", file=sys.stderr)
    except Unreachable as err:
        print(f"meshswitch {name}: cannot reach the cluster: {err}", file=sys.stderr)
    except BrokenPipeError:  # stdout closed by its reader: main ends quietly
        raise
    except OSError as err:  # the scratch directory the cluster's plugins are written to
        print(f"meshswitch {name}: {err}", file=sys.stderr)
    return 1


def cmd_mode_set(args: argparse.Namespace) -> int:
    """Handler of `meshswitch mode set`."""
    from webhook.cluster.modes import format_result, set_mode

    def body(kube: Any, plugins: Any) -> int:
        result = set_mode(
            kube, args.namespace, args.mode, plugins,
            restart=args.restart, wait_seconds=args.wait_seconds,
            webhook_namespace=args.webhook_namespace, dry_run=args.dry_run,
        )  # fmt: skip
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print("\n".join(format_result(result)))
        return 0

    return _run("mode set", body, args)


def cmd_mode_list(args: argparse.Namespace) -> int:
    """Handler of `meshswitch mode list` and `meshswitch mode get NAMESPACE`."""
    from webhook.cluster.modes import list_modes

    only = getattr(args, "namespace", None)

    def body(kube: Any, plugins: Any) -> int:
        rows = list_modes(kube, plugins, webhook_namespace=args.webhook_namespace, only=only)
        for row in rows:
            for problem in row.problems:
                print(f"warning: namespace {row.namespace}: {problem}", file=sys.stderr)
        if only is not None:
            print(f"{rows[0].mode}\t{rows[0].selected_by}" if rows else "-")
            return 1 if rows and rows[0].mode == "refused" else 0
        width = max([len("NAMESPACE"), *(len(r.namespace) for r in rows)])
        modes = max([len("MODE"), *(len(r.mode) for r in rows)])
        print(f"{'NAMESPACE':<{width}}  {'MODE':<{modes}}  SELECTED BY")
        for row in rows:
            print(f"{row.namespace:<{width}}  {row.mode:<{modes}}  {row.selected_by}")
        return 0

    return _run("mode get" if only is not None else "mode list", body, args)


def configure(parser: argparse.ArgumentParser) -> None:
    """`mode list`, `mode get NAMESPACE` and `mode set NAMESPACE MODE`."""
    modes = parser.add_subparsers(dest="mode_command", metavar="COMMAND")
    for name, text in (
        ("list", "every namespace, the mode a pod there gets, and what selects it"),
        ("get", "the mode a pod in one namespace gets, and what selects it"),
        ("set", "label a namespace with a mode; --restart rolls its workloads, --dry-run changes nothing"),
    ):
        sub = modes.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if name == "get":
            sub.add_argument("namespace", metavar="NAMESPACE", help="the namespace to look at")
        if name == "set":
            add_mode_set_arguments(sub)
        else:
            _cluster_arguments(sub)
        sub.set_defaults(handler=cmd_mode_set if name == "set" else cmd_mode_list, _parser=sub)
