"""The per-pod leaves compiled to Python give exactly what Jinja gave when it ran them.

The reference is built here, from the compiler's own leaves, the way the per-pod program used to be:
one generated Jinja template of `{% set %}` and `{% if %}` lines, run in the unsandboxed per-pod
environment. Every shipped plugin over every corpus pod in both sidecar styles, then hand-written
expressions for each kind of node, errors and undefined values included.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from jinja2 import Undefined

from tests.corpora import pods
from tests.helpers import make_injector, make_pod, namespace
from webhook.engine import fragment as fragment_module
from webhook.engine import plugins as plugins_module
from webhook.engine.errors import ConfigError, PodDenied
from webhook.engine.fragment import Fragment, Prepared, _Compiler, _Leaf, _Program, compile_fragment
from webhook.engine.hooks import Derivation
from webhook.engine.injector import Injector
from webhook.engine.leaves import Attrs
from webhook.engine.sandbox import make_environment, per_pod_environment

PATH = "/plugins/hand.yaml"


def compose(text: str) -> yaml.Node:
    """The YAML node of a hand-written fragment (never empty here)."""
    node = yaml.compose(text)
    assert node is not None
    return node


def _jinja_lines(items: list[Any], lines: list[str], source_lines: list[int]) -> None:
    """The per-pod leaves as the former generated template: one line per leaf, conditions around."""
    for item in items:
        if isinstance(item, _Leaf):
            if not item.static:
                lines.append(item.source)
                source_lines.extend([item.line] * (item.source.count("\n") + 1))
            continue
        _, condition, children = item
        inner: list[str] = []
        inner_sources: list[int] = []
        _jinja_lines(children, inner, inner_sources)
        if condition.static and not inner:
            continue
        lines += [f"{condition.source}{{% set {condition.key} = true %}}", *inner, "{% endif %}"]
        source_lines += [condition.line, *inner_sources, condition.line]


def jinja_static_reference(node: yaml.Node, path: str, derived: frozenset[str] = frozenset()) -> _Program:
    """The sandboxed Jinja program the fragment's static half used to run (and still runs where a
    static leaf holds `{% %}` statements)."""
    items: list[Any] = []
    env = make_environment()
    _Compiler(path=path, env=env, derived=derived).compile(node, True, items)
    return fragment_module._static_program(env, path, items)


def jinja_reference(node: yaml.Node, path: str, derived: frozenset[str] = frozenset()) -> _Program:
    """The per-pod Jinja program the fragment at ``node`` used to run (``derived``: the hook names
    the plugin's derivations give, which leave the per-pod program)."""
    items: list[Any] = []
    _Compiler(path=path, env=make_environment(), derived=derived).compile(node, True, items)
    lines: list[str] = []
    source_lines: list[int] = []
    _jinja_lines(items, lines, source_lines)
    if not lines:
        return _Program(path, None, ())
    env = per_pod_environment()
    code = env.compile("\n".join(lines), name=f"{path}#pod", filename=path)
    return _Program(path, env.template_class.from_code(env, code, env.make_globals(None)), tuple(source_lines))


def outcome(run: Callable[[dict[str, Any]], Any], context: dict[str, Any]) -> Any:
    """A run's results in comparable form, or its error's message."""
    try:
        return comparable(run(context))
    except ConfigError as err:
        return ("error", _position(str(err)))


def comparable(value: Any) -> Any:
    """Values with their types; an undefined by its kind and message (StrictUndefined cannot be compared)."""
    if isinstance(value, Undefined):
        return ("undefined", type(value).__name__, _position(value._undefined_message))
    if isinstance(value, dict):
        return (type(value).__name__, {k: comparable(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value).__name__, [comparable(v) for v in value])
    return (type(value).__name__, value)


def _position(message: str) -> str:
    # Jinja named the line of its generated template ("line 3 in 'x.yaml#pod'"); the compiled leaf
    # names the plugin file's line. The one difference, and only in this hint's wording.
    return re.sub(r"on line \d+ in '[^']*'", "on line <n>", message)


@pytest.fixture(scope="module")
def references() -> Iterator[dict[str, _Program]]:
    """The Jinja reference of every shipped plugin, built from the very nodes load_plugins compiled."""
    found: dict[str, _Program] = {}
    real = compile_fragment  # the function plugins.py imported from fragment.py and calls

    def recording(node: yaml.Node, *, path: str, env: Any, derivations: tuple[Derivation, ...] = ()) -> Fragment:
        derived = frozenset[str]().union(*(d.names for d in derivations))
        found[path] = jinja_reference(node, path, derived)
        found[f"{path}#static"] = jinja_static_reference(node, path, derived)
        return real(node, path=path, env=env, derivations=derivations)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plugins_module, "compile_fragment", recording)
        injectors = [make_injector(), make_injector(sidecar_style="classic")]
    yield found
    del injectors


def _requests(plugin: str, pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    pod = copy.deepcopy(pod)
    if plugin == "dapr":
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations["dapr.io/enabled"] = "true"
        name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "").rstrip("-")
        annotations.setdefault("dapr.io/app-id", name[:58].rstrip("-"))
        return pod, {}
    return pod, {"meshswitch.io/mode": plugin}


PODS = pods()


def _inject_corpus(style: str, method: str, replacement: Callable[..., Any]) -> tuple[Injector, list[str]]:
    """Every shipped plugin but native over every corpus pod, with `Fragment.<method>` replaced by
    `replacement`; the injector and the plugins' names."""
    injector = make_injector(sidecar_style=style)
    names = sorted(p.name for p in injector.plugins if p.kind != "native")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Fragment, method, replacement)
        for plugin in names:
            for _, pod in PODS:
                request, labels = _requests(plugin, pod)
                try:
                    injector.inject(request, namespace("demo", labels))
                except PodDenied:
                    pass
    return injector, names


