"""The decision (SPEC.md rules 2 to 8): pod + namespace + config -> plugins to inject, or why not.

Pure: no I/O. Rule 1 (only Pod CREATE) belongs to the caller, which knows the request's kind and
operation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast

from webhook.engine import reasons
from webhook.engine.config import SIDECAR_STYLES, Config
from webhook.engine.errors import PodDenied
from webhook.engine.leaves import Attrs
from webhook.engine.kube import NamespaceMeta, Pod
from webhook.engine.plugins import KeyMatch, Plugin, PluginSet
from webhook.engine.reasons import Reason
from webhook.engine.releases import Version, applies
from webhook.engine.settings import Setting, SettingError, go_trim, show
from webhook.engine.status import STATUS_KEY, malformed_status_warning, read_status

MODE_KEY = "meshswitch.io/mode"
INJECT_KEY = "meshswitch.io/inject"
SIDECAR_KEY = "meshswitch.io/sidecar"

_EMPTY: Mapping[str, str] = {}
ValuesFor = Callable[[Plugin], Mapping[str, Any]]
_S = TypeVar("_S")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Decision:
    """The plugins to inject (possibly none), why, and each plugin's parsed per-pod settings."""

    plugins: tuple[Plugin, ...]
    reason: Reason
    mode: str
    sidecar_style: str
    settings: Mapping[str, Mapping[str, Any]]
    revisions: Mapping[str, str] = field(default_factory=dict)  # plugin -> control-plane revision
    warnings: tuple[str, ...] = ()
    sidecar_chosen: bool = False  # the pod's own meshswitch.io/sidecar chose the style


_DECISION_FIELDS = ("plugins", "reason", "mode", "sidecar_style", "settings", "revisions", "warnings", "sidecar_chosen")
if tuple(f.name for f in fields(Decision)) != _DECISION_FIELDS:
    raise AssertionError("_decision must set every field of Decision")


def _decision(
    plugins: tuple[Plugin, ...], reason: Reason, mode: str, sidecar_style: str, settings: Mapping[str, Mapping[str, Any]],
    revisions: Mapping[str, str] | None = None, warnings: tuple[str, ...] = (), sidecar_chosen: bool = False,
) -> Decision:  # fmt: skip
    """Decision(...) as its __init__ makes it, less the frozen dataclass's object.__setattr__ per
    field (a microsecond of every pod's decision)."""
    decision = object.__new__(Decision)
    decision.__dict__.update(
        plugins=plugins, reason=reason, mode=mode, sidecar_style=sidecar_style, settings=settings,
        revisions={} if revisions is None else revisions, warnings=warnings, sidecar_chosen=sidecar_chosen,
    )  # fmt: skip
    return decision


def restyled(decision: Decision, sidecar_style: str) -> Decision:
    """`dataclasses.replace(decision, sidecar_style=...)`, as `_decision` makes one."""
    copy = object.__new__(Decision)
    copy.__dict__.update(decision.__dict__, sidecar_style=sidecar_style)
    return copy


def _pod_value(labels: Mapping[str, str], annotations: Mapping[str, str], key: str) -> str | None:
    """A key that may sit on the pod as label or annotation: the label wins."""
    value = labels.get(key)
    return value if value is not None else annotations.get(key)


