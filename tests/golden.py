"""Golden files: one set of input pods, one expected result each, checked through the CLI and the
webhook alike (as Istio does). `MESHSWITCH_UPDATE_GOLDEN=1 make test` rewrites the expected files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.stem for p in (GOLDEN / "cases").glob("*.yaml"))
UPDATE = os.environ.get("MESHSWITCH_UPDATE_GOLDEN") == "1"


def case(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((GOLDEN / "cases" / f"{name}.yaml").read_text())
    return document


def check(name: str, actual: dict[str, Any]) -> None:
    """Compare with the expected file (or write it when updating)."""
    path = GOLDEN / "expected" / f"{name}.yaml"
    if UPDATE:
        path.write_text(yaml.safe_dump(actual, sort_keys=False, width=120))
        return
    assert path.exists(), f"{path} is missing: run with MESHSWITCH_UPDATE_GOLDEN=1 once and review it"
    expected = yaml.safe_load(path.read_text())
    assert actual == expected, f"{name}: result differs from {path} (MESHSWITCH_UPDATE_GOLDEN=1 to accept)"