@pytest.mark.parametrize("style", ["native", "classic"])
def test_every_shipped_plugin_on_every_corpus_pod_gives_what_jinja_gave(references: dict[str, _Program], style: str) -> None:
    compared: dict[str, int] = {}
    real_build = Fragment.build

    def comparing(self: Fragment, prepared: Prepared, context: dict[str, Any]) -> Any:
        expected = outcome(references[self.path].run, context)
        assert outcome(self.per_pod.run, context) == expected, self.path
        compared[self.path] = compared.get(self.path, 0) + 1
        return real_build(self, prepared, context)

    injector, names = _inject_corpus(style, "build", comparing)
    # Every plugin rendered, each on (nearly) every pod.
    assert {p.rsplit("/", 1)[-1].removesuffix(".yaml") for p in compared} == set(names)
    assert min(compared.values()) >= len(PODS) // 2
    for loaded in injector.plugins:  # a native plugin renders nothing: no leaves either way
        if loaded.kind == "native":
            assert references[loaded.path].template is None and loaded.fragment.per_pod.run({}) == {}


@pytest.mark.parametrize("style", ["native", "classic"])
def test_every_shipped_plugins_static_half_gives_what_jinja_gave(references: dict[str, _Program], style: str) -> None:
    # Run once per distinct settings (a fresh injector has empty caches): each corpus pod's settings.
    compared: dict[str, int] = {}
    real_specialized = Fragment.specialized

    def comparing(self: Fragment, settings: Any, values: Any, native: bool) -> Prepared:
        derived = Attrs()
        for derivation in self.derivations:
            derived.update(derivation.derive(settings, values))
        context = {"settings": settings, "values": values, "native": native, "hook": derived}
        assert outcome(self.static.run, context) == outcome(references[f"{self.path}#static"].run, context), self.path
        compared[self.path] = compared.get(self.path, 0) + 1
        return real_specialized(self, settings, values, native)

    _, names = _inject_corpus(style, "specialized", comparing)
    assert {p.rsplit("/", 1)[-1].removesuffix(".yaml") for p in compared} == set(names)
    assert sum(compared.values()) >= len(PODS)  # the corpus's settings differ from pod to pod


def hand_context() -> dict[str, Any]:
    pod = make_pod(labels={"app": "web", "items": "label"}, annotations={"which": "app", "env": '[{"name": "A", "value": "1"}]'})
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http"}, {"containerPort": 80}]
    metadata = pod["metadata"]
    return {
        "pod": pod,
        "labels": metadata["labels"],
        "annotations": metadata["annotations"],
        "namespace": Attrs(name="demo", labels={"team": "a"}, annotations={}),
        "inherited": {},
        "workload": Attrs(kind="Deployment", name="web", apiVersion="apps/v1", plural="deployments"),
        "settings": Attrs(cpu="100m", ports=[80, 443], get="shadowed"),
        "values": Attrs(tag="1.2"),
        "native": True,
        "app_ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 80}],
        "hook": Attrs(items="from hook", nested=Attrs(a=1)),
    }


