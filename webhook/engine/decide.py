"""The decision (SPEC.md rules 2 to 8): pod + namespace + config -> plugins to inject, or why not.

Pure: no I/O. Rule 1 (only Pod CREATE) belongs to the caller, which knows the request's kind and
operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.engine import reasons
from webhook.engine.config import SIDECAR_STYLES, Config
from webhook.engine.errors import PodDenied
from webhook.engine.fragment import Attrs, freeze as _freeze
from webhook.engine.kube import NamespaceMeta, Pod
from webhook.engine.plugins import KeyMatch, Plugin, PluginSet
from webhook.engine.reasons import Reason
from webhook.engine.settings import SettingError

MODE_KEY = "meshswitch.io/mode"
INJECT_KEY = "meshswitch.io/inject"
SIDECAR_KEY = "meshswitch.io/sidecar"
STATUS_KEY = "meshswitch.io/status"

_EMPTY: Mapping[str, str] = {}


@dataclass(frozen=True)
class Decision:
    """The plugins to inject (possibly none), why, and each plugin's parsed per-pod settings."""

    plugins: tuple[Plugin, ...]
    reason: Reason
    mode: str
    sidecar_style: str
    settings: Mapping[str, Mapping[str, Any]]
    revisions: Mapping[str, str] = field(default_factory=dict)  # plugin -> control-plane revision


def _pod_value(labels: Mapping[str, str], annotations: Mapping[str, str], key: str) -> str | None:
    """A key that may sit on the pod as label or annotation: the label wins."""
    value = labels.get(key)
    return value if value is not None else annotations.get(key)


@dataclass(frozen=True)
class _View:
    """The four maps a key can be read from."""

    pod_labels: Mapping[str, str]
    pod_annotations: Mapping[str, str]
    ns_labels: Mapping[str, str]
    ns_annotations: Mapping[str, str]

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

    def first_match(self, matches: tuple[KeyMatch, ...], *, on_pod: bool) -> KeyMatch | None:
        for match in matches:
            if match.on_pod is on_pod:
                value = self.read(match)
                if value is not None and (value.lower() in match.values or ("*" in match.values and value.strip())):
                    return match
        return None


def _mapping(obj: Any) -> Mapping[str, str]:
    return obj if isinstance(obj, dict) else _EMPTY


def injected_plugins(annotations: Mapping[str, str]) -> frozenset[str]:
    """Plugins that `meshswitch.io/status` records as already injected."""
    raw = annotations.get(STATUS_KEY)
    if not raw:
        return frozenset()
    try:
        status = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return frozenset()
    names = status.get("plugins") if isinstance(status, dict) else None
    return frozenset(n for n in names if isinstance(n, str)) if isinstance(names, list) else frozenset()


def _choose_mode(view: _View, plugins: PluginSet, config: Config) -> tuple[str, str]:
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
                f"{source}={explicit!r} is not an installed mode; accepted: {', '.join(plugins.modes)}",
            )
        return mode, source
    for on_pod, level in ((True, "pod"), (False, "namespace")):
        requested = [(p, m) for p in plugins.meshes if (m := view.first_match(p.on, on_pod=on_pod))]
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


