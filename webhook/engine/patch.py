"""Patch: what to add + the pod -> RFC 6902 operations, built directly (no whole-pod diff); uninject.

Injected list items go first in `initContainers` (native sidecars: the redirect init container, then
the proxies, then the app's own init containers, so those run inside the mesh). In classic mode the
redirect init container goes last, so the app's init containers are not black-holed before a proxy
exists, and the proxies are appended to `containers`. `meshswitch.io/status` records exactly what
was added, so that `uninject` can take exactly that away.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from webhook.engine.status import STATUS_KEY, annotation_bytes, malformed_status_warning, omitted_warning, status_text
from webhook.engine.status import read_status as _read_status
from webhook.engine.kube import JsonPatch, Pod, listed_containers
from webhook.engine.render import Addition

_EMPTY: Mapping[str, Any] = {}
_LIST_FIELDS = ("plugins", "initContainers", "containers", "volumes", "labels", "annotations")

# Keys escaped, and whole annotation/label paths: a handful of template-written keys, asked for on
# every pod. Bounded, since some keys (a hook's) could come from pods.
_ESCAPED: dict[str, str] = {}
_PATHS: dict[str, dict[str, str]] = {}
_CACHE_MAX = 4096


def escape(key: str) -> str:
    """RFC 6901: `~` and `/` inside a key become `~0` and `~1`."""
    done = _ESCAPED.get(key)
    if done is None:
        done = key.replace("~", "~0").replace("/", "~1")
        if len(_ESCAPED) < _CACHE_MAX:
            _ESCAPED[key] = done
    return done


def _key_path(base: str, key: str) -> str:
    """`base/escaped key`, cached (built per op otherwise)."""
    return _PATHS.setdefault(base, {}).get(key) or _new_key_path(base, key)


def _new_key_path(base: str, key: str) -> str:
    path = f"{base}/{escape(key)}"
    paths = _PATHS.setdefault(base, {})
    if len(paths) < _CACHE_MAX:
        paths[key] = path
    return path


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _names(items: Any) -> set[str]:
    return {str(i.get("name")) for i in items if isinstance(i, dict)} if isinstance(items, list) else set()


def _as_native_sidecar(container: Mapping[str, Any]) -> dict[str, Any]:
    return {**container, "restartPolicy": "Always"}


def read_status(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed `meshswitch.io/status`, or an empty record when it is absent or malformed."""
    return _read_status(annotations) or {}


class _PatchBuilder:
    """Collects ops and the status record for one pod."""

    __slots__ = ("ops", "spec", "metadata", "status", "created", "app_offset")

    def __init__(self, pod: Pod, status: dict[str, Any]) -> None:
        self.ops: JsonPatch = []
        self.spec = _mapping(pod.get("spec"))
        self.metadata = _mapping(pod.get("metadata"))
        if status:
            for name in _LIST_FIELDS:
                status.setdefault(name, [])
            status.setdefault("env", {})
            status.setdefault("probes", {})
            status.setdefault("created", [])
        else:  # the common case (a pod never injected): the same keys, in the same order, at once
            status = {
                "plugins": [], "initContainers": [], "containers": [], "volumes": [], "labels": [],
                "annotations": [], "env": {}, "probes": {}, "created": [],
            }  # fmt: skip
        self.status = status
        self.created: list[str] = status["created"]
        self.app_offset = 0  # containers inserted before the app's own, which shifts their indices

    def add_list_items(self, base: str, existing: Any, items: Sequence[Any], *, front: bool, at: int = 0) -> None:
        """Insert items at the front (from index `at`) or the end of a list that may be absent."""
        if not items:
            return
        if not isinstance(existing, list):
            self.ops.append({"op": "add", "path": base, "value": list(items)})
            self.created.append(base)
            return
        append = self.ops.append
        if front:
            for offset, item in enumerate(items, at):
                append({"op": "add", "path": f"{base}/{offset}", "value": item})
        else:
            path = base + "/-"
            for item in items:
                append({"op": "add", "path": path, "value": item})

    def add_map_entries(self, base: str, existing: Any, entries: Mapping[str, str]) -> list[str]:
        """Add keys the map lacks (an existing value is the user's and is kept); returns keys added."""
        current = _mapping(existing)
        fresh = {k: v for k, v in entries.items() if k not in current} if current else dict(entries)
        if not fresh:
            return []
        if not isinstance(existing, dict):
            self.ops.append({"op": "add", "path": base, "value": fresh})
            self.created.append(base)
        else:
            append, paths = self.ops.append, _PATHS.setdefault(base, {})
            for k, v in fresh.items():
                append({"op": "add", "path": paths.get(k) or _new_key_path(base, k), "value": v})
        return list(fresh)


