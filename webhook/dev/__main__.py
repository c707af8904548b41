"""`python -m webhook.dev up|demo`: the dev cluster behind `make run` (control plane, webhook,
registration; prints `export KUBECONFIG=...`) and the tour behind `make demo`."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from webhook.dev import binaries
from webhook.dev.cluster import DEFAULT_PORT
from webhook.dev.cluster import run_dev_cluster
from webhook.dev.demo import demo_on_fresh_cluster


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m webhook.dev`."""
    parser = argparse.ArgumentParser(prog="python -m webhook.dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="control plane + webhook + registration; print export KUBECONFIG=...; block until Ctrl-C"
    )
    up.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"webhook port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free)"
    )
    up.add_argument("--run-dir", help="keep kubeconfig, certificates and logs here (default: a temp dir)")
    up.add_argument("--fail-open", action="store_true", help="serve with --fail-open and register failurePolicy Ignore")
    up.add_argument("--no-build", action="store_true", help="fail instead of building missing binaries")
    demo = sub.add_parser("demo", help="a scripted tour of every mode against a fresh dev cluster, then stop")
    demo.add_argument("--port", type=int, default=0, help="webhook port on 127.0.0.1 (default: any free port)")
    demo.add_argument("--no-build", action="store_true", help="fail instead of building missing binaries")
    args = parser.parse_args(argv)
    try:
        return run_dev_cluster(args) if args.command == "up" else demo_on_fresh_cluster(args)
    except binaries.ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