class _View:
    """The four maps a key can be read from (a plain class: made for every pod)."""

    __slots__ = ("pod_labels", "pod_annotations", "ns_labels", "ns_annotations")

    def __init__(
        self, pod_labels: Mapping[str, str], pod_annotations: Mapping[str, str],
        ns_labels: Mapping[str, str], ns_annotations: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.pod_labels = pod_labels
        self.pod_annotations = pod_annotations
        self.ns_labels = ns_labels
        self.ns_annotations = ns_annotations

    def read(self, match: KeyMatch) -> str | None:
        place = match.place
        if place == "pod":
            return _pod_value(self.pod_labels, self.pod_annotations, match.key)
        if place == "pod-label":
            return self.pod_labels.get(match.key)
        if place == "pod-annotation":
            return self.pod_annotations.get(match.key)
        if place == "namespace":
            return _pod_value(self.ns_labels, self.ns_annotations, match.key)
        if place == "namespace-label":
            return self.ns_labels.get(match.key)
        return self.ns_annotations.get(match.key)

    def first_match(self, matches: tuple[KeyMatch, ...], *, on_pod: bool, installed: Version | None = None) -> KeyMatch | None:
        side = _derived(_SIDES, matches, _sides)[0 if on_pod else 1]
        if on_pod:
            return _first(side, self.pod_labels, self.pod_annotations, installed)
        return _first(side, self.ns_labels, self.ns_annotations, installed)

    def either_match(self, matches: tuple[KeyMatch, ...], installed: Version | None = None) -> KeyMatch | None:
        """The first match on the pod, else on the namespace."""
        if not matches:
            return None
        pod_side, namespace_side = _derived(_SIDES, matches, _sides)
        return _first(pod_side, self.pod_labels, self.pod_annotations, installed) or _first(
            namespace_side, self.ns_labels, self.ns_annotations, installed
        )


def _first(
    side: tuple[_Key, ...], labels: Mapping[str, str], annotations: Mapping[str, str], installed: Version | None
) -> KeyMatch | None:
    """The first of a side's keys that is set to one of its values."""
    if not labels and not annotations:
        return None
    for match, key, values, star, excepted, versioned, in_labels, in_annotations in side:
        if versioned and installed is not None and not match.read_by(installed):
            continue
        value = labels.get(key) if in_labels else None  # as read(): a label wins over an annotation
        if value is None and in_annotations:
            value = annotations.get(key)
        if value is None:
            continue
        if excepted:  # any value but these (values is ["*"])
            if value.strip() and (value if match.exact else value.lower()) not in excepted:
                return match
        elif match.exact:
            if value in values or (star and value.strip()):
                return match
        elif value.lower() in values or (star and value.strip()) or (match.trim and go_trim(value).lower() in values):
            return match
    return None


# What decide derives from a plugin's (immutable) compiled parts, made on first use and then
# reused for every pod: one cache per kind of thing derived. Keyed by identity; the entry keeps its
# source alive, so an id cannot be reused while cached.
_Cache = dict[int, tuple[object, object]]
_SIDES: _Cache = {}
_SETTING_INDEX: _Cache = {}


def _derived(cache: _Cache, source: _S, build: Callable[[_S], _T]) -> _T:
    entry = cache.get(id(source))
    if entry is None or entry[0] is not source:
        entry = (source, build(source))
        if len(cache) >= 1024:  # plugins reloaded many times over: start afresh
            cache.clear()
        cache[id(source)] = entry
    return cast(_T, entry[1])


# A key as first_match reads it: the match, its key and values, whether any value counts, whether
# it has release lines, and whether it is read from the labels and from the annotations.
_Key = tuple[KeyMatch, str, frozenset[str], bool, frozenset[str], bool, bool, bool]


def _sides(matches: tuple[KeyMatch, ...]) -> tuple[tuple[_Key, ...], tuple[_Key, ...]]:
    """An on/off tuple split by side and unpacked: rules ask ~8 times a pod."""
    keys = [
        (
            m, m.key, m.values, "*" in m.values and not m.excepted, m.excepted, bool(m.since or m.until),
            not m.place.endswith("-annotation"), not m.place.endswith("-label"),
        )  # fmt: skip
        for m in matches
    ]
    return tuple(k for k in keys if k[0].on_pod), tuple(k for k in keys if not k[0].on_pod)


def _mapping(obj: Any) -> Mapping[str, Any]:
    """The object when it is a JSON object, else an empty one (labels are strings once the review
    was parsed; metadata and spec hold anything)."""
    return obj if isinstance(obj, dict) else _EMPTY


def _choose_mode(view: _View, plugins: PluginSet, config: Config, installed: Callable[[Plugin], Version]) -> tuple[str, str]:
    """Rule 4: the mode and where it came from (pod key, namespace label, a mesh's key, or default)."""
    explicit = _pod_value(view.pod_labels, view.pod_annotations, MODE_KEY)
    source = f"pod {MODE_KEY}"
    if explicit is None:
        explicit = view.ns_labels.get(MODE_KEY)
        source = f"namespace label {MODE_KEY}"
    if explicit is not None:
        mode = explicit.strip()
        if mode not in plugins.modes:
            raise PodDenied(
                reasons.UNKNOWN_MODE,
                f"{source}={show(explicit)} is not an installed mode; accepted: {', '.join(plugins.modes)}",
            )
        return mode, source
    for on_pod, level in ((True, "pod"), (False, "namespace")):
        requested = [(p, m) for p in plugins.meshes if (m := view.first_match(p.on, on_pod=on_pod, installed=installed(p)))]
        if len(requested) > 1:
            keys = "; ".join(f"{m.key} selects {p.name}" for p, m in requested)
            raise PodDenied(
                reasons.CONFLICTING_MODES,
                f"the {level} asks for two meshes at once ({keys}); at most one mesh per pod: "
                f"set {MODE_KEY} to one of {', '.join(plugins.modes)}",
            )
        if requested:
            plugin, match = requested[0]
            return plugin.name, f"{level} key {match.key}"
    return config.default_mode, "server default"


def _sidecar_style(view: _View, config: Config, chosen: list[Plugin], settings: Mapping[str, Mapping[str, Any]]) -> str:
    raw = view.pod_annotations.get(SIDECAR_KEY)
    if raw is None:
        for plugin in chosen:  # a plugin's own key (Dapr's enable-native-sidecar), when the pod sets it
            picked = settings.get(plugin.name, {}).get(plugin.sidecar_style_setting or "")
            if picked is not None:
                return "native" if picked else "classic"
        return config.sidecar_style or "native"
    if raw not in SIDECAR_STYLES:
        raise PodDenied(
            reasons.INVALID_SETTING,
            f"annotation {SIDECAR_KEY}={show(raw)} is not a sidecar style; accepted: {', '.join(SIDECAR_STYLES)}",
        )
    return raw


def _image_allowed(image: str, allowed: tuple[str, ...]) -> bool:
    first = image.split("/", 1)[0]
    # A reference without a registry host is a Docker Hub image (nginx -> docker.io/library/nginx).
    if "/" not in image:
        full = "docker.io/library/" + image
    elif "." not in first and ":" not in first and first != "localhost":
        full = "docker.io/" + image
    else:
        full = image
    return any(full.startswith(prefix.rstrip("/") + "/") or image.startswith(prefix.rstrip("/") + "/") for prefix in allowed)


def _pod_field(pod: Pod, path: str) -> str:
    node: Any = pod
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, str) else ""


