"""meshswitch's linkerd plugin against Linkerd's own proxy injector, for every committed release.

Each golden case (tests/reference/linkerd/golden/<version>/) is rendered with meshswitch configured
as the reference was (meta.yaml: release, trust anchors, domains), Linkerd selected as the reference
selected it (the namespace's `linkerd.io/inject`), and compared field by field after normalisation.
Every difference left must be listed in tests/fidelity/intended/linkerd.yaml, with its reason; every
entry there must still be needed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from tests.corpora import documents
from tests.fidelity import reference
from tests.fidelity.compare import Difference
from tests.fidelity.harness import Intended, Rendering, assert_every_version_has_cases, assert_explained, compare, pod_of, render
from tests.fidelity.reference import REFERENCE, GoldenCase
from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.discovery import control_plane_of
from webhook.engine.plugins import PluginSet, load_plugins
from webhook.engine.values import apply_values, check_values
from webhook.engine.workloads import iter_workloads, pod_template

MESH = "linkerd"
# cni/, ha/, options/, proxy/, workers/, cores/, tracing/, token/, mounts/, empty/, security/, validator/, gateway/: inputs rendered by installs with other values (meta.yaml folder_values).
CASES = list(reference.cases(MESH, folders=("corpus", "cases", "cni", "ha", "options", "proxy", "workers", "cores", "tracing", "token", "mounts", "empty", "security", "validator", "gateway")))
PROXY_CONTAINERS = ("linkerd-proxy", "linkerd-init")
# linkerd-config values a folder sets that the plugin does not read: proxyInit.saMountPath, which
# Linkerd's code replaces with the proxy's; proxyInit.xtMountPath.name, which Linkerd writes on a mount
# of no volume (intended/linkerd.yaml).
VALUES_NOT_READ = frozenset({"proxyInit.saMountPath", "proxyInit.xtMountPath.name"})


def _folder_values(plugins: PluginSet, version: str, folder: str) -> dict[str, Any]:
    """The plugin's values for the linkerd-config values the reference set for one folder's inputs
    (meta.yaml folder_values), named and read as the plugin takes them from linkerd-config."""
    set_over = (reference.meta(MESH, version).get("folder_values") or {}).get(folder) or {}
    takes = {take.value: take for obj in control_plane_of(plugins[MESH]) for take in obj.takes}
    named = {path: take.value for take in takes.values() for path in take.paths}
    found: dict[str, Any] = {}
    for path, value in set_over.items():
        if path in VALUES_NOT_READ:
            continue
        if path in named:
            found[named[path]] = value
            continue
        # A path inside a mapping the plugin takes whole (proxy.inbound): set into the plugin's default.
        whole = next((p for p in named if path.startswith(p + ".")), None)
        assert whole is not None, f"a linkerd-config value the plugin does not take: {path}"
        node = found.setdefault(named[whole], copy.deepcopy(plugins[MESH].values[named[whole]]))
        *parents, last = path[len(whole) + 1 :].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    # As discovery reads them from a cluster's linkerd-config (what the mesh's typed values keep).
    return {name: takes[name].read(value, plugins[MESH].values[name]) for name, value in found.items()}


@cache
def injector(version: str, folder: str = "cases") -> Injector:
    """meshswitch configured with the values the reference program gave Linkerd's injector."""
    meta = reference.meta(MESH, version)
    fixed, defaults = meta["fixed"], meta["defaults"]
    anchors = (REFERENCE / MESH / fixed["trust_anchors_file"]).read_text()
    plugins = load_plugins()
    values = {
        MESH: {
            "version": meta["release"],
            "controlPlaneNamespace": fixed["control_plane_namespace"],
            "clusterDomain": fixed["cluster_domain"],
            "trustDomain": fixed["identity_trust_domain"],
            "identityTrustAnchorsPEM": anchors,
            "clusterNetworks": defaults["clusterNetworks"],
            **_folder_values(plugins, version, folder),
        }
    }
    pinned = apply_values(plugins, check_values(plugins, values, source=f"{version}/meta.yaml"))
    # The reference installs Linkerd with the release's defaults: the sidecar style follows the release.
    # The image cases pull from registry.example.com, which the operator allows here, so that the
    # image is compared; by default it is refused (test_plugins covers that).
    config = Config(default_mode="native", allowed_registries=(*Config().allowed_registries, "registry.example.com"))
    return Injector(plugins=pinned, config=config)


def case_injector(case: GoldenCase) -> Injector:
    """The injector for the case's folder: cni/, ha/, options/, proxy/, workers/, cores/, tracing/, token/, mounts/, empty/, security/, validator/ and gateway/ inputs were rendered by installs with other values."""
    return injector(case.version, case.source.split("/", 1)[0])