def _add_missing(into: dict[str, str], entries: Mapping[str, str]) -> None:
    """Keys `into` lacks, in order: an earlier addition's value wins."""
    if not into:
        into.update(entries)
        return
    for k, v in entries.items():
        if k not in into:
            into[k] = v


def build_patch(
    pod: Pod,
    additions: Sequence[Addition],
    *,
    native_sidecar: bool,
    reason: str = "injected",
    mesh_containers: frozenset[str] = frozenset(),
) -> tuple[JsonPatch, list[str]]:
    """The ops that add every addition to the pod, and warnings (e.g. a volume the pod already has).
    `mesh_containers`: names that show a mesh's container (each mesh's `present`); native sidecars
    go after the last of the pod's init containers so named, as they joined a pod already meshed."""
    metadata = pod.get("metadata")
    annotations = _mapping(metadata.get("annotations")) if isinstance(metadata, dict) else _EMPTY
    had_status = STATUS_KEY in annotations
    warnings: list[str] = []
    status: dict[str, Any] = {}
    if had_status:
        parsed = _read_status(annotations)
        if parsed is None:
            warnings.append(malformed_status_warning(annotations) or "")
        else:
            status = parsed
    settled = mesh_containers.union(n for n in status.get("initContainers") or () if isinstance(n, str)) if status else mesh_containers
    builder = _PatchBuilder(pod, status)
    spec, status, created = builder.spec, builder.status, builder.created
    if not isinstance(metadata, dict):
        builder.ops.append({"op": "add", "path": "/metadata", "value": {}})
        created.append("/metadata")  # a template without metadata gets it back without

    # One pass over the additions gathers everything the steps below take from them.
    redirects: list[Any] = []
    proxies: list[Any] = []
    appended: list[Any] = []  # a runtime's classic sidecars
    plain: list[Any] = []
    added_volumes: list[Any] = []
    pull_secrets: list[str] = []
    app_env: list[Any] = []
    firsts: set[str] = set()
    reapplied: dict[str, Mapping[str, Any]] = {}
    imposed: dict[str, Mapping[str, Any]] = {}
    overlaid: dict[str, dict[str, Mapping[str, Any]]] = {}
    last_env: dict[str, list[Any]] = {}
    labels: dict[str, str] = {}
    extra_annotations: dict[str, str] = {}
    for a in additions:
        redirects += a.init_containers
        if native_sidecar or a.plugin.is_mesh:
            proxies += a.sidecars
        else:
            appended += a.sidecars
        plain += a.containers
        added_volumes += a.volumes
        pull_secrets += a.image_pull_secrets
        app_env += a.app_env
        if a.sidecars_first:
            firsts.update(c["name"] for c in a.sidecars)
        if a.reapplied:
            reapplied.update(a.reapplied)
        if a.imposed:
            imposed.update(a.imposed)
        for section, by_name in a.overlaid.items():
            overlaid.setdefault(section, {}).update(by_name)
        for name, env in a.last_env.items():
            last_env.setdefault(name, []).extend(env)
        _add_missing(labels, a.labels)
        _add_missing(extra_annotations, a.annotations)
    if appended:  # classic: each injector appends its own, and Dapr's is called before a mesh's
        proxies = appended + proxies
    if native_sidecar:
        proxies = [_as_native_sidecar(c) for c in proxies]
        status["initContainers"] += [c["name"] for c in redirects]
        status["initContainers"] += [c["name"] for c in proxies]
    else:
        status["initContainers"] += [c["name"] for c in redirects]
        status["containers"] += [c["name"] for c in proxies]
    previous = _previously_injected(annotations, additions)
    redirects, proxies, removals = _merge_declared(
        builder, redirects, proxies, native_sidecar=native_sidecar, previous=previous, reapplied=reapplied, imposed=imposed,
        overlaid=overlaid,
    )  # fmt: skip
    if last_env:
        redirects, proxies = _with_last_env(redirects, last_env), _with_last_env(proxies, last_env)
    init_containers, containers = spec.get("initContainers"), spec.get("containers")
    followers = _move_after(builder, additions, init_containers, removals) if init_containers else []
    at = 0  # where the injected init containers go: after a mesh's that the pod already runs
    leading: list[Any] = []  # classic: the redirects that go before the pod's own init containers
    if native_sidecar:
        # A runtime joining a meshed pod goes after the mesh's containers, where Dapr appends daprd;
        # a mesh joining a pod a runtime runs in goes first, as Istio's reorderPod and Linkerd's
        # `initContainers/0` put theirs, so that daprd starts inside the mesh.
        if init_containers and settled and not any(a.plugin.is_mesh for a in additions):
            at = _after_meshes(init_containers, settled, redirects + proxies, removals)
        builder.add_list_items("/spec/initContainers", init_containers, redirects + proxies + followers, front=True, at=at)
        builder.add_list_items("/spec/containers", containers, plain, front=False)
    else:
        # A plugin's `initFirst` containers go before the pod's own (Istio's istio-validation: the app's
        # init containers wait until the CNI agent's redirect works); the other redirects go last.
        init_first = frozenset[str]().union(*(a.plugin.init_first for a in additions))
        trailing = redirects
        if init_first and isinstance(init_containers, list):
            leading = [c for c in redirects if c["name"] in init_first]
            trailing = [c for c in redirects if c["name"] not in init_first]
        builder.add_list_items("/spec/initContainers", init_containers, leading, front=True)
        builder.add_list_items("/spec/initContainers", init_containers, trailing + followers, front=False)
        # A mesh whose proxy must start before the app (Linkerd's linkerd-await, Istio's
        # holdApplicationUntilProxyStarts) goes first; a declared container merged over ours goes there too.
        if firsts:
            first = [c for c in proxies if c["name"] in firsts]
            last = [c for c in proxies if c["name"] not in firsts] + plain
        else:
            first, last = [], proxies + plain
        if first and isinstance(containers, list):
            builder.add_list_items("/spec/containers", containers, first, front=True)
            builder.app_offset = len(first)
        else:
            first, last = [], first + last
        builder.add_list_items("/spec/containers", containers, last, front=False)
    if plain:
        status["containers"] += [c["name"] for c in plain]

    volumes = []
    if added_volumes:
        own = _names(spec.get("volumes"))
        taken: set[str] = set()
        for volume in added_volumes:
            if volume["name"] in own:
                warnings.append(f"the pod already has a volume named {volume['name']}; it is kept and not replaced")
                continue
            if volume["name"] in taken:
                warnings.append(f"more than one volume named {volume['name']} would be added (by the plugins or from a pod setting); the first is kept")
                continue
            taken.add(volume["name"])
            volumes.append(volume)
        builder.add_list_items("/spec/volumes", spec.get("volumes"), volumes, front=False)
        status["volumes"] += [v["name"] for v in volumes]

    if pull_secrets:
        _add_pull_secrets(builder, pull_secrets)

    if labels:
        _overwrite_labels(builder, labels, additions)
        status["labels"] += builder.add_map_entries("/metadata/labels", builder.metadata.get("labels"), labels)

    _add_app_env(builder, app_env)
    # The pod's own init containers sit behind the ones added at the front; the removals of
    # declared containers come last of all, so they move nothing here.
    front = (len(redirects) + len(proxies) + len(followers) if native_sidecar else len(leading)) if isinstance(init_containers, list) else 0
    _replace_app_fields(builder, additions, init_offset=front, init_from=at)
    changed = _change_annotations(builder, annotations, additions)
    for key in changed:
        extra_annotations.pop(key, None)
    _append_app_items(builder, additions)

    if removals:  # at their index in the pod, shifted by what went in front of them
        shift = {"initContainers": front, "containers": builder.app_offset}
        start = {"initContainers": at, "containers": 0}
        builder.ops.extend(
            {"op": "remove", "path": f"/spec/{section}/{index + shift[section] if index >= start[section] else index}"}
            for section, index in sorted(removals, key=lambda r: -r[1])
        )
    status["plugins"] += [a.plugin.name for a in additions]
    digest = dict(status.get("digest", ()))
    for a in additions:
        digest[a.plugin.name] = a.plugin.digest
    status["digest"] = digest
    status["reason"] = reason
    for addition in additions:
        if addition.annotation_changes:
            extra_annotations.update({k: v for k, v in addition.annotation_changes.items() if v is not None and k not in annotations})
    extra_annotations.pop(STATUS_KEY, None)
    fresh = {k: v for k, v in extra_annotations.items() if k not in annotations} if annotations else extra_annotations
    status["annotations"] += fresh
    new_map = not isinstance(builder.metadata.get("annotations"), dict)
    if new_map:
        created.append("/metadata/annotations")
    text = status_text(status, others=annotation_bytes(_annotations_after(annotations, fresh, changed)))
    if new_map:
        fresh[STATUS_KEY] = text
        builder.ops.append({"op": "add", "path": "/metadata/annotations", "value": fresh})
    else:
        append, paths = builder.ops.append, _PATHS.setdefault("/metadata/annotations", {})
        for k, v in fresh.items():
            append({"op": "add", "path": paths.get(k) or _new_key_path("/metadata/annotations", k), "value": v})
        op = "replace" if had_status else "add"
        append({"op": op, "path": _STATUS_PATH, "value": text})
    return builder.ops, warnings


