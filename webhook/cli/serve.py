"""`meshswitch serve`: its flags and handler, over webhook.server."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from webhook.server.options import add_serve_arguments

    add_serve_arguments(parser)
    parser.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from webhook.server.options import ServeOptions
    from webhook.server.serve import run

    return run(ServeOptions.from_args(args))
