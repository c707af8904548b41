"""Control-plane discovery, the pure part: what each plugin looks for, what it takes from the objects
it finds, and the live values that result. The watch that feeds it lives in `webhook/watchers.py`."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from webhook.engine.errors import ConfigError
from webhook.engine.kinds import fits_declared, kind_name
from webhook.engine.leaves import Attrs
from webhook.engine.kube import go_json
from webhook.engine.plugins import Plugin, PluginSet
from webhook.engine.schema import STRUCTS, TypeMismatch, conform
from webhook.engine.settings import SHOWN_CHARS, Setting, SettingError, nesting_problem, show

KINDS = ("Deployment", "ConfigMap")
TAG_KIND = "MutatingWebhookConfiguration"  # cluster-scoped: namespace ""


@dataclass(frozen=True)
class Take:
    """One value taken from a found object: an image tag, or a path inside a ConfigMap key's YAML."""

    value: str
    image_tag_of: str | None = None  # container name, "" for the first container
    config_key: str | None = None
    paths: tuple[str, ...] = ()
    # An empty string found is the value (Istio writes an empty global.proxy.includeIPRanges as `-i ""`);
    # otherwise it reads as not found, for values the mesh itself defaults when empty.
    keep_empty: bool = False
    # The Go type the mesh reads the value into, in `conform`'s notation (`int64`, `uint`, `{string}`,
    # `Capabilities`, ...); None: a value of the declared default's kind.
    go_type: str | None = None
    # Read as protojson reads JSON into that type (Istio's injector values, ApplyYAML into its typed
    # Values): no number or bool where text is expected, as sigs.k8s.io/yaml would let through.
    strict: bool = False
    # The mesh passes the value on as written (Linkerd's proxy.securityContext, a map[string]interface{}
    # put whole into the pod): `go_type` is what the API server reads it into (names in their own case),
    # so a value it cannot read is not taken, and the value taken is the one written, fields the API
    # server drops included.
    as_written: bool = False
    # Bounds of a number beyond its type's (a port): outside them the pod would not be accepted.
    bounds: tuple[int | None, int | None] = (None, None)
    # Read as this per-pod setting reads its annotation (Istio's MeshConfig defaultConfig, a ProxyConfig
    # as proxy.istio.io/config is): field names and values written as the mesh writes them; a value
    # the setting refuses is not taken (the mesh's control plane refuses that config too).
    setting: Setting | None = None

    def extract(self, obj: Mapping[str, Any]) -> Any:
        found = self.find(obj)
        return found[1] if found else None

    def find(self, obj: Mapping[str, Any], parsed: dict[str, Any] | None = None) -> tuple[str, Any] | None:
        """Where the value is (the path inside the ConfigMap key's YAML, else "") and the value.
        `parsed` keeps each YAML text read, so that the takes of one object parse it once."""
        if self.image_tag_of is not None:
            tag = _image_tag(obj, self.image_tag_of)
            return ("", tag) if tag is not None else None
        data = (obj.get("data") or {}).get(self.config_key or "")
        if not isinstance(data, str):
            return None
        if not self.paths:
            return "", data
        parsed = {} if parsed is None else parsed
        if data not in parsed:
            try:
                parsed[data] = yaml.safe_load(data)
            except (yaml.YAMLError, RecursionError):  # nested deeper than Python's parser goes
                parsed[data] = None
        document = parsed[data]
        for path in self.paths:
            node: Any = document
            for part in path.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is not None and (node != "" or self.keep_empty):
                return path, node
        return None

    def read(self, value: Any, declared: Any) -> Any:
        """The value as the mesh reads it; raises TypeMismatch where the mesh could not read it."""
        problem = nesting_problem(value)
        if problem is not None:  # Go's YAML reader refuses excessive aliasing too
            raise TypeMismatch("", f"is a value {problem}")
        if self.setting is not None:
            try:
                return self.setting.parse(value if isinstance(value, str) else go_json(value))
            except (SettingError, TypeError) as err:  # TypeError: YAML that is no JSON (a !!set, a number as key)
                raise TypeMismatch("", f"is not what {self.setting.keys[0]} accepts: {err}") from err
        if self.go_type is not None:
            read = conform(value, self.go_type, yaml_text=not self.strict, exact_names=self.as_written)
            low, high = self.bounds
            if isinstance(read, int | float) and ((low is not None and read < low) or (high is not None and read > high)):
                raise TypeMismatch("", f"must be from {low if low is not None else '-'} to {high if high is not None else '-'}, got {read}")
            return value if self.as_written else read
        if not fits_declared(declared, value):
            raise TypeMismatch("", f"must be {kind_name(declared)}, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class ControlPlaneObject:
    """One object a plugin's control plane has, looked up by kind, namespace and name."""

    kind: str
    namespace: str
    name: str
    takes: tuple[Take, ...] = ()
    revision_name: str | None = None  # the name a non-default revision's object has ({revision})
    selector: str | None = None  # a label selector that finds every revision's object
    optional: bool = False  # taken from when found; never reported missing (its absence means the defaults)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def watch_key(self) -> tuple[str, str, str]:
        """What one watch covers: the named object, or every object the selector finds."""
        return (self.kind, self.namespace, f"selector:{self.selector}" if self.selector else self.name)

    def for_revision(self, plugin: Plugin, revision: str | None) -> ControlPlaneObject:
        """This object as a given revision has it (istiod-canary for canary)."""
        if revision is None or self.revision_name is None or plugin.revisions is None or revision == plugin.revisions.default:
            return self
        name = self.revision_name.replace("{revision}", revision)
        return ControlPlaneObject(self.kind, self.namespace, name, self.takes, optional=self.optional)

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def describe_watch(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind}s{where} with {self.selector}" if self.selector else self.describe()


def _image_tag(obj: Mapping[str, Any], container: str) -> str | None:
    containers = ((((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    chosen = next((c for c in containers if c.get("name") == container), None) if container else None
    chosen = chosen or (containers[0] if containers else None)
    image = str((chosen or {}).get("image") or "")
    image = image.split("@", 1)[0]
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag else None


def _shown(value: Any) -> str:
    """A found value for a message: text quoted, anything else as YAML's flow text; cut when long."""
    if isinstance(value, str):
        return show(value)
    if nesting_problem(value) is not None:
        return "(not shown: too large or too deep)"
    text = yaml.safe_dump(value, default_flow_style=True, width=2**16).removesuffix("\n").removesuffix("\n...")
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _namespace(raw: str, plugin: Plugin) -> str:
    # "{{ values.controlPlaneNamespace }}" lets the values file move a control plane.
    if raw.startswith("values."):
        return str(plugin.values.get(raw.removeprefix("values."), ""))
    return raw


_GO_SCALARS = ("string", "bool", "int32", "int64", "uint", "float64", "any")


def _known_go_type(kind: Any) -> bool:
    if not isinstance(kind, str):
        return False
    if kind[:1] + kind[-1:] in ("[]", "{}"):
        return _known_go_type(kind[1:-1])
    return kind in _GO_SCALARS or kind in STRUCTS


def control_plane_of(plugin: Plugin) -> tuple[ControlPlaneObject, ...]:
    """Parse a plugin's `controlPlane` section; raises ConfigError naming the plugin file."""
    objects = []
    for entry in plugin.control_plane:
        if not isinstance(entry, Mapping) or entry.get("kind") not in KINDS or not entry.get("name") or not entry.get("namespace"):
            raise ConfigError(f"{plugin.path}: each controlPlane entry needs kind ({', '.join(KINDS)}), namespace and name")
        takes = []
        for value, how in (entry.get("take") or {}).items():
            if value not in plugin.values:
                raise ConfigError(f"{plugin.path}: controlPlane takes {value!r}, which is not one of its values")
            if not isinstance(how, Mapping):
                raise ConfigError(f"{plugin.path}: controlPlane take {value!r} needs imageTagOf or configKey")
            paths = how.get("path", ())
            for flag in ("keepEmpty", "strict", "asWritten"):
                if not isinstance(how.get(flag, False), bool):
                    raise ConfigError(f"{plugin.path}: controlPlane take {value!r}: {flag} is true or false")
            go_type = how.get("type")
            if go_type is not None and not _known_go_type(go_type):
                raise ConfigError(
                    f"{plugin.path}: controlPlane take {value!r}: type {go_type!r} is not a Go type meshswitch reads; accepted: "
                    f"{', '.join(_GO_SCALARS)}, a struct ({', '.join(sorted(STRUCTS))}), [T] (a list) or {{T}} (a map)"
                )
            low, high = how.get("min"), how.get("max")
            if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in (low, high)):
                raise ConfigError(f"{plugin.path}: controlPlane take {value!r}: min and max are whole numbers")
            as_setting = how.get("asSetting")
            setting = next((s for s in plugin.settings if s.name == as_setting), None)
            if as_setting is not None and setting is None:
                raise ConfigError(f"{plugin.path}: controlPlane take {value!r}: asSetting names one of the plugin's settings")
            takes.append(
                Take(
                    value=value,
                    image_tag_of=how.get("imageTagOf"),
                    config_key=how.get("configKey"),
                    paths=(paths,) if isinstance(paths, str) else tuple(paths),
                    keep_empty=bool(how.get("keepEmpty", False)),
                    go_type=go_type,
                    strict=bool(how.get("strict", False)),
                    as_written=bool(how.get("asWritten", False)),
                    bounds=(low, high),
                    setting=setting,
                )
            )
        revision_name = entry.get("revisionName")
        selector = entry.get("selector")
        if (revision_name is not None and not isinstance(revision_name, str)) or (selector is not None and not isinstance(selector, str)):
            raise ConfigError(f"{plugin.path}: controlPlane revisionName and selector are strings")
        if not isinstance(entry.get("optional", False), bool):
            raise ConfigError(f"{plugin.path}: controlPlane optional is true or false")
        objects.append(
            ControlPlaneObject(
                str(entry["kind"]), _namespace(str(entry["namespace"]), plugin), str(entry["name"]), tuple(takes),
                revision_name=revision_name, selector=selector, optional=bool(entry.get("optional", False)),
            )  # fmt: skip
        )
    return tuple(objects)


class Discovery:
    """The control-plane objects seen so far and, per plugin, the values they give.

    Watch threads call `observe`/`forget`; admissions call `values_for`/`missing_for`, which read
    snapshots replaced whole, so no lock is held on the admission path.
    """

    def __init__(self, plugins: PluginSet) -> None:
        self.plugins = plugins
        self.objects = {p.name: control_plane_of(p) for p in plugins}
        self._seen: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        self._lock = threading.Lock()
        # Bumped whenever the values change, so caches keyed on it never serve stale renderings.
        self.generation = 0
        self._values: dict[str, Attrs] = {p.name: p.values for p in plugins}  # type: ignore[misc]
        self._missing: dict[str, tuple[str, ...]] = {
            p.name: tuple(o.describe() for o in self.objects[p.name] if not o.optional) for p in plugins
        }
        self._by_revision: dict[tuple[str, str], tuple[Attrs, tuple[str, ...]]] = {}
        self._reported: set[str] = set()  # warnings already logged
        # Values found that the mesh could not read, each with the configured value kept in its place.
        self._unreadable: tuple[str, ...] = ()

    def watched(self) -> tuple[ControlPlaneObject, ...]:
        """Every object (and selector) any plugin looks for, once. An object with a selector is also
        watched by name, so the default revision is found where RBAC grants only named objects."""
        unique: dict[tuple[str, str, str], ControlPlaneObject] = {}
        for plugin in self.plugins:
            revisions = plugin.revisions
            if revisions is not None and revisions.tag_object and revisions.tag_selector:
                tags = ControlPlaneObject(TAG_KIND, "", revisions.tag_object, selector=revisions.tag_selector)
                unique.setdefault(tags.watch_key, tags)
        for objects in self.objects.values():
            for obj in objects:
                named = ControlPlaneObject(obj.kind, obj.namespace, obj.name, obj.takes, optional=obj.optional)
                unique.setdefault(named.watch_key, named)
                unique.setdefault(obj.watch_key, obj)
        return tuple(unique.values())

    def seen(self, kind: str, namespace: str) -> list[str]:
        """Names of the objects of a kind seen in a namespace (a selector watch's relist forgets the rest)."""
        with self._lock:
            return [name for (k, ns, name) in self._seen if k == kind and ns == namespace]

    def observe(self, kind: str, namespace: str, name: str, obj: Mapping[str, Any]) -> None:
        with self._lock:
            self._seen[(kind, namespace, name)] = obj
            self._recompute()

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._seen.pop((kind, namespace, name), None)
            self._recompute()

    def _compute(self, plugin: Plugin, revision: str | None, unreadable: list[str] | None = None) -> tuple[Attrs, tuple[str, ...]]:
        base: Mapping[str, Any] = plugin.values
        if revision is not None and plugin.revisions is not None:
            base = plugin.revisions.values_of(plugin.values, revision)
        found: dict[str, Any] = {}
        absent = []
        for obj in (o.for_revision(plugin, revision) for o in self.objects[plugin.name]):
            seen = self._seen.get(obj.key)
            if seen is None:
                if not obj.optional:
                    absent.append(obj.describe())
                continue
            parsed: dict[str, Any] = {}
            for take in obj.takes:
                if take.value in plugin.pinned:
                    continue  # the values file pins it
                extracted = take.find(seen, parsed)
                if extracted is None:
                    continue
                where, raw = extracted
                # A value the mesh's own typed config would not load (`gid: "2300"`, a list where it
                # reads a map) keeps the configured value, which the templates compare and compute
                # with; the watch reports it once.
                try:
                    found[take.value] = take.read(raw, base.get(take.value))
                except TypeMismatch as err:
                    if unreadable is not None:
                        inside = str(err).removeprefix("the value").strip()
                        unreadable.append(
                            f"{plugin.name}: {obj.describe()} {take.config_key or 'image'} {where}={_shown(raw)}: "
                            f"{inside}; the configured {take.value} ({_shown(base.get(take.value))}) is used"
                        )
        values = Attrs({**base, **found}) if found else base
        return values, tuple(absent)  # type: ignore[return-value]

    def _recompute(self) -> None:
        values: dict[str, Attrs] = {}
        missing: dict[str, tuple[str, ...]] = {}
        unreadable: list[str] = []
        for plugin in self.plugins:
            values[plugin.name], missing[plugin.name] = self._compute(plugin, None, unreadable)
        self._values, self._missing, self._by_revision, self._unreadable = values, missing, {}, tuple(unreadable)
        self.generation += 1

    def resolve(self, plugin: Plugin, revision: str | None) -> str | None:
        """The revision a tag points to (the tag's webhook configuration's label), else the name itself."""
        revisions = plugin.revisions
        if revision is None or revisions is None or not revisions.tag_object or not revisions.tag_label:
            return revision
        tag = self._seen.get((TAG_KIND, "", revisions.tag_object.replace("{revision}", revision)))
        labels = ((tag or {}).get("metadata") or {}).get("labels") or {}
        target = labels.get(revisions.tag_label)
        return str(target) if isinstance(target, str) and target else revision

    def _revision(self, plugin: Plugin, revision: str | None) -> tuple[Attrs, tuple[str, ...]] | None:
        """Values for a non-default revision, computed on first use after each change (a few per cluster)."""
        revision = self.resolve(plugin, revision)
        if revision is None or plugin.revisions is None or revision == plugin.revisions.default:
            return None
        cached = self._by_revision.get((plugin.name, revision))
        if cached is None:
            with self._lock:
                cached = self._compute(plugin, revision)
                if len(self._by_revision) < 256:  # revisions come from labels: bounded whatever pods say
                    self._by_revision[(plugin.name, revision)] = cached
        return cached

    def values_for(self, plugin: Plugin, revision: str | None = None) -> Attrs:
        found = self._revision(plugin, revision)
        return found[0] if found else self._values.get(plugin.name, plugin.values)  # type: ignore[arg-type]

    def unreported_warnings(self) -> list[str]:
        """Each plugin's release warning for the values in force (releases.py), and each value found
        that the mesh could not read, once per process."""
        found = [p.releases.warning(p.name, self.values_for(p)) for p in self.plugins if p.releases is not None]
        new = [w for w in [*found, *self._unreadable] if w is not None and w not in self._reported]
        self._reported.update(new)
        return new

    def missing_for(self, plugin: Plugin, revision: str | None = None) -> tuple[str, ...]:
        found = self._revision(plugin, revision)
        return found[1] if found else self._missing.get(plugin.name, ())