def _annotations_after(annotations: Mapping[str, Any], fresh: Mapping[str, str], changed: Mapping[str, str | None]) -> dict[str, str]:
    """The pod's annotations once the patch is applied, but for `meshswitch.io/status`."""
    after = {**annotations, **fresh}
    for key, value in changed.items():
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
    after.pop(STATUS_KEY, None)
    return after


_STATUS_PATH = f"/metadata/annotations/{escape(STATUS_KEY)}"


_MERGE_KEYS = {"env": "name", "volumeMounts": "mountPath", "ports": "containerPort"}


def _strategic_list(original: list[Any], patch: list[Any], field: str) -> list[dict[str, Any]]:
    """A keyed list (env, mounts, ports) as Kubernetes' strategic merge patch leaves it: each patch
    entry merges over the original's entry of its key (a later one of the same key over the
    earlier), the rest is appended; then the patch's entries come in the patch's order, and the
    original's others keep theirs, each placed before the first patch entry that followed it in
    the original (strategicpatch's mergeSortedSlice)."""
    merged = [dict(i) for i in original if isinstance(i, dict)]
    # Positions by key, so that a declared list of thousands of entries stays linear.
    where: dict[Any, int] = {}
    for n, m in enumerate(merged):
        where.setdefault(_key(m.get(field)), n)
    patch_order: dict[Any, int] = {}
    for item in patch:
        if not isinstance(item, dict):
            continue
        key = _key(item.get(field))
        patch_order.setdefault(key, len(patch_order))
        at = where.get(key)
        if at is None:
            where[key] = len(merged)
            merged.append(dict(item))
        else:
            merged[at] = {**merged[at], **item}
    server_at: dict[Any, int] = {}
    for n, i in enumerate(i for i in original if isinstance(i, dict)):
        server_at.setdefault(_key(i.get(field)), n)
    right = sorted((m for m in merged if _key(m.get(field)) in patch_order), key=lambda m: patch_order[_key(m.get(field))])
    left = [m for m in merged if _key(m.get(field)) not in patch_order]
    ordered: list[dict[str, Any]] = []
    a = b = 0
    while a < len(left) or b < len(right):
        if a < len(left) and b < len(right):
            # Taken first only when both are in the original and it came first there.
            at_left = server_at.get(_key(left[a].get(field)), -1)
            at_right = server_at.get(_key(right[b].get(field)), -1)
            take_left = 0 <= at_left < at_right
        else:
            take_left = a < len(left)
        if take_left:
            ordered.append(left[a])
            a += 1
        else:
            ordered.append(right[b])
            b += 1
    return ordered


