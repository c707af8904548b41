"""The `meshswitch` command: its parser and entry point; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from webhook.certs import add_certs_arguments, generate_from_args
from webhook.cli import certs_install, check, mode
from webhook.cli.offline import add_engine_arguments, cmd_explain, cmd_inject, cmd_plugins, cmd_uninject
from webhook.engine.errors import ConfigError, MeshswitchError
from webhook.server.options import ServeOptions, add_serve_arguments
from webhook.server.serve import run


def cmd_serve(args: argparse.Namespace) -> int:
    return run(ServeOptions.from_args(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshswitch", description="Inject the sidecar of the mesh a workload selects.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, text in (
        ("inject", cmd_inject, "inject sidecars into the workloads of a YAML file"),
        ("explain", cmd_explain, "say, per workload, what would be injected and why"),
    ):
        sub = commands.add_parser(name, help=text)
        add_engine_arguments(sub)
        sub.set_defaults(handler=handler)
    sub.add_argument(
        "--kubeconfig",
        help="read namespaces (unless given by flags) and the meshes' control planes from this cluster",
    )
    sub = commands.add_parser("uninject", help="remove what meshswitch injected")
    sub.add_argument("-f", "--file", required=True)
    sub.add_argument("--namespace", default="default")
    sub.set_defaults(handler=cmd_uninject)
    sub = commands.add_parser("serve", help="serve the admission webhook over HTTPS")
    add_serve_arguments(sub)
    sub.set_defaults(handler=cmd_serve)
    certs = commands.add_parser("certs", help="certificates for the webhook").add_subparsers(dest="certs_command", required=True)
    sub = certs.add_parser("generate", help="write a CA and a serving certificate it signs")
    add_certs_arguments(sub)
    sub.set_defaults(handler=generate_from_args)
    certs_install.register_certs_install(certs)
    check.register(commands)
    mode.register(commands)
    sub = commands.add_parser("plugins", help="list the installed plugins and their settings")
    sub.add_argument("--templates-dir", action="append")
    sub.add_argument("--values", nargs="?", const="", metavar="FILE", help="print the effective installation values (with FILE applied)")
    sub.set_defaults(handler=cmd_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (MeshswitchError, ConfigError) as err:
        print(f"meshswitch: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
