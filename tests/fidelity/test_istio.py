"""meshswitch's istio plugin against Istio's own injector, for every committed release.

Each golden case (tests/reference/istio/golden/<version>/) is rendered with meshswitch configured as
the reference was (meta.yaml: hub, tag, revision, classic sidecars, Istio's ignored namespaces),
Istio selected the way `istioctl kube-inject` selects it (inject unless the pod opts out: here the
namespace's `istio-injection=enabled`, or the pod's `istio.io/rev` where it names a revision), and
compared field by field after normalisation. Every difference left must be listed in
tests/fidelity/intended/istio.yaml, with its reason; every entry there must still be needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from tests.fidelity import reference
from tests.fidelity.compare import Difference
from tests.fidelity.harness import Intended, Rendering, assert_every_version_has_cases, assert_explained, compare, pod_of, render
from tests.fidelity.reference import GoldenCase
from webhook.engine.config import Config
from webhook.engine.discovery import Discovery
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.values import apply_values, check_values

MESH = "istio"


def _install_folders() -> tuple[str, ...]:
    """install/<name>: inputs rendered by an install with other chart values (meta.yaml `install`)."""
    names = {name for version in reference.versions(MESH) for name in reference.meta(MESH, version).get("install") or {}}
    return tuple(f"install/{name}" for name in sorted(names))


CASES = list(reference.cases(MESH, folders=("corpus", "cases", *_install_folders())))
PROXY_CONTAINERS = ("istio-proxy", "istio-init")


@cache
def injector(version: str, install: str | None = None) -> Injector:
    """meshswitch configured with the values the reference program gave Istio's injector; for an
    install folder, the install's own values are what discovery reads from the ConfigMaps that
    install's chart rendered (meta.yaml install.<name>.configMaps), as in a cluster. A revision
    install (install.<name>.revision) is istiod-<revision> beside the default revision's istiod,
    whose ConfigMaps (defaultRevisionConfigMaps) are there too: discovery must read the revision's."""
    meta = reference.meta(MESH, version)
    chart = meta["chart"]["injectorConfigMap"]["values"]
    proxy = chart["global"]["proxy"]
    plugins = load_plugins()
    values = {
        MESH: {
            "hub": chart["global"]["hub"],
            "tag": str(chart["global"]["tag"]),
            "clusterId": "Kubernetes",
            "trustDomain": meta["meshConfig"]["trustDomain"],
            "meshId": meta["meshConfig"]["trustDomain"],
            "caAddress": meta["meshConfig"]["defaultConfig"]["discoveryAddress"],
            "resources": proxy["resources"],
        }
    }
    if install is not None:
        # Discovery reads these from the install's ConfigMaps: not pinned, so that it may.
        for taken in ("resources", "clusterId", "trustDomain", "meshId", "hub", "caAddress"):
            values[MESH].pop(taken)
    pinned = apply_values(plugins, check_values(plugins, values, source=f"{version}/meta.yaml"))
    # kube-inject without a cluster renders classic sidecars (meta.yaml injector.nativeSidecarDefault),
    # and skips Istio's own ignored namespaces.
    config = Config(
        default_mode="native",
        sidecar_style="classic",
        extra_ignored_namespaces=frozenset(meta["injector"]["ignoredNamespaces"]),
    )
    if install is None:
        return Injector(plugins=pinned, config=config)
    discovery = Discovery(pinned)
    entry = meta["install"][install]
    tag = str(chart["global"]["tag"])
    discovery.observe("Deployment", "istio-system", "istiod", _istiod("istiod", "default", tag))
    revision = entry.get("revision")
    # name -> (the revision whose chart rendered it, its data)
    config_maps = {name: (revision or "default", data) for name, data in entry["configMaps"].items()}
    if revision is not None:
        discovery.observe("Deployment", "istio-system", entry["istiod"], _istiod(entry["istiod"], revision, tag))
        config_maps |= {name: ("default", data) for name, data in entry["defaultRevisionConfigMaps"].items()}
    for name, (owner, data) in config_maps.items():
        metadata = {"name": name, "namespace": "istio-system", "labels": {"istio.io/rev": owner}}
        discovery.observe("ConfigMap", "istio-system", name, {"metadata": metadata, "data": data})
    for name, webhook in (entry.get("revisionTags") or {}).items():
        discovery.observe("MutatingWebhookConfiguration", "", name, webhook)
    assert not discovery.missing_for(pinned[MESH], revision), discovery.missing_for(pinned[MESH], revision)
    return Injector(plugins=pinned, config=config, discovery=discovery)