def _key(value: Any) -> Any:
    """A merge key usable in a dict: a pod may write a list or a mapping where a name belongs."""
    return value if value is None or isinstance(value, (str, int, float)) else repr(value)


def merge_container(ours: Mapping[str, Any], declared: Mapping[str, Any], *, once: bool = False) -> dict[str, Any]:
    """The pod's own container over ours, as Istio merges them: every field it sets wins, maps
    merge, env, mounts and ports merge by key; `image: auto` keeps our image. Where the pod sets one
    of those lists, the order is that of Istio's two strategic merges: its template's list over the
    pod's, then the pod's list over the result (so the pod's entries keep the pod's order); `once`:
    one strategic merge of `declared` over `ours` (what Istio lays over its result)."""
    merged = dict(ours)
    for key, value in declared.items():
        if key == "image" and value == "auto":
            continue
        mine = merged.get(key)
        if isinstance(value, dict) and isinstance(mine, dict):
            merged[key] = merge_container(mine, value, once=once)
        elif key in _MERGE_KEYS and isinstance(value, list) and isinstance(mine, list):
            field = _MERGE_KEYS[key]
            merged[key] = _strategic_list(mine, value, field) if once else _strategic_list(_strategic_list(value, mine, field), value, field)
        else:
            merged[key] = value
    return merged


