"""YAML and JSON documents in and out for the offline commands.

In: `-f` repeated, `-` for standard input, directories (their *.yaml, *.yml and *.json files; with
-R, their subdirectories' too). Every document remembers its file and position, so an error names
them. Parsing and dumping go through libyaml (yaml.CSafeLoader and yaml.CSafeDumper): the fidelity
tests (tests/unit/cli/test_documents.py) show the same objects and the same text as the pure-Python
classes, at a fraction of the time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from webhook.engine.errors import MeshswitchError

SUFFIXES = (".yaml", ".yml", ".json")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class UsageError(MeshswitchError):
    """A command-line value or an input file is wrong; the message is the one line the user sees."""


class Dumper(_BaseDumper):  # type: ignore[misc]
    """Block-style YAML without anchors (injected parts are shared objects, not aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: Any, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    node: yaml.Node = dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)
    return node


Dumper.add_representer(str, _str_representer)


@dataclass(frozen=True)
class Document:
    """One YAML document and where it came from: `source` (a path or "-") and its 1-based index."""

    source: str
    index: int
    body: Any

    @property
    def where(self) -> str:
        return f"{self.source}: document {self.index}"


def expand(sources: Sequence[str], *, recursive: bool) -> list[str]:
    """Files to read, in order: each -f as given; a directory's YAML and JSON files, sorted."""
    found: list[str] = []
    for source in sources:
        path = Path(source)
        if source == "-" or not path.is_dir():
            found.append(source)
            continue
        pattern = "**/*" if recursive else "*"
        files = sorted(str(p) for p in path.glob(pattern) if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            more = "" if recursive else " (-R reads its subdirectories too)"
            raise UsageError(f"{source}: a directory with no .yaml, .yml or .json files{more}")
        found.extend(files)
    return found


def _text(source: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as err:
        raise UsageError(f"{source}: cannot read: {err.strerror}") from None
    if b"\0" in raw[:8192]:
        raise UsageError(f"{source}: a binary file, not YAML or JSON text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UsageError(
            f"{source}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); YAML and JSON files are UTF-8"
        ) from None


def read_documents(sources: Iterable[str]) -> list[Document]:
    """Every non-empty document of every source; UsageError naming the file, line and document."""
    documents: list[Document] = []
    for source in sources:
        text = _text(source)
        index = 0
        try:
            for index, body in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
                if body is not None:
                    documents.append(Document(source, index, body))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark else source
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UsageError(f"{where}: document {index + 1}: not valid YAML: {problem}") from None
    return documents


def dump_yaml(bodies: Sequence[Any]) -> str:
    text: str = yaml.dump_all(bodies, Dumper=Dumper, sort_keys=False, default_flow_style=False, explicit_start=False)
    return text.replace("\n...\n", "\n")


def dump_json(bodies: Sequence[Any]) -> str:
    """One object as itself; several as a v1 List, as `kubectl get -o json` prints them."""
    import orjson

    single = bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": list(bodies)}
    return orjson.dumps(single, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def dump(bodies: Sequence[Any], out: IO[str], output: str = "yaml") -> None:
    if not bodies:
        return
    out.write(dump_json(bodies) if output == "json" else dump_yaml(bodies))
