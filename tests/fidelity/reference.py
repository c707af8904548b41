"""The committed goldens: tests/reference/<mesh>/golden/<version>/<dir>/<stem>.yaml, one document
per input document, as the mesh's own injector left it; `<stem>.reasons.yaml` says why a document
was skipped or refused. Inputs are tests/corpus/<stem>.yaml and tests/reference/<mesh>/cases/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.corpora import OWN, documents

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


@dataclass(frozen=True)
class GoldenCase:
    """One input document and what the mesh's injector made of it."""

    mesh: str
    version: str
    source: str  # corpus/<file>#<index> or cases/<file>#<index>
    given: dict[str, Any]
    expected: dict[str, Any]
    reason: str | None  # the injector's own words when it skipped or refused the document

    @property
    def id(self) -> str:
        return f"{self.version}/{self.source}"


def versions(mesh: str) -> list[str]:
    found = sorted(p.name for p in (REFERENCE / mesh / "golden").iterdir() if (p / "meta.yaml").is_file())
    if not found:
        raise RuntimeError(f"no goldens for {mesh} under {REFERENCE / mesh / 'golden'}")
    return found


def meta(mesh: str, version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REFERENCE / mesh / "golden" / version / "meta.yaml").read_text())
    return loaded


def _inputs(mesh: str, folder: str) -> Path:
    return OWN if folder.startswith("corpus") else REFERENCE / mesh / folder


def cases(
    mesh: str,
    *,
    folders: tuple[str, ...] = ("corpus", "cases"),
    given_for: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> Iterator[GoldenCase]:
    """Every golden document of every version; `given_for(folder, doc)` derives the input where a
    golden folder renders a variant of the corpus (dapr's corpus-enabled)."""
    for version in versions(mesh):
        root = REFERENCE / mesh / "golden" / version
        for folder in folders:
            directory = root / folder
            if not directory.is_dir():
                continue
            for golden in sorted(directory.glob("*.yaml")):
                if golden.name.endswith(".reasons.yaml"):
                    continue
                source = _inputs(mesh, folder) / golden.name
                given = documents(source)
                expected = [d for d in yaml.load_all(golden.read_text(), Loader=yaml.CSafeLoader) if isinstance(d, dict)]
                reasons_file = golden.with_name(golden.stem + ".reasons.yaml")
                reasons = yaml.safe_load(reasons_file.read_text()) if reasons_file.is_file() else {}
                if len(given) != len(expected):
                    raise RuntimeError(f"{golden}: {len(expected)} documents for {len(given)} in {source}")
                for index, (doc, out) in enumerate(zip(given, expected, strict=True)):
                    if given_for is not None:
                        doc = given_for(folder, doc)
                    reason = (reasons or {}).get(index, (reasons or {}).get(str(index)))
                    yield GoldenCase(mesh, version, f"{folder}/{golden.name}#{index}", doc, out, reason)