def _sidecar_style(view: _View, config: Config, mesh: Plugin | None = None) -> str:
    raw = view.pod_annotations.get(SIDECAR_KEY)
    if raw is None:
        own = view.pod_annotations.get(mesh.sidecar_style_key) if mesh is not None and mesh.sidecar_style_key else None
        if own is not None:  # the mesh's own key, as that mesh reads it: only "false" means classic
            return "classic" if own.strip() == "false" else "native"
        return config.sidecar_style
    if raw not in SIDECAR_STYLES:
        raise PodDenied(
            reasons.INVALID_SETTING,
            f"annotation {SIDECAR_KEY}={raw!r} is not a sidecar style; accepted: {', '.join(SIDECAR_STYLES)}",
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


def parse_settings(plugin: Plugin, view: _View, config: Config) -> Mapping[str, Any]:
    """Rule 8: the plugin's settings from pod annotations, then namespace annotations, then defaults."""
    keys = plugin.setting_keys
    if keys.isdisjoint(view.pod_annotations) and keys.isdisjoint(view.ns_annotations):
        return plugin.defaults  # most pods set nothing: skip the per-setting lookups
    parsed: dict[str, Any] | None = None
    for setting in plugin.settings:
        for key in setting.keys:
            raw = view.pod_annotations.get(key)
            where = "pod annotation"
            if raw is None:
                raw = view.ns_annotations.get(key)
                where = "namespace annotation"
            if raw is None:
                continue
            try:
                value = setting.parse(raw)
            except SettingError as err:
                raise PodDenied(
                    reasons.INVALID_SETTING,
                    f"{where} {key}={raw!r} is {err}; accepted: {setting.accepts()}",
                ) from None
            if setting.type == "image" and not _image_allowed(value, config.allowed_registries):
                raise PodDenied(
                    reasons.IMAGE_NOT_ALLOWED,
                    f"{where} {key}={raw!r} is not from an allowed registry; accepted: {', '.join(config.allowed_registries)}",
                )
            if parsed is None:
                parsed = Attrs(plugin.defaults)
            parsed[setting.name] = value
            break
    if parsed is None:
        return plugin.defaults
    # What the static half of the fragment is cached by: only the values that differ from defaults.
    parsed.cache_key = tuple((k, _freeze(v)) for k, v in parsed.items() if v != plugin.defaults.get(k))  # type: ignore[attr-defined]
    return parsed


def _container_names(pod: Pod, section: str) -> frozenset[str]:
    items = (pod.get("spec") or {}).get(section) or ()
    return frozenset(c["name"] for c in items if isinstance(c, dict) and isinstance(c.get("name"), str))


def _existing_container_names(pod: Pod) -> frozenset[str]:
    spec = pod.get("spec") or {}
    names = set()
    for section in ("initContainers", "containers"):
        for container in spec.get(section) or ():
            if isinstance(container, dict) and isinstance(container.get("name"), str):
                names.add(container["name"])
    return frozenset(names)


def _skip(code: str, message: str, mode: str, style: str) -> Decision:
    return Decision(plugins=(), reason=Reason(code, message), mode=mode, sidecar_style=style, settings={})


def decide(pod: Pod, namespace: NamespaceMeta, *, plugins: PluginSet, config: Config) -> Decision:
    """Apply SPEC.md rules 2 to 8; raises PodDenied for rule 8."""
    metadata = _mapping(pod.get("metadata"))
    view = _View(
        pod_labels=_mapping(metadata.get("labels")),
        pod_annotations=_mapping(metadata.get("annotations")),
        ns_labels=namespace.labels,
        ns_annotations=namespace.annotations,
    )
    style = config.sidecar_style
    if namespace.name in config.ignored_namespaces:  # rule 2
        return _skip(reasons.IGNORED_NAMESPACE, f"namespace {namespace.name} is never injected", "native", style)
    opt_out = _pod_value(view.pod_labels, view.pod_annotations, INJECT_KEY)  # rule 3
    if opt_out is not None and opt_out.strip().lower() == "false":
        return _skip(reasons.OPTED_OUT, f"the pod sets {INJECT_KEY}=false", "native", style)

    mode, source = _choose_mode(view, plugins, config)  # rule 4
    style = _sidecar_style(view, config, plugins[mode] if mode in plugins else None)
    chosen: list[Plugin] = []
    skipped: Reason | None = None
    if mode in plugins and plugins[mode].is_mesh:
        mesh = plugins[mode]
        off = view.first_match(mesh.off, on_pod=True) or view.first_match(mesh.off, on_pod=False)  # rule 5
        if off is not None:
            skipped = Reason(reasons.PLUGIN_DISABLED, f"{mesh.name} is turned off by {off.place} {off.key}={view.read(off)}")
        elif (pod.get("spec") or {}).get("hostNetwork") is True:
            skipped = Reason(reasons.HOST_NETWORK, f"{mesh.name} does not intercept hostNetwork pods")
        else:
            chosen.append(mesh)
    elif source == "server default":
        skipped = Reason(reasons.NO_MODE, f"no mode is selected; the server default is {mode}")
    else:
        skipped = Reason(reasons.NATIVE_MODE, f"{source} selects {mode}: nothing is injected")

    for runtime in plugins.runtimes:  # rule 6
        on = view.first_match(runtime.on, on_pod=True) or view.first_match(runtime.on, on_pod=False)
        if on is None:
            continue
        off = view.first_match(runtime.off, on_pod=True) or view.first_match(runtime.off, on_pod=False)
        if off is None:
            chosen.append(runtime)

    done = injected_plugins(view.pod_annotations)  # rule 7
    if done and chosen:
        remaining = [p for p in chosen if p.name not in done]
        if not remaining:
            return _skip(reasons.ALREADY_INJECTED, f"already injected: {', '.join(sorted(done))}", mode, style)
        chosen = remaining
    present = _existing_container_names(pod)
    if present and chosen:
        mesh_chosen = [p for p in chosen if p.is_mesh]
        chosen_names = {p.name for p in mesh_chosen}
        others = sorted(n for p in plugins.meshes if p.name not in chosen_names for n in p.container_names & present)
        if mesh_chosen and others:  # rule 7: a mesh is never stacked on another mesh's proxy
            return _skip(
                reasons.OTHER_MESH_PRESENT,
                f"the pod already carries {', '.join(others)} of another mesh; {mesh_chosen[0].name} is not stacked on it",
                mode, style,
            )  # fmt: skip
        # A plugin that merges a declared container (Istio) injects; others skip (Linkerd).
        remaining = [p for p in chosen if p.declared == "merge" or not (p.container_names & present)]
        if not remaining:
            names = sorted(frozenset().union(*(p.container_names for p in chosen)) & present)
            return _skip(reasons.SIDECAR_PRESENT, f"the pod already has {', '.join(names)}", mode, style)
        chosen = remaining

    if not chosen:
        assert skipped is not None
        return Decision(plugins=(), reason=skipped, mode=mode, sidecar_style=style, settings={})
    mesh_proxy_only = [
        p for p in chosen if p.declared == "merge" and _container_names(pod, "containers") and _container_names(pod, "containers") <= p.container_names
    ]
    if mesh_proxy_only:
        style = "classic"  # the pod is the proxy (a gateway): it stays an ordinary container, as in Istio
    settings = {p.name: parse_settings(p, view, config) for p in chosen}  # rule 8
    revisions = {p.name: revision_of(p, view) for p in chosen if p.revisions is not None}
    return Decision(
        plugins=tuple(chosen),
        reason=Reason(reasons.INJECTED, f"injected {', '.join(p.name for p in chosen)} ({source} selects {mode})"),
        mode=mode,
        sidecar_style=style,
        settings=settings,
        revisions=revisions,
    )


def revision_of(plugin: Plugin, view: _View) -> str:
    """The control-plane revision a pod asks for: its own label, else its namespace's, else the default."""
    assert plugin.revisions is not None
    key = plugin.revisions.key
    for value in (view.pod_labels.get(key), view.ns_labels.get(key)):
        if value is not None and value.strip():
            return value.strip()
    return plugin.revisions.default