EXPRESSIONS = [
    # names: the context's, Jinja's globals, constants, undefined
    "{{ labels }}", "{{ native }}", "{{ nowhere }}", "{{ range(3) | list }}", "{{ json(labels) }}", "{{ dict(a=1, b=labels.app) }}",
    "{{ version_at_least(values.tag, '1.1') }}", "{{ true }}", "{{ none }}", "{{ 1.5 }}", "{{ 'text' }}", "{{ cycler }}",
    # attributes: our maps item-first, the pod's maps by item, methods, undefined, errors
    "{{ labels.app }}", "{{ labels.items() | list }}", "{{ labels.get('app') }}", "{{ labels.get('nope', 'd') }}", "{{ labels.nope }}",
    "{{ hook.items }}", "{{ hook.nested.a }}", "{{ settings.get }}", "{{ settings.cpu }}", "{{ namespace.labels.team }}",
    "{{ workload.nope }}", "{{ pod.metadata.name.upper() }}", "{{ labels.app.nope }}", "{{ labels.nope.deeper }}", "{{ app_ports[0].containerPort }}",
    "{{ labels.keys }}", "{{ (1).real }}", "{{ labels.values() | list }}",
    # items and slices
    "{{ labels['app'] }}", "{{ labels['nope'] }}", "{{ app_ports[5] }}", "{{ labels[annotations.which] }}", "{{ labels[['x']] }}",
    "{{ pod.metadata.name[1:3] }}", "{{ pod.metadata.name[::-1] }}", "{{ app_ports[:1] }}", "{{ native[1:] }}", "{{ labels.nope[0] }}",
    "{{ 'abc'[labels.nope] }}",
    # calls, keyword and star arguments
    "{{ 'a,b'.split(',') }}", "{{ 'a b'.split() }}", "{{ compact({'a': none, 'b': 1, 'c': []}) }}", "{{ named({'a': {'x': 1}}) }}",
    "{{ named(labels, 'value') }}", "{{ 'a-b'.split(*['-']) }}", "{{ dict(**labels) }}", "{{ 'x'.split(sep='x') }}", "{{ 'a'.split(1) }}",
    # filters: plain, environment, eval context, context (map, select, reject), ours
    "{{ labels.app | upper }}", "{{ [1, 2] | join(',') }}", "{{ app_ports | map(attribute='containerPort') | list }}",
    "{{ [1, none, 2] | select | list }}", "{{ ['a', 'b'] | reject('equalto', 'a') | list }}", "{{ ['a', 'b'] | map('upper') | list }}",
    "{{ 'x' | int }}", "{{ '42' | int }}", "{{ labels | dictsort }}", "{{ [3, 1] | sort }}", "{{ app_ports | sort(attribute='containerPort') }}",
    "{{ labels.nope | string }}", "{{ annotations.env | env_list }}", "{{ '{\"a\": 1}' | fromjson }}", "{{ 'x' | sha256 }}",
    "{{ '1500m' | whole_cores }}", "{{ labels | json }}", "{{ labels | json(true) }}", "{{ app_ports | selectattr('name') | list }}",
    "{{ [[1]] | merge_named([]) }}", "{{ ['a', 'a'] | append_missing('b') }}", "{{ ['a'] | append_missing('a') }}",
    "{{ [] | append_missing(none) }}", "{{ labels | length }}", "{{ settings.ports | join(',') | trim }}", "{{ none | string }}",
    # select, reject and map naming a test or filter that takes no context (called directly), and the forms Jinja keeps
    "{{ settings.ports | select('in', [80, 8]) | list }}", "{{ labels | select('in', ['app']) | list }}", "{{ [1, 2] | select('sameas', 1) | list }}",
    "{{ [1, 2, 3] | reject('divisibleby', 2) | list }}", "{{ labels.nope | select('equalto', 1) | list }}", "{{ none | map('upper') | list }}",
    "{{ [] | select('nosuchtest') | list }}", "{{ ['x'] | select('nosuchtest') | list }}",
    "{{ [' a ', 'b '] | map('trim') | reject('equalto', '') | join(',') }}", "{{ ['a'] | map('replace', 'a', 'b') | list }}",
    "{{ [[1, 2]] | map('join', '-') | list }}", "{{ [1] | select('in', 5) | list }}", "{{ [labels.nope, 1] | map('string') | list }}",
    "{{ ['a'] | select(labels.app) | list }}", "{{ [1, none] | reject | list }}",
    "{{ ('x' | select('equalto', 'x'))[0] }}", "{{ app_ports | rejectattr('name') | list }}", "{{ [3, 2] | map('int', base=8) | list }}",
    # `.get` calls: on a plain dict directly, on anything else as Jinja reads the method
    "{{ settings.get('cpu') }}", "{{ hook.get('items') }}", "{{ labels.get(labels.get('which', 'app'), labels.get('x', 'd')) }}",
    "{{ labels.nope.get('a') }}", "{{ 'abc'.get('a') }}", "{{ app_ports[0].get('name') }}", "{{ (labels.get('app') or {}).get('x') }}",
    "{{ labels.get() }}", "{{ labels.get('a', 'b', 'c') }}", "{{ labels.get(*['app']) }}", "{{ namespace.labels.get('team') }}",
    # tests
    "{{ labels.app is sameas labels.app }}", "{{ none is sameas none }}", "{{ native is sameas true }}", "{{ labels.nope is none }}",
    "{{ hook.nested is mapping }}", "{{ app_ports is mapping }}", "{{ labels.nope is sameas none }}", "{{ labels.app is not none }}",
    "{{ labels.app is none }}", "{{ labels.nope is defined }}", "{{ 3 is divisibleby 3 }}", "{{ 'a' is in 'abc' }}", "{{ labels is mapping }}",
    # conditional expressions
    "{{ 1 if labels.app else 2 }}", "{{ 1 if none }}", "{{ 1 if labels.nope else 2 }}", "{{ labels.app if native }}",
    # logic and comparisons
    "{{ labels.app and native }}", "{{ none or 'x' }}", "{{ not labels }}", "{{ 1 < 2 < 3 }}", "{{ 3 > 2 > 4 }}", "{{ 'app' in labels }}",
    "{{ 'app' not in labels }}", "{{ 1 == 1.0 }}", "{{ labels.app != 'x' }}", "{{ 2 >= 1 }}", "{{ 1 <= 0 }}", "{{ labels.nope == 1 }}",
    "{{ 1 < 'a' }}",
    # arithmetic, concatenation
    "{{ 1 + 2 }}", "{{ 'a' + 'b' }}", "{{ 5 - 3 }}", "{{ 2 * 3 }}", "{{ 'ab' * 2 }}", "{{ 7 / 2 }}", "{{ 7 // 2 }}", "{{ 7 % 3 }}",
    "{{ '%s!' % labels.app }}", "{{ 2 ** 10 }}", "{{ -(labels | length) }}", "{{ +1 }}", "{{ 1 / 0 }}", "{{ labels.app + 1 }}",
    "{{ 'a' ~ 1 ~ none }}", "{{ labels.app ~ labels.nope }}", "{{ -labels.nope }}",
    # literals
    "{{ [1, labels.app] }}", "{{ (1, 2) }}", "{{ (1,) }}", "{{ () }}", "{{ {'a': labels.app, 'b': [1]} }}", "{{ {} }}",
    # text leaves
    "app={{ labels.app }} n={{ none }}", "{{ labels.app }}-{{ workload.name }}", "x{{ 1 }}", "a{{ 1 if none }}b", "{{ labels.nope }}!",
    "{{ labels }} and {{ app_ports[0] }}", "a {{- ' b ' -}} c", "{{ labels.app }}{{ 1 / 0 }}",
]  # fmt: skip