def _previously_injected(annotations: Mapping[str, Any], additions: Sequence[Addition]) -> frozenset[str]:
    """Containers the mesh's own injector lists as its own (Istio's sidecar.istio.io/status): a
    re-injection replaces them with fresh ones instead of merging them as the pod's."""
    names: set[str] = set()
    for addition in additions:
        if key := addition.plugin.own_status:
            names.update(listed_containers(annotations, key, "initContainers"), listed_containers(annotations, key, "containers"))
    return frozenset(names)


def _merge_declared(
    builder: _PatchBuilder,
    redirects: list[Any],
    proxies: list[Any],
    *,
    native_sidecar: bool,
    previous: frozenset[str] = frozenset(),
    reapplied: Mapping[str, Mapping[str, Any]] | None = None,
    imposed: Mapping[str, Mapping[str, Any]] | None = None,
    overlaid: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> tuple[list[Any], list[Any], list[tuple[str, int]]]:
    """Containers the pod declares with one of our names (a gateway chart's `istio-proxy` with
    `image: auto`): ours merged under theirs, placed where ours goes (as Istio's reorderPod places
    its proxy whatever the pod's order); their entry is removed at the end, and what the mesh
    `imposed` after its merge goes over the result. The original is kept in the status for uninject.
    What the mesh takes as declared (`overlaid`, by the section ours goes to) goes over ours after
    the pod's own, whether or not the pod declares one."""
    ours = {item["name"] for item in redirects}
    ours.update(item["name"] for item in proxies)
    declared: dict[str, tuple[str, int, Mapping[str, Any]]] = {}
    for section in ("initContainers", "containers"):
        for index, container in enumerate(builder.spec.get(section) or ()):
            # Only our names are looked up: the app's own containers are never entered.
            if isinstance(container, dict) and isinstance(name := container.get("name"), str) and name in ours:
                declared.setdefault(name, (section, index, container))
    removals: list[tuple[str, int]] = []
    if not declared and not overlaid:
        return redirects, proxies, removals

    def place(items: list[Any], target: str) -> list[Any]:
        left = []
        for item in items:
            found = declared.get(item["name"])
            over = (overlaid or {}).get(target, {}).get(item["name"])
            if found is None:
                left.append(merge_container(item, over, once=True) if over else item)
                continue
            section, index, original = found
            if item["name"] in previous:  # left by an earlier injection: fresh, plus what the pod had asked for
                merged = merge_container(item, (reapplied or {}).get(item["name"], {}))
            elif over:  # Istio lays its template over the pod's own, then the record over that
                merged = merge_container(merge_container(original, item, once=True), over, once=True)
            else:
                merged = merge_container(item, original)
            if after := (imposed or {}).get(item["name"]):
                merged = merge_container(merged, after)
            builder.status.setdefault("declared", {})[item["name"]] = {"section": section, "index": index, "container": original}
            if section != target and target == "containers":
                merged.pop("restartPolicy", None)  # a native sidecar's; an app container takes none
            removals.append((section, index))
            left.append(merged)
        return left

    redirects = place(redirects, "initContainers")
    proxies = place(proxies, "initContainers" if native_sidecar else "containers")
    return redirects, proxies, removals


def _with_last_env(containers: list[Any], last_env: Mapping[str, list[Any]]) -> list[Any]:
    """Env a mesh sets after its merge (`lastEnv`): entries of those names leave the merged env,
    and the mesh's go at its end, in the fragment's order (Istio's updateClusterEnvs, then its
    metrics merge and probe rewrite)."""
    out = []
    for container in containers:
        env = last_env.get(container["name"])
        if env:
            names = {e.get("name") for e in env}
            kept = [e for e in container.get("env") or () if not (isinstance(e, dict) and e.get("name") in names)]
            container = {**container, "env": kept + [dict(e) for e in env]}
        out.append(container)
    return out


def _after_meshes(init_containers: list[Any], settled: frozenset[str], injected: list[Any], removals: list[tuple[str, int]]) -> int:
    """The index after the last of the pod's init containers a mesh put there (Linkerd's, when Dapr
    joins a pod Linkerd meshed): 0 when there is none. One of ours being merged does not count."""
    ours = {c["name"] for c in injected}
    at = 0
    for index, container in enumerate(init_containers):
        name = container.get("name") if isinstance(container, dict) else None
        if isinstance(name, str) and name in settled and name not in ours and ("initContainers", index) not in removals:
            at = index + 1
    return at


def _move_after(builder: _PatchBuilder, additions: Sequence[Addition], init_containers: Any, removals: list[tuple[str, int]]) -> list[Any]:
    """The pod's own init containers that a plugin runs right after its own (`initAfter`, Istio's
    enable-core-dump), as they are: their entry is removed at the end and its index kept in the
    status (`moved`) for uninject."""
    wanted = [a.plugin.init_after for a in additions if a.plugin.init_after]
    if not wanted or not isinstance(init_containers, list):
        return []
    names = wanted[0].union(*wanted[1:])
    moved: list[Any] = []
    for index, container in enumerate(init_containers):
        name = container.get("name") if isinstance(container, dict) else None
        if isinstance(name, str) and name in names and ("initContainers", index) not in removals:
            record = builder.status.setdefault("moved", {})
            if name not in record:  # a second of one name stays (the API server refuses the pod)
                record[name] = {"section": "initContainers", "index": index}
                removals.append(("initContainers", index))
                moved.append(container)
    return moved


def _add_pull_secrets(builder: _PatchBuilder, names: Sequence[str]) -> None:
    """The secrets into spec.imagePullSecrets as Istio's strategic merge puts them there (merge key
    `name`; an empty name is an entry without one, `{}` as the typed pod writes it): into a pod
    without a list, as they are, a repeated name too; else the pod's own of the same name kept, not
    repeated; ours first, in our order, each of the pod's others before the first of ours that
    followed it in the pod's list. The names added go in the status (`imagePullSecrets`), for uninject."""
    existing = builder.spec.get("imagePullSecrets")
    path = "/spec/imagePullSecrets"
    if not isinstance(existing, list) or not existing:
        builder.ops.append({"op": "add", "path": path, "value": [_pull_secret(name) for name in names]})
        if not isinstance(existing, list):
            builder.created.append(path)
        added = list(dict.fromkeys(names))
    else:
        ours = [_pull_secret(name) for name in dict.fromkeys(names)]
        own = _names(existing)
        added = [name for name in dict.fromkeys(names) if name not in own]
        if all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in existing):
            merged = _strategic_list(existing, ours, "name")
            if merged != existing:
                builder.ops.append({"op": "replace", "path": path, "value": merged})
                if [s for s in merged if s.get("name", "") not in added] != existing:  # the pod's own reordered
                    builder.status.setdefault("replacedImagePullSecrets", existing)
        else:  # not a list the API server stores: ours appended, the rest left as it is
            builder.add_list_items(path, existing, [s for s in ours if s.get("name", "") in added], front=False)
    if added:
        builder.status.setdefault("imagePullSecrets", []).extend(added)


