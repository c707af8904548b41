"""The template language of a plugin's fragment: the filters and functions meshswitch adds to
Jinja2, the sandboxed environment that parses every plugin and runs its static leaves, and the
load-time check (`check_expression`) that lets the per-pod leaves run without that sandbox
(`webhook/engine/fragment.py` says which leaves are which)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import orjson
import yaml
from jinja2 import Environment, StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from webhook.engine.kube import go_json
from webhook.engine.leaves import Attrs, PerPodEnvironment
from webhook.engine.releases import version_at_least
from webhook.engine.schema import TypeMismatch, conform, go_float_text
from webhook.engine.settings import nesting_problem, quantity
from webhook.engine.yamltext import plain_scalar, quoted_scalar, single_quoted_scalar

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BUILTIN_METHOD: Any = type({}.get)


def _to_json(value: Any, sort_keys: bool = False) -> str:
    # Compact and without Jinja's HTML escaping: as the meshes' own injectors (Go) write JSON.
    return go_json(value, sort_keys=sort_keys)


def _from_json(value: Any) -> Any:
    """Parsed JSON, or None when the text is not JSON (a mesh that ignores a bad value does the
    same) or nests too deep to be written into a pod."""
    if not isinstance(value, str):
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return parsed if nesting_problem(parsed) is None else None


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _env_list(raw: Any) -> list[Any]:
    """A JSON list of env vars (each a mapping with a name) from an annotation value; [] otherwise."""
    if isinstance(raw, list):
        return raw
    try:
        value = orjson.loads(raw) if isinstance(raw, str) and raw else []
    except orjson.JSONDecodeError:
        return []
    ok = isinstance(value, list) and all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in value)
    if not ok or nesting_problem(value) is not None:
        return []
    try:  # as Go's json.Unmarshal into []EnvVar: a wrong type anywhere and the value is ignored
        return conform(value, "[EnvVar]")  # type: ignore[no-any-return]
    except TypeMismatch:
        return []


def _kube_fields(value: Any, kind: str) -> Any:
    """`value` as the API server keeps it in a field of Kubernetes type `kind`: the fields it does not
    know, in the field's own case, dropped (a mesh that writes a map of its install's whole, such as
    Linkerd's proxy.securityContext). None where it could not be read; the value was checked where it
    was taken."""
    try:
        return conform(value, kind, yaml_text=True, exact_names=True)
    except TypeMismatch:
        return None


def _merge_named(base: Any, later: Any) -> list[Any]:
    """`base` with each item of `later` replacing the item of the same name in place, else appended."""
    out = list(base or ())
    for item in later or ():
        index = next((i for i, old in enumerate(out) if old.get("name") == item.get("name")), None)
        if index is None:
            out.append(item)
        else:
            out[index] = item
    return out


def _append_missing(items: Any, item: Any) -> list[Any]:
    """`items` with `item` appended, unless it is none or already among them (duplicates in `items`
    stay): a list extended once without writing the list twice in a leaf."""
    out = list(items or ())
    if item is not None and item not in out:
        out.append(item)
    return out


# C0 control characters but a tab and the line breaks: Istio's template YAML reads them inside
# single quotes, but the JSON document its injection makes of it cannot hold them (its strategic
# merge fails, "invalid JSON document").
_UNCARRIED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _yaml_single_quoted(value: Any) -> str | None:
    """Text the mesh's template writes inside single quotes, as its YAML reads it; None where the
    mesh's injection fails on it: YAML refuses it there (a lone quote, a line starting with `---` or
    `...`), or it holds a C0 control character other than a tab or a line break."""
    text = str(value)
    return None if _UNCARRIED.search(text) else single_quoted_scalar(text)


def _append_multus_network(existing: Any, network: str) -> str:
    """A Multus `k8s.v1.cni.cncf.io/networks` value with `network` (`namespace/name`) added, as
    Istio's injector adds its CNI network (appendMultusNetwork): to a JSON list (a value with a `]`)
    as one more object before its last `]`, unless an object has that name and namespace (a value
    that is no JSON list of objects is left as it is); to a comma list as one more item, unless an
    item is it already."""
    text = "" if existing is None else str(existing)
    if not text:
        return network
    namespace, _, name = network.rpartition("/")
    end = text.rfind("]")
    if end != -1:
        try:
            networks = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if not isinstance(networks, list) or not all(isinstance(n, dict) for n in networks):
            return text  # Go reads it into []map[string]any: anything else fails, the value is kept
        if any(n.get("name") == name and (n.get("namespace") if n.get("namespace") is not None else "") == namespace for n in networks):
            return text
        added = f', {{"name": "{name}", "namespace": "{namespace}"}}' if namespace else f', {{"name": "{name}"}}'
        return text[:end] + added + text[end:]
    if any(item.strip() == network for item in text.split(",")):
        return text
    return f"{text}, {network}"


def _json_env(text: Any) -> list[dict[str, str]] | None:
    """A JSON object spread into env entries as Istio's sidecar template spreads apm.datadoghq.com/env
    (`range fromJSON`): in sorted name order, each name as an unquoted YAML scalar reads it, each
    value as Go's `%v` writes it (JSON numbers are float64) inside double quotes. None where Istio's
    injection fails: no JSON, JSON that is no object, list or null, a name YAML reads as no string
    (`true`, `N`, `1`), a value YAML refuses there (a bare quote)."""
    try:
        found = orjson.loads(str(text))
    except orjson.JSONDecodeError:
        return None  # Istio's fromJSON gives the text "{}", which its range cannot iterate
    if found is None or found == []:
        return []
    if not isinstance(found, dict):
        return None  # a list's names are its indexes (numbers), which no env name may be
    if nesting_problem(found) is not None:
        return None  # Go would write it; no env value nested 64 deep is meant, and %v recurses here
    env = []
    for key in sorted(found):
        name = _yaml_plain_string(key)
        value = _go_text(found[key])
        decoded = None if value is None else quoted_scalar(value)
        if name is None or decoded is None:
            return None
        env.append({"name": name, "value": decoded})
    return env


# YAML 1.1 booleans Go's YAML reader knows beyond PyYAML's.
_GO_YAML_BOOLS = frozenset({"y", "Y", "n", "N"})


def _yaml_plain_string(text: str) -> str | None:
    """`name: <text>` as Go's YAML reads it, when that is a string; else None."""
    if text in _GO_YAML_BOOLS:
        return None
    try:
        read = yaml.load(f"name: {text}", Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return None
    return read["name"] if isinstance(read, dict) and list(read) == ["name"] and isinstance(read["name"], str) else None


def _go_text(value: Any) -> str | None:
    """A value of Go's JSON reader (into `any`) as `%v` writes it; None for a number float64 cannot hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int | float):
        try:
            return go_float_text(float(value))
        except OverflowError:
            return None
    parts = [(f"{k}:", _go_text(value[k])) for k in sorted(value)] if isinstance(value, dict) else [("", _go_text(v)) for v in value]
    if any(text is None for _, text in parts):
        return None
    inside = " ".join(f"{prefix}{text}" for prefix, text in parts)
    return f"map[{inside}]" if isinstance(value, dict) else f"[{inside}]"


def _with_image_type(tag: Any, image_type: Any, known: Any = (), plain: Any = None) -> str:
    """`tag` for the image of `image_type`, as image variants are named by a suffix (Istio's
    `1.30.3-distroless`): no type (none, empty) keeps the tag as it is; else a `known` type already
    at its end is dropped first, then `-<type>` appended, unless the type is `plain` (Istio's
    `default`: the image without a suffix)."""
    text = str(tag)
    if image_type is None or image_type == "":
        return text
    for suffix in known or ():
        if text.endswith(f"-{suffix}"):
            text = text[: -len(suffix) - 1]
            break
    return text if image_type == plain else f"{text}-{image_type}"


_QUANTITY_PARTS = re.compile(r"\+?0*([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+)|([KMGTPE]i)|([numkMGTPE]))?")
_SI_EXPONENT = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_INT64_MAX = 2**63 - 1


def whole_cores(value: Any) -> int:
    """A CPU quantity rounded up to whole cores (`1500m` -> 2, `.5` -> 1, `0` -> 0), as Linkerd's
    ToWholeCPUCores does: 0 where Kubernetes' Quantity.AsInt64 fails, that is where ParseQuantity
    keeps the value as a decimal (more than 18 digits, finer than nanos, a large binary suffix:
    `1000000000000000000`, `1Pi`) or the whole number is beyond int64 (`1e19`, `10E`)."""
    text = str(value).strip()
    match = _QUANTITY_PARTS.fullmatch(text)
    if match is None or quantity(text) is None:
        return 0
    num, denom, power, binary, si = match[1] or "0", match[2] or "", match[3], match[4], match[5]
    if binary is not None:  # ParseQuantity's fast path for Ki..Ei: no fraction, a rough precision
        exponent = 10 * ("KMGTPE".index(binary[0]) + 1)
        if denom or 15 - len(num) - exponent * 3 // 10 - 1 < 0:
            return 0
        number, scale = int(num) << exponent, 0
    else:
        scale = int(power) if power is not None else _SI_EXPONENT.get(si or "", 0)
        if len(num) + len(denom) > 18 or scale - len(denom) < -9:
            return 0
        number, scale = int(num + denom), scale - len(denom)
    if number > _INT64_MAX:
        return 0
    if scale < 0:
        divisor: int = 10**-scale
        return -(-number // divisor)
    cores: int = number * 10**scale if scale < 19 else _INT64_MAX + 1
    return cores if cores <= _INT64_MAX else 0


def _yaml_plain(value: Any) -> Any:
    """A setting the mesh's template writes unquoted, as its YAML reads it (settings refused the rest)."""
    return plain_scalar(value) if isinstance(value, str) else value


def _yaml_quoted(value: Any) -> Any:
    """A setting, or a mapping's values, the mesh's template writes inside double quotes, as its YAML
    reads them; text YAML refuses there was refused with the setting, and is passed on as it is."""
    if isinstance(value, Mapping):
        return {key: _yaml_quoted(item) for key, item in value.items()}
    decoded = quoted_scalar(value) if isinstance(value, str) else None
    return value if decoded is None else decoded


def _go_float(value: Any) -> str:
    """A number as Go's `%v` writes a float64 (a chart value read from JSON): its shortest digits,
    in exponent form from a decimal exponent of 6 or below -4 (`999999`, `1e+06`, `3e+09`)."""
    number = float(value)
    return "0" if number == 0 else go_float_text(number)  # a chart's -0 is an int's 0


def _go_snakecase(text: str) -> str:
    """Sprig's `snakecase` (huandu/xstrings ToSnakeCase, ported step for step): words split at case
    changes and connectors, lower-cased and joined by `_`; a number stays with the word before it
    unless lower-case letters follow it (`keepAliveInterval` -> keep_alive_interval, `http2` ->
    http2, `http2xx` -> http_2xx, `HTTPServer` -> http_server)."""
    words = _xstrings_words(text)
    out: list[str] = []
    position = 0

    def next_word() -> tuple[str, str, bool]:
        """The next (kind, word) and whether text remains after it; ("", "") past the end."""
        nonlocal position
        if position >= len(words):
            return "", "", False
        position += 1
        kind, word = words[position - 1]
        return kind, word, position < len(words)

    def lower(kind: str, word: str) -> None:
        lowered = kind in ("upper", "connector")
        out.append("".join("_" if lowered and _is_connector(c) else c.lower() if lowered else c for c in word))

    kind, word, remaining = next_word()
    while remaining:
        if kind != "connector":
            lower(kind, word)
        previous, last = kind, word
        kind, word, remaining = next_word()
        if previous == "number":
            while kind in ("alpha", "number"):
                lower(kind, word)
                kind, word, remaining = next_word()
            if kind not in ("", "punct", "connector"):
                out.append("_")
        elif previous == "connector":
            lower(previous, last)
        elif previous == "punct":
            pass
        elif kind != "number":
            if kind not in ("connector", "punct"):
                out.append("_")
        elif remaining:
            last = word
            kind, word, remaining = next_word()
            if kind != "alpha":
                lower("number", last)
                if kind not in ("connector", "punct"):
                    out.append("_")
            else:
                out.append("_")
                lower("number", last)
                while kind in ("alpha", "number"):
                    lower(kind, word)
                    kind, word, remaining = next_word()
                if kind not in ("", "connector", "punct"):
                    out.append("_")
    lower(kind, word)
    return "".join(out)


def _snake_env(params: Any, prefix: str, depth: int = 4) -> list[dict[str, Any]]:
    """Env vars from nested mappings as a Helm chart's nested `range` writes them: keys in sorted
    order, each snake-cased (sprig's `snakecase`) and upper-cased after `prefix`, `depth` levels
    down; the value as sprig's `quote` writes it (a number as Go's float64, none as no value).
    A level that is not a mapping gives nothing."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, name: str, level: int) -> None:
        if level == depth:
            if node is None:
                found.append({"name": name})
            elif isinstance(node, bool):
                found.append({"name": name, "value": "true" if node else "false"})
            elif isinstance(node, int | float):
                found.append({"name": name, "value": _go_float(node)})
            else:
                found.append({"name": name, "value": _go_print(node)})
            return
        if isinstance(node, Mapping):
            for key in sorted(node, key=str):
                walk(node[key], f"{name}_{_go_snakecase(str(key)).upper()}", level + 1)

    walk(params, prefix, 0)
    return found


def _go_print(value: Any) -> str:
    """fmt's %v of a value Go read from JSON into an interface{} (sprig's `quote` of a map or list):
    `map[k:v ...]` in key order, `[a b]`, float64 numbers, `<nil>`."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_float_text(float(value))
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{key}:{_go_print(value[key])}" for key in sorted(value, key=str)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_print(item) for item in value) + "]"
    return str(value)