def _fragment_yaml(expression: str) -> str:
    quoted = expression.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "labels:\n"
        "  static: \"{{ settings.cpu }}\"\n"
        f"  x: \"{quoted}\"\n"
        "  $if: \"{{ settings.cpu }}\"\n"  # a static condition, tested again per pod for what sits under it
        "sidecars:\n"
        "  - $if: \"{{ labels.app }}\"\n"
        "    name: c\n"
        f"    value: \"{quoted}\"\n"
        "  - $if: \"{{ not native }}\"\n"
        "    name: d\n"
    )


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_each_kind_of_expression_gives_what_jinja_gave(expression: str) -> None:
    node = compose(_fragment_yaml(expression))
    compiled = compile_fragment(node, path=PATH, env=make_environment())
    reference = jinja_reference(node, PATH)
    for context in (hand_context(), {**hand_context(), "native": False}, {**hand_context(), "labels": {}}):
        assert outcome(compiled.per_pod.run, context) == outcome(reference.run, context)
        assert _render_outcome(compiled, context) == _render_outcome(_with_reference(node, reference), context)


def _with_reference(node: yaml.Node, reference: _Program) -> Fragment:
    built = compile_fragment(node, path=PATH, env=make_environment())
    built.per_pod = reference  # type: ignore[assignment]
    return built