def _check_fallbacks(plugin: Plugin, pod: Pod, view: _View) -> None:
    """A setting whose key is absent or empty takes a pod field (Dapr's app id: the pod's name),
    which must be a valid value too."""
    for setting in plugin.fallbacks:
        if any(view.pod_annotations.get(k) or view.ns_annotations.get(k) for k in setting.keys):
            continue
        raw = _pod_field(pod, setting.fallback or "")
        key = setting.keys[0]
        if not raw:
            raise PodDenied(
                reasons.INVALID_SETTING,
                f"pod annotation {key} is absent or empty and the pod's {setting.fallback} is empty "
                f"(a controller names its pods when it creates them: a Deployment's get a generated name, "
                f"a StatefulSet's <name>-<ordinal>, each its own); set {key} to {setting.accepts()}",
            )
        try:
            setting.parse(raw)
        except SettingError as err:
            raise PodDenied(
                reasons.INVALID_SETTING,
                f"pod annotation {key} is absent, so the pod's {setting.fallback} {_cut(raw)!r} stands in for it, "
                f"and it is {err}; accepted: {setting.accepts()}",
            ) from None


def _cut(raw: str) -> str:
    return raw if len(raw) <= 80 else raw[:77] + "..."


def _settings_index(settings: tuple[Setting, ...]) -> Mapping[str, tuple[int, ...]]:
    """Key -> the settings that read it (a pod sets a few of Dapr's ~60 keys)."""
    index: dict[str, list[int]] = {}
    for number, setting in enumerate(settings):
        for key in setting.keys:
            index.setdefault(key, []).append(number)
    return {k: tuple(v) for k, v in index.items()}