def _is_connector(c: str) -> bool:
    return c in "-_" or c.isspace()


def _char_kind(c: str) -> str:
    if _is_connector(c):
        return "connector"
    if unicodedata.category(c).startswith("P"):
        return "punct"
    if c.isupper():
        return "upper"
    if c.isalpha():
        # xstrings counts CJK ideographs as no alphabet: words of their own.
        cjk = "\u3400" <= c <= "\u4d85" or "\u4e00" <= c <= "\u9fcc" or "\U00020000" <= c <= "\U0002b81d"
        return "other" if cjk else "alpha"
    if c.isnumeric():
        return "number"
    return "other"


def _xstrings_words(text: str) -> list[tuple[str, str]]:
    """xstrings' nextWord over the whole text: (kind, word) pairs; an upper-case run before a
    lower-case letter leaves its last capital to the next word (`HTTPServer` -> HTTP, Server)."""
    words: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        kind, j = _char_kind(text[i]), i + 1
        if kind == "upper":
            if j < n and _char_kind(text[j]) == "upper":
                while j < n and _char_kind(text[j]) == "upper":
                    j += 1
                if j < n and _char_kind(text[j]) == "alpha":
                    j -= 1
            else:
                while j < n and _char_kind(text[j]) == "alpha":
                    j += 1
        elif kind in ("connector", "punct", "number"):
            while j < n and _char_kind(text[j]) == kind:
                j += 1
        elif kind == "alpha":
            while j < n and _char_kind(text[j]) == "alpha":
                j += 1
        else:
            while j < n and _char_kind(text[j]) == "other":
                j += 1
        words.append((kind, text[i:j]))
        i = j
    return words


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
    if not isinstance(value, Mapping):
        return value
    kept = {}
    for k, v in value.items():  # one pass (it runs per pod); a plain dict is the usual mapping
        if type(v) is dict or isinstance(v, Mapping):
            v = _compact(v)
        if v is not None and v != {} and v != []:
            kept[k] = v
    return kept


