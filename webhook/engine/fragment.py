"""A plugin's fragment compiled once: YAML structure fixed at load, Jinja2 expressions only in leaves.

Each leaf is evaluated on its own and its value assigned to a slot; the structure is assembled in
Python from those values. Values therefore reach the pod as data: an annotation holding YAML or
template text can never add a field.

Leaves that read only `settings`, `values`, `native` and the names the plugin's derivations give
(`hook.<name>` of a hook part that reads settings and values only) are "static": they are
evaluated once per distinct (settings, values, style) and folded into a specialised tree of
constants, so that per pod only the leaves that read the pod are evaluated.

Both halves are compiled at load into one plain Python function each per plugin
(`webhook/engine/leaves.py`), generated from each leaf's Jinja2 AST (a static half whose leaves use
`{% %}` statements stays one sandboxed Jinja2 template of `{% set %}` lines): no template context, and no
sandbox, whose per-call checks cost more than the lookups they guard. Every leaf is checked once, at
load, instead (`check_expression` in `webhook/engine/sandbox.py`): attributes and methods only from
an allow-list, no name starting with `_`, filters only with constant attribute names. At run time a subscript never falls
back to an attribute, so a key taken from the pod (`labels[annotations.x]`) can only ever read an
item. Pod data stays data either way: it is never compiled.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from jinja2 import Environment, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

from webhook.engine.errors import ConfigError
from webhook.engine.hooks import Derivation
from webhook.engine.leaves import Assignment, Attrs, Condition, CompiledLeaves, Step, compile_leaves
from webhook.engine.sandbox import check_expression, per_pod_environment, single_expression

_CONDITION_KEY = "$if"
_SPLICE_KEY = "$splice"
STATIC_NAMES = frozenset({"settings", "values", "native"})
# Globals that read nothing of the pod; any other name (`namespace`, `pod`, ...) makes a leaf per-pod.
_PURE_GLOBALS = frozenset({"json", "compact", "named", "range", "dict", "version_at_least"})
# The specialised trees are cached by settings, bounded in bytes (estimated, see _entry_bytes).
CACHE_BYTES = 8 * 1024 * 1024
_SCALARS = yaml.SafeLoader("")
_PER_POD_ENV = per_pod_environment()


_DROPPED = object()


class Node:
    """A compiled piece of the fragment; ``build`` turns slot results into plain data."""

    __slots__ = ()

    @property
    def static_only(self) -> bool:
        """Whether every slot and condition in it is static: specialised, it is one constant."""
        return False

    def build(self, results: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def specialize(self, results: Mapping[str, Any]) -> Node:
        """This node with every static slot and condition replaced by its value."""
        return self


class Const(Node):
    """A subtree without expressions: built once, shared by every pod (never mutated)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def build(self, results: Mapping[str, Any]) -> Any:
        return self.value

    @property
    def static_only(self) -> bool:
        return True


class Slot(Node):
    """A leaf whose value is an expression's result (native type) or a rendered string."""

    __slots__ = ("key", "where", "static")

    def __init__(self, key: str, where: str, static: bool) -> None:
        self.key = key
        self.where = where
        self.static = static

    def build(self, results: Mapping[str, Any]) -> Any:
        value = results[self.key]
        if isinstance(value, Undefined):  # StrictUndefined raises when used, not when assigned
            raise ConfigError(f"{self.where}: template error: {value._undefined_message}")
        return value

    def specialize(self, results: Mapping[str, Any]) -> Node:
        return Const(self.build(results)) if self.static else self

    @property
    def static_only(self) -> bool:
        return self.static


# How a map or list builds each of its children, decided once per (specialised) tree: constants
# and slots are read inline, not through a method call each (the build runs for every pod).
# A plan holds the children themselves only where a build needs them (a slot, for its error): a
# cached tree's memory is bounded, and `entries`/`items` are rebuilt from the plan when asked for.
_CONST = 0  # payload: the value (in a list: a tuple of values, a run of constants flattened)
_SLOT = 1  # payload: the slot's key in the results
_NODE = 2  # payload: the child's bound build method


