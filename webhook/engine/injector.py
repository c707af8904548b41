"""The engine's front door: decide, render and patch one pod (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from webhook.engine import reasons
from webhook.engine.config import Config
from webhook.engine.decide import Decision, decide, restyled
from webhook.engine.discovery import Discovery, control_plane_of
from webhook.engine.errors import ConfigError, PodDenied
from webhook.engine.keys import unknown_keys
from webhook.engine.kube import JsonPatch, NamespaceMeta, Pod
from webhook.engine.plugins import Plugin, PluginSet
from webhook.engine.reasons import Reason
from webhook.engine.render import Addition, Workload, find_workload, fold_into, render, seen_after
from webhook.engine.patch import build_patch

__all__ = ["Injection", "Injector", "NamespaceMeta", "Reason"]


class Injection(NamedTuple):
    """What the engine decided for one pod and the RFC 6902 ops that carry it out (a named tuple,
    as Addition is: one is made per pod)."""

    reason: Reason
    plugins: tuple[str, ...]
    patch: JsonPatch
    warnings: tuple[str, ...] = ()
    mode: str = "native"


# A pod that exercises every branch a template may take, rendered once per plugin at start-up so
# that a template bug fails start-up, never an admission.
_PROBE_POD: Mapping[str, Any] = {
    "metadata": {"name": "probe", "namespace": "default", "labels": {"app": "probe"}, "annotations": {}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "busybox",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "livenessProbe": {"tcpSocket": {"port": 8080}},
            }
        ]
    },
}


class Injector:
    """Holds the compiled plugins and the config; ``inject`` is called once per pod."""

    def __init__(self, *, plugins: PluginSet, config: Config, discovery: Discovery | None = None) -> None:
        if config.default_mode not in plugins.modes:
            raise ConfigError(f"default mode {config.default_mode!r} is not installed; accepted: {', '.join(plugins.modes)}")
        self.plugins = plugins
        self.config = config
        self.discovery = discovery
        self._revision_values: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._release_warnings: dict[tuple[str, str], str | None] = {}
        self._check_templates()

    def _check_templates(self) -> None:
        namespace = NamespaceMeta("default", {}, {})
        for plugin in self.plugins:
            control_plane_of(plugin)  # a bad controlPlane section fails start-up, with or without a cluster
            for rule in plugin.warn:
                rule.when(values=plugin.values)
            for native in (True, False):
                for rule in plugin.refuse:
                    rule.when(settings=plugin.defaults, values=plugin.values, native=native)
            if plugin.sidecar is not None and plugin.sidecar.default is not None:
                plugin.sidecar.default(values=plugin.values)
            if plugin.sidecar is not None and plugin.sidecar.choose is not None:
                plugin.sidecar.choose(settings=plugin.defaults, values=plugin.values)
            for native in (True, False):
                render(
                    plugin, pod=_PROBE_POD, namespace=namespace, settings=plugin.defaults,
                    workload=find_workload(_PROBE_POD), native_sidecar=native,
                )  # fmt: skip

    def control_plane_warnings(self, decision: Decision) -> list[str]:
        """One warning per selected plugin whose control plane was not found in the cluster."""
        if self.discovery is None:
            return []
        return [
            f"{plugin.name}: control plane not found ({', '.join(missing)}); injected with the configured values"
            for plugin in decision.plugins
            if (missing := self.discovery.missing_for(plugin, decision.revisions.get(plugin.name)))
        ]

    def values_for(self, plugin: Plugin, revision: str | None = None) -> Mapping[str, Any]:
        """The plugin's values for this pod: discovered where a cluster is watched, for its revision."""
        if self.discovery is not None:
            return self.discovery.values_for(plugin, revision)
        if revision is not None and plugin.revisions is not None:
            key = (plugin.name, revision)
            cached = self._revision_values.get(key)
            if cached is None:
                cached = plugin.revisions.values_of(plugin.values, revision)
                if len(self._revision_values) < 256:
                    self._revision_values[key] = cached
            return cached
        return plugin.values

    _values_for = values_for

    def _style(self, decision: Decision) -> Decision:
        """The sidecar style: the pod's meshswitch.io/sidecar, else the mesh's own key (pod, then
        namespace), else a runtime's own key (Dapr's), else the server's --sidecar-style, else the
        installed release's default, else native."""
        mesh = decision.plugins[0] if decision.plugins else None
        if decision.sidecar_chosen or mesh is None or not mesh.is_mesh or mesh.sidecar is None:
            return decision
        rule = mesh.sidecar
        values = self.values_for(mesh)
        native = rule.choose(settings=decision.settings[mesh.name], values=values) if rule.choose else None
        if native is None and (self.config.sidecar_style is not None or self._runtime_chose(decision)):
            return decision  # the operator's --sidecar-style, or a runtime's key (dapr.io/enable-native-sidecar)
        if native is None and rule.default is not None:
            native = rule.default(values=values)
        if native is None:
            return decision
        return restyled(decision, "native" if native else "classic")

    @staticmethod
    def _runtime_chose(decision: Decision) -> bool:
        """A runtime's own style key is set on the pod: it picks the style before a mesh's release default."""
        return any(
            decision.settings[p.name].get(p.sidecar_style_setting) is not None
            for p in decision.plugins
            if not p.is_mesh and p.sidecar_style_setting
        )

    def _release_warning(self, plugin: Plugin, values: Mapping[str, Any]) -> str | None:
        """The plugin's release warning, remembered per installed version (it depends on nothing else)."""
        assert plugin.releases is not None
        raw = values.get(plugin.releases.value)
        if not isinstance(raw, str):
            return plugin.releases.warning(plugin.name, values)
        key = (plugin.name, raw)
        if key in self._release_warnings:
            return self._release_warnings[key]
        warning = plugin.releases.warning(plugin.name, values)
        if len(self._release_warnings) < 256:
            self._release_warnings[key] = warning
        return warning

    def unknown_keys(self, pod: Pod) -> list[str]:
        """Warnings for the pod's annotations under a plugin's prefix that no plugin reads (typos)."""
        metadata = pod.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        if not isinstance(annotations, dict) or not annotations:
            return []
        return unknown_keys(annotations, self.plugins, where="pod annotation")

    def decide(self, pod: Pod, namespace: NamespaceMeta) -> Decision:
        """Rules 2 to 8 only (for `explain`); raises PodDenied."""
        return self._style(decide(pod, namespace, plugins=self.plugins, config=self.config, values_for=self.values_for))

    def inject(self, pod: Pod, namespace: NamespaceMeta, *, workload: Workload | None = None) -> Injection:
        """Decide, render and build the patch; raises PodDenied when the pod must be refused."""
        decision = self._style(decide(pod, namespace, plugins=self.plugins, config=self.config, values_for=self.values_for))
        typos = self.unknown_keys(pod)
        if not decision.plugins:
            said = tuple(typos) + decision.warnings
            return Injection(reason=decision.reason, plugins=(), patch=[], mode=decision.mode, warnings=said)
        native = decision.sidecar_style == "native"
        for plugin in decision.plugins:
            for rule in plugin.refuse:
                if rule.when(settings=decision.settings[plugin.name], values=self.values_for(plugin), native=native):
                    raise PodDenied(reasons.INVALID_SETTING, f"{plugin.name}: {rule.message}")
        owner = workload or find_workload(pod)
        values = {p.name: self.values_for(p, decision.revisions.get(p.name)) for p in decision.plugins}
        def rendered(plugin: Plugin, seen: Pod) -> Addition:
            return render(
                plugin, pod=seen, namespace=namespace, settings=decision.settings[plugin.name],
                workload=owner, native_sidecar=native, values=values[plugin.name],
            )  # fmt: skip

        first = decision.plugins[0]
        if first.is_mesh and len(decision.plugins) > 1:
            # As in a cluster, where dapr-sidecar-injector is called before the mesh's injector: the
            # runtimes first, then the mesh over the pod they leave (it rewrites daprd's probes too).
            runtimes = [rendered(plugin, pod) for plugin in decision.plugins[1:]]
            mesh, runtimes = fold_into(
                rendered(first, seen_after(pod, runtimes, native_sidecar=native)), runtimes, pod=pod, native_sidecar=native
            )
            additions = [mesh, *runtimes]
        else:
            additions = [rendered(plugin, pod) for plugin in decision.plugins]
        for addition in additions:
            if addition.plugin.clashing or (addition.plugin.declared == "merge" and addition.init_containers):
                _refuse_duplicates(addition, pod)
        patch, warnings = build_patch(
            pod, additions, native_sidecar=native, reason=reasons.INJECTED, mesh_containers=self.plugins.mesh_containers
        )
        warnings = list(decision.warnings) + warnings
        for plugin in decision.plugins:
            warnings += [f"{plugin.name}: {rule.message}" for rule in plugin.warn if rule.when(values=values[plugin.name])]
        if self.discovery:
            warnings += self.control_plane_warnings(decision)
        for plugin in decision.plugins:
            if plugin.releases is not None and (warning := self._release_warning(plugin, values[plugin.name])):
                warnings.append(warning)
        warnings += typos
        return Injection(
            reason=decision.reason,
            plugins=tuple(p.name for p in decision.plugins),
            patch=patch,
            warnings=tuple(warnings),
            mode=decision.mode,
        )


def _refuse_duplicates(addition: Addition, pod: Pod) -> None:
    """A container the plugin adds that the pod already has as its own, where the mesh would add its
    own beside it: a user's `linkerd-debug` with Linkerd's debug sidecar on, or an app container
    named like a merging plugin's init container (Istio overlays its istio-init on a declared one
    but keeps the pod's in `containers`). The API server would refuse the duplicate name, so the pod is."""
    plugin = addition.plugin
    added = {c.get("name") for c in (*addition.init_containers, *addition.sidecars, *addition.containers)}
    clashing = added & plugin.clashing
    # Init containers only: a merged sidecar may be declared among the app containers (a gateway's istio-proxy).
    redirects = {c.get("name") for c in addition.init_containers} if plugin.declared == "merge" else set()
    spec = pod.get("spec") or {}
    for section in ("initContainers", "containers"):
        for container in spec.get(section) or ():
            name = container.get("name") if isinstance(container, dict) else None
            if name in clashing or (section == "containers" and name in redirects):
                raise PodDenied(
                    reasons.INVALID_POD,
                    f"spec.{section}: the pod has its own container {name}, which {plugin.name} adds too:"
                    " a pod cannot hold two containers of one name",
                )