def _named(value: Any, field: str | None = None) -> list[dict[str, Any]]:
    """`{name: spec}` as a list of named items: `{name, **spec}`, or `{name, <field>: spec}` (env
    from a map). Anything but a mapping gives an empty list, as a mesh ignores a malformed value."""
    if not isinstance(value, Mapping):
        return []
    if field is not None:
        return [{"name": str(k), field: v if isinstance(v, str) else _to_json(v) if isinstance(v, dict | list) else str(v).lower() if isinstance(v, bool) else str(v)} for k, v in value.items()]
    return [{"name": str(k), **v} for k, v in value.items() if isinstance(v, Mapping)]


class _Environment(SandboxedEnvironment):
    """The sandbox, with fast paths for the two things templates do most: read our own maps, and
    call `.get` on the pod's labels and annotations (a read that the sandbox would allow anyway)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Attrs:
            try:
                return dict.__getitem__(obj, attribute)
            except KeyError:
                pass
        elif attribute == "get" and type(obj) is dict:
            return obj.get
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        if type(__obj) is _BUILTIN_METHOD and __obj.__name__ == "get" and type(getattr(__obj, "__self__", None)) is dict:
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)


# What a template may call or read by attribute on the data it sees: reads only, no mutation, no
# string formatting (which reaches attributes by name), nothing private.
SAFE_ATTRIBUTES = frozenset({
    "get", "items", "keys", "values", "count", "index",
    "startswith", "endswith", "split", "rsplit", "splitlines", "partition", "rpartition", "strip", "lstrip",
    "rstrip", "lower", "upper", "title", "casefold", "replace", "join", "find", "rfind", "removeprefix",
    "removesuffix", "zfill", "isdigit", "isalnum", "isalpha", "isdecimal", "isnumeric",
})  # fmt: skip
# Filters that take an attribute name; it must be a constant a template author wrote.
_ATTRIBUTE_FILTERS = frozenset({"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"})
_UNSAFE_FILTERS = frozenset({"attr", "format", "xmlattr"})


def check_expression(ast: nodes.Node, env: Environment) -> str | None:
    """Why a parsed leaf may not run outside the sandbox, or None when it may."""
    for node in ast.find_all((nodes.Getattr, nodes.Call, nodes.Filter, nodes.Test, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name):
            if node.name.startswith("_"):
                return f"name {node.name!r} is not allowed (names starting with '_' are private)"
        elif isinstance(node, nodes.Getattr):
            if node.attr.startswith("_") or (node.attr not in SAFE_ATTRIBUTES and _is_called(ast, node)):
                return f"method or attribute {node.attr!r} is not allowed; accepted methods: {', '.join(sorted(SAFE_ATTRIBUTES))}"
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
                return f"item {node.arg.value!r} is not allowed (names starting with '_' are private)"
        elif isinstance(node, nodes.Call):
            callee = node.node
            allowed = callable_globals(env)
            if isinstance(callee, nodes.Name) and callee.name not in allowed:
                return f"{callee.name}() is not allowed; accepted functions: {', '.join(sorted(allowed))}"
            if not isinstance(callee, nodes.Name | nodes.Getattr):
                return "this call is not allowed (only named functions and methods may be called)"
        elif isinstance(node, nodes.Filter):
            if node.name in _UNSAFE_FILTERS or node.name not in env.filters:
                return f"filter {node.name!r} is not allowed"
            for keyword in node.kwargs:
                if keyword.key == "attribute" and not (isinstance(keyword.value, nodes.Const) and not str(keyword.value.value).startswith("_")):
                    return f"filter {node.name!r}: this attribute= is not allowed (it must be a constant public name)"
            if node.name in _ATTRIBUTE_FILTERS and node.name == "map" and node.args and not node.kwargs:
                first = node.args[0]
                if not (isinstance(first, nodes.Const) and isinstance(first.value, str) and first.value in env.filters and first.value not in _UNSAFE_FILTERS):
                    return "filter 'map': this mapped filter is not allowed (it must be a constant, allowed filter name)"
    return None


# Jinja's own globals that a fragment has no use for; every other global is one meshswitch added.
_UNUSED_JINJA_GLOBALS = frozenset({"cycler", "joiner", "lipsum", "namespace"})


def callable_globals(env: Environment) -> frozenset[str]:
    """The functions a leaf may call: Jinja's `range` and `dict`, and the helpers meshswitch adds."""
    return frozenset(name for name in env.globals if name not in _UNUSED_JINJA_GLOBALS)