def _pull_secret(name: str) -> dict[str, str]:
    return {"name": name} if name else {}


def _add_app_env(builder: _PatchBuilder, env: Sequence[Mapping[str, Any]]) -> None:
    """Env for app containers (Dapr's DAPR_HTTP_PORT...): only names the container does not define."""
    if not env:
        return
    records = builder.status["env"]
    for index, container in enumerate(builder.spec.get("containers") or ()):
        if not isinstance(container, dict):
            continue
        existing = container.get("env")
        defined = _names(existing)
        fresh = [e for e in env if e["name"] not in defined] if defined else list(env)
        if not fresh:
            continue
        builder.add_list_items(f"/spec/containers/{index + builder.app_offset}/env", existing, fresh, front=False)
        record = records.setdefault(str(container.get("name")), {"names": [], "created": False})
        record["names"] += [e["name"] for e in fresh]
        if not isinstance(existing, list):
            builder.created.pop()  # the env list is recorded per container name, not by index
            record["created"] = True


def _append_app_items(builder: _PatchBuilder, additions: Sequence[Addition]) -> None:
    """Hook items appended to app containers' lists (Dapr's env and socket mounts), by name, so
    that uninject removes exactly them."""
    appends = [a.container_appends for a in additions if a.container_appends]
    merged: Mapping[int, Mapping[str, Sequence[Any]]]
    if len(appends) == 1:
        merged = appends[0]  # one plugin's lists, read as they are (never mutated)
    else:
        merging: dict[int, dict[str, list[Any]]] = {}  # one list per field, so an absent list is created once
        for appended_by in appends:
            for index, lists in appended_by.items():
                if not lists:
                    continue
                into = merging.setdefault(index, {})
                for field, items in lists.items():
                    into.setdefault(field, []).extend(items)
        merged = merging
    if not any(merged.values()):
        return
    containers = builder.spec.get("containers") or ()
    appended = builder.status.setdefault("appended", {})
    for index, lists in merged.items():
        if not lists:
            continue
        container = containers[index]
        record = appended.setdefault(str(container.get("name")), {})
        base = f"/spec/containers/{index + builder.app_offset}/"
        for field, items in lists.items():
            existing = container.get(field)
            builder.add_list_items(base + field, existing, items, front=False)
            entry = record.setdefault(field, {"names": [], "created": False})
            entry["names"] += [item["name"] for item in items]
            if items and not isinstance(existing, list):
                builder.created.pop()  # recorded per container name, not by index
                entry["created"] = True