class MapNode(Node):
    """A mapping, perhaps under ``$if``; entries whose value is null are left out."""

    __slots__ = ("condition", "condition_static", "plan", "_static_only")

    def __init__(self, entries: tuple[tuple[str, Node], ...], condition: str | None, condition_static: bool = False) -> None:
        self.condition = condition
        self.condition_static = condition_static
        self._static_only = (condition is None or condition_static) and all(node.static_only for _, node in entries)
        plan: list[tuple[int, str, Any, Node]] = []
        for key, node in entries:
            if type(node) is Const:
                if node.value is not None and node.value is not _DROPPED:  # left out by every build
                    plan.append((_CONST, key, node.value, _NO_NODE))
            elif type(node) is Slot:
                plan.append((_SLOT, key, node.key, node))
            else:
                plan.append((_NODE, key, node.build, _NO_NODE))
        self.plan = tuple(plan)

    @property
    def entries(self) -> tuple[tuple[str, Node], ...]:
        """The entries a build can give (a constant null is left out by every build anyway)."""
        return tuple((key, _child(kind, payload, node)) for kind, key, payload, node in self.plan)

    def build(self, results: Mapping[str, Any]) -> Any:
        if self.condition is not None and self.condition not in results:
            return _DROPPED
        out = {}
        for kind, key, payload, node in self.plan:
            if kind == _CONST:
                out[key] = payload
            elif kind == _SLOT:
                value = results[payload]
                if value is not None:
                    # An undefined value: the slot's own build raises with the leaf's line.
                    out[key] = node.build(results) if isinstance(value, Undefined) else value
            else:
                value = payload(results)
                if value is not None and value is not _DROPPED:
                    out[key] = value
        return out

    @property
    def static_only(self) -> bool:
        return self._static_only

    def specialize(self, results: Mapping[str, Any]) -> Node:
        if self._static_only:  # one build gives what specialising each part would
            return Const(self.build(results))
        condition = self.condition
        if condition is not None and self.condition_static:
            if condition not in results:
                return Const(_DROPPED)
            condition = None
        entries = []
        for key, node in self.entries:
            special = node.specialize(results)
            if isinstance(special, Const) and (special.value is None or special.value is _DROPPED):
                continue
            entries.append((key, special))
        if condition is None and all(isinstance(n, Const) for _, n in entries):
            return Const({k: n.value for k, n in entries})  # type: ignore[attr-defined]
        return MapNode(tuple(entries), condition)


class Splice(Node):
    """A list item ``{$splice: expression}``: the items of the list the expression gives, in place."""

    __slots__ = ("slot",)

    def __init__(self, slot: Slot) -> None:
        self.slot = slot

    def build(self, results: Mapping[str, Any]) -> Any:
        value = self.slot.build(results)
        if value is None:
            return _Spliced(())
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{self.slot.where}: $splice must give a list, got {type(value).__name__}")
        return _Spliced(tuple(value))

    def specialize(self, results: Mapping[str, Any]) -> Node:
        return Const(self.build(results)) if self.slot.static else self

    @property
    def static_only(self) -> bool:
        return self.slot.static


_NO_NODE = Const(None)  # in a plan, where the child itself is not kept


def _child(kind: int, payload: Any, node: Node) -> Node:
    """A child node again, from its step in a plan."""
    if kind == _CONST:
        return Const(payload)
    return payload.__self__ if kind == _NODE else node


class _Spliced(tuple[Any, ...]):
    """Items a Splice gives, flattened into the enclosing list."""


def _append(out: list[Any], value: Any) -> None:
    if isinstance(value, _Spliced):
        out.extend(value)
    elif value is not _DROPPED:
        out.append(value)