def _settings_reading(settings: tuple[Setting, ...], present: frozenset[str]) -> list[Setting]:
    """The settings that read one of the `present` keys, in their order."""
    by_key = _derived(_SETTING_INDEX, settings, _settings_index)
    return [settings[number] for number in sorted({n for key in present for n in by_key.get(key, ())})]




def parse_settings(plugin: Plugin, view: _View, config: Config, installed: Version | None = None) -> Mapping[str, Any]:
    """Rule 8: the plugin's settings from pod annotations, then namespace annotations, then defaults."""
    keys = plugin.setting_keys
    if keys.isdisjoint(view.pod_annotations) and keys.isdisjoint(view.ns_annotations):
        return plugin.defaults  # most pods set nothing: skip the per-setting lookups
    parsed: dict[str, Any] | None = None
    raws: list[tuple[str, str]] = []
    present = keys & (view.pod_annotations.keys() | view.ns_annotations.keys())
    for setting in _settings_reading(plugin.settings, present):
        if (setting.since or setting.until) and not applies(setting.since, setting.until, installed or plugin.installed()):
            continue  # a key this release of the mesh does not read
        if setting.used_when is not None and not (parsed or plugin.defaults).get(setting.used_when):
            continue  # lands nowhere while its switch is off: neither parsed nor refused, as the mesh
        if setting.fallback is not None and not any(view.pod_annotations.get(k) or view.ns_annotations.get(k) for k in setting.keys):
            continue  # absent or empty: the template takes the pod field
        for key in setting.keys:
            raw = view.pod_annotations.get(key)
            where = "pod annotation"
            if raw is None and setting.on_namespace(key):
                raw = view.ns_annotations.get(key)
                where = "namespace annotation"
            if raw is None:
                continue
            if setting.empty_is_unset and not raw.strip():
                break  # the key is there, empty: the default, not the namespace's value nor a later key
            if setting.used_if is not None and not setting.used_if.search(raw):
                break  # a value the template would not use (Istio's proxyImage without a '/'): the default
            checked = [(where, raw)]
            if setting.check_namespace and where == "pod annotation" and (above := view.ns_annotations.get(key)) and above.strip():
                checked.insert(0, ("namespace annotation", above))  # the mesh reads the namespace's first
            for place, text in checked:
                try:
                    value = setting.parse(text)
                except SettingError as err:
                    raise PodDenied(
                        reasons.INVALID_SETTING,
                        f"{place} {key}={show(text)} is {err}; accepted: {setting.accepts()}",
                    ) from None
            if setting.type == "image" and not _image_allowed(value, config.allowed_registries):
                raise PodDenied(
                    reasons.IMAGE_NOT_ALLOWED,
                    f"{where} {key}={show(raw)} is not from an allowed registry; accepted: {', '.join(config.allowed_registries)}",
                )
            if parsed is None:
                parsed = Attrs(plugin.defaults)
            parsed[setting.name] = value
            if value != plugin.defaults.get(setting.name):
                raws.append((setting.name, raw))
            break
    if parsed is None:
        return plugin.defaults
    # What the static half of the fragment is cached by: the raw text of the values that differ
    # from the defaults (parsing is pure, and a string hashes far faster than a frozen list).
    parsed.cache_key = tuple(raws)  # type: ignore[attr-defined]
    return parsed