def _replace_app_fields(builder: _PatchBuilder, additions: Sequence[Addition], *, init_offset: int, init_from: int = 0) -> None:
    """Hook changes to app containers and init containers (Istio's probe rewrite); originals kept
    for uninject. `init_offset`: how many injected init containers now sit before the app's from
    index `init_from` on."""
    probes, append = builder.status["probes"], builder.ops.append
    for addition in additions:
        if addition.container_changes:
            _replace_fields(append, probes, builder.spec.get("containers") or (), "containers", builder.app_offset, addition.container_changes)
    for addition in additions:
        if addition.init_container_changes:
            _replace_fields(
                append, probes, builder.spec.get("initContainers") or (), "initContainers", init_offset, addition.init_container_changes, start=init_from
            )


def _replace_fields(
    append: Callable[[dict[str, Any]], None],
    probes: dict[str, Any],
    containers: Sequence[Any],
    section: str,
    offset: int,
    changes: Mapping[int, Mapping[str, Any]],
    *,
    start: int = 0,
) -> None:
    for index, fields in changes.items():
        container = containers[index]
        saved = probes.setdefault(str(container.get("name")), {})
        base = f"/spec/{section}/{index + offset if index >= start else index}/"
        for name, value in fields.items():
            if name in container:
                append({"op": "replace", "path": base + name, "value": value})
                saved.setdefault(name, container[name])
            else:
                append({"op": "add", "path": base + name, "value": value})
                saved.setdefault(name, None)


def _overwrite_labels(builder: _PatchBuilder, labels: Mapping[str, str], additions: Sequence[Addition]) -> None:
    """Labels a plugin writes even where the pod has them (Dapr's "add" replaces a member), or where
    the pod's is empty (Istio's template reads an empty label as unset); the originals are kept for
    uninject."""
    existing = builder.metadata.get("labels")
    if not existing or not isinstance(existing, dict):
        return
    if not any(a.plugin.overwrite_labels or a.plugin.replace_empty_labels for a in additions):
        return
    for addition in additions:
        plugin = addition.plugin
        for key in (plugin.overwrite_labels | plugin.replace_empty_labels).intersection(addition.labels):
            original, value = existing.get(key), labels[key]
            if not isinstance(original, str) or original == value:
                continue
            if original and key not in plugin.overwrite_labels:
                continue
            _change_entry(builder, "labels", key, original, value)