class ListNode(Node):
    """A sequence; items whose ``$if`` was false are left out, ``$splice`` items are flattened."""

    __slots__ = ("plan", "_static_only")

    def __init__(self, items: tuple[Node, ...]) -> None:
        self._static_only = all(node.static_only for node in items)
        plan: list[tuple[int, Any, Node]] = []
        run: list[Any] = []  # consecutive constant items, appended with one extend
        for node in items:
            if type(node) is Const:
                _append(run, node.value)
                continue
            if run:
                plan.append((_CONST, tuple(run), _NO_NODE))
                run = []
            if type(node) is Slot:
                plan.append((_SLOT, node.key, node))
            else:
                plan.append((_NODE, node.build, _NO_NODE))
        if run:
            plan.append((_CONST, tuple(run), _NO_NODE))
        self.plan = tuple(plan)

    @property
    def items(self) -> tuple[Node, ...]:
        """The items, each run of constants as one spliced constant (what it builds to)."""
        return tuple(_child(kind, _Spliced(payload) if kind == _CONST else payload, node) for kind, payload, node in self.plan)

    def build(self, results: Mapping[str, Any]) -> Any:
        out: list[Any] = []
        for kind, payload, node in self.plan:
            if kind == _CONST:
                out.extend(payload)
            elif kind == _SLOT:
                value = results[payload]
                out.append(node.build(results) if isinstance(value, Undefined) else value)
            else:
                value = payload(results)
                if type(value) is _Spliced:
                    out.extend(value)
                elif value is not _DROPPED:
                    out.append(value)
        return out

    @property
    def static_only(self) -> bool:
        return self._static_only

    def specialize(self, results: Mapping[str, Any]) -> Node:
        if self._static_only:  # one build gives what specialising each item would
            return Const(self.build(results))
        items = [n for n in (node.specialize(results) for node in self.items) if not (isinstance(n, Const) and n.value is _DROPPED)]
        if all(isinstance(n, Const) for n in items):
            out: list[Any] = []
            for n in items:
                _append(out, n.value)  # type: ignore[attr-defined]
            return Const(out)
        return ListNode(tuple(items))


@dataclass
class _Leaf:
    """What the compiler learned about one leaf or condition, to emit it into a program later."""

    key: str
    source: str  # the Jinja statement(s) that assign ``key``, for the static template
    line: int
    static: bool
    ast: nodes.Template  # the leaf (a condition: its `{{ expression }}`) as parsed, for the per-pod function
    single: bool = True  # one expression (its value kept), not text with interpolations


