"""argparse types for the numbers the cluster subcommands take: the message says what is accepted
(argparse's own says only `invalid float value`, and took `nan`, `inf` and negative waits)."""

from __future__ import annotations

import argparse
import math
import urllib.parse


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds 0 or more")
    return value


def days(text: str) -> int:
    """A whole number of days, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days 0 or more")
    return value


def https_url(text: str) -> str:
    """An https:// URL with a host (and, if given, a port that parses), as `check --url` connects to it."""
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme != "https" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an https:// URL; accepted: e.g. https://127.0.0.1:8443")
    return text