def _render_outcome(fragment: Fragment, context: dict[str, Any]) -> Any:
    try:
        return comparable(fragment.render(context))
    except ConfigError as err:
        return ("error", _position(str(err)))


def test_errors_name_the_plugin_line_of_the_leaf() -> None:
    node = compose("labels:\n  a: \"{{ labels.app }}\"\n  b: \"{{ 1 / 0 }}\"\n")
    compiled = compile_fragment(node, path=PATH, env=make_environment())
    with pytest.raises(ConfigError, match=re.escape(f"{PATH}:3: template error: ZeroDivisionError('division by zero')")):
        compiled.render(hand_context())
    node = compose("labels:\n  a: \"{{ labels.app }}\"\n  $if: \"{{ labels.nope.x }}\"\n")
    compiled = compile_fragment(node, path=PATH, env=make_environment())
    with pytest.raises(ConfigError, match=re.escape(f"{PATH}:3: template error: 'dict object' has no attribute 'nope'")):
        compiled.render(hand_context())


def test_an_undefined_value_assigned_to_a_leaf_is_reported_with_its_line() -> None:
    node = compose("labels:\n  a: \"{{ labels.nope }}\"\n")
    compiled = compile_fragment(node, path=PATH, env=make_environment())
    with pytest.raises(ConfigError, match=re.escape(f"{PATH}:2: template error: 'dict object' has no attribute 'nope'")):
        compiled.render(hand_context())


HOSTILE_VALUES = ["{{ 7*7 }}", "__import__('os').system('id')", "{% for x in range(10**9) %}{% endfor %}", "a: b\n  c: [d]", "'''\n\"\"\"", "{{ ''.__class__ }}"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_hostile_annotation_value_arrives_as_the_same_string(value: str) -> None:
    node = compose(
        "labels:\n  single: \"{{ annotations.get('evil') }}\"\n  text: \"<{{ annotations['evil'] }}>\"\n"
        "  joined: \"{{ [annotations.evil, labels.app] | join('|') }}\"\n"
    )
    compiled = compile_fragment(node, path=PATH, env=make_environment())
    context = hand_context()
    context["annotations"] = {"evil": value}
    assert compiled.render(context) == {"labels": {"single": value, "text": f"<{value}>", "joined": f"{value}|web"}}


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ("{{ labels.__class__ }}", "'__class__' is not allowed"),
        ("{{ 'x{0}'.format(labels) }}", "'format' is not allowed"),
        ("{{ system('id') }}", "system() is not allowed"),
        ("{{ _s1 }}", "name '_s1' is not allowed"),
        ("{{ labels | nofilter }}", "filter 'nofilter' is not allowed"),
        ("{{ labels is notest }}", "No test named 'notest'"),
        ("a{% if labels %}b{% endif %}", "If is not supported"),
    ],
)
def test_a_template_reaching_for_more_fails_at_load_with_file_and_line(leaf: str, message: str) -> None:
    node = compose(f"labels:\n  a: \"{{{{ labels.app }}}}\"\n  b: \"{leaf}\"\n")
    with pytest.raises(ConfigError) as caught:
        compile_fragment(node, path=PATH, env=make_environment())
    assert str(caught.value).startswith(f"{PATH}:3: template error:") and message in str(caught.value)


def test_the_generated_source_holds_no_template_text() -> None:
    # Attribute names, keys and strings the template wrote travel as constants, never as source.
    node = compose("labels:\n  a: \"{{ labels.evil_attr ~ labels['evil_key'] ~ 'evil_text' }}\"\n")
    steps = fragment_module.per_pod_steps(_items(node))
    from webhook.engine.leaves import _Writer

    source = _Writer(path=PATH, env=per_pod_environment()).source(steps)
    assert "evil" not in source and "labels" not in source


def _items(node: yaml.Node) -> list[Any]:
    items: list[Any] = []
    _Compiler(path=PATH, env=make_environment()).compile(node, True, items)
    return items


def test_an_attribute_of_our_own_map_that_is_not_a_key_reads_as_in_jinja() -> None:
    # decide.py sets `cache_key` on the settings it parses: Jinja's getattr finds it after the items.
    node = compose("labels:\n  a: \"{{ [labels.app, settings.cache_key] }}\"\n")
    compiled = compile_fragment(node, path=PATH, env=make_environment())
    context = hand_context()
    context["settings"].cache_key = ("cpu", "100m")
    assert outcome(compiled.per_pod.run, context) == outcome(jinja_reference(node, PATH).run, context)
    assert compiled.per_pod.run(context)["_s1"] == ["web", ("cpu", "100m")]