@dataclass
class _Compiler:
    """Walks YAML nodes into the Node tree and the leaves that the static template and the per-pod
    function are generated from."""

    path: str
    env: SandboxedEnvironment
    count: int = 0
    derived: frozenset[str] = frozenset()  # the `hook.<name>`s the plugin's derivations give

    def is_static(self, ast: nodes.Template, names: set[str]) -> bool:
        """Whether a leaf reads only settings, values, native and derived hook names: `hook` only
        ever as `hook.<a derived name>`."""
        if not names <= STATIC_NAMES | {"hook"}:
            return False
        if "hook" not in names:
            return True
        uses = sum(1 for n in ast.find_all(nodes.Name) if n.name == "hook")
        derived = sum(
            1 for g in ast.find_all(nodes.Getattr) if isinstance(g.node, nodes.Name) and g.node.name == "hook" and g.attr in self.derived
        )
        return uses == derived

    def check(self, source: str, yaml_line: int) -> tuple[nodes.Template, set[str]]:
        """Parse a leaf alone, for errors with its line; returns it and the names it reads."""
        try:
            ast = self.env.parse(source)
        except TemplateSyntaxError as err:
            raise ConfigError(f"{self.path}:{yaml_line}: template error: {err.message}") from None
        problem = check_expression(ast, self.env)
        if problem is not None:
            raise ConfigError(f"{self.path}:{yaml_line}: template error: {problem}")
        # Globals count too: `namespace` is both Jinja's global and the pod's namespace here.
        return ast, {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"} - _PURE_GLOBALS

    def next_key(self) -> str:
        self.count += 1
        return f"_s{self.count}"

    def compile(self, node: yaml.Node, static_scope: bool, out: list[Any]) -> Node:
        """``out`` collects _Leaf items and ("if", leaf, children) blocks in document order."""
        if isinstance(node, yaml.ScalarNode):
            return self.compile_scalar(node, static_scope, out)
        if isinstance(node, yaml.SequenceNode):
            items = tuple(self.compile_item(item, static_scope, out) for item in node.value)
            if all(isinstance(i, Const) for i in items):
                return Const([i.value for i in items])  # type: ignore[attr-defined]
            return ListNode(items)
        if isinstance(node, yaml.MappingNode):
            return self.compile_mapping(node, static_scope, out)
        raise ConfigError(f"{self.path}:{node.start_mark.line + 1}: unsupported YAML node")

    def compile_item(self, node: yaml.Node, static_scope: bool, out: list[Any]) -> Node:
        """A list item; ``{$splice: "{{ expression }}"}`` inserts the items of a list."""
        if isinstance(node, yaml.MappingNode) and len(node.value) == 1 and node.value[0][0].value == _SPLICE_KEY:
            value = node.value[0][1]
            if not isinstance(value, yaml.ScalarNode) or single_expression(self.env, value.value) is None:
                raise ConfigError(f"{self.path}:{value.start_mark.line + 1}: $splice takes one {{{{ expression }}}}")
            slot = self.compile_scalar(value, static_scope, out)
            assert isinstance(slot, Slot)
            return Splice(slot)
        return self.compile(node, static_scope, out)

    def compile_scalar(self, node: yaml.ScalarNode, static_scope: bool, out: list[Any]) -> Node:
        line = node.start_mark.line + 1
        value = _SCALARS.construct_object(node)
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            return Const(value)
        ast, names = self.check(value, line)
        key = self.next_key()
        expr = single_expression(self.env, value)
        source = f"{{% set {key} = ({expr}) %}}" if expr is not None else f"{{% set {key} %}}{value}{{% endset %}}"
        static = static_scope and self.is_static(ast, names)
        out.append(_Leaf(key, source, line, static, ast, expr is not None))
        return Slot(key, f"{self.path}:{line}", static)

    def compile_mapping(self, node: yaml.MappingNode, static_scope: bool, out: list[Any]) -> Node:
        condition: _Leaf | None = None
        entries: list[tuple[str, yaml.Node]] = []
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode) or not isinstance(key, str):
                raise ConfigError(f"{self.path}:{key_node.start_mark.line + 1}: keys must be strings")
            if key != _CONDITION_KEY:
                entries.append((key, value_node))
                continue
            if not isinstance(value_node, yaml.ScalarNode):
                raise ConfigError(f"{self.path}:{value_node.start_mark.line + 1}: $if takes an expression")
            raw = value_node.value.strip()
            expr = single_expression(self.env, raw) or raw
            line = value_node.start_mark.line + 1
            ast, names = self.check("{{ " + expr + " }}", line)
            condition = _Leaf(self.next_key(), f"{{% if ({expr}) %}}", line, static_scope and self.is_static(ast, names), ast)
        if condition is None:
            compiled = tuple((key, self.compile(value, static_scope, out)) for key, value in entries)
            if all(isinstance(n, Const) for _, n in compiled):
                return Const({k: n.value for k, n in compiled})  # type: ignore[attr-defined]
            return MapNode(compiled, None)
        children: list[Any] = []
        compiled = tuple((key, self.compile(value, condition.static, children)) for key, value in entries)
        out.append(("if", condition, children))
        return MapNode(compiled, condition.key, condition.static)


def _generate(items: list[Any], *, lines: list[str], source_lines: list[int]) -> None:
    """Emit the static leaves; a static condition wraps its children and sets its own key."""
    for item in items:
        if isinstance(item, _Leaf):
            if item.static:
                lines.append(item.source)
                source_lines.extend([item.line] * (item.source.count("\n") + 1))
            continue
        _, condition, children = item
        if not condition.static:
            continue  # everything under a per-pod condition is per-pod
        lines.append(f"{condition.source}{{% set {condition.key} = true %}}")
        source_lines.append(condition.line)
        _generate(children, lines=lines, source_lines=source_lines)
        lines.append("{% endif %}")
        source_lines.append(condition.line)


