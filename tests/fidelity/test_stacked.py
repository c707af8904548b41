"""Dapr stacked on a mesh against the two injectors chained, as a cluster calls them.

The API server calls mutating webhooks sorted by configuration name: dapr-sidecar-injector before
istio-sidecar-injector and linkerd-proxy-injector (Istio's chart sets reinvocationPolicy: Never, and
Dapr adds nothing once daprd exists). The goldens (tests/reference/stacked/golden/dapr-<D>/<mesh>-<V>/,
`make reference-stacked`) are each case of tests/reference/stacked/cases/<mesh>/ run through Dapr's
reference program and then the mesh's. meshswitch, configured as both references were, renders the
case in one pass, compared after the fidelity normalisation; a difference left must be listed in
tests/fidelity/intended/stacked.yaml with its reason (docs/fidelity.md, "Dapr"), and every entry
there must still be needed. Where the chain gives daprd and the proxy different sidecar styles (each
injector follows its own key), meshswitch gives the pod one style (docs/fidelity.md): that pair is
checked for the one style, not compared key for key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpora import documents
from tests.fidelity import reference, test_dapr, test_istio, test_linkerd
from tests.fidelity.compare import Difference
from tests.fidelity.harness import Intended, assert_explained, compare, pod_of, render
from tests.fidelity.reference import GoldenCase
from webhook.engine.config import Config
from webhook.engine.injector import Injector

ROOT = reference.REFERENCE / "stacked"
# Written by meshswitch, listed for every mesh in docs/fidelity.md.
OWN_KEYS = ("metadata.annotations.meshswitch.io/status", "metadata.annotations.linkerd.io/created-by")
PROXY = {"istio": "istio-proxy", "linkerd": "linkerd-proxy"}
INTENDED = "stacked"  # tests/fidelity/intended/stacked.yaml


def _goldens() -> list[tuple[str, str, str, Path]]:
    found = []
    for dapr_dir in sorted((ROOT / "golden").iterdir()):
        for mesh_dir in sorted(dapr_dir.iterdir()):
            mesh, _, version = mesh_dir.name.partition("-")
            found += [(dapr_dir.name.removeprefix("dapr-"), mesh, version, p) for p in sorted(mesh_dir.glob("*.yaml")) if not p.name.endswith(".reasons.yaml")]
    return found


def _pairs() -> list[tuple[GoldenCase, str]]:
    pairs = []
    for dapr, mesh, version, golden in _goldens():
        given = documents(ROOT / "cases" / mesh / golden.name)
        expected = [d for d in yaml.safe_load_all(golden.read_text()) if isinstance(d, dict)]
        assert len(given) == len(expected), golden
        for index, (doc, out) in enumerate(zip(given, expected)):
            pairs.append((GoldenCase(mesh, version, f"{mesh}/{golden.name}#{index}", doc, out, None), dapr))
    return pairs


PAIRS = _pairs()


@cache
def injector(mesh: str, version: str, dapr: str) -> Injector:
    """meshswitch with both references' values: the mesh's fidelity setup, plus Dapr's values."""
    single = test_istio.injector(version) if mesh == "istio" else test_linkerd.injector(version)
    plugins = single.plugins
    dapr_values = test_dapr.injector_for(f"v{dapr.removeprefix('v')}").plugins["dapr"]
    merged = type(plugins)({**plugins.by_name, "dapr": dapr_values})
    config: Config = single.config
    return Injector(plugins=merged, config=config)


def _namespace(mesh: str, case: GoldenCase) -> dict[str, Any]:
    if mesh == "istio":
        return test_istio.namespace_of(case)
    name = (case.given.get("metadata") or {}).get("namespace") or "default"
    return {"labels": {"kubernetes.io/metadata.name": name}, "annotations": {"linkerd.io/inject": "enabled"}}


def _section(obj: dict[str, Any], name: str) -> str | None:
    spec = pod_of(obj).get("spec") or {}
    return next((key for key in ("initContainers", "containers") for c in spec.get(key) or () if c.get("name") == name), None)


def _mixed(case: GoldenCase) -> bool:
    """The chain gives daprd and the proxy different sidecar styles (each injector its own key)."""
    proxy, daprd = _section(case.expected, PROXY[case.mesh]), _section(case.expected, "daprd")
    return bool(proxy and daprd and proxy != daprd)


SAME_STYLE = [(case, dapr) for case, dapr in PAIRS if not _mixed(case)]
MIXED_STYLE = [(case, dapr) for case, dapr in PAIRS if _mixed(case)]


def _differences(case: GoldenCase, dapr: str) -> list[Difference]:
    ours = render(case, injector(case.mesh, case.version, dapr), _namespace(case.mesh, case))
    assert ours.denied is None, ours.denied
    return [d for d in compare(ours.obj, case.expected) if not d.path.startswith(OWN_KEYS)]


@pytest.fixture(scope="module")
def intended() -> Intended:
    return Intended.load(INTENDED)


@pytest.mark.parametrize(("case", "dapr"), SAME_STYLE, ids=[f"dapr-{d}/{c.version}/{c.source}" for c, d in SAME_STYLE])
def test_stacked_rendering_matches_the_chain(case: GoldenCase, dapr: str, intended: Intended) -> None:
    assert_explained(intended, case, _differences(case, dapr))


def test_every_intended_difference_is_used() -> None:
    fresh = Intended.load(INTENDED)
    assert fresh.entries, "intended/stacked.yaml is empty"
    for case, dapr in SAME_STYLE:
        fresh.unexplained(case, _differences(case, dapr))
    unused = [f"{e.path} ({e.reason})" for i, e in enumerate(fresh.entries) if i not in fresh.used]
    assert not unused, "entries that no case needs any more:\n" + "\n".join(unused)


@pytest.mark.parametrize(("case", "dapr"), MIXED_STYLE, ids=[f"dapr-{d}/{c.version}/{c.source}" for c, d in MIXED_STYLE])
def test_where_the_chain_mixes_styles_the_pod_gets_one(case: GoldenCase, dapr: str) -> None:
    # The intended difference (docs/fidelity.md): one style for the pod, so daprd and the proxy sit
    # in the same list.
    ours = render(case, injector(case.mesh, case.version, dapr), _namespace(case.mesh, case))
    assert ours.denied is None
    proxy, daprd = _section(ours.obj, PROXY[case.mesh]), _section(ours.obj, "daprd")
    assert proxy is not None and proxy == daprd, f"daprd in {daprd}, {PROXY[case.mesh]} in {proxy}"


def test_every_case_is_compared_somewhere() -> None:
    assert SAME_STYLE, "no stacked pair is compared key for key"
    assert {case.source for case, _ in SAME_STYLE} == {case.source for case, _ in PAIRS}