@cache
def _namespaces(path: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for doc in documents(REFERENCE.parent / path if path.startswith("corpus") else REFERENCE / MESH / path):
        if doc.get("kind") == "Namespace":
            metadata: dict[str, Any] = doc.get("metadata") or {}
            found[metadata["name"]] = metadata
    return found


def namespace_of(case: GoldenCase) -> dict[str, Any]:
    """The namespace as the reference saw it: declared in the same file, else `linkerd.io/inject: enabled`."""
    folder, rest = case.source.split("/", 1)
    path = f"{folder}/{rest.split('#', 1)[0]}"
    name = (case.given.get("metadata") or {}).get("namespace") or "default"
    declared = _namespaces(path).get(name)
    if declared is not None:
        labels = dict(declared.get("labels") or {})
        annotations = dict(declared.get("annotations") or {})
    else:
        labels, annotations = {}, {"linkerd.io/inject": "enabled"}
    labels["kubernetes.io/metadata.name"] = name
    return {"labels": labels, "annotations": annotations}


def _proxies(obj: Mapping[str, Any]) -> list[Any]:
    """Linkerd's containers in every pod (template) of the object, Lists opened."""
    found = []
    for item in iter_workloads(obj):
        spec = pod_of(item).get("spec") or {}
        found += [c for key in ("containers", "initContainers") for c in spec.get(key) or () if c.get("name") in PROXY_CONTAINERS]
    return found


def _holds_pods(obj: Mapping[str, Any]) -> bool:
    return any(pod_template(item) is not None for item in iter_workloads(obj))


def _injected(ours: Rendering, case: GoldenCase) -> bool:
    """meshswitch added Linkerd's containers (a pod that already had them is compared as given)."""
    return ours.denied is None and _proxies(ours.obj) != _proxies(case.given)


def differences_of(case: GoldenCase) -> list[Difference]:
    """Every difference between meshswitch's rendering and Linkerd's, the outcome included."""
    ours = render(case, case_injector(case), namespace_of(case))
    found = compare(ours.obj, case.expected)
    theirs = case.reason or "injected"
    if ours.denied is not None:
        found.append(Difference("outcome", f"denied: {ours.denied}", theirs))
    elif _holds_pods(case.given) and _injected(ours, case) != (case.reason is None):
        found.append(Difference("outcome", "injected" if _injected(ours, case) else "skipped", theirs))
    return found


@pytest.fixture(scope="module")
def intended() -> Intended:
    return Intended.load(MESH)


def test_cases_cover_every_version() -> None:
    assert_every_version_has_cases(MESH, CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rendering_matches_linkerd(case: GoldenCase, intended: Intended) -> None:
    assert_explained(intended, case, differences_of(case))


@pytest.mark.parametrize("case", [c for c in CASES if c.reason], ids=lambda c: c.id)
def test_skipped_or_refused_by_linkerd_is_not_injected_or_listed(case: GoldenCase, intended: Intended) -> None:
    ours = render(case, case_injector(case), namespace_of(case))
    if _injected(ours, case):
        outcome = [Difference("outcome", "injected", case.reason)]
        assert not intended.unexplained(case, outcome), f"meshswitch injected; Linkerd: {case.reason}"


@pytest.mark.parametrize("case", [c for c in CASES if c.reason is None and _proxies(c.expected)], ids=lambda c: c.id)
def test_injected_by_linkerd_is_injected_or_listed(case: GoldenCase, intended: Intended) -> None:
    ours = render(case, case_injector(case), namespace_of(case))
    if not _injected(ours, case):
        outcome = [Difference("outcome", ours.denied or "skipped", "injected")]
        assert not intended.unexplained(case, outcome), f"meshswitch did not inject: {ours.denied or 'skipped'}"


def test_every_intended_difference_is_used() -> None:
    fresh = Intended.load(MESH)
    assert fresh.entries, "intended/linkerd.yaml is empty"
    for case in CASES:
        fresh.unexplained(case, differences_of(case))
    unused = [f"{e.path} ({e.reason})" for i, e in enumerate(fresh.entries) if i not in fresh.used]
    assert not unused, "entries that no case needs any more:\n" + "\n".join(unused)


@pytest.mark.parametrize("case", [c for c in CASES if c.source.startswith("cases/istio-proxy.yaml")], ids=lambda c: c.id)
def test_pod_with_istio_proxy_is_left_alone_with_a_warning(case: GoldenCase) -> None:
    """SPEC.md rule 7: Linkerd skips it ("pod has a sidecar injected already"); meshswitch too, and says why."""
    ours = render(case, case_injector(case), namespace_of(case))
    assert ours.obj == case.given and ours.denied is None
    assert any("istio-proxy" in w and "linkerd" in w for w in ours.warnings), ours.warnings


# Keys Linkerd's injector reads that the plugin leaves out, with why (docs/fidelity.md says the same).
NOT_READ = {
    "app.kubernetes.io/instance": "tracing label: only with proxy.tracing configured, which the plugin does not render",
    "app.kubernetes.io/name": "tracing label: only with proxy.tracing configured",
    "resource.opentelemetry.io/<attr>": "tracing attributes: only with proxy.tracing configured",
}


def keys_linkerd_reads() -> list[str]:
    """Every key of the tables in tests/reference/linkerd/KEYS.md (first column)."""
    found: list[str] = []
    config_table = False
    for line in (REFERENCE / MESH / "KEYS.md").read_text().splitlines():
        if line.startswith("### "):
            config_table = "config.linkerd.io" in line and "alpha" not in line
            continue
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for key in re.findall(r"`([^`]+)`", first):
            if key.startswith("-"):  # `proxy-ephemeral-storage-request` / `-limit`
                key = found[-1].rsplit("-", 1)[0] + key
            elif config_table and not key.startswith("config."):
                key = "config.linkerd.io/" + key
            found.append(key)
    return found


def test_every_key_linkerd_reads_is_read() -> None:
    plugin = load_plugins()[MESH]
    read = set(plugin.setting_keys) | {m.key for m in plugin.on + plugin.off}
    keys = [k for k in keys_linkerd_reads() if "/" in k]
    assert len(keys) >= 55, keys
    missing = [k for k in keys if k not in read and k not in NOT_READ]
    assert not missing, f"keys Linkerd's injector reads that the plugin does not: {missing}"
