"""Render: plugin + pod + settings -> what to add (containers, volumes, labels, ...). Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from webhook.engine.errors import ConfigError
from webhook.engine.leaves import Attrs
from webhook.engine.hooks import HOOKS, NOTHING, controller_behind
from webhook.engine.kube import NamespaceMeta, Pod
from webhook.engine.plugins import Plugin

# ownerReference kinds and the API group and plural their owner URIs use.
_KIND_API = {
    "Deployment": ("apps/v1", "deployments"),
    "ReplicaSet": ("apps/v1", "replicasets"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "DaemonSet": ("apps/v1", "daemonsets"),
    "Job": ("batch/v1", "jobs"),
    "CronJob": ("batch/v1", "cronjobs"),
    "ReplicationController": ("v1", "replicationcontrollers"),
    "Pod": ("v1", "pods"),
}


@dataclass(frozen=True)
class Workload:
    """The object that owns the pod, as far as the pod alone tells (Deployment behind a ReplicaSet)."""

    kind: str
    name: str
    from_pod: bool = False  # derived from the pod's own metadata (a review), not named by a file

    @property
    def api(self) -> tuple[str, str]:
        """The API version and plural of its kind, as owner URIs spell them."""
        return _KIND_API.get(self.kind) or ("v1", self.kind.lower() + "s")

    def as_context(self) -> Attrs:
        api_version, plural = self.api  # one lookup, per pod
        return Attrs(kind=self.kind, name=self.name, apiVersion=api_version, plural=plural, fromPod=self.from_pod)


def find_workload(pod: Pod) -> Workload:
    """Dapr's app-id and Istio's canonical name want the workload's name, not the empty pod name. A
    review's pod is taken back to what a file would name: the Deployment behind its ReplicaSet, the
    CronJob behind its Job, so the webhook and `meshswitch inject` of the file agree."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    template_hash = labels.get("pod-template-hash") if isinstance(labels, dict) else None
    for owner in metadata.get("ownerReferences") or ():
        if not isinstance(owner, dict) or not owner.get("controller"):
            continue
        kind, name = str(owner.get("kind", "")), str(owner.get("name", ""))
        kind, name = controller_behind(kind, name, labels) or (kind, name)
        return Workload(kind, name, from_pod=True)
    pod_name = metadata.get("name")
    if pod_name:
        return Workload("Pod", str(pod_name), from_pod=True)
    generate = str(metadata.get("generateName") or "").rstrip("-")
    if template_hash and generate.endswith("-" + str(template_hash)):
        return Workload("Deployment", generate[: -len(str(template_hash)) - 1], from_pod=True)
    return Workload("Pod", generate, from_pod=True)


class Addition(NamedTuple):
    """What one plugin adds to one pod; values may be shared with the compiled template: never mutate.

    A named tuple, as HookResult is: one is made per plugin per pod, and a frozen dataclass's
    ``__init__`` (an ``object.__setattr__`` per field) cost three times as much."""

    plugin: Plugin
    init_containers: list[Any]
    sidecars: list[Any]
    volumes: list[Any]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    app_env: list[Any]
    container_changes: Mapping[int, Mapping[str, Any]] = NOTHING
    init_container_changes: Mapping[int, Mapping[str, Any]] = NOTHING
    annotation_changes: Mapping[str, str | None] = NOTHING
    reapplied: Mapping[str, Mapping[str, Any]] = NOTHING
    imposed: Mapping[str, Mapping[str, Any]] = NOTHING
    overlaid: Mapping[str, Mapping[str, Mapping[str, Any]]] = NOTHING
    containers: Sequence[Any] = ()  # ordinary containers, whatever the style
    sidecars_first: bool = False  # classic style: the sidecars go before the app's containers
    container_appends: Mapping[int, Mapping[str, list[Any]]] = NOTHING
    image_pull_secrets: Sequence[str] = ()  # secret names for the pod's spec.imagePullSecrets
    # By injected container name: env the mesh sets after merging the pod's declared container
    # over its own (Istio's cluster env, metrics merge and probers), last and over the same names.
    last_env: Mapping[str, list[Any]] = NOTHING


def _app_ports(pod: Pod) -> list[Mapping[str, Any]]:
    ports: list[Mapping[str, Any]] = []
    for container in (pod.get("spec") or {}).get("containers") or ():
        if isinstance(container, dict):
            ports.extend(p for p in container.get("ports") or () if isinstance(p, dict))
    return ports


# The checks below run on every section of every rendering: a set of types is built at C speed.
_STR_ONLY = frozenset({str})
_DICT_ONLY = frozenset({dict})


