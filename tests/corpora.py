"""The workloads tests run over: the project's own corpus (tests/corpus, always there) and, when it
sits beside the clone (this project's CI has it), ../shared/manifests as an extra corpus.

A corpus that yields nothing raises at collection, so a missing file never turns into an empty,
silently passing parameter set.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from webhook.engine.workloads import iter_workloads, pod_template

ROOT = Path(__file__).resolve().parent.parent
OWN = ROOT / "tests" / "corpus"
EXTRA = ROOT.parent / "shared" / "manifests"


@dataclass(frozen=True)
class Corpus:
    name: str
    directory: Path

    def files(self) -> list[Path]:
        found = sorted(self.directory.glob("*.yaml"))
        if not found:
            raise RuntimeError(f"corpus {self.name}: no *.yaml in {self.directory}")
        return found


def corpora() -> list[Corpus]:
    """Our corpus, then the extra one where it exists (absent by design in a plain clone)."""
    found = [Corpus("corpus", OWN)]
    if EXTRA.is_dir():
        found.append(Corpus("shared", EXTRA))
    return found


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if isinstance(doc, dict)]


def workloads(corpus: Corpus) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, object) for every object of the corpus, Lists opened."""
    for path in corpus.files():
        for document in documents(path):
            for obj in iter_workloads(document):
                yield f"{corpus.name}/{path.name}:{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}", dict(obj)


def as_pod(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod a controller would create from a workload (a bare Pod as it is), or None for other kinds."""
    if obj.get("kind") == "Pod":
        return copy.deepcopy(obj)
    template = pod_template(obj)
    if template is None:
        return None
    metadata = obj.get("metadata") or {}
    pod = {"apiVersion": "v1", "kind": "Pod", **copy.deepcopy(dict(template))}
    pod.setdefault("metadata", {})["generateName"] = f"{metadata.get('name')}-"
    if metadata.get("namespace"):
        pod["metadata"].setdefault("namespace", metadata["namespace"])
    for claim in (obj.get("spec") or {}).get("volumeClaimTemplates", []):
        # As the StatefulSet controller does for pod 0.
        claim_name = f"{claim['metadata']['name']}-{metadata.get('name')}-0"
        volume = {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
        pod["spec"].setdefault("volumes", []).append(volume)
    return pod


def pods(*, only: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(id, pod) for every workload's pod in every corpus (or the one named); never empty."""
    found: list[tuple[str, dict[str, Any]]] = []
    for corpus in corpora():
        if only is not None and corpus.name != only:
            continue
        found.extend((ident, pod) for ident, obj in workloads(corpus) if (pod := as_pod(obj)) is not None)
    if not found:
        raise RuntimeError("no pods in the corpora: tests/corpus is missing or empty")
    return found
