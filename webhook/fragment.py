"""A plugin's fragment compiled once: YAML structure fixed at load, Jinja2 expressions only in leaves.

The whole fragment becomes one sandboxed Jinja2 template whose only output is a call per leaf that
stores the leaf's value; the structure is then assembled in Python. Values therefore reach the pod
as data: an annotation holding YAML or template text can never add a field.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

from webhook.errors import ConfigError

_CONDITION_KEY = "$if"
_SCALARS = yaml.SafeLoader("")


def _to_json(value: Any) -> str:
    # Compact and without Jinja's HTML escaping, as the meshes' own injectors write JSON.
    return orjson.dumps(value).decode()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def single_expression(env: SandboxedEnvironment, text: str) -> str | None:
    """The expression inside a leaf that is exactly one `{{ ... }}`, else None (a text leaf)."""
    stripped = text.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    try:
        body = env.parse(stripped).body
    except TemplateSyntaxError:
        return None
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    if isinstance(body[0].nodes[0], nodes.TemplateData):
        return None
    return stripped[2:-2].strip("-+").strip()


def _compact(value: Any) -> Any:
    """Drop null and empty entries, so `{'cpu': settings.cpu}` stays valid when cpu is unset."""
    if isinstance(value, Mapping):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {} and v != []}
    return value


class Attrs(dict[str, Any]):
    """A mapping meshswitch builds itself (settings, values, workload): templates read its keys as
    attributes, item-first. User data (the pod, its labels) stays a plain dict, so a label named
    `get` can never shadow a method a template calls."""


class _Environment(SandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Attrs:
            try:
                return dict.__getitem__(obj, attribute)
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def make_environment() -> SandboxedEnvironment:
    """The one environment every plugin compiles in: sandboxed, strict about undefined names."""
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["json"] = _to_json
    env.filters["sha256"] = _sha256
    env.globals["json"] = _to_json
    env.globals["compact"] = _compact
    return env


class Node:
    """A compiled piece of the fragment; ``build`` turns the slot results into plain data."""

    __slots__ = ()

    def build(self, results: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class Const(Node):
    """A subtree without expressions: built once, shared by every pod (never mutated)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def build(self, results: Mapping[str, Any]) -> Any:
        return self.value


class Slot(Node):
    """A leaf whose value is an expression's result (native type) or a rendered string."""

    __slots__ = ("key", "where")

    def __init__(self, key: str, where: str) -> None:
        self.key = key
        self.where = where

    def build(self, results: Mapping[str, Any]) -> Any:
        value = results[self.key]
        if isinstance(value, Undefined):  # StrictUndefined raises when used, not when assigned
            raise ConfigError(f"{self.where}: template error: {value._undefined_message}")
        return value


class MapNode(Node):
    """A mapping; entries whose value is null are left out, so an expression can omit a field."""

    __slots__ = ("entries", "condition")

    def __init__(self, entries: tuple[tuple[str, Node], ...], condition: str | None) -> None:
        self.entries = entries
        self.condition = condition

    def build(self, results: Mapping[str, Any]) -> Any:
        out = {}
        for key, node in self.entries:
            value = node.build(results)
            if value is not None and value is not _DROPPED:
                out[key] = value
        return out


