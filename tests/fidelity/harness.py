"""Render a golden case with meshswitch, compare it with the mesh's own rendering, and keep only
the differences that are not listed as intended (tests/fidelity/intended/<mesh>.yaml, mirrored
with reasons in docs/fidelity.md)."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from tests.fidelity import normalize
from tests.fidelity import reference
from tests.fidelity.compare import Difference, differences
from tests.fidelity.reference import GoldenCase
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.workloads import pod_template, transform

INTENDED = Path(__file__).resolve().parent / "intended"
DENIED = "<denied>"  # the path of an entry that lists pods meshswitch denies and the mesh injected


@dataclass(frozen=True)
class Rendering:
    obj: dict[str, Any]
    denied: str | None = None
    warnings: tuple[str, ...] = ()


def render(case: GoldenCase, injector: Injector, namespace: Mapping[str, Any] | None = None) -> Rendering:
    """meshswitch's rendering of the case's input, as `meshswitch inject` makes it."""
    warnings: list[str] = []
    denied: list[str] = []
    meta = dict(namespace or {})

    def inject_one(pod: dict[str, Any], workload: Any, ns: str) -> dict[str, Any]:
        namespace_meta = NamespaceMeta(name=ns, labels=dict(meta.get("labels", {})), annotations=dict(meta.get("annotations", {})))
        try:
            result = injector.inject(pod, namespace_meta, workload=workload)
        except PodDenied as err:
            denied.append(err.message)
            return pod
        warnings.extend(result.warnings)
        return jsonpatch.apply_patch(pod, result.patch) if result.patch else pod

    obj = transform(copy.deepcopy(case.given), inject_one, default_namespace="default")
    return Rendering(obj, denied[0] if denied else None, tuple(warnings))


def pod_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": obj.get("spec") or {}}
    template = pod_template(obj)
    return dict(template) if template is not None else {}


def compare(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[Difference]:
    """The pods' differences (paths from the pod: metadata..., spec...), after normalisation."""
    return differences(normalize.pod(pod_of(ours)), normalize.pod(pod_of(theirs)))


@dataclass(frozen=True)
class IntendedDifference:
    path: str  # fnmatch pattern over Difference.path
    reason: str
    sources: tuple[str, ...] = ("*",)  # fnmatch patterns over GoldenCase.id
    id: str = ""

    def covers(self, case: GoldenCase, difference: Difference) -> bool:
        return fnmatch.fnmatchcase(difference.path, self.path) and any(fnmatch.fnmatchcase(case.id, s) for s in self.sources)


@dataclass
class Intended:
    entries: list[IntendedDifference]
    used: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, mesh: str) -> Intended:
        path = INTENDED / f"{mesh}.yaml"
        raw = yaml.safe_load(path.read_text()) if path.is_file() else []
        entries = []
        for item in raw or []:
            sources = item.get("sources", ["*"])
            entries.append(IntendedDifference(item["path"], item["reason"], tuple(sources), item.get("id", "")))
        return cls(entries)

    def unexplained(self, case: GoldenCase, found: list[Difference]) -> list[Difference]:
        left = []
        for difference in found:
            covering = [i for i, entry in enumerate(self.entries) if entry.covers(case, difference)]
            if covering:
                self.used.update(covering)
            else:
                left.append(difference)
        return left

    def denial_listed(self, case: GoldenCase) -> bool:
        """meshswitch denied a pod the mesh injected: listed as an entry with path `<denied>`."""
        covering = [
            i for i, entry in enumerate(self.entries)
            if entry.path == DENIED and any(fnmatch.fnmatchcase(case.id, s) for s in entry.sources)
        ]  # fmt: skip
        self.used.update(covering)
        return bool(covering)


def assert_explained(intended: Intended, case: GoldenCase, found: list[Difference]) -> None:
    """Fail with every difference no intended entry covers."""
    left = intended.unexplained(case, found)
    assert not left, "unexplained differences:\n" + "\n".join(f"  {d}" for d in left)


def assert_every_version_has_cases(mesh: str, cases: list[GoldenCase]) -> None:
    """Each committed golden version is compared, with per-key cases as well as the corpus."""
    versions = reference.versions(mesh)
    assert {c.version for c in cases} == set(versions)
    assert all(any(c.version == v and c.source.startswith("cases/") for c in cases) for v in versions)