def _scan_containers(pod: Pod) -> tuple[frozenset[str], frozenset[str], bool]:
    """One walk over the pod's containers: the names of all of them (rule 7) and of the app's own
    (a gateway), and whether `_check_containers` is sure to pass (rule 8; False when in doubt,
    and that check then names what is wrong)."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    app: set[str] = set()
    valid = _mapping(spec.get("os")).get("name") != "windows"
    for section in ("initContainers", "containers"):
        items = spec.get(section) or ()
        if items and not isinstance(items, list):
            valid = False
        for container in items:
            if not isinstance(container, dict):
                valid = False
                continue
            name = container.get("name")
            if isinstance(name, str):
                names.add(name)
                if section == "containers":
                    app.add(name)
            if not name:
                valid = False
            ports = container.get("ports")
            if not ports:
                continue
            if not isinstance(ports, list):
                valid = False
                continue
            for port in ports:
                value = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
                    valid = False
    return frozenset(names), frozenset(app), valid


def _image_present(plugin: Plugin, pod: Pod) -> tuple[str, str, str] | None:
    """The first container whose image a plugin's `presentImages` names: its name, image and mesh."""
    spec = _mapping(pod.get("spec"))
    for section in ("initContainers", "containers"):
        items = spec.get(section)
        for container in items if isinstance(items, list) else ():
            image = container.get("image") if isinstance(container, dict) else None
            if not isinstance(image, str):
                continue
            for mark in plugin.present_images:
                if section in mark.sections and image.startswith(mark.prefix):
                    return str(container.get("name")), image, mark.mesh
    return None


def _check_containers(pod: Pod) -> None:
    """Rule 8: shapes the API server would reject in validation are refused here, naming the field.

    Admission runs before validation, so such a pod reaches the webhook; rendering it would
    otherwise fail on a field the templates rightly take for granted.
    """
    spec = _mapping(pod.get("spec"))
    if _mapping(spec.get("os")).get("name") == "windows":
        # Every plugin's proxy and init container set Linux-only security fields (capabilities,
        # seccomp, readOnlyRootFilesystem) that the API server forbids in a windows pod.
        raise PodDenied(
            reasons.INVALID_POD,
            'spec.os.name: Unsupported value: "windows": the injected sidecars run on Linux only; '
            'accepted: linux, or opt the pod out with the label meshswitch.io/inject: "false"',
        )
    for section in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(section) or ()):
            # The field's name is formatted only for a refusal: this runs for every container of every pod.
            if not isinstance(container, dict):
                raise PodDenied(reasons.INVALID_POD, f"spec.{section}[{index}]: must be an object")
            if not container.get("name"):
                raise PodDenied(reasons.INVALID_POD, f"spec.{section}[{index}].name: Required value: every container needs a name")
            for number, port in enumerate(container.get("ports") or ()):
                value = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
                    raise PodDenied(
                        reasons.INVALID_POD,
                        f"spec.{section}[{index}].ports[{number}].containerPort: Required value: a port number from 1 to 65535",
                    )


def _mesh_free_owner(name: str, plugins: PluginSet, values_for: ValuesFor | None) -> str | None:
    """The runtime plugin whose control plane lives in this namespace and must not be meshed."""
    for plugin in plugins.runtimes:
        if plugin.mesh_free:
            values = values_for(plugin) if values_for is not None else plugin.values
            if any(values.get(v) == name for v in plugin.mesh_free):
                return plugin.name
    return None


def _skip(code: str, message: str, mode: str, style: str, warnings: tuple[str, ...] = ()) -> Decision:
    return _decision((), Reason(code, message), mode, style, {}, warnings=warnings)


