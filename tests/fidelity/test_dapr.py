"""Dapr: every golden of every release line (tests/reference/dapr/golden/<V>/) against meshswitch.

meshswitch is configured as the reference injector was (meta.yaml: release, registry, trust
anchors, control-plane namespace, trust and cluster domain, classic sidecars as the chart's
`nativeSidecar: false`), renders the same input, and must produce the same pod except for the
differences listed in intended/dapr.yaml. Where Dapr skipped a pod, meshswitch injects nothing;
where Dapr refused one, meshswitch denies it, naming the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import pytest

from tests.fidelity import harness, reference
from tests.fidelity.compare import Difference
from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.values import apply_values, check_values
from webhook.engine.workloads import TEMPLATE_PATHS

MESH = "dapr"
ENABLED_KEY = "dapr.io/enabled"
APP_ID_KEY = "dapr.io/app-id"


def _enable(obj: dict[str, Any]) -> dict[str, Any]:
    """meta.yaml's corpus_enabled_rule: enabled and app-id (the object's name) on every pod, if absent."""
    kind = str(obj.get("kind", ""))
    if kind.endswith("List") and isinstance(obj.get("items"), list):
        return {**obj, "items": [_enable(i) if isinstance(i, dict) else i for i in obj["items"]]}
    path = TEMPLATE_PATHS.get(kind)
    if path is None:
        return obj
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path:
        node = node.setdefault(key, {})
    metadata = out.get("metadata") or {}
    name = metadata.get("name") or str(metadata.get("generateName") or "").removesuffix("-")
    annotations = node.setdefault("metadata", {}).setdefault("annotations", {})
    annotations.setdefault(ENABLED_KEY, "true")
    annotations.setdefault(APP_ID_KEY, name)
    return out


def _given_for(folder: str, doc: dict[str, Any]) -> dict[str, Any]:
    return _enable(doc) if folder == "corpus-enabled" else doc


CASES = list(reference.cases(MESH, folders=("corpus", "cases", "corpus-enabled"), given_for=_given_for))
INTENDED = harness.Intended.load(MESH)


def plugin_values(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The dapr plugin's install values that reproduce the reference injector's settings."""
    injector = meta["injector"]
    return {
        "version": str(meta["release_tag"]).removeprefix("v"),
        "registry": meta["helm_chart_values"]["global.registry"],
        "controlPlaneNamespace": injector["control_plane_namespace"],
        "trustDomain": injector["control_plane_trust_domain"],
        "clusterDomain": injector["kube_cluster_domain"],
        "trustAnchors": meta["driver_fixed_values"]["trust_anchors_pem"],
    }


@cache
def injector_for(version: str) -> Injector:
    plugins = load_plugins()
    values = check_values(plugins, {MESH: plugin_values(reference.meta(MESH, version))}, source=f"{version}/meta.yaml")
    # The chart's default is `nativeSidecar: false`: daprd is an ordinary container.
    return Injector(plugins=apply_values(plugins, values), config=Config(sidecar_style="classic"))


def _pairs(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(where, ours, theirs) per object whose pod is compared; a List per item."""
    if isinstance(theirs.get("items"), list) and str(theirs.get("kind", "")).endswith("List"):
        assert len(ours["items"]) == len(theirs["items"])
        for index, (mine, other) in enumerate(zip(ours["items"], theirs["items"], strict=True)):
            for where, a, b in _pairs(mine, other):
                yield f"items[{index}].{where}" if where else f"items[{index}]", a, b
    else:
        yield "", ours, theirs


def _differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[Difference]:
    found = []
    for where, a, b in _pairs(ours, theirs):
        for difference in harness.compare(a, b):
            path = f"{where}.{difference.path}" if where else difference.path
            found.append(Difference(path, difference.ours, difference.theirs))
    return found


def _is_refusal(reason: str) -> bool:
    text = reason.split(": ", 1)[1] if reason.startswith("items[") else reason
    return not text.startswith(("skipped by the webhook handler:", "no patch:"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_dapr_renders_as_dapr(case: reference.GoldenCase) -> None:
    rendering = harness.render(case, injector_for(case.version))
    if case.reason is not None and _is_refusal(case.reason):
        assert rendering.denied is not None, f"Dapr refused ({case.reason}); meshswitch did not"
        assert APP_ID_KEY in rendering.denied, rendering.denied  # the only key Dapr refuses for
        return
    if case.reason is not None:  # Dapr skipped: meshswitch injects nothing either
        assert rendering.denied is None, rendering.denied
        assert _differences(rendering.obj, case.given) == [], f"Dapr skipped ({case.reason}); meshswitch injected"
    else:
        assert rendering.denied is None or INTENDED.denial_listed(case), f"denied: {rendering.denied}"
    if rendering.denied is not None:
        return
    harness.assert_explained(INTENDED, case, _differences(rendering.obj, case.expected))


def test_every_intended_difference_is_used() -> None:
    for case in CASES:
        rendering = harness.render(case, injector_for(case.version))
        if case.reason is not None and _is_refusal(case.reason):
            continue
        if rendering.denied is not None:
            INTENDED.denial_listed(case)
            continue
        INTENDED.unexplained(case, _differences(rendering.obj, case.expected))
    unused = [e.id or e.path for i, e in enumerate(INTENDED.entries) if i not in INTENDED.used]
    assert INTENDED.entries, "intended/dapr.yaml is empty"
    assert not unused, f"intended differences that match nothing: {unused}"


def test_every_version_has_cases() -> None:
    versions = {c.version for c in CASES}
    assert versions == set(reference.versions(MESH)) and len(versions) >= 2, versions


def _keys_md() -> set[str]:
    """Every key of the table in tests/reference/dapr/KEYS.md (first column)."""
    import re

    text = (reference.REFERENCE / MESH / "KEYS.md").read_text()
    return set(re.findall(r"^\| `(dapr\.io/[a-z0-9-]+)`", text, flags=re.M))


def test_every_key_dapr_reads_is_a_key_of_the_plugin() -> None:
    plugin = load_plugins()[MESH]
    ours = {k for s in plugin.settings for k in s.keys} | {m.key for m in plugin.on}
    keys = _keys_md()
    assert len(keys) == 64, sorted(keys)
    assert keys == ours, {"missing": sorted(keys - ours), "extra": sorted(ours - keys)}
