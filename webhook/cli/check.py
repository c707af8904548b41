"""`meshswitch check`: its flags and handler, over webhook.cluster.check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.cli.flags import days, https_url
from webhook.cluster.check import cluster_plugins, observe
from webhook.cluster.findings import WARN_DAYS, evaluate, exit_code, report
from webhook.cluster.client import ApiError, Unreachable, connect
from webhook.cluster.layout import DEFAULT_NAMESPACE, TLS_SECRET, WEBHOOK_CONFIG
from webhook.engine.config import Config
from webhook.engine.errors import ConfigError


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help=f"the webhook's namespace (default {DEFAULT_NAMESPACE})")
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument(
        "--webhook-config", default=WEBHOOK_CONFIG,
        help=f"the Mutating- and ValidatingWebhookConfiguration's name (default {WEBHOOK_CONFIG}; make run's is meshswitch-dev)",
    )  # fmt: skip
    parser.add_argument("--secret", default=TLS_SECRET, help=f"the serving Secret (default {TLS_SECRET})")
    parser.add_argument(
        "--url",
        action="append",
        type=https_url,
        default=[],
        help="also connect to the webhook here and check what it serves, e.g. https://127.0.0.1:8443 "
        "after `kubectl -n meshswitch-system port-forward svc/meshswitch 8443:443` (repeatable)",
    )
    parser.add_argument("-l", "--namespace-selector", help="check only the namespaces this label selector matches")
    parser.add_argument("--templates-dir", action="append", type=Path, default=[], help="extra plugin directory (repeatable)")
    parser.add_argument("--values", type=Path, help="installation values (default: the cluster's meshswitch-values ConfigMap)")
    parser.add_argument("--warn-days", type=days, default=WARN_DAYS, help=f"warn about certificates ending within this many days (default {WARN_DAYS})")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")


def cmd_check(args: argparse.Namespace) -> int:
    """Handler of `meshswitch check`: 0 when nothing is wrong (warnings allowed), 1 otherwise."""
    try:
        kube = connect(args.kubeconfig)
    except ConfigError as err:
        print(f"meshswitch check: {err}", file=sys.stderr)
        return 1
    try:
        plugins = cluster_plugins(kube, args.namespace, args.templates_dir, args.values)
        config = Config(webhook_namespace=args.namespace)
        observed = observe(
            kube,
            plugins,
            config,
            namespace=args.namespace,
            webhook_config=args.webhook_config,
            secret=args.secret,
            urls=args.url,
            namespace_selector=args.namespace_selector,
        )
    except ConfigError as err:
        print(f"meshswitch check: the installed plugins do not load: {err}", file=sys.stderr)
        return 1
    except ApiError as err:
        print(f"meshswitch check: the API server refused: {err.message}", file=sys.stderr)
        return 1
    except Unreachable as err:
        print(f"meshswitch check: cannot reach the cluster: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the scratch directory the cluster's files are written to
        print(f"meshswitch check: {err}", file=sys.stderr)
        return 1
    findings = evaluate(observed, plugins, config, warn_days=args.warn_days)
    print(report(findings, verbose=not args.quiet))
    return exit_code(findings)


def configure(parser: argparse.ArgumentParser) -> None:
    """The flags and handler of `meshswitch check`."""
    add_check_arguments(parser)
    parser.set_defaults(handler=cmd_check)