def _check_strings(plugin: Plugin, section: str, mapping: Any) -> Mapping[str, str]:
    if not isinstance(mapping, dict) or not (
        set(map(type, mapping.values())) <= _STR_ONLY or all(isinstance(v, str) for v in mapping.values())
    ):
        raise ConfigError(f"{plugin.path}: fragment {section} must render to a mapping of strings")
    return mapping


def _check_list(plugin: Plugin, section: str, items: Any) -> list[Any]:
    if not isinstance(items, list) or not (set(map(type, items)) <= _DICT_ONLY or all(isinstance(i, dict) for i in items)):
        raise ConfigError(f"{plugin.path}: fragment {section} must render to a list of mappings")
    return items


def _check_names(plugin: Plugin, section: str, items: Any) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{plugin.path}: fragment {section} must render to a list of names (strings; an empty one is an entry without a name)")
    return items


def _check_last_env(plugin: Plugin, rendered: Any) -> Mapping[str, list[Any]]:
    if not isinstance(rendered, dict):
        raise ConfigError(f"{plugin.path}: fragment lastEnv must render to a mapping of container names to lists")
    return {str(name): _check_list(plugin, f"lastEnv {name}", items) for name, items in rendered.items() if items}


def inherited_settings(
    plugin: Plugin, pod_annotations: Mapping[str, Any], namespace: NamespaceMeta, values: Mapping[str, Any]
) -> dict[str, str]:
    """The namespace's values of the plugin's setting keys that the pod does not set itself (the
    namespace-level defaults in force; Linkerd copies them onto the pod), for the keys the installed
    release reads."""
    if not namespace.annotations:
        return {}
    readable = plugin.namespace_keys_read_by(plugin.installed(values))
    return {k: v for k, v in namespace.annotations.items() if k in readable and k not in pod_annotations}


def _merge_changes(into: dict[int, Mapping[str, Any]], fields_by_index: Mapping[int, Mapping[str, Any]]) -> None:
    """Container fields from one more hook; a hook's own mapping is kept as it is (never mutated)."""
    for index, fields in fields_by_index.items():
        into[index] = {**into[index], **fields} if index in into else fields


def render(
    plugin: Plugin,
    *,
    pod: Pod,
    namespace: NamespaceMeta,
    settings: Mapping[str, Any],
    workload: Workload,
    native_sidecar: bool,
    values: Mapping[str, Any] | None = None,
) -> Addition:
    """Evaluate the plugin's fragment for this pod; a template bug raises ConfigError."""
    plugin_values = plugin.values if values is None else values
    # The static half and the derived hook names, cached per distinct settings; then the per-pod hooks.
    prepared = plugin.fragment.specialized(settings, plugin_values, native_sidecar)
    hook_context: dict[str, Any] = dict(prepared.derived)
    changes: dict[int, Mapping[str, Any]] = {}
    init_changes: dict[int, Mapping[str, Any]] = {}
    annotation_changes: dict[str, str | None] = {}
    reapplied: dict[str, Mapping[str, Any]] = {}
    imposed: dict[str, Mapping[str, Any]] = {}
    overlaid: dict[str, Mapping[str, Mapping[str, Any]]] = {}
    appends: dict[int, dict[str, list[Any]]] = {}
    for hook_name in plugin.hooks:
        hook = HOOKS.get(hook_name)
        if hook is None:  # only a derived part: its names came with the prepared tree
            continue
        result = hook(pod, settings, plugin_values)
        # Most hooks change nothing but their context: the empty parts are skipped, not merged.
        hook_context.update(result.context)
        if result.container_changes:
            _merge_changes(changes, result.container_changes)
        if result.init_container_changes:
            _merge_changes(init_changes, result.init_container_changes)
        if result.annotation_changes:
            annotation_changes.update(result.annotation_changes)
        if result.reapplied:
            reapplied.update(result.reapplied)
        if result.imposed:
            imposed.update(result.imposed)
        if result.overlaid:
            overlaid.update(result.overlaid)
        for index, lists in result.container_appends.items():
            for name, items in lists.items():
                appends.setdefault(index, {}).setdefault(name, []).extend(items)
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    context: dict[str, Any] = {
        "pod": pod,
        "labels": metadata.get("labels") or {},
        "annotations": annotations,
        "settings": settings,
        "values": plugin_values,
        "native": native_sidecar,
    }
    # The rest costs something to build: only the names the fragment's per-pod leaves read (an
    # absent name would fall back to a global, so every name they read is there).
    reads = plugin.fragment.reads
    if "namespace" in reads:
        context["namespace"] = Attrs(name=namespace.name, labels=namespace.labels, annotations=namespace.annotations)
    if "inherited" in reads:
        context["inherited"] = inherited_settings(plugin, annotations, namespace, plugin_values)
    if "workload" in reads:
        context["workload"] = workload.as_context()
    if "app_ports" in reads:
        context["app_ports"] = _app_ports(pod)
    if "hook" in reads:
        context["hook"] = Attrs(hook_context)
    rendered = plugin.fragment.build(prepared, context)
    return Addition(
        plugin=plugin,
        init_containers=_check_list(plugin, "initContainers", rendered.get("initContainers", [])),
        sidecars=_check_list(plugin, "sidecars", rendered.get("sidecars", [])),
        volumes=_check_list(plugin, "volumes", rendered.get("volumes", [])),
        labels=_check_strings(plugin, "labels", rendered.get("labels", {})),
        annotations=_check_strings(plugin, "annotations", rendered.get("annotations", {})),
        app_env=_check_list(plugin, "appEnv", rendered.get("appEnv", [])),
        container_changes=changes,
        init_container_changes=init_changes,
        annotation_changes=annotation_changes,
        reapplied=reapplied,
        imposed=imposed,
        overlaid=overlaid,
        containers=_check_list(plugin, "containers", rendered.get("containers", [])),
        sidecars_first=bool(
            not native_sidecar
            and plugin.sidecar is not None
            and plugin.sidecar.classic_first is not None
            and plugin.sidecar.classic_first(settings=settings, values=plugin_values)
        ),
        container_appends=appends,
        image_pull_secrets=_check_names(plugin, "imagePullSecrets", rendered.get("imagePullSecrets", [])),
        last_env=_check_last_env(plugin, rendered["lastEnv"]) if "lastEnv" in rendered else NOTHING,
    )


