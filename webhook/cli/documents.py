"""YAML and JSON documents in and out for the offline commands.

In: `-f` repeated, `-` for standard input, directories (their *.yaml, *.yml and *.json files; with
-R, their subdirectories' too). Every document remembers its file and position, so an error names
them. Parsing and dumping go through libyaml (yaml.CSafeLoader and yaml.CSafeDumper): the fidelity
tests (tests/unit/cli/test_documents.py) show the same objects and the same text as the pure-Python
classes, at a fraction of the time.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from webhook.engine.errors import MeshswitchError, yaml_problem

SUFFIXES = (".yaml", ".yml", ".json")
_CLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_CEmitter: Any = getattr(getattr(yaml, "_yaml", None), "CEmitter", None)


class UsageError(MeshswitchError):
    """A command-line value or an input file is wrong; the message is the one line the user sees."""


_STR, _INT, _BOOL, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_FLOAT, _TIMESTAMP, _VALUE = "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"

# Plain scalars as kubectl reads them (sigs.k8s.io/yaml, i.e. go-yaml v2), not as YAML 1.1 does:
# no base-60 numbers (`12:30` is a string, not 750), timestamps stay strings, `=` is a string;
# y/Y/n/N are booleans beside yes/no/on/off/true/false; 0x.., 0.. (octal) and 0b.. are ints; a
# float has a dot or an exponent (`1e3`, whose sign PyYAML requires), or is a number with a leading
# zero that is no octal (`08`). Anything else is a string.
_KUBE_BOOL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
_KUBE_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_KUBE_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?0[0-9_]*[89][0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_KUBE_RESOLVERS = {_BOOL: _KUBE_BOOL, _INT: _KUBE_INT, _FLOAT: _KUBE_FLOAT}


def _kube_resolvers(table: dict[str, list[tuple[str, Any]]]) -> dict[str, list[tuple[str, Any]]]:
    """`table` (a resolver class's implicit resolvers) with kubectl's rules: see _KUBE_RESOLVERS."""
    kept: dict[str, list[tuple[str, Any]]] = {}
    for first, entries in table.items():
        rules = [(tag, _KUBE_RESOLVERS.get(tag, regexp)) for tag, regexp in entries if tag not in (_TIMESTAMP, _VALUE)]
        if rules:
            kept[first] = rules
    return kept


class KubeLoader(_CLoader):  # type: ignore[misc]
    """libyaml's safe loader, resolving plain scalars as kubectl does. libyaml calls back into the
    Python resolver for every plain scalar, so a class-level table of our own applies to it."""

    yaml_implicit_resolvers = _kube_resolvers(_CLoader.yaml_implicit_resolvers)
    bool_values = {**yaml.SafeLoader.bool_values, "y": True, "n": False}


_Loader: Any = KubeLoader


class OutputResolver(yaml.resolver.Resolver):
    """YAML 1.1's resolvers plus kubectl's: a string either would read as something else (`12:30`,
    `2024-05-01T10:00:00Z`, `=`, `y`, `1e3`) is written quoted, so it reads back as a string everywhere."""


for _tag, _first in ((_BOOL, "yYnN"), (_FLOAT, "-+0123456789.")):
    OutputResolver.add_implicit_resolver(_tag, _KUBE_RESOLVERS[_tag], list(_first))


class Dumper(_BaseDumper):  # type: ignore[misc]
    """Block-style YAML without anchors (injected parts are shared objects, not aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: Any, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    node: yaml.Node = dumper.represent_scalar(_STR, data, style=style)
    return node


Dumper.add_representer(str, _str_representer)
Dumper.yaml_implicit_resolvers = OutputResolver.yaml_implicit_resolvers


class _Events:
    """Python data -> YAML events, straight into libyaml's emitter: the events `Dumper` would have
    libyaml emit, without building a node tree first and without a Python call per scalar back from
    C to resolve its tag (the same keys and values recur in every pod, so the answer is memoised).
    tests/unit/cli/test_documents.py holds it to `Dumper`'s output, byte for byte."""

    def __init__(self, emitter: Any) -> None:
        self.emit = emitter.emit
        self.resolver: Any = OutputResolver()
        # libyaml copies each event as it is emitted, so one event object serves every equal scalar.
        self.strings: dict[str, Any] = {}
        self.map_start = yaml.MappingStartEvent(None, _MAP, True, flow_style=False)
        self.map_end = yaml.MappingEndEvent()
        self.seq_start = yaml.SequenceStartEvent(None, _SEQ, True, flow_style=False)
        self.seq_end = yaml.SequenceEndEvent()
        self.fallback = Dumper(io.StringIO())

    def document(self, data: Any) -> None:
        self.emit(yaml.DocumentStartEvent(explicit=False))
        self.node(data)
        self.emit(yaml.DocumentEndEvent(explicit=False))

    def node(self, data: Any) -> None:
        kind = type(data)
        if kind is str:
            event = self.strings.get(data)
            if event is None:
                plain = self.resolver.resolve(yaml.ScalarNode, data, (True, False)) == _STR  # reads back as a str?
                event = yaml.ScalarEvent(None, _STR, (plain, True), data, style="|" if "\n" in data else None)
                if len(data) < 256:
                    self.strings[data] = event
            self.emit(event)
        elif kind is dict:
            self.emit(self.map_start)
            for key, value in data.items():
                self.node(key)
                self.node(value)
            self.emit(self.map_end)
        elif kind is list:
            self.emit(self.seq_start)
            for item in data:
                self.node(item)
            self.emit(self.seq_end)
        elif kind is bool:
            self.emit(yaml.ScalarEvent(None, _BOOL, (True, False), "true" if data else "false"))
        elif kind is int:
            self.emit(yaml.ScalarEvent(None, _INT, (True, False), str(data)))
        elif data is None:
            self.emit(yaml.ScalarEvent(None, _NULL, (True, False), "null"))
        else:  # dates, floats, str subclasses...: the stock representer, then its node's events
            self.tree(self.fallback.represent_data(data))

    def tree(self, node: Any) -> None:
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            implicit = (self.resolver.resolve(yaml.ScalarNode, node.value, (True, False)) == tag,
                        self.resolver.resolve(yaml.ScalarNode, node.value, (False, True)) == tag)  # fmt: skip
            self.emit(yaml.ScalarEvent(None, tag, implicit, node.value, style=node.style))
        elif isinstance(node, yaml.SequenceNode):
            self.emit(yaml.SequenceStartEvent(None, tag, tag == _SEQ, flow_style=node.flow_style))
            for item in node.value:
                self.tree(item)
            self.emit(yaml.SequenceEndEvent())
        else:
            self.emit(yaml.MappingStartEvent(None, tag, tag == _MAP, flow_style=node.flow_style))
            for key, value in node.value:
                self.tree(key)
                self.tree(value)
            self.emit(yaml.MappingEndEvent())


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


def _allowed_alias_ratio(decoded: int) -> float:
    """go-yaml's bound (kubectl: "yaml: document contains excessive aliasing"): the share of a
    document's nodes that may come from alias expansion, 99% up to 400,000 nodes, 10% from 4,000,000."""
    if decoded <= 400_000:
        return 0.99
    if decoded >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decoded - 400_000) / 3_600_000


class _Unsharer:
    """Copies a loaded document so that no dict or list appears twice (the injection edits pods in
    place), counting nodes as go-yaml does: an alias bomb (a 10-line file whose nested aliases expand
    to millions of nodes) is refused after a few thousand copies instead of filling memory."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.decoded = 0
        self.aliased = 0
        self.seen: set[int] = set()  # containers met already: meeting one again is an alias
        self.open: set[int] = set()  # containers being copied: meeting one of those is a cycle

    def copy(self, value: Any, aliased: bool = False) -> Any:
        container = isinstance(value, (dict, list))
        if container:
            if id(value) in self.open:
                raise UsageError(f"{self.where}: an alias refers to a node that contains it; a recursive structure is no Kubernetes object")
            aliased = aliased or id(value) in self.seen
            self.seen.add(id(value))
        self.decoded += 1
        if aliased:
            self.aliased += 1
            if self.aliased > 100 and self.decoded > 1000 and self.aliased > self.decoded * _allowed_alias_ratio(self.decoded):
                raise UsageError(
                    f"{self.where}: excessive aliasing: its aliases expand to over {self.decoded} nodes, {self.aliased} of them "
                    "copies (kubectl refuses it too); write the repeated parts out or reuse each anchor less"
                )
        if not container:
            return value
        self.open.add(id(value))
        try:
            if isinstance(value, dict):
                return {self.copy(k, aliased): self.copy(v, aliased) for k, v in value.items()}
            return [self.copy(v, aliased) for v in value]
        finally:
            self.open.discard(id(value))


_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s\[\]{},]+")


def read_documents(sources: Iterable[str]) -> list[Document]:
    """Every non-empty document of every source; UsageError naming the file, line and document."""
    documents: list[Document] = []
    for source in sources:
        text = _text(source)
        aliased = _ANCHOR.search(text) is not None  # YAML anchors: aliases load as one shared object
        index = 0
        try:
            for index, body in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
                if body is not None:
                    documents.append(Document(source, index, _Unsharer(f"{source}: document {index}").copy(body) if aliased else body))
        except yaml.YAMLError as err:
            where, problem = yaml_problem(source, err)
            raise UsageError(f"{where}: document {index + 1}: not valid YAML: {problem}") from None
    return documents


def dump_yaml(bodies: Sequence[Any]) -> str:
    """Multi-document block YAML, as `yaml.dump_all(bodies, Dumper=Dumper, sort_keys=False)` writes it."""
    stream = io.StringIO()
    if _CEmitter is None:
        yaml.dump_all(bodies, stream, Dumper=Dumper, sort_keys=False, default_flow_style=False, explicit_start=False)
    else:
        emitter = _CEmitter(stream)
        emitter.emit(yaml.StreamStartEvent())
        events = _Events(emitter)
        for body in bodies:
            events.document(body)
        emitter.emit(yaml.StreamEndEvent())
        emitter.dispose()
    return stream.getvalue().replace("\n...\n", "\n")


def _no_json(value: Any, field: str) -> str | None:
    """What in `value` (at `field`, a dotted path) JSON cannot hold, as one sentence; None if nothing.
    Integers past 64 bits are fine: JSON holds them, only orjson does not write them."""
    where = field or "the document"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}: {value} has no JSON form (JSON numbers are finite); quote it to keep it as a string"
    if isinstance(value, (bytes, bytearray)):
        return f"{where}: a !!binary value has no JSON form; write it as a base64 string (as Secret data is)"
    if isinstance(value, (set, frozenset)):
        return f"{where}: a !!set has no JSON form; write it as a list, or a mapping of keys to null"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, type(None), dt.date)):
                return f"{where}: the key {key!r} has no JSON form; keys are strings"
            problem = _no_json(item, f"{field}.{key}" if field else str(key))
            if problem:
                return problem
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _no_json(item, f"{field}[{index}]")
            if problem:
                return problem
    if not isinstance(value, (str, int, float, bool, type(None), dt.date, dict, list, tuple)):
        return f"{where}: a {type(value).__name__} has no JSON form"
    return None


def _iso(value: Any) -> str:
    if isinstance(value, dt.date):  # dates and datetimes, written as orjson writes them
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def dump_json(bodies: Sequence[Any], names: Sequence[str] = ()) -> str:
    """One object as itself; several as a v1 List, as `kubectl get -o json` prints them. UsageError
    naming the document (`names[i]`, else its position) and the field for what JSON cannot hold."""
    import orjson

    single = bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": list(bodies)}
    text: str | None
    try:
        text = orjson.dumps(single, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    except orjson.JSONEncodeError:
        text = None
    if text is None or "null" in text:  # orjson writes NaN and Infinity as null: look for them only then
        for index, body in enumerate(bodies):
            problem = _no_json(body, "")
            if problem:
                raise UsageError(f"{names[index] if index < len(names) else f'document {index + 1}'}: -o json: {problem}")
    if text is None:  # integers past 64 bits: the standard library writes them, digit for digit
        text = json.dumps(single, indent=2, ensure_ascii=False, default=_iso) + "\n"
    return text


def dump(bodies: Sequence[Any], out: IO[str], output: str = "yaml", names: Sequence[str] = ()) -> None:
    """`bodies` as YAML or JSON; `names` (each body's file and document) name a body JSON cannot hold."""
    if not bodies:
        return
    try:
        text = dump_json(bodies, names) if output == "json" else dump_yaml(bodies)
    except RecursionError:  # the writers recurse once per level; nothing was written yet
        raise UsageError(
            "a document nests too deeply for the output writer (hundreds of levels); no Kubernetes object nests so deep"
        ) from None
    out.write(text)
