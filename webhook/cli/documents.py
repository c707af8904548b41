"""YAML documents in and out for the offline commands: read a file or stdin, dump block-style YAML."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from webhook.engine.errors import MeshswitchError


class _Dumper(yaml.SafeDumper):
    """Block-style YAML without anchors (injected parts are shared objects, not aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


class UsageError(MeshswitchError):
    """A command-line value is wrong."""


def read_documents(source: str) -> list[Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{source}: cannot read: {err.strerror}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise UsageError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None


def dump(documents: Sequence[Any], out: IO[str]) -> None:
    out.write(yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=False).replace("\n...\n", "\n"))
