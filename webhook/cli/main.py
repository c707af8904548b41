"""The `meshswitch` command: its parser and entry point; each subcommand lives in its own module.

Start-up is kept short (`meshswitch --help` in well under 0.3 s): this module imports nothing of
ours but the table below, and a subcommand's module (with the engine, the server or the cluster
client behind it) is imported only when that subcommand is on the command line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

# name -> (module, function that adds the flags and the handler, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "inject": ("webhook.cli.offline", "configure_inject", "inject sidecars into the workloads of YAML or JSON files"),
    "uninject": ("webhook.cli.offline", "configure_uninject", "remove what meshswitch injected, giving back the original objects"),
    "explain": ("webhook.cli.offline", "configure_explain", "say, per workload, what would be injected and why"),
    "plugins": ("webhook.cli.offline", "configure_plugins", "list the installed plugins, their keys and settings"),
    "diff": ("webhook.cli.diff", "configure", "per workload of a namespace: what its pods would gain and lose under another mode"),
    "mode": ("webhook.cli.mode", "configure", "list, get or set the governance mode of namespaces"),
    "check": ("webhook.cli.check", "configure", "check the installed webhook, its certificates and endpoints, and the namespaces' meshes"),
    "certs": ("webhook.cli.certs_install", "configure_certs", "certificates for the webhook: generate files, or install them in a cluster"),
    "serve": ("webhook.cli.serve", "configure", "serve the admission webhook over HTTPS"),
}


class _Version(argparse.Action):
    """--version, reading the installed version only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print meshswitch's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("meshswitch")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"meshswitch {found}")
        parser.exit()


def _selected(argv: Sequence[str]) -> str | None:
    """The subcommand on the command line: the first argument that is not an option."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` gets its flags (and its module imported)."""
    parser = argparse.ArgumentParser(
        prog="meshswitch",
        description="Inject the sidecar of the mesh a workload selects: offline on files, or as an admission webhook.",
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _selected(argv)
    for name, (module, configure, text) in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.set_defaults(_parser=sub)
        if name == chosen:
            getattr(importlib.import_module(module), configure)(sub)
    return parser


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    own: argparse.ArgumentParser = getattr(args, "_parser", parser)
    if extra:
        own.error(f"unrecognized arguments: {' '.join(extra)}")  # the subcommand's usage, not the top level's
    if getattr(args, "handler", None) is None:
        own.print_help(sys.stderr)  # `meshswitch` or `meshswitch mode` alone: what can follow
        own.exit(2)
    return args


def _quiet_broken_pipe() -> int:
    """stdout was closed by its reader (`| head`): stop without a traceback, as cat does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(arguments)
        from webhook.engine.errors import MeshswitchError

        try:
            code = int(args.handler(args))
            sys.stdout.flush()
            return code
        except MeshswitchError as err:
            print(f"meshswitch {args.command}: {err}", file=sys.stderr)
            return 1
        except (BrokenPipeError, KeyboardInterrupt):
            raise
        except Exception as err:  # a bug of ours: still one line, the traceback only on request
            if os.environ.get("MESHSWITCH_DEBUG"):
                raise
            print(f"meshswitch {args.command}: internal error: {type(err).__name__}: {err} (MESHSWITCH_DEBUG=1 shows where)", file=sys.stderr)
            return 70
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