def per_pod_steps(items: list[Any]) -> list[Step]:
    """The per-pod leaves, each under the conditions it sits under. A static condition is tested
    again per pod, but only when something per-pod sits under it (the static tree has its value)."""
    steps: list[Step] = []
    for item in items:
        if isinstance(item, _Leaf):
            if not item.static:
                steps.append(Assignment(item.key, item.line, item.ast, item.single))
            continue
        _, condition, children = item
        body = per_pod_steps(children)
        if condition.static and not body:
            continue
        test = condition.ast.body[0].nodes[0]  # the `{{ expression }}` check parsed
        steps.append(Condition(condition.key, condition.line, test, tuple(body)))
    return steps


@dataclass
class _Program:
    """The static leaves' generated template and the plugin-file line of each of its lines."""

    path: str
    template: Any
    source_lines: tuple[int, ...]

    def run(self, context: dict[str, Any]) -> Mapping[str, Any]:
        if self.template is None:
            return {}
        template_context = self.template.new_context(context)
        try:
            for _ in self.template.root_render_func(template_context):
                pass
        except Exception:  # noqa: BLE001 - rewritten below into template lines, then reported
            self._raise_with_line()
        results: Mapping[str, Any] = template_context.vars
        return results

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


def static_steps(items: list[Any]) -> list[Step]:
    """The static leaves, each under the static conditions it sits under (as `_generate` emits them)."""
    steps: list[Step] = []
    for item in items:
        if isinstance(item, _Leaf):
            if item.static:
                steps.append(Assignment(item.key, item.line, item.ast, item.single))
            continue
        _, condition, children = item
        if condition.static:  # everything under a per-pod condition is per-pod
            test = condition.ast.body[0].nodes[0]  # the `{{ expression }}` check parsed
            steps.append(Condition(condition.key, condition.line, test, tuple(static_steps(children))))
    return steps


def _static_leaves(env: Environment, path: str, items: list[Any]) -> CompiledLeaves | _Program:
    """The static half as one generated Python function, as the per-pod leaves are (every leaf was
    checked at load; it runs once per distinct settings, and a pod with settings of its own pays
    it); a static leaf with `{% %}` statements, which the generator does not take, keeps the
    sandboxed Jinja program for the whole half."""
    try:
        return compile_leaves(static_steps(items), path=path, env=_PER_POD_ENV)
    except ConfigError:
        return _static_program(env, path, items)


def _static_program(env: Environment, path: str, items: list[Any]) -> _Program:
    lines: list[str] = []
    source_lines: list[int] = []
    _generate(items, lines=lines, source_lines=source_lines)
    if not lines:
        return _Program(path, None, ())
    source = "\n".join(lines)
    name = f"{path}#static"
    try:
        # Compiled with the plugin's path as filename, so runtime errors can be traced to a line.
        code = env.compile(source, name=name, filename=path)
        template = env.template_class.from_code(env, code, env.make_globals(None))
    except TemplateSyntaxError as err:
        line = source_lines[err.lineno - 1] if 0 < err.lineno <= len(source_lines) else "?"
        raise ConfigError(f"{path}:{line}: template error: {err.message}") from None
    return _Program(path, template, tuple(source_lines))


def freeze(value: Any) -> Any:
    """A hashable copy of plain data (lists and mappings become tuples)."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple((k, freeze(v)) for k, v in value.items())
    return value


class Prepared(NamedTuple):
    """What one distinct (settings, values, style) gives: the tree with its static leaves folded
    in, and the derived hook names (`hook.<name>`) the per-pod leaves read beside the pod's own."""

    tree: Node
    derived: Mapping[str, Any]


