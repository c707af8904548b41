"""`meshswitch diff NAMESPACE MODE`: flags and handler, over webhook.cluster.diff."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from webhook.cli.mode import _cluster_arguments, _run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("namespace", metavar="NAMESPACE", help="the namespace whose workloads to compare")
    parser.add_argument("mode", metavar="MODE", help="the mode to compare with: an installed mesh plugin's name, or native")
    _cluster_arguments(parser)
    parser.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    from webhook.cluster.diff import namespace_diff
    from webhook.engine.config import Config
    from webhook.engine.injector import Injector

    def body(kube: Any, plugins: Any) -> int:
        injector = Injector(plugins=plugins, config=Config(webhook_namespace=args.webhook_namespace))
        diffs = namespace_diff(kube, args.namespace, args.mode, injector)
        if not diffs:
            print(f"namespace/{args.namespace} has no workloads", file=sys.stderr)
        for diff in diffs:
            print("\n".join(diff.lines()))
        return 0

    return _run("diff", body, args)