def _is_called(ast: nodes.Node, attribute: nodes.Getattr) -> bool:
    return any(call.node is attribute for call in ast.find_all(nodes.Call))


def _configure(env: Environment) -> Environment:
    env.filters["json"] = _to_json
    env.filters["sha256"] = _sha256
    env.filters["fromjson"] = _from_json
    env.filters["whole_cores"] = whole_cores
    env.filters["go_float"] = _go_float
    env.filters["go_snakecase"] = _go_snakecase
    env.filters["snake_env"] = _snake_env
    env.filters["yaml_plain"] = _yaml_plain
    env.filters["yaml_quoted"] = _yaml_quoted
    env.filters["yaml_single_quoted"] = _yaml_single_quoted
    env.filters["env_list"] = _env_list
    env.filters["kube_fields"] = _kube_fields
    env.filters["merge_named"] = _merge_named
    env.filters["append_missing"] = _append_missing
    env.filters["append_multus_network"] = _append_multus_network
    env.filters["json_env"] = _json_env
    env.filters["with_image_type"] = _with_image_type
    env.globals["json"] = _to_json
    env.globals["compact"] = _compact
    env.globals["named"] = _named
    env.globals["version_at_least"] = version_at_least
    return env


def make_environment() -> SandboxedEnvironment:
    """The environment every plugin is parsed and checked in, and its static leaves run in:
    sandboxed, strict about undefined names."""
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    _configure(env)
    return env


def per_pod_environment() -> PerPodEnvironment:
    """The environment whose filters, tests and lookups the per-pod leaves use (see the module's docstring)."""
    env = PerPodEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    _configure(env)
    return env