def decide(
    pod: Pod, namespace: NamespaceMeta, *, plugins: PluginSet, config: Config, values_for: ValuesFor | None = None
) -> Decision:
    """Apply SPEC.md rules 2 to 8; raises PodDenied for rule 8. `values_for` gives each plugin's live
    install values (discovery), whose release decides which keys are read."""

    def installed(plugin: Plugin) -> Version:
        return plugin.installed(values_for(plugin) if values_for is not None else None)

    metadata = _mapping(pod.get("metadata"))
    view = _View(
        pod_labels=_mapping(metadata.get("labels")),
        pod_annotations=_mapping(metadata.get("annotations")),
        ns_labels=namespace.labels,
        ns_annotations=namespace.annotations,
    )
    style = config.sidecar_style or "native"
    if namespace.name in config.ignored_namespaces:  # rule 2
        return _skip(reasons.IGNORED_NAMESPACE, f"namespace {namespace.name} is never injected", "native", style)
    opt_out = _pod_value(view.pod_labels, view.pod_annotations, INJECT_KEY)  # rule 3
    if opt_out is not None:
        choice = opt_out.strip().lower()
        if choice == "false":
            return _skip(reasons.OPTED_OUT, f"the pod sets {INJECT_KEY}=false", "native", style)
        if choice != "true":  # "nope" must not silently count as "inject"
            where = "label" if INJECT_KEY in view.pod_labels else "annotation"
            raise PodDenied(
                reasons.INVALID_SETTING,
                f"pod {where} {INJECT_KEY}={opt_out[:64]!r} is not a choice; accepted: true, false",
            )

    mode, source = _choose_mode(view, plugins, config, installed)  # rule 4
    # The style a skip reports; the pod's own choice is checked (and may deny) only once something
    # is to be injected, as every other setting is.
    raw_style = view.pod_annotations.get(SIDECAR_KEY)
    style = raw_style if raw_style in SIDECAR_STYLES else config.sidecar_style or "native"
    chosen: list[Plugin] = []
    skipped: Reason | None = None
    if mode in plugins and plugins[mode].is_mesh:
        mesh = plugins[mode]
        off = view.either_match(mesh.off)  # rule 5
        if off is not None:
            skipped = Reason(reasons.PLUGIN_DISABLED, f"{mesh.name} is turned off by {off.place} {off.key}={view.read(off)}")
        elif (owner := _mesh_free_owner(namespace.name, plugins, values_for)) is not None:
            skipped = Reason(
                reasons.PLUGIN_DISABLED,
                f"{mesh.name} is never injected in {namespace.name}: {owner}'s control plane runs there and must stay out of any mesh",
            )
        elif (pod.get("spec") or {}).get("hostNetwork") is True:
            skipped = Reason(reasons.HOST_NETWORK, f"{mesh.name} does not intercept hostNetwork pods")
        else:
            chosen.append(mesh)
    elif source == "server default":
        skipped = Reason(reasons.NO_MODE, f"no mode is selected; the server default is {mode}")
    else:
        skipped = Reason(reasons.NATIVE_MODE, f"{source} selects {mode}: nothing is injected")

    for runtime in plugins.runtimes:  # rule 6
        release = installed(runtime)
        if view.either_match(runtime.on, release) is None:
            continue
        if view.either_match(runtime.off, release) is None:
            chosen.append(runtime)

    status = read_status(view.pod_annotations) if chosen else {}  # rule 7
    done = frozenset(status.get("plugins", ())) if status else frozenset()
    if done and chosen:
        remaining = [p for p in chosen if p.name not in done]
        if not remaining:
            return _skip(reasons.ALREADY_INJECTED, f"already injected: {', '.join(sorted(done))}", mode, style)
        chosen = remaining
    present, app_containers, containers_valid = _scan_containers(pod)
    if status is None and present and (carried := sorted(frozenset().union(*(p.container_names for p in chosen)) & present)):
        # A record we cannot read says nothing of what was injected: a pod that carries a selected
        # plugin's containers (an earlier pass, a record of another version) is left as it is,
        # never injected twice; a record written afresh could not say what the pod already has.
        message = f"{STATUS_KEY} is present but not a record meshswitch wrote, and the pod already has {', '.join(carried)}"
        warning = malformed_status_warning(view.pod_annotations, f"the pod already has {', '.join(carried)}, so it is treated as injected")
        return _skip(reasons.ALREADY_INJECTED, message, mode, style, (warning or "",))
    if (
        present and chosen and chosen[0].is_mesh and not present.isdisjoint(plugins.mesh_containers)
        and any(p is not chosen[0] and not p.present.isdisjoint(present) for p in plugins.meshes)
    ):  # fmt: skip
        others = sorted(
            (name, p.name) for p in plugins.meshes if p is not chosen[0] for name in p.present & present
        )
        if others:  # rule 7: a mesh is never stacked on another mesh's proxy
            name, owner = others[0]
            message = f"the pod already carries {name} ({owner}); {chosen[0].name} is not stacked on another mesh"
            return _skip(reasons.OTHER_MESH_PRESENT, message, mode, style, (f"{chosen[0].name}: {message}",))
    if chosen and chosen[0].is_mesh and chosen[0].present_images and (found := _image_present(chosen[0], pod)) is not None:
        name, image, owner = found  # rule 7, as the mesh's own injector finds a proxy by its image
        if owner != chosen[0].name:
            message = f"the pod already runs {image} in {name} ({owner}); {chosen[0].name} is not stacked on another mesh"
            return _skip(reasons.OTHER_MESH_PRESENT, message, mode, style, (f"{chosen[0].name}: {message}",))
        if len(chosen) == 1:
            return _skip(reasons.SIDECAR_PRESENT, f"the pod already runs {image} in {name}", mode, style)
        chosen = chosen[1:]
    if present and chosen:
        # A plugin that merges a declared container (Istio) injects; others skip (Linkerd, by `present`).
        remaining = [p for p in chosen if not (p.skipped_with & present)]
        if not remaining:
            names = sorted(frozenset().union(*(p.skipped_with for p in chosen)) & present)
            return _skip(reasons.SIDECAR_PRESENT, f"the pod already has {', '.join(names)}", mode, style)
        chosen = remaining

    if not chosen:
        assert skipped is not None
        return _decision((), skipped, mode, style, {})
    if not containers_valid:
        _check_containers(pod)  # rule 8
    pod_only = _View(view.pod_labels, view.pod_annotations, view.ns_labels, _EMPTY)
    settings = {}
    for plugin in chosen:  # rule 8
        own = view if plugin.namespace_settings else pod_only
        if plugin.fallbacks:  # first: Dapr refuses a pod for its missing app id alone, whatever else is wrong
            _check_fallbacks(plugin, pod, own)
        settings[plugin.name] = parse_settings(plugin, own, config, installed(plugin))
    style = _sidecar_style(view, config, chosen, settings)
    mergers = [p for p in chosen if p.declared == "merge"]
    app_names = app_containers if mergers else frozenset()
    if app_names and any(app_names <= p.container_names for p in mergers):
        style = "classic"  # the pod is the proxy (a gateway): it stays an ordinary container, as in Istio
    revisions = {p.name: revision_of(p, view) for p in chosen if p.revisions is not None}
    message = f"injected {', '.join(p.name for p in chosen)} ({source} selects {mode})"
    if skipped is not None and skipped.code in (reasons.PLUGIN_DISABLED, reasons.HOST_NETWORK):
        message += f"; {skipped.message}"  # the selected mesh was not: say why
    return _decision(
        plugins=tuple(chosen),
        reason=Reason(reasons.INJECTED, message),
        mode=mode,
        sidecar_style=style,
        settings=settings,
        revisions=revisions,
        sidecar_chosen=SIDECAR_KEY in view.pod_annotations,
    )


def revision_of(plugin: Plugin, view: _View) -> str:
    """The control-plane revision a pod asks for: the default where the namespace carries a label of
    `defaultWith`; else the pod's label and the namespace's, in the plugin's precedence; else the default."""
    revisions = plugin.revisions
    assert revisions is not None
    if any(key in view.ns_labels for key in revisions.default_with):
        return revisions.default
    key = revisions.key
    pod, namespace = view.pod_labels.get(key), view.ns_labels.get(key)
    for value in (namespace, pod) if revisions.precedence == "namespace" else (pod, namespace):
        if value is not None and value.strip():
            return value.strip()
    return revisions.default
