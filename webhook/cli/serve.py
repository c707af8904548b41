"""`meshswitch serve`: its flags and handler, over webhook.server."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from webhook.server.options import add_serve_arguments

    add_serve_arguments(parser)
    parser.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from webhook.engine.errors import ConfigError
    from webhook.server.options import ServeOptions
    from webhook.server.serve import run

    try:
        options = ServeOptions.from_args(args)
    except ConfigError as err:
        # Flags that make no server are a usage error: exit 2 with the usage, as every other flag's
        # error and `python -m webhook.server` give (docs/server.md), not the 1 of a failed run.
        args._parser.error(str(err))
    return run(options)
