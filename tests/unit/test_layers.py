"""The layering contract, per package (as kopf enforces with import-linter): engine -> server and
cluster -> cli, with dev beside cli. A change that breaks it fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "webhook"

# Which webhook packages each package may import (itself included). Top-level modules count as
# packages of their own name: `certs` is the certificate toolkit shared by cluster, cli and dev.
ALLOWED: dict[str, frozenset[str]] = {
    "engine": frozenset({"engine"}),
    "certs": frozenset(),
    "server": frozenset({"server", "engine", "cluster"}),
    "cluster": frozenset({"cluster", "engine", "certs"}),
    "cli": frozenset({"cli", "engine", "server", "cluster", "certs", "dev"}),
    "dev": frozenset({"dev", "engine", "server", "cluster", "certs"}),
}
# The engine is pure: no web framework, no cluster client, no sockets or TLS.
ENGINE_FORBIDDEN = ("fastapi", "starlette", "uvicorn", "kubernetes", "ssl", "socket", "asyncio", "http", "urllib3", "requests")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" if node.module == "webhook" else node.module for alias in node.names)
    return names


def violations(layer: str, source: str) -> list[str]:
    """The imports of one module that its layer may not make."""
    found = []
    for name in sorted(imported(source)):
        parts = name.split(".")
        if parts[0] == "webhook" and len(parts) > 1 and parts[1] not in ALLOWED[layer]:
            found.append(f"{name} (the {layer} layer may import {sorted(ALLOWED[layer])})")
        if layer == "engine" and parts[0] in ENGINE_FORBIDDEN:
            found.append(f"{name} (the engine does no I/O)")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_what_its_layer_allows(path: Path) -> None:
    assert not violations(layer_of(path), path.read_text())


def test_every_module_sits_in_a_known_layer() -> None:
    assert {layer_of(p) for p in modules()} <= set(ALLOWED)
    assert len(modules()) > 30


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("engine", "from webhook.server.app import create_app"),
        ("engine", "import kubernetes"),
        ("engine", "from webhook import certs"),
        ("server", "from webhook.cli.main import main"),
        ("cluster", "from webhook.cli import check"),
        ("cluster", "from webhook.server.tls import CertificateReloader"),
        ("server", "from webhook.dev import controlplane"),
        ("cluster", "import webhook.dev.cluster"),
    ],
)
def test_the_contract_catches_a_violation(layer: str, source: str) -> None:
    assert violations(layer, source)


def test_dev_is_imported_only_by_cli_and_tests() -> None:
    users = {layer_of(p) for p in modules() if any(n.startswith("webhook.dev") for n in imported(p.read_text()))}
    assert users <= {"cli", "dev"}
