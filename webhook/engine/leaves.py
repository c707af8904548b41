"""A plugin's per-pod leaves compiled, once at load, into one plain Python function.

The function is generated from the Jinja2 AST of each leaf and does what Jinja's own (unsandboxed)
code generator would, with the same values, undefined values and errors, without its per-pod
machinery: no template context, no name resolution per lookup, no `Context.call`. Every leaf passed
`check_expression` at load; this module only changes how the checked expression runs. Where it is
stricter, it is so at load: a per-pod leaf holds expressions only (no `{% %}` statements) and names
only tests that exist. The hint of an inline `if` without `else` names the plugin file's line.

What the generated source may contain: identifiers generated here, the helpers `_helpers` gives
and constants `kN` taken from a table. Names, attribute names, keys and strings a template wrote
reach the function as constants, never as source text, and pod data is only ever an argument: it
is never compiled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from jinja2 import Environment, TemplateError, Undefined, nodes
from jinja2 import filters as jinja_filters
from jinja2 import tests as jinja_tests
from jinja2.compiler import operators
from jinja2.runtime import Context, new_context, str_join
from jinja2.utils import _PassArg

from webhook.engine.errors import ConfigError


class Attrs(dict[str, Any]):
    """A mapping meshswitch builds itself (settings, values, workload): templates read its keys as
    attributes, item-first. User data (the pod, its labels) stays a plain dict, so a label named
    `get` can never shadow a method a template calls."""


class PerPodEnvironment(Environment):
    """The per-pod leaves' environment: its filters, tests and globals, and the lookups the compiled
    leaves make (also the ones filters such as `map(attribute=...)` make): our own maps read
    item-first, a subscript that never falls back to an attribute. No sandbox at run time: every
    leaf passed check_expression at load."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Attrs:
            try:
                return dict.__getitem__(obj, attribute)
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        try:
            return obj[argument]
        except (AttributeError, TypeError, LookupError):
            return self.undefined(obj=obj, name=argument)


@dataclass(frozen=True)
class Assignment:
    """A leaf: a single expression keeps its value's type, text with interpolations gives a string."""

    key: str
    line: int
    template: nodes.Template  # the leaf as parsed at load
    single: bool


@dataclass(frozen=True)
class Condition:
    """A `$if`: when its test holds, its key is set to True and the leaves under it are evaluated."""

    key: str
    line: int
    test: nodes.Expr
    body: tuple[Assignment | Condition, ...]


Step = Assignment | Condition
Results = dict[str, Any]


@dataclass(frozen=True)
class CompiledLeaves:
    """The compiled function of a plugin's per-pod leaves (or of its static ones): ``run(context)``
    gives ``{key: value}`` for the leaves and the conditions that held, as ``Node.build`` reads them."""

    path: str
    function: Callable[[Mapping[str, Any]], Results]
    reads: frozenset[str] = frozenset()  # the context names the function looks up

    def run(self, context: Mapping[str, Any]) -> Results:
        return self.function(context)


# Attribute names that are methods of our maps; any other name reads an item of them.
_MAP_ATTRIBUTES = frozenset(dir(Attrs))
_MISSING = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})
_KEY = re.compile(r"_s[0-9]+")  # the compiler's own result keys, the only strings written as source
_NO_ITEMS: Mapping[str, Any] = {}  # the items of a context value that is not a map (never written to)