@dataclass
class Fragment:
    """The compiled fragment of one plugin: call ``render(context)`` to get plain data."""

    path: str
    root: Node
    static: CompiledLeaves | _Program
    per_pod: CompiledLeaves
    derivations: tuple[Derivation, ...] = ()
    _specialized: dict[tuple[Any, ...], tuple[Any, Prepared, int]] = field(default_factory=dict)
    _cached_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def render(self, context: dict[str, Any]) -> Any:
        """Evaluate the per-pod leaves over the cached static tree; raises ConfigError on a template bug.
        The context's `hook` (if any) holds the per-pod hooks' names; the derived ones are added."""
        prepared = self.specialized(context["settings"], context["values"], context["native"])
        if self.derivations:
            context = {**context, "hook": Attrs({**prepared.derived, **(context.get("hook") or {})})}
        return self.build(prepared, context)

    def build(self, prepared: Prepared, context: Mapping[str, Any]) -> Any:
        """The per-pod leaves over a prepared tree; the context's `hook` holds the derived names too."""
        return prepared.tree.build(self.per_pod.run(context))

    def specialized(self, settings: Mapping[str, Any], values: Mapping[str, Any], native: bool) -> Prepared:
        """The tree with static leaves folded in and the derived names, cached per distinct settings,
        values and style."""
        settings_key = getattr(settings, "cache_key", None)
        key = (freeze(settings) if settings_key is None else settings_key, id(values), native)
        cached = self._specialized.get(key)
        if cached is not None and cached[0] is values:
            return cached[1]
        derived = Attrs()
        for derivation in self.derivations:
            derived.update(_derive(self.path, derivation, settings, values))
        results = self.static.run({"settings": settings, "values": values, "native": native, "hook": derived})
        prepared = Prepared(self.root.specialize(results), derived)
        cost = _entry_bytes(key[0])
        if cost > CACHE_BYTES // 4:
            return prepared  # one pod's odd settings must not evict everyone's trees
        with self._lock:  # the server's side lane renders on a thread of its own
            while self._specialized and self._cached_bytes + cost > CACHE_BYTES:
                # The oldest first (dicts keep insertion order): a Deployment's settings come back soon.
                oldest = next(iter(self._specialized))
                self._cached_bytes -= self._specialized.pop(oldest)[2]
            previous = self._specialized.pop(key, None)
            if previous is not None:
                self._cached_bytes -= previous[2]
            self._specialized[key] = (values, prepared, cost)  # values kept alive, so its id stays its own
            self._cached_bytes += cost
        return prepared

    @property
    def reads(self) -> frozenset[str]:
        """The names of the render context the per-pod leaves read; the others need not be built."""
        return self.per_pod.reads

    @property
    def cached_bytes(self) -> int:
        """The estimated size of the cached trees; never above CACHE_BYTES."""
        return self._cached_bytes


# Measured with tracemalloc on the shipped templates: a specialised tree costs about 12-14 KiB, plus
# about 3.3 bytes per character of the settings it was built from (lists of ports, CIDRs).
_TREE_BYTES = 16 * 1024
_BYTES_PER_CHAR = 6


def _entry_bytes(settings_key: Any) -> int:
    """An upper estimate of one cached tree's memory, from the text of the settings it holds."""
    return _TREE_BYTES + _BYTES_PER_CHAR * len(repr(settings_key))


def _derive(path: str, derivation: Derivation, settings: Mapping[str, Any], values: Mapping[str, Any]) -> Mapping[str, Any]:
    """A derivation's names; it gives exactly those it declares (what the compiler took as static)."""
    given = derivation.derive(settings, values)
    if given.keys() != derivation.names:
        raise ConfigError(f"{path}: hook {derivation.derive.__name__} gave {sorted(given)}, not its declared {sorted(derivation.names)}")
    return given


def compile_fragment(
    node: yaml.Node, *, path: str, env: SandboxedEnvironment, derivations: tuple[Derivation, ...] = ()
) -> Fragment:
    """Compile the ``fragment`` YAML node of a plugin file; raises ConfigError naming file and line.
    ``derivations``: the plugin's hooks that read only settings and values (their names are static)."""
    compiler = _Compiler(path=path, env=env, derived=frozenset().union(*(d.names for d in derivations)))
    items: list[Any] = []
    root = compiler.compile(node, True, items)
    return Fragment(
        path=path,
        root=root,
        static=_static_leaves(env, path, items),
        per_pod=compile_leaves(per_pod_steps(items), path=path, env=_PER_POD_ENV),
        derivations=derivations,
    )