def _change_annotations(builder: _PatchBuilder, annotations: Mapping[str, Any], additions: Sequence[Addition]) -> dict[str, str | None]:
    """Annotations a hook sets or removes although the pod has them (Istio's metrics merge); the
    originals are kept for uninject. Returns the keys handled here and their new values (None: removed)."""
    changes: dict[str, str | None] = {}
    for addition in additions:
        changes.update(addition.annotation_changes)
        overwrite = addition.plugin.overwrite
        if overwrite and not overwrite.isdisjoint(addition.annotations):
            changes.update({k: v for k, v in addition.annotations.items() if k in overwrite})
    if not changes:
        return {}
    handled: dict[str, str | None] = {}
    for key, value in changes.items():
        if key not in annotations:
            if value is None:
                handled[key] = None
            continue
        handled[key] = value
        _change_entry(builder, "annotations", key, annotations[key], value)
    return handled


# Where the status keeps the pod's own values of the metadata entries a patch replaced.
_REPLACED_RECORD = {"annotations": "replaced", "labels": "replacedLabels"}


def _change_entry(builder: _PatchBuilder, field: str, key: str, original: Any, value: str | None) -> None:
    """Replace (or, for None, remove) the pod's own ``metadata.<field>[key]``, keeping the original
    in the status for uninject."""
    builder.status.setdefault(_REPLACED_RECORD[field], {}).setdefault(key, original)
    path = _key_path(f"/metadata/{field}", key)
    builder.ops.append({"op": "remove", "path": path} if value is None else {"op": "replace", "path": path, "value": value})


def uninject(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the pod without what `meshswitch.io/status` says was injected (CLI only); ValueError
    when the record left the pod's originals out (`omitted`), which could not be put back."""
    result: dict[str, Any] = copy.deepcopy(dict(pod))
    metadata = result.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    status = read_status(annotations)
    if not status:
        return result
    if status.get("omitted"):
        raise ValueError(omitted_warning(status))  # never a restore that is silently wrong
    spec = result.get("spec") or {}
    if "replacedImagePullSecrets" in status:  # the list before the merge changed its order
        spec["imagePullSecrets"] = status["replacedImagePullSecrets"]
    for section in ("initContainers", "containers", "volumes", "imagePullSecrets"):
        drop = set(status.get(section) or ())
        if isinstance(spec.get(section), list):
            # An injected pull secret with an empty name is an entry without one.
            spec[section] = [i for i in spec[section] if not (isinstance(i, dict) and i.get("name", "") in drop)]
    back = list((status.get("declared") or {}).values())
    for name, record in (status.get("moved") or {}).items():  # the pod's own, taken from where they went
        items = spec.get(record["section"]) or []
        found = next((i for i, c in enumerate(items) if isinstance(c, dict) and c.get("name") == name), None)
        if found is not None:
            back.append({**record, "container": items.pop(found)})
    for record in sorted(back, key=lambda r: r["index"]):
        spec.setdefault(record["section"], []).insert(record["index"], record["container"])
    for container in spec.get("containers") or ():
        name = str(container.get("name"))
        record = (status.get("env") or {}).get(name)
        if record:
            drop = set(record["names"])
            container["env"] = [e for e in container.get("env") or () if e.get("name") not in drop]
            if record.get("created") and not container["env"]:
                del container["env"]
        for field, entry in ((status.get("appended") or {}).get(name) or {}).items():
            drop = set(entry.get("names") or ())
            container[field] = [i for i in container.get(field) or () if i.get("name") not in drop]
            if entry.get("created") and not container[field]:
                del container[field]
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for field, original in ((status.get("probes") or {}).get(str(container.get("name"))) or {}).items():
            if original is None:
                container.pop(field, None)
            else:
                container[field] = original
    for key in status.get("labels") or ():
        (metadata.get("labels") or {}).pop(key, None)
    for key in list(status.get("annotations") or ()) + [STATUS_KEY]:
        annotations.pop(key, None)
    for key, original in (status.get("replaced") or {}).items():
        annotations[key] = original
    for key, original in (status.get("replacedLabels") or {}).items():
        metadata.setdefault("labels", {})[key] = original
    # Innermost first: /metadata/annotations empties /metadata, which then goes too.
    for path in sorted(set(status.get("created") or ()), key=lambda p: -str(p).count("/")):
        _drop_if_empty(result, str(path))
    return result


def _drop_if_empty(root: dict[str, Any], path: str) -> None:
    """Remove the map or list at the RFC 6901 `path` when it is empty (meshswitch created it)."""
    *parents, key = [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]
    holder: Any = root
    for part in parents:
        holder = holder.get(part) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and key in holder and not holder[key]:
        del holder[key]