def _helpers(env: PerPodEnvironment) -> dict[str, Any]:
    """What generated code may call, bound to the environment (Jinja's getattr and getitem)."""
    general_getattr = env.getattr
    undefined = env.undefined
    dict_get = dict.get

    def read_field(obj: Any, name: str) -> Any:
        """`obj.name` for a name that is no method of a dict: on our maps and the pod's, an item."""
        kind = type(obj)
        if kind is dict or kind is Attrs:
            value = dict_get(obj, name, _MISSING)
            if value is not _MISSING:
                return value
            if kind is dict:  # a plain dict has no other attributes; ours may (settings.cache_key)
                return undefined(obj=obj, name=name)
        return general_getattr(obj, name)

    def read_method(obj: Any, name: str) -> Any:
        """`obj.name` for a name that is a method of a dict (`get`, `items`): ours read items first."""
        kind = type(obj)
        if kind is dict:
            return getattr(obj, name)
        if kind is Attrs and name in obj:
            return dict.__getitem__(obj, name)
        return general_getattr(obj, name)

    return {
        "__builtins__": {},  # nothing but the helpers below
        "_field": read_field,
        "_items_of": _items_of,
        "_method": read_method,
        "_item": env.getitem,
        "_str": str,
        "_str_join": str_join,
        "_Exception": Exception,
        "_fail": _fail,
        "_select": _select,
        "_reject": _reject,
        "_map_with": _map_with,
        "_Mapping": Mapping,
        "_dict": dict,
        "_type": type,
        "_dict_get": dict.get,
        "_isinstance": isinstance,
    }


# Jinja's select, reject and map with a named test or filter look the name up and dispatch through
# Environment.call_test/call_filter for every item (about a microsecond each). For a name that is a
# constant naming a function that takes no context, the function is called directly: the same
# calls, in the same order, lazily, and nothing for a false value, as jinja2.filters does.
_SELECT = {jinja_filters.do_select: "_select", jinja_filters.do_reject: "_reject"}
# Tests that are one Python operator: written inline when the environment has Jinja's own.
_INLINE_TESTS = {
    jinja_tests.test_none: "({0} is None)",
    jinja_tests.test_sameas: "({0} is {1})",
    jinja_tests.test_mapping: "_isinstance({0}, _Mapping)",
}