DERIVED_TEXT = Derivation(frozenset({"text"}), lambda settings, values: {"text": f"{settings['cpu']}/{values['tag']}"})


@pytest.mark.parametrize(
    ("leaf", "static", "value"),
    [
        ("{{ hook.text }}", True, "100m/1.2"),
        ("{{ hook.text ~ settings.cpu ~ values.tag if native else 'x' }}", True, "100m/1.2100m1.2"),
        ("{{ hook.text ~ hook.items }}", False, "100m/1.2from hook"),  # a per-pod hook's name too
        ("{{ hook['text'] }}", False, "100m/1.2"),  # the whole of `hook`, not one derived name
        ("{{ hook | length }}", False, 2),
        ("{{ hook.text ~ labels.app }}", False, "100m/1.2web"),
    ],
)
def test_a_leaf_reading_only_derived_hook_names_is_static(leaf: str, static: bool, value: Any) -> None:
    node = compose(f'labels:\n  a: "{leaf}"\n')
    fragment = compile_fragment(node, path=PATH, env=make_environment(), derivations=(DERIVED_TEXT,))
    assert (not fragment.per_pod.reads) is static  # a static leaf leaves nothing to the per-pod function
    # Either way the leaf reads the derived name: from the static tree, or from the per-pod context.
    context = {**hand_context(), "hook": Attrs(items="from hook")}
    assert fragment.render(context)["labels"]["a"] == value


def test_derived_names_are_worked_out_once_per_distinct_settings() -> None:
    calls: list[str] = []

    def derive(settings: Any, values: Any) -> dict[str, Any]:
        calls.append(settings["cpu"])
        return {"text": settings["cpu"]}

    node = compose('labels:\n  a: "{{ hook.text }}"\n  b: "{{ labels.app }}"\n')
    fragment = compile_fragment(node, path=PATH, env=make_environment(), derivations=(Derivation(frozenset({"text"}), derive),))
    context = hand_context()  # one values object: the cache is per distinct settings of the same values
    for cpu in ("1", "1", "2", "1"):
        settings = Attrs(cpu=cpu)
        settings.cache_key = (cpu,)  # type: ignore[attr-defined]
        assert fragment.render({**context, "settings": settings}) == {"labels": {"a": cpu, "b": "web"}}
    assert calls == ["1", "2"]


def test_a_derivation_giving_other_names_than_it_declares_fails_naming_the_plugin() -> None:
    node = compose('labels:\n  a: "{{ hook.text }}"\n')
    wrong = Derivation(frozenset({"text"}), lambda settings, values: {"txt": "x"})
    fragment = compile_fragment(node, path=PATH, env=make_environment(), derivations=(wrong,))
    with pytest.raises(ConfigError, match=f"{PATH}: hook <lambda> gave \\['txt'\\], not its declared \\['text'\\]"):
        fragment.render(hand_context())


PLUGIN_EXPRESSIONS = [
    "{{ settings.cpu == '100m' and native }}", "{{ values.tag if not native else none }}", "{{ settings.nope }}",
    "{{ (settings.ports | select('in', [80]) | list)[-1:] == [80] }}", "{{ settings.get('cpu') is sameas none }}",
    "{{ values.tag | int + 1 }}", "{{ 1 / 0 }}", "{{ nowhere.deeper }}", "{{ settings.cpu | append_multus_network('a/b') }}",
    "settings.cpu ~ values.tag", "{{ values.tag is none or settings.ports | length > 1 }}",
]  # fmt: skip


@pytest.mark.parametrize("text", PLUGIN_EXPRESSIONS)
def test_a_plugin_expression_gives_what_the_sandbox_gave(text: str) -> None:
    # A sidecar rule's or a warn/refuse rule's `if`, generated as the fragment's leaves are.
    generated = plugins_module.Expression(make_environment(), text, where="/plugins/hand.yaml: refuse")
    sandboxed = plugins_module.Expression(make_environment(), text, where="/plugins/hand.yaml: refuse")
    assert generated._leaves is not None
    sandboxed._leaves = None
    for native in (True, False):
        context = {"settings": Attrs(cpu="100m", ports=[80, 443]), "values": Attrs(tag="1"), "native": native}
        assert _expression_outcome(generated, context) == _expression_outcome(sandboxed, context)


def _expression_outcome(expression: Any, context: dict[str, Any]) -> Any:
    try:
        return comparable(expression(**context))
    except ConfigError as err:
        return ("error", str(err))