def seen_after(pod: Pod, additions: Sequence[Addition], *, native_sidecar: bool) -> Pod:
    """The pod as the next webhook sees it once these additions' sidecars are in (Dapr's
    dapr-sidecar-injector sorts before a mesh's injector): their sidecars appended to `containers`
    (classic) or, with restartPolicy Always, to `initContainers` (native); ordinary containers
    appended to `containers`. Shallow: only the spec and the two lists are new."""
    spec = pod.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    containers = list(spec.get("containers") or ())
    init_containers = list(spec.get("initContainers") or ())
    for addition in additions:
        if native_sidecar:
            init_containers += [{**c, "restartPolicy": "Always"} for c in addition.sidecars]
        else:
            containers += addition.sidecars
    for addition in additions:
        containers += addition.containers
    return {**pod, "spec": {**spec, "containers": containers, "initContainers": init_containers}}


def _with_fields(container: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    return {**container, **fields}


def _with_items(container: Mapping[str, Any], lists: Mapping[str, list[Any]]) -> dict[str, Any]:
    return {**container, **{name: [*(container.get(name) or ()), *items] for name, items in lists.items()}}


def fold_into(mesh: Addition, runtimes: Sequence[Addition], *, pod: Pod, native_sidecar: bool) -> tuple[Addition, list[Addition]]:
    """A mesh rendered over `seen_after(pod, runtimes)` changes the runtimes' containers too (Istio
    rewrites daprd's probes): those changes go into the runtimes' own containers, and the mesh keeps
    only its changes to the pod's containers. Never mutates either addition."""
    spec = pod.get("spec") or {}
    count = len(spec.get("containers") or ())
    init_count = len(spec.get("initContainers") or ())
    # Where each container beyond the pod's own came from, in seen_after's order.
    extra: list[tuple[int, str, int]] = []
    init_extra: list[tuple[int, str, int]] = []
    for number, addition in enumerate(runtimes):
        placed = [(number, "sidecars", i) for i in range(len(addition.sidecars))]
        if native_sidecar:
            init_extra += placed
        else:
            extra += placed
    for number, addition in enumerate(runtimes):
        extra += [(number, "containers", i) for i in range(len(addition.containers))]
    theirs = [{"sidecars": list(a.sidecars), "containers": list(a.containers)} for a in runtimes]

    def split(changes: Mapping[int, Any], first: int, origin: list[tuple[int, str, int]], apply: Callable[..., dict[str, Any]]) -> dict[int, Any]:
        own = {}
        for index, value in changes.items():
            if index < first:
                own[index] = value
                continue
            number, section, position = origin[index - first]
            target = theirs[number][section]
            target[position] = apply(target[position], value)
        return own

    fields = split(mesh.container_changes, count, extra, _with_fields)
    init_fields = split(mesh.init_container_changes, init_count, init_extra, _with_fields)
    appends = split(mesh.container_appends, count, extra, _with_items)
    folded = [a._replace(sidecars=t["sidecars"], containers=t["containers"]) for a, t in zip(runtimes, theirs)]
    return (
        mesh._replace(container_changes=fields, init_container_changes=init_fields, container_appends=appends),
        folded,
    )