def _select(value: Any, test: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if value:
        for item in value:
            if test(item, *args):
                yield item


def _reject(value: Any, test: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if value:
        for item in value:
            if not test(item, *args):
                yield item


def _map_with(value: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if value:
        for item in value:
            yield function(item, *args)


def _items_of(obj: Any) -> Mapping[str, Any]:
    """The items read_field reads first: those of a plain dict or of one of our maps; else none."""
    kind = type(obj)
    return obj if kind is dict or kind is Attrs else _NO_ITEMS


def _fail(path: str, line: int, err: Exception) -> None:
    """Any error while a leaf runs is the template's bug, reported at the leaf's line."""
    if isinstance(err, TemplateError):
        raise ConfigError(f"{path}:{line}: template error: {err}") from err
    raise ConfigError(f"{path}:{line}: template error: {err!r}") from err


@dataclass
class _Writer:
    """Generates the function's source: statements for steps, Python expressions for Jinja nodes."""

    path: str
    env: PerPodEnvironment
    constants: list[Any] = field(default_factory=list)
    constant_index: dict[tuple[type, Any], str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)  # context name local -> local of its map's items
    lines: list[str] = field(default_factory=list)
    context: Context | None = None
    temporaries: int = 0  # locals `tN` that hold an evaluated object for a call on it
    line: int = 0  # the plugin file's line of the leaf being written, for load errors

    def constant(self, value: Any) -> str:
        # Scalars by value (1 and True apart); anything else (functions, Undefined) by identity.
        key = (type(value), value) if type(value) in _SCALARS else (type(value), id(value))
        known = self.constant_index.get(key)
        if known is None:
            self.constants.append(value)
            known = self.constant_index[key] = f"k{len(self.constants) - 1}"
        return known

    def name(self, name: str) -> str:
        """The local holding a context name, resolved once at the top of the function."""
        if name not in self.names:
            self.names[name] = f"n{len(self.names)}"
        return self.names[name]

    def step(self, step: Step, indent: str) -> None:
        self.line = step.line
        self.lines.append(f"{indent}line = {step.line}")
        if isinstance(step, Condition):
            self.lines.append(f"{indent}if {self.expression(step.test)}:")
            self.lines.append(f"{indent}    r[{self.key(step.key)}] = True")
            for child in step.body:
                self.step(child, indent + "    ")
            return
        self.lines.append(f"{indent}r[{self.key(step.key)}] = {self.leaf(step)}")

    def key(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a result key: {key!r}")
        return repr(key)

    def leaf(self, leaf: Assignment) -> str:
        outputs = leaf.template.body
        if not all(isinstance(output, nodes.Output) for output in outputs):
            self.unsupported(next(o for o in outputs if not isinstance(o, nodes.Output)))
        parts = [child for output in outputs for child in output.nodes]  # type: ignore[attr-defined]
        if leaf.single:
            return self.expression(parts[0])
        # As Jinja's `{% set %}...{% endset %}` without autoescape: text, and str() of each value.
        pieces = [self.constant(p.data) if isinstance(p, nodes.TemplateData) else f"_str({self.expression(p)})" for p in parts]
        return " + ".join(pieces) if pieces else self.constant("")

    def expression(self, node: nodes.Node) -> str:
        visit = getattr(self, f"visit_{type(node).__name__}", None)
        if visit is None:
            self.unsupported(node)
        result: str = visit(node)
        return result

    def unsupported(self, node: nodes.Node) -> NoReturn:
        raise ConfigError(f"{self.path}:{self.line}: template error: {type(node).__name__} is not supported in a fragment leaf")

    def visit_Const(self, node: nodes.Const) -> str:
        return self.constant(node.value)

    def visit_Name(self, node: nodes.Name) -> str:
        if node.ctx != "load":
            self.unsupported(node)
        return self.name(node.name)

    def visit_Getattr(self, node: nodes.Getattr) -> str:
        helper = "_method" if node.attr in _MAP_ATTRIBUTES else "_field"
        target, attribute = self.expression(node.node), self.constant(node.attr)
        if helper == "_field" and isinstance(node.node, nodes.Name):
            # `settings.x` and the like, read dozens of times per pod: a present item of a context
            # map is read inline; anything else goes through _field as before.
            items = self.items.setdefault(target, f"m{len(self.items)}")
            return f"({items}[{attribute}] if {attribute} in {items} else _field({target}, {attribute}))"
        return f"{helper}({target}, {attribute})"

    def visit_Getitem(self, node: nodes.Getitem) -> str:
        if isinstance(node.arg, nodes.Slice):  # as in Jinja, a slice bypasses getitem
            return f"{self.expression(node.node)}[{self.slice(node.arg)}]"
        return f"_item({self.expression(node.node)}, {self.expression(node.arg)})"

    def slice(self, node: nodes.Slice) -> str:
        text = ":".join(self.expression(part) if part is not None else "" for part in (node.start, node.stop))
        return text if node.step is None else f"{text}:{self.expression(node.step)}"

    def visit_Call(self, node: nodes.Call) -> str:
        # check_expression admits only named globals and methods of data: none takes a context, so
        # Context.call would call them as they are.
        callee = self.env.globals.get(node.node.name) if isinstance(node.node, nodes.Name) else None
        if callable(callee) and _PassArg.from_obj(callee) is not None:
            self.unsupported(node)
        method = node.node
        if isinstance(method, nodes.Getattr) and method.attr == "get" and not (node.kwargs or node.dyn_args or node.dyn_kwargs):
            # `x.get(key)`, the templates' commonest call: on a plain dict, dict.get without the
            # bound method read_method makes; the object is evaluated once, before the arguments.
            held = f"t{self.temporaries}"
            self.temporaries += 1
            arguments = self.arguments(node, [])
            return f"(_dict_get({held}, {arguments}) if _type({held} := {self.expression(method.node)}) is _dict else _method({held}, {self.constant(method.attr)})({arguments}))"
        return f"{self.expression(node.node)}({self.arguments(node, [])})"

    def visit_Filter(self, node: nodes.Filter) -> str:
        if node.node is None:
            self.unsupported(node)
        return self.filter_or_test(node, self.env.filters.get(node.name), "filter")

    def visit_Test(self, node: nodes.Test) -> str:
        return self.filter_or_test(node, self.env.tests.get(node.name), "test")

    def filter_or_test(self, node: nodes.Filter | nodes.Test, function: Any, kind: str) -> str:
        if function is None:
            raise ConfigError(f"{self.path}:{self.line}: template error: No {kind} named {node.name!r}.")
        inline = _INLINE_TESTS.get(function) if kind == "test" else None
        if inline is not None and not (node.kwargs or node.dyn_args or node.dyn_kwargs) and len(node.args) + 1 == inline.count("{"):
            return inline.format(self.expression(node.node), *(self.expression(arg) for arg in node.args))  # type: ignore[arg-type]
        if kind == "filter" and (direct := self.direct_per_item(node, function)) is not None:
            return direct
        if getattr(function, "jinja_async_variant", False):
            function = function.__wrapped__  # the sync filter: a leaf never runs async, the wrapper only asks
        first = [self.expression(node.node)]  # type: ignore[arg-type]
        passed = _PassArg.from_obj(function)
        if passed is _PassArg.context:
            first.insert(0, self.constant(self.shared_context()))
        elif passed is _PassArg.eval_context:
            first.insert(0, self.constant(self.shared_context().eval_ctx))
        elif passed is _PassArg.environment:
            first.insert(0, self.constant(self.env))
        return f"{self.constant(function)}({self.arguments(node, first)})"

    def direct_per_item(self, node: nodes.Filter | nodes.Test, function: Any) -> str | None:
        """select/reject/map naming, as a constant, a test or filter that takes no context: a call
        to it per item; None where Jinja's own filter must run (any other form)."""
        if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None or not node.args:
            return None
        name = node.args[0]
        if not isinstance(name, nodes.Const) or not isinstance(name.value, str):
            return None
        named: Any  # the test or filter the name gives, if any
        if function in _SELECT:
            helper, named = _SELECT[function], self.env.tests.get(name.value)
        elif function is jinja_filters.do_map:
            helper, named = "_map_with", self.env.filters.get(name.value)
        else:
            return None
        if named is None or _PassArg.from_obj(named) is not None or getattr(named, "jinja_async_variant", False):
            return None
        rest = "".join(self.expression(arg) + ", " for arg in node.args[1:])
        return f"{helper}({self.expression(node.node)}, {self.constant(named)}, ({rest}))"  # type: ignore[arg-type]

    def shared_context(self) -> Context:
        """A context made once: the filters that take one (map, select, ...) use it only to reach
        the environment's filters and tests; its eval context has autoescape off, as a leaf's."""
        if self.context is None:
            self.context = new_context(self.env, None, {}, globals=self.env.make_globals(None))
        return self.context

    def arguments(self, node: nodes.Call | nodes.Filter | nodes.Test, first: list[str]) -> str:
        parts = first + [self.expression(arg) for arg in node.args]
        if node.dyn_args is not None:
            parts.append(f"*{self.expression(node.dyn_args)}")
        if node.kwargs:  # keyword names as constants, never as source
            parts.append("**{" + ", ".join(f"{self.constant(k.key)}: {self.expression(k.value)}" for k in node.kwargs) + "}")
        if node.dyn_kwargs is not None:
            parts.append(f"**{self.expression(node.dyn_kwargs)}")
        return ", ".join(parts)

    def visit_CondExpr(self, node: nodes.CondExpr) -> str:
        if node.expr2 is not None:
            otherwise = self.expression(node.expr2)
        else:
            # Jinja's implicit else: the plain Undefined (empty in text, an error as a leaf's value).
            hint = f"the inline if-expression on line {self.line} in {self.path!r} evaluated to false and no else section was defined."
            otherwise = self.constant(Undefined(hint))
        return f"({self.expression(node.expr1)} if {self.expression(node.test)} else {otherwise})"

    def visit_And(self, node: nodes.And) -> str:
        return f"({self.expression(node.left)} and {self.expression(node.right)})"

    def visit_Or(self, node: nodes.Or) -> str:
        return f"({self.expression(node.left)} or {self.expression(node.right)})"

    def visit_Not(self, node: nodes.Not) -> str:
        return f"(not {self.expression(node.node)})"

    def visit_Neg(self, node: nodes.Neg) -> str:
        return f"(-{self.expression(node.node)})"

    def visit_Pos(self, node: nodes.Pos) -> str:
        return f"(+{self.expression(node.node)})"

    def visit_Compare(self, node: nodes.Compare) -> str:
        chain = "".join(f" {operators[op.op]} {self.expression(op.expr)}" for op in node.ops)
        return f"({self.expression(node.expr)}{chain})"

    def binary(self, node: nodes.BinExpr) -> str:
        return f"({self.expression(node.left)} {node.operator} {self.expression(node.right)})"

    visit_Add = visit_Sub = visit_Mul = visit_Div = visit_FloorDiv = visit_Mod = visit_Pow = binary

    def visit_Concat(self, node: nodes.Concat) -> str:
        return f"_str_join(({''.join(self.expression(n) + ', ' for n in node.nodes)}))"

    def visit_List(self, node: nodes.List) -> str:
        return f"[{', '.join(self.expression(n) for n in node.items)}]"

    def visit_Tuple(self, node: nodes.Tuple) -> str:
        if node.ctx != "load":
            self.unsupported(node)
        return f"({''.join(self.expression(n) + ', ' for n in node.items)})"

    def visit_Dict(self, node: nodes.Dict) -> str:
        return "{" + ", ".join(f"{self.expression(p.key)}: {self.expression(p.value)}" for p in node.items) + "}"

    def source(self, steps: list[Step]) -> str:
        """The factory's source: it unpacks the constants, then defines the per-pod function."""
        for step in steps:
            self.step(step, "        ")
        body = self.lines or ["        pass"]
        path = self.constant(self.path)
        resolve = []
        for name, local in self.names.items():
            # As Jinja: the context's value, else the environment's global, else an undefined.
            fallback = self.env.globals[name] if name in self.env.globals else self.env.undefined(name=name)
            resolve.append(f"        {local} = get({self.constant(name)}, {self.constant(fallback)})")
            if local in self.items:  # read_field's items: those of a plain dict or one of ours
                items = self.items[local]
                resolve.append(f"        {items} = _items_of({local})")
        unpack = f"    ({''.join(f'k{i}, ' for i in range(len(self.constants)))}) = constants" if self.constants else ""
        return "\n".join([
            "def make(constants):",
            unpack,
            "    def leaves(context):",
            "        r = {}",
            "        line = 0",
            "        try:",
            "            get = context.get",
            *("    " + line for line in resolve),
            *("    " + line for line in body),
            "        except _Exception as err:",
            f"            _fail({path}, line, err)",
            "        return r",
            "    return leaves",
        ])  # fmt: skip


def compile_leaves(steps: list[Step], *, path: str, env: PerPodEnvironment) -> CompiledLeaves:
    """One function for a plugin's per-pod leaves; an unsupported expression raises ConfigError."""
    writer = _Writer(path=path, env=env)
    source = writer.source(steps)
    namespace = _helpers(env)
    # The plugin's path as filename, so a traceback through the generated code names the plugin.
    exec(compile(source, path, "exec"), namespace)  # noqa: S102 - source built only from our own tokens, see the docstring
    function: Callable[[Mapping[str, Any]], Results] = namespace["make"](tuple(writer.constants))
    return CompiledLeaves(path, function, frozenset(writer.names))