def _istiod(name: str, revision: str, tag: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "istio-system", "labels": {"app": "istiod", "istio.io/rev": revision}},
        "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": f"docker.io/istio/pilot:{tag}"}]}}},
    }


def _install_of(case: GoldenCase) -> str | None:
    folder, _, rest = case.source.partition("/")
    return rest.split("/", 1)[0] if folder == "install" else None


def case_injector(case: GoldenCase) -> Injector:
    """install/<name>/ inputs were rendered by an install with other values."""
    return injector(case.version, _install_of(case))


def namespace_of(case: GoldenCase) -> dict[str, Any]:
    """kube-inject injects every pod that does not opt out: the namespace turns Istio on, unless the
    pod names a revision itself (`istio.io/rev`), as a pod in a revisioned rollout does. In a
    revision install's folder every pod is that revision's: a pod without the label is in a
    namespace labelled `istio.io/rev=<revision>` (kube-inject --revision has no selector)."""
    name = (case.given.get("metadata") or {}).get("namespace") or "default"
    labels = {"kubernetes.io/metadata.name": name}
    if "istio.io/rev" not in (_template_metadata(case.given).get("labels") or {}):
        revision = _revision_of(case.version, _install_of(case))
        labels |= {"istio.io/rev": revision} if revision is not None else {"istio-injection": "enabled"}
    return {"labels": labels, "annotations": {}}


@cache
def _revision_of(version: str, install: str | None) -> str | None:
    """The revision an install folder installs (meta.yaml install.<name>.revision); None: the default."""
    if install is None:
        return None
    revision: str | None = reference.meta(MESH, version)["install"][install].get("revision")
    return revision


def _template_metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (pod_of(obj).get("metadata") or {}) if obj.get("kind") != "List" else {}


def _injected(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") == "List":
        return any(_injected(item) for _, item in _items(obj))
    spec = pod_of(obj).get("spec") or {}
    names = {c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or ()}
    annotations = (pod_of(obj).get("metadata") or {}).get("annotations") or {}
    return "sidecar.istio.io/status" in annotations or bool(names & set(PROXY_CONTAINERS))


def _items(obj: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects a document holds: itself, or each item of a List."""
    if obj.get("kind") == "List":
        return [(f"items[{i}].", item) for i, item in enumerate(obj.get("items") or ())]
    return [("", obj)]


def _we_injected(ours: Rendering, case: GoldenCase) -> bool:
    """A pod returned as given was not injected, even one that declares istio-proxy itself."""
    return _injected(ours.obj) and ours.obj != case.given


def differences_of(case: GoldenCase) -> list[Difference]:
    """Every difference between meshswitch's rendering and Istio's, the outcome included."""
    ours = render(case, case_injector(case), namespace_of(case))
    found = []
    for (prefix, our_item), (_, their_item) in zip(_items(ours.obj), _items(case.expected), strict=True):
        found += [Difference(prefix + d.path, d.ours, d.theirs) for d in compare(our_item, their_item)]
    theirs = ("injected" if _injected(case.expected) else "skipped") if case.reason is None else "skipped" if case.reason.startswith("===> Skipping") else "refused"
    mine = "refused" if ours.denied is not None else "injected" if _we_injected(ours, case) else "skipped"
    if mine != theirs:
        found.append(Difference("outcome", f"{mine}: {ours.denied}" if ours.denied else mine, f"{theirs}: {case.reason}"))
    return found


@pytest.fixture(scope="module")
def intended() -> Intended:
    return Intended.load(MESH)


def test_cases_cover_every_version() -> None:
    assert_every_version_has_cases(MESH, CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rendering_matches_istio(case: GoldenCase, intended: Intended) -> None:
    assert_explained(intended, case, differences_of(case))


@pytest.mark.parametrize("case", [c for c in CASES if c.reason], ids=lambda c: c.id)
def test_skipped_or_refused_by_istio_is_not_injected(case: GoldenCase) -> None:
    ours = render(case, case_injector(case), namespace_of(case))
    assert ours.denied is not None or not _we_injected(ours, case), f"Istio: {case.reason}"


def test_every_intended_difference_is_used() -> None:
    fresh = Intended.load(MESH)
    assert fresh.entries, "intended/istio.yaml is empty"
    for case in CASES:
        fresh.unexplained(case, differences_of(case))
    unused = [f"{e.path} ({e.reason})" for i, e in enumerate(fresh.entries) if i not in fresh.used]
    assert not unused, "entries that no case needs any more:\n" + "\n".join(unused)
