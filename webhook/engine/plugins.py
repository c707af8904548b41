"""Plugins as data: load and compile `templates/*.yaml` once, at start-up, never per pod."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError, nodes

from webhook.engine.errors import ConfigError, not_utf8
from webhook.engine.fragment import Fragment, compile_fragment
from webhook.engine.hooks import DERIVED, HOOK_NAMES
from webhook.engine.leaves import Assignment, Attrs, CompiledLeaves, compile_leaves
from webhook.engine.sandbox import check_expression, make_environment, per_pod_environment
from webhook.engine.releases import Releases, Version, applies, load_lines, load_releases
from webhook.engine.settings import SINGLE_VALUE_TYPES, Setting, load_setting

BUILTIN_TEMPLATES = Path(os.environ.get("MESHSWITCH_TEMPLATES_DIR", Path(__file__).resolve().parents[2] / "templates"))

KINDS = ("mesh", "runtime", "native")
PLACES = ("pod", "pod-label", "pod-annotation", "namespace", "namespace-label", "namespace-annotation")
SECTIONS = ("initContainers", "sidecars", "containers", "volumes", "imagePullSecrets", "labels", "annotations", "appEnv", "lastEnv")
_TOP_FIELDS = frozenset(
    {"name", "kind", "description", "on", "off", "settings", "values", "hooks", "fragment", "controlPlane", "releases", "sidecarStyle",
     "meshFreeNamespaces", "namespaceSettings", "sidecar", "warn", "refuse", "present",
     "declared", "overwrite", "overwriteLabels", "replaceEmptyLabels", "revisions", "ownStatus", "emptyIsUnset",
     "presentImages", "initAfter", "initFirst"}
)


_ABSENT: Any = object()  # an Expression called without settings


_PLAIN_ENV = per_pod_environment()  # the generated expressions' filters, tests and lookups
_RESULT = "_s1"  # the one result key of an expression's generated function


class Expression:
    """One `{{ expression }}` of a plugin file outside its fragment, compiled once: to a generated
    Python function as the fragment's leaves are, when it passes their load-time check; else
    sandboxed."""

    def __init__(self, env: Any, text: Any, *, where: str) -> None:
        raw = str(text).strip()
        body = raw[2:-2].strip() if raw.startswith("{{") and raw.endswith("}}") else raw
        try:
            self._compiled = env.compile_expression(body, undefined_to_none=False)
            ast = env.parse("{{ " + body + " }}")
        except TemplateSyntaxError as err:
            raise ConfigError(f"{where}: template error in {raw!r}: {err.message}") from None
        self._leaves: CompiledLeaves | None = None
        if check_expression(ast, env) is None:
            try:
                self._leaves = compile_leaves([Assignment(_RESULT, 0, ast, single=True)], path=where, env=_PLAIN_ENV)
            except ConfigError:
                pass  # a form the generator does not take: the sandboxed expression runs
        self.where = where
        self._cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def __call__(self, **context: Any) -> Any:
        """Evaluate over `settings`, `values` and `native`; cached like the fragment's static half,
        per distinct settings (their cache key), values (by identity, kept alive) and style."""
        values = context.get("values")
        settings = context.get("settings", _ABSENT)
        settings_key = settings if settings is _ABSENT else getattr(settings, "cache_key", None)
        key = (tuple(context), id(values), settings_key, context.get("native"))
        cached = self._cache.get(key) if settings_key is not None else None
        if cached is not None and cached[0] is values:
            return cached[1]
        try:
            result = self._leaves.run(context)[_RESULT] if self._leaves is not None else self._compiled(**context)
        except ConfigError as err:  # the generated function's, which names the error it caught
            raise ConfigError(f"{self.where}: template error: {err.__cause__}") from err.__cause__
        except Exception as err:  # noqa: BLE001 - a template bug, reported with where it is
            raise ConfigError(f"{self.where}: template error: {err}") from err
        if settings_key is not None:
            if len(self._cache) >= 256:
                self._cache.clear()
            self._cache[key] = (values, result)
        return result


@dataclass(frozen=True)
class SidecarRule:
    """How a mesh picks the proxy's style when the pod's `meshswitch.io/sidecar` does not: `choose`
    over settings and values (the mesh's own annotations: true native, false classic, none unset),
    else `default` over the values (the installed release's default); `classic_first` puts classic
    sidecars before the app containers."""

    choose: Expression | None
    default: Expression | None
    classic_first: Expression | None


@dataclass(frozen=True)
class ImageMark:
    """An image prefix that shows a proxy is already in a pod, under whatever container name (rule 7):
    Linkerd's injector finds its own proxy, and Istio's, by image."""

    prefix: str
    sections: tuple[str, ...]  # initContainers and/or containers
    mesh: str  # whose proxy it is: this plugin (sidecar-present) or another mesh (other-mesh-present)


@dataclass(frozen=True)
class WarnRule:
    """`warn`: a warning every injection of the plugin carries while `when` holds over its values.
    `refuse`: the pod is denied (invalid-setting) when `when` holds over settings, values and native,
    for combinations of settings the mesh's own injector cannot render."""

    when: Expression
    message: str


@dataclass(frozen=True)
class KeyMatch:
    """One "on" or "off" key: where it is read, its name, and the values that count (lower-cased,
    unless `exact`)."""

    place: str
    key: str
    values: frozenset[str]
    since: str | None = None  # release lines that read the key (see releases.py)
    until: str | None = None
    trim: bool = False  # blanks around the value are dropped before comparing (Go's strings.TrimSpace)
    exact: bool = False  # the value counts only as written, case included (Kubernetes label selectors)
    excepted: frozenset[str] = frozenset()  # with values ["*"]: the values that do not count

    @cached_property
    def on_pod(self) -> bool:
        return self.place.startswith("pod")

    def read_by(self, installed: Version) -> bool:
        return applies(self.since, self.until, installed)

    def describe(self) -> str:
        lines = (f" since {self.since}" if self.since else "") + (f" until {self.until}" if self.until else "")
        lines += " (blanks around it ignored)" if self.trim else ""
        lines += " (exactly as written)" if self.exact else ""
        if self.values == {"*"}:
            but = f" but {', '.join(sorted(self.excepted))}" if self.excepted else ""
            return f"{self.place} {self.key} set to any value{but}{lines}"
        return f"{self.place} {self.key} in ({', '.join(sorted(self.values))}){lines}"


@dataclass(frozen=True)
class Revisions:
    """A mesh that runs several control planes side by side (Istio's revisions): the key that names
    one, the name that means the default one, and the values a named one changes ({revision} in a
    value is the revision's name)."""

    key: str
    default: str
    values: Mapping[str, str]
    # A tag is another name for a revision (Istio's `istio-revision-tag-<tag>` webhook configuration,
    # whose label `istio.io/rev` names the revision): found by `tagSelector`, read from `tagLabel`.
    tag_object: str | None = None
    tag_selector: str | None = None
    tag_label: str | None = None
    # Where the revision is read first: "pod" (its label, else the namespace's) or "namespace" (the
    # namespace's label decides; the pod's counts only in a namespace without one, as Istio's
    # webhook selectors have it).
    precedence: str = "pod"
    # Namespace labels that, when present, select the default revision whatever else names one
    # (Istio's istio-injection: every revision's webhook requires it absent).
    default_with: tuple[str, ...] = ()

    def values_of(self, base: Mapping[str, Any], revision: str) -> Attrs:
        if revision == self.default:
            return base if isinstance(base, Attrs) else Attrs(base)
        return Attrs({**base, **{k: v.replace("{revision}", revision) for k, v in self.values.items()}})


@dataclass(frozen=True)
class Plugin:
    """Everything about one mesh or runtime: keys, settings, install values and the compiled fragment."""

    name: str
    kind: str
    description: str
    path: str
    on: tuple[KeyMatch, ...]
    off: tuple[KeyMatch, ...]
    settings: tuple[Setting, ...]
    values: Mapping[str, Any]
    hooks: tuple[str, ...]
    fragment: Fragment
    digest: str
    control_plane: tuple[Mapping[str, Any], ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    container_names: frozenset[str] = frozenset()
    pinned: frozenset[str] = frozenset()  # values a values file set: discovery leaves them alone
    # A pod that declares one of our containers: skip; merge it over ours; or "present": skip only
    # where the container is one of `present` (Linkerd's), the others being the pod's own.
    declared: str = "skip"
    overwrite: frozenset[str] = frozenset()  # annotations written even where the pod has them (Istio's status)
    overwrite_labels: frozenset[str] = frozenset()  # labels written even where the pod has them (Dapr's)
    replace_empty_labels: frozenset[str] = frozenset()  # labels written where the pod's is empty (Istio's `| default`)
    init_after: frozenset[str] = frozenset()  # the pod's own init containers moved right after the plugin's
    init_first: frozenset[str] = frozenset()  # the plugin's init containers that go first with classic sidecars too
    revisions: Revisions | None = None
    own_status: str | None = None  # the annotation where the mesh's own injector lists what it injected
    sidecar: SidecarRule | None = None
    warn: tuple[WarnRule, ...] = ()
    refuse: tuple[WarnRule, ...] = ()
    present: frozenset[str] = frozenset()  # container names that show this mesh is in a pod (rule 7)
    present_images: tuple[ImageMark, ...] = ()  # image prefixes that show a proxy is in a pod (rule 7)
    written_keys: frozenset[str] = frozenset()  # the label and annotation keys its fragment writes
    releases: Releases | None = None
    sidecar_style_setting: str | None = None  # a bool setting that picks native (true) or classic sidecars
    namespace_settings: bool = True  # settings are read from namespace annotations too (Linkerd); Dapr: pod only
    mesh_free: tuple[str, ...] = ()  # values naming namespaces no mesh may inject (Dapr's control plane)

    def installed(self, values: Mapping[str, Any] | None = None) -> Version:
        """The installed release (for `since`/`until`); without `releases`, the newest."""
        if self.releases is None:
            return (1 << 30, 0, 0)
        return self.releases.installed(self.values if values is None else values)

    @cached_property
    def setting_keys(self) -> frozenset[str]:
        """Every annotation key a setting reads."""
        return frozenset(k for s in self.settings for k in s.keys)

    @cached_property
    def fallbacks(self) -> tuple[Setting, ...]:
        """Settings that take a pod field when their key is absent or empty."""
        return tuple(s for s in self.settings if s.fallback is not None)

    @cached_property
    def namespace_keys(self) -> frozenset[str]:
        """Setting keys also read on the namespace, as defaults for its pods."""
        return frozenset(k for s in self.settings for k in s.keys if self.namespace_settings and s.on_namespace(k))

    def namespace_keys_read_by(self, installed: Version) -> frozenset[str]:
        """The namespace keys the installed release reads (Linkerd copies only those onto the pod)."""
        unread = {k for s in self.settings if (s.since or s.until) and not applies(s.since, s.until, installed) for k in s.keys}
        return self.namespace_keys - unread if unread else self.namespace_keys

    @cached_property
    def skipped_with(self) -> frozenset[str]:
        """The container names that, in a pod, mean this plugin's sidecar is there (sidecar-present)."""
        return {"skip": self.container_names, "present": self.present}.get(self.declared, frozenset())

    @cached_property
    def clashing(self) -> frozenset[str]:
        """Names it may inject that a pod can hold as its own container (`declared: present`)."""
        return self.container_names - self.present if self.declared == "present" else frozenset()

    @property
    def is_mesh(self) -> bool:
        return self.kind == "mesh"


@dataclass(frozen=True)
class PluginSet:
    """The installed plugins by name, in name order (the order "first matching mesh" uses)."""

    by_name: Mapping[str, Plugin]

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self.by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> Plugin:
        return self.by_name[name]

    # Computed once: the set never changes after loading, and decide() reads these per pod.
    @cached_property
    def meshes(self) -> tuple[Plugin, ...]:
        return tuple(p for p in self if p.kind == "mesh")

    @cached_property
    def runtimes(self) -> tuple[Plugin, ...]:
        return tuple(p for p in self if p.kind == "runtime")

    @cached_property
    def mesh_containers(self) -> frozenset[str]:
        """Every container name that shows some mesh is in a pod (rule 7)."""
        return frozenset().union(*(p.present for p in self.meshes))

    @cached_property
    def modes(self) -> tuple[str, ...]:
        """Names accepted as `meshswitch.io/mode`: mesh plugins and the native mode."""
        return tuple(p.name for p in self if p.kind in ("mesh", "native"))

    @cached_property
    def known_keys(self) -> frozenset[str]:
        """Every key some plugin reads (settings, on and off keys) or writes (its fragment's labels and annotations)."""
        return frozenset(
            k for p in self for k in (*p.setting_keys, *(m.key for m in (*p.on, *p.off)), *p.written_keys)
        )

    @cached_property
    def key_owners(self) -> Mapping[str, tuple[str, ...]]:
        """A plugin's own prefixes (those of its settings' keys, e.g. sidecar.istio.io) -> the plugins that own them."""
        owners: dict[str, list[str]] = {}
        for plugin in self:
            for prefix in sorted({k.partition("/")[0] for k in plugin.setting_keys if "/" in k}):
                owners.setdefault(prefix, []).append(plugin.name)
        return {prefix: tuple(names) for prefix, names in owners.items()}


def _key_matches(raw: Any, *, where: str, section: str) -> tuple[KeyMatch, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: {section} must be a list of {{in, key, values}}")
    out = []
    for entry in raw:
        if not isinstance(entry, Mapping) or set(entry) - {"in", "key", "values", "except", "since", "until", "trim", "exact"}:
            raise ConfigError(f"{where}: each {section} entry takes in, key and values (and except, since, until, trim, exact)")
        place, key, values = entry.get("in"), entry.get("key"), entry.get("values")
        if place not in PLACES:
            raise ConfigError(f"{where}: {section} in={place!r}; accepted: {', '.join(PLACES)}")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: {section} entry needs a key")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: {section} {key}: values must be a non-empty list")
        excepted = entry.get("except", [])
        if not isinstance(excepted, list) or (excepted and values != ["*"]):
            raise ConfigError(f"{where}: {section} {key}: except is a list of values, beside values: [\"*\"] only")
        since, until = entry.get("since"), entry.get("until")
        trim, exact = entry.get("trim", False), entry.get("exact", False)
        if not isinstance(trim, bool) or not isinstance(exact, bool):
            raise ConfigError(f"{where}: {section} {key}: trim and exact must be true or false")
        out.append(
            KeyMatch(
                place, key, frozenset(str(v) if exact else str(v).lower() for v in values),
                load_lines(since, where=f"{where}: {section} {key}"), load_lines(until, where=f"{where}: {section} {key}"),
                trim, exact,
                frozenset(str(v) if exact else str(v).lower() for v in excepted),
            )  # fmt: skip
        )
    return tuple(out)


def _literal_names(fragment: yaml.MappingNode, *, where: str) -> dict[str, list[str]]:
    """Container and volume names must be literal: they identify what was injected, for uninject."""
    names: dict[str, list[str]] = {}
    for key_node, value_node in fragment.value:
        if key_node.value not in ("initContainers", "sidecars", "containers", "volumes"):
            continue
        if not isinstance(value_node, yaml.SequenceNode):
            raise ConfigError(f"{where}:{value_node.start_mark.line + 1}: {key_node.value} must be a list")
        for item in value_node.value:
            name = None
            if isinstance(item, yaml.MappingNode):
                if key_node.value == "volumes" and [k.value for k, _ in item.value] == ["$splice"]:
                    continue  # volumes named by the pod's own data (Istio's userVolume); the status records them
                name = next((v for k, v in item.value if k.value == "name"), None)
            if not isinstance(name, yaml.ScalarNode) or "{" in name.value or not name.value:
                raise ConfigError(f"{where}:{item.start_mark.line + 1}: each of {key_node.value} needs a literal name")
            names.setdefault(key_node.value, []).append(name.value)
    return names


def _written_keys(fragment: yaml.MappingNode, env: Any) -> frozenset[str]:
    """The literal keys of the fragment's labels and annotations sections, and the constant keys of
    a section written as one expression (a dict literal), so that a pod carrying them back on
    reinvocation is not warned about keys no plugin reads."""
    keys: set[str] = set()
    for key_node, value_node in fragment.value:
        if key_node.value not in ("labels", "annotations"):
            continue
        if isinstance(value_node, yaml.MappingNode):
            keys.update(str(k.value) for k, _ in value_node.value if isinstance(k, yaml.ScalarNode))
        elif isinstance(value_node, yaml.ScalarNode) and "{{" in value_node.value:
            pairs = env.parse(value_node.value).find_all(nodes.Pair)  # parsed already: it compiled
            keys.update(p.key.value for p in pairs if isinstance(p.key, nodes.Const) and isinstance(p.key.value, str))
    return frozenset(keys)


def load_plugin(path: Path, *, env: Any = None) -> Plugin:
    """Read and compile one plugin file; raises ConfigError naming the file and, where known, the line."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except OSError as err:
        raise ConfigError(f"{where}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{not_utf8(where, err)} (a plugin file)") from None
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else "?"
        raise ConfigError(f"{where}:{line}: YAML error: {err.problem}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{where}:1: a plugin file is a mapping")
    fields: dict[str, Any] = {}
    fragment_node: yaml.Node | None = None
    loader = yaml.SafeLoader("")
    for key_node, value_node in root.value:
        if key_node.value == "fragment":
            fragment_node = value_node
        else:
            fields[key_node.value] = loader.construct_document(value_node)
    unknown = set(fields) - _TOP_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}; accepted: {sorted(_TOP_FIELDS)}")
    name = fields.get("name")
    if not isinstance(name, str) or not name.replace("-", "").isalnum() or name != name.lower():
        raise ConfigError(f"{where}: name must be a lower-case DNS label, got {name!r}")
    kind = fields.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r}; accepted: {', '.join(KINDS)}")
    hooks = tuple(fields.get("hooks") or ())
    for hook in hooks:
        if hook not in HOOK_NAMES:
            raise ConfigError(f"{where}: hook {hook!r}; accepted: {', '.join(HOOK_NAMES)}")
    settings_raw = fields.get("settings") or {}
    if not isinstance(settings_raw, Mapping):
        raise ConfigError(f"{where}: settings must be a mapping of name to spec")
    # `emptyIsUnset` at the top is the default of every setting of a single-value type (a number, a
    # quantity, an image, a choice): Linkerd and Dapr read "" there as no annotation, while an empty
    # list or text is a value of its own.
    empty_is_unset = fields.get("emptyIsUnset", False)
    if not isinstance(empty_is_unset, bool):
        raise ConfigError(f"{where}: emptyIsUnset must be true or false")
    settings = tuple(
        load_setting(n, {"emptyIsUnset": spec.get("type", "string") in SINGLE_VALUE_TYPES, **spec}, where=where)
        if empty_is_unset and isinstance(spec, Mapping) else load_setting(n, spec, where=where)
        for n, spec in settings_raw.items()
    )  # fmt: skip
    values = fields.get("values") or {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: values must be a mapping")
    if fragment_node is None:
        fragment_node = yaml.compose("{}", Loader=yaml.SafeLoader)
    assert fragment_node is not None
    if not isinstance(fragment_node, yaml.MappingNode):
        raise ConfigError(f"{where}:{fragment_node.start_mark.line + 1}: fragment must be a mapping")
    for key_node, _ in fragment_node.value:
        if key_node.value not in SECTIONS:
            raise ConfigError(
                f"{where}:{key_node.start_mark.line + 1}: fragment section {key_node.value!r}; accepted: {', '.join(SECTIONS)}"
            )
    if kind == "native" and fragment_node.value:
        raise ConfigError(f"{where}: a native plugin injects nothing, so it has no fragment")
    names = _literal_names(fragment_node, where=where)
    env = env or make_environment()
    fragment = compile_fragment(fragment_node, path=where, env=env, derivations=tuple(DERIVED[h] for h in hooks if h in DERIVED))
    control_plane = fields.get("controlPlane") or []
    declared = fields.get("declared", "skip")
    if declared not in ("skip", "merge", "present"):
        raise ConfigError(f"{where}: declared {declared!r}; accepted: skip, merge, present")
    overwrite = _names(fields.get("overwrite"), f"{where}: overwrite must be a list of annotation names")
    overwrite_labels = _names(fields.get("overwriteLabels"), f"{where}: overwriteLabels must be a list of label names")
    replace_empty = _names(fields.get("replaceEmptyLabels"), f"{where}: replaceEmptyLabels must be a list of label names")
    init_after = _names(fields.get("initAfter"), f"{where}: initAfter must be a list of init container names")
    init_first = _names(fields.get("initFirst"), f"{where}: initFirst must be a list of init container names")
    revisions = _revisions(fields.get("revisions"), where=where)
    own_status = fields.get("ownStatus")
    if own_status is not None and (not isinstance(own_status, str) or not own_status):
        raise ConfigError(f"{where}: ownStatus must be an annotation name")
    releases = load_releases(fields.get("releases"), values, where=where)
    for number, setting in enumerate(settings):
        if (setting.since or setting.until) and releases is None:
            raise ConfigError(f"{where}: setting {setting.name!r} names release lines, so the plugin needs releases")
        if setting.used_when is not None and not any(
            s.name == setting.used_when and s.type in ("bool", "truthy") for s in settings[:number]
        ):
            raise ConfigError(f"{where}: setting {setting.name!r}: usedWhen must name a bool or truthy setting listed before it")
    mesh_free = fields.get("meshFreeNamespaces") or []
    if not isinstance(mesh_free, list) or not all(isinstance(v, str) and isinstance(values.get(v), str) for v in mesh_free):
        raise ConfigError(f"{where}: meshFreeNamespaces must list names of string values (namespaces)")
    style = fields.get("sidecarStyle")
    if style is not None and not any(s.name == style and s.type in ("bool", "truthy") for s in settings):
        raise ConfigError(f"{where}: sidecarStyle {style!r} must name a bool or truthy setting")
    return Plugin(
        name=name,
        kind=kind,
        description=str(fields.get("description", "")).strip(),
        path=where,
        on=_key_matches(fields.get("on"), where=where, section="on"),
        off=_key_matches(fields.get("off"), where=where, section="off"),
        settings=settings,
        values=Attrs(values),
        hooks=hooks,
        fragment=fragment,
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
        control_plane=tuple(control_plane),
        defaults=_defaults(settings),
        container_names=frozenset(names.get("initContainers", []) + names.get("sidecars", []) + names.get("containers", [])),
        declared=declared,
        overwrite=overwrite,
        overwrite_labels=overwrite_labels,
        replace_empty_labels=replace_empty,
        init_after=init_after,
        init_first=init_first,
        revisions=revisions,
        own_status=own_status,
        written_keys=_written_keys(fragment_node, env),
        releases=releases,
        sidecar_style_setting=None if style is None else str(style),
        mesh_free=tuple(mesh_free),
        namespace_settings=bool(fields.get("namespaceSettings", True)),
        sidecar=_sidecar_rule(fields.get("sidecar"), env=env, where=where),
        warn=_warn_rules(fields.get("warn"), env=env, where=f"{where}: warn"),
        refuse=_warn_rules(fields.get("refuse"), env=env, where=f"{where}: refuse"),
        present=_present(fields.get("present"), names, where=where),
        present_images=_present_images(fields.get("presentImages"), str(name), where=where),
    )


def _revisions(raw: Any, *, where: str) -> Revisions | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str) or not isinstance(raw.get("default"), str):
        raise ConfigError(f"{where}: revisions needs key (a label) and default (the default revision's name)")
    values = raw.get("values") or {}
    if not isinstance(values, Mapping) or not all(isinstance(v, str) for v in values.values()):
        raise ConfigError(f"{where}: revisions.values must map value names to strings")
    precedence = raw.get("precedence", "pod")
    if precedence not in ("pod", "namespace"):
        raise ConfigError(f"{where}: revisions.precedence {precedence!r}; accepted: pod, namespace")
    default_with = _names(raw.get("defaultWith"), f"{where}: revisions.defaultWith must be a list of namespace label names")
    tags = raw.get("tags")
    if tags is None:
        tags = {"object": None, "selector": None, "label": None}
    elif not isinstance(tags, Mapping) or not all(isinstance(tags.get(k), str) for k in ("object", "selector", "label")):
        raise ConfigError(f"{where}: revisions.tags needs object (a name with {{revision}}), selector and label")
    return Revisions(
        raw["key"], raw["default"], dict(values), tags["object"], tags["selector"], tags["label"],
        precedence, tuple(sorted(default_with)),
    )  # fmt: skip


def _sidecar_rule(raw: Any, *, env: Any, where: str) -> SidecarRule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - {"choose", "default", "classicFirst"}:
        raise ConfigError(f"{where}: sidecar takes choose, default and classicFirst")

    def expression(field: str) -> Expression | None:
        text = raw.get(field)
        return Expression(env, text, where=f"{where}: sidecar.{field}") if text is not None else None

    return SidecarRule(choose=expression("choose"), default=expression("default"), classic_first=expression("classicFirst"))


def _names(raw: Any, problem: str) -> frozenset[str]:
    """A plugin field that lists names (annotations, labels, containers): absent is none."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(k, str) and k for k in raw):
        raise ConfigError(problem)
    return frozenset(raw)


def _present(raw: Any, names: Mapping[str, list[str]], *, where: str) -> frozenset[str]:
    """By default every init container and sidecar the plugin injects; a plugin whose proxy has a
    common name (a user's own `envoy`) lists only what is unmistakably its own."""
    if raw is None:
        return frozenset(names.get("initContainers", []) + names.get("sidecars", []))
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise ConfigError(f"{where}: present is a list of container names")
    return frozenset(raw)


def _present_images(raw: Any, name: str, *, where: str) -> tuple[ImageMark, ...]:
    """`presentImages: [{prefix, in: [initContainers, containers], mesh}]`; `in` defaults to both
    sections, `mesh` to this plugin."""
    if raw is None:
        return ()
    problem = f"{where}: presentImages is a list of {{prefix, in: [initContainers, containers], mesh}}"
    if not isinstance(raw, list):
        raise ConfigError(problem)
    marks = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) - {"prefix", "in", "mesh"} or not isinstance(item.get("prefix"), str) or not item["prefix"]:
            raise ConfigError(problem)
        sections = item.get("in", ["initContainers", "containers"])
        if not isinstance(sections, list) or not sections or not set(sections) <= {"initContainers", "containers"}:
            raise ConfigError(problem)
        mesh = item.get("mesh", name)
        if not isinstance(mesh, str) or not mesh:
            raise ConfigError(problem)
        marks.append(ImageMark(item["prefix"], tuple(sections), mesh))
    return tuple(marks)


def _warn_rules(raw: Any, *, env: Any, where: str) -> tuple[WarnRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(r, Mapping) and set(r) == {"if", "message"} for r in raw):
        raise ConfigError(f"{where} is a list of {{if, message}}")
    return tuple(WarnRule(Expression(env, r["if"], where=where), str(r["message"])) for r in raw)


def _defaults(settings: tuple[Setting, ...]) -> Attrs:
    defaults = Attrs({s.name: s.default for s in settings})
    defaults.cache_key = ()  # type: ignore[attr-defined]
    return defaults


def _plugin_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigError(f"{directory}: templates directory does not exist")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_plugins(extra_dirs: Sequence[Path] = (), *, builtin: Path | None = BUILTIN_TEMPLATES) -> PluginSet:
    """Load the shipped plugins, then each extra directory (a file there adds or replaces by name)."""
    env = make_environment()
    found: dict[str, Plugin] = {}
    directories: Iterable[Path] = ([builtin] if builtin is not None else []) + list(extra_dirs)
    for directory in directories:
        seen_here: dict[str, str] = {}
        for path in _plugin_files(Path(directory)):
            plugin = load_plugin(path, env=env)
            if plugin.name in seen_here:
                raise ConfigError(f"{path}: plugin {plugin.name!r} is also defined in {seen_here[plugin.name]}")
            seen_here[plugin.name] = str(path)
            found[plugin.name] = plugin
    if not found:
        raise ConfigError("no plugins found")
    return PluginSet(by_name={name: found[name] for name in sorted(found)})
