"""Dapr stacked on a mesh against the two injectors chained, as a cluster calls them.

The API server calls mutating webhooks sorted by configuration name: dapr-sidecar-injector before
istio-sidecar-injector and linkerd-proxy-injector (Istio's chart sets reinvocationPolicy: Never, and
Dapr adds nothing once daprd exists). The goldens (tests/reference/stacked/golden/dapr-<D>/<mesh>-<V>/,
`make reference-stacked`) are each case of tests/reference/stacked/cases/<mesh>/ run through Dapr's
reference program and then the mesh's. meshswitch, configured as both references were, renders the
case in one pass, compared after the fidelity normalisation. Where the chain gives daprd and the
proxy different sidecar styles (each injector follows its own key), meshswitch gives the pod one
style (docs/fidelity.md): that pair is not compared.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpora import documents
from tests.fidelity import reference, test_dapr, test_istio, test_linkerd
from tests.fidelity.harness import compare, pod_of, render
from tests.fidelity.reference import GoldenCase
from webhook.engine.config import Config
from webhook.engine.injector import Injector

ROOT = reference.REFERENCE / "stacked"
# Written by meshswitch, listed for every mesh in docs/fidelity.md.
OWN_KEYS = ("metadata.annotations.meshswitch.io/status", "metadata.annotations.linkerd.io/created-by")
PROXY = {"istio": "istio-proxy", "linkerd": "linkerd-proxy"}


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


@pytest.mark.parametrize(("case", "dapr"), PAIRS, ids=[f"dapr-{d}/{c.version}/{c.source}" for c, d in PAIRS])
def test_stacked_rendering_matches_the_chain(case: GoldenCase, dapr: str) -> None:
    proxy = _section(case.expected, PROXY[case.mesh])
    daprd = _section(case.expected, "daprd")
    if proxy and daprd and proxy != daprd:
        pytest.skip(f"the chain gives daprd ({daprd}) and {PROXY[case.mesh]} ({proxy}) different styles")
    ours = render(case, injector(case.mesh, case.version, dapr), _namespace(case.mesh, case))
    assert ours.denied is None
    found = [d for d in compare(ours.obj, case.expected) if not d.path.startswith(OWN_KEYS)]
    assert not found, "\n".join(str(d) for d in found)


def test_every_case_is_compared_somewhere() -> None:
    compared = {
        case.source for case, _ in PAIRS
        if not ((p := _section(case.expected, PROXY[case.mesh])) and (d := _section(case.expected, "daprd")) and p != d)
    }  # fmt: skip
    assert compared == {case.source for case, _ in PAIRS}