class ListNode(Node):
    """A sequence; items whose ``$if`` was false are left out."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Node, ...]) -> None:
        self.items = items

    def build(self, results: Mapping[str, Any]) -> Any:
        out = []
        for node in self.items:
            if isinstance(node, MapNode) and node.condition is not None and node.condition not in results:
                continue
            out.append(node.build(results))
        return out


_DROPPED = object()


class _Conditional(MapNode):
    """A mapping under ``$if`` placed directly as a map value: dropped with its entry."""

    __slots__ = ()

    def build(self, results: Mapping[str, Any]) -> Any:
        if self.condition not in results:
            return _DROPPED
        return super().build(results)


@dataclass
class _Compiler:
    """Walks YAML nodes, emitting Jinja source per leaf and the Node tree that assembles them."""

    path: str
    env: SandboxedEnvironment
    lines: list[str]
    source_lines: list[int]

    def emit(self, text: str, yaml_line: int) -> None:
        self.lines.append(text)
        self.source_lines.extend([yaml_line] * (text.count("\n") + 1))

    def check(self, source: str, yaml_line: int) -> None:
        try:
            self.env.parse(source)
        except TemplateSyntaxError as err:
            raise ConfigError(f"{self.path}:{yaml_line}: template error: {err.message}") from None

    def compile(self, node: yaml.Node) -> Node:
        if isinstance(node, yaml.ScalarNode):
            return self.compile_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            items = tuple(self.compile(item) for item in node.value)
            if all(isinstance(i, Const) for i in items):
                return Const([i.value for i in items])  # type: ignore[attr-defined]
            return ListNode(items)
        if isinstance(node, yaml.MappingNode):
            return self.compile_mapping(node)
        raise ConfigError(f"{self.path}:{node.start_mark.line + 1}: unsupported YAML node")

    def compile_scalar(self, node: yaml.ScalarNode) -> Node:
        line = node.start_mark.line + 1
        value = _SCALARS.construct_object(node)
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            return Const(value)
        key = f"_s{len(self.lines)}"
        self.check(value, line)
        expr = single_expression(self.env, value)
        if expr is not None:
            self.emit(f"{{% set {key} = ({expr}) %}}", line)
        else:
            self.emit(f"{{% set {key} %}}{value}{{% endset %}}", line)
        return Slot(key, f"{self.path}:{line}")

    def compile_mapping(self, node: yaml.MappingNode) -> Node:
        condition: str | None = None
        entries: list[tuple[str, yaml.Node]] = []
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode) or not isinstance(key, str):
                raise ConfigError(f"{self.path}:{key_node.start_mark.line + 1}: keys must be strings")
            if key == _CONDITION_KEY:
                if not isinstance(value_node, yaml.ScalarNode):
                    raise ConfigError(f"{self.path}:{value_node.start_mark.line + 1}: $if takes an expression")
                raw = value_node.value.strip()
                expr = single_expression(self.env, raw) or raw
                line = value_node.start_mark.line + 1
                self.check("{{ " + expr + " }}", line)
                condition = f"_s{len(self.lines)}"
                self.emit(f"{{% if ({expr}) %}}{{% set {condition} = true %}}", line)
            else:
                entries.append((key, value_node))
        compiled = tuple((key, self.compile(value)) for key, value in entries)
        if condition is not None:
            self.emit("{% endif %}", node.end_mark.line + 1)
            return _Conditional(compiled, condition)
        if all(isinstance(n, Const) for _, n in compiled):
            return Const({k: n.value for k, n in compiled})  # type: ignore[attr-defined]
        return MapNode(compiled, None)


@dataclass(frozen=True)
class Fragment:
    """The compiled fragment of one plugin: call ``render(context)`` to get plain data."""

    path: str
    root: Node
    template: Any
    source_lines: tuple[int, ...]

    def render(self, context: dict[str, Any]) -> Any:
        """Evaluate every expression once and assemble the fragment; raises ConfigError on a template bug."""
        if self.template is None:
            return self.root.build({})
        template_context = self.template.new_context(context)
        try:
            for _ in self.template.root_render_func(template_context):
                pass
        except Exception:  # noqa: BLE001 - rewritten below into template lines, then reported
            self._raise_with_line()
        results = template_context.vars
        return self.root.build(results)

    def _raise_with_line(self) -> None:
        try:
            # Jinja maps the generated code's frames back to template lines.
            self.template.environment.handle_exception()
        except TemplateError as err:
            raise ConfigError(f"{self.path}:{self.line_of(err)}: template error: {err}") from err
        except Exception as err:  # a helper failed on a value: still the template's bug
            raise ConfigError(f"{self.path}:{self.line_of(err)}: template error: {err!r}") from err

    def line_of(self, err: BaseException) -> int | str:
        """Map the generated template's line back to the plugin file's line."""
        for frame in reversed(traceback.extract_tb(err.__traceback__)):
            if frame.filename == self.path and frame.lineno is not None and 0 < frame.lineno <= len(self.source_lines):
                return self.source_lines[frame.lineno - 1]
        return "?"


def compile_fragment(node: yaml.Node, *, path: str, env: SandboxedEnvironment) -> Fragment:
    """Compile the ``fragment`` YAML node of a plugin file; raises ConfigError naming file and line."""
    compiler = _Compiler(path=path, env=env, lines=[], source_lines=[])
    root = compiler.compile(node)
    if not compiler.lines:
        return Fragment(path=path, root=root, template=None, source_lines=())
    source = "\n".join(compiler.lines)
    try:
        # Compiled with the plugin's path as filename, so runtime errors can be traced to a line.
        code = env.compile(source, name=path, filename=path)
        template = env.template_class.from_code(env, code, env.make_globals(None))
    except TemplateSyntaxError as err:
        line = compiler.source_lines[err.lineno - 1] if 0 < err.lineno <= len(compiler.source_lines) else "?"
        raise ConfigError(f"{path}:{line}: template error: {err.message}") from None
    return Fragment(path=path, root=root, template=template, source_lines=tuple(compiler.source_lines))

