"""The layering contract: the pure core imports no server, no cluster client, no TLS (as kopf enforces
with import-linter); a change that breaks it fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "webhook"
PURE = ("decide", "render", "patch", "plugins", "fragment", "hooks", "settings", "injector", "discovery",
        "values", "workloads", "review", "reasons", "kube", "config", "errors")  # fmt: skip
FORBIDDEN = ("fastapi", "starlette", "uvicorn", "kubernetes", "ssl", "socket", "asyncio", "http", "urllib3", "requests")
IO_MODULES = ("server", "namespaces", "kubeapi", "listwatch", "discovery_watch", "certs", "tls", "install", "check",
              "modes", "controlplane", "devcluster", "cli", "metrics")  # fmt: skip


def imported(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module: str) -> None:
    bad = {name for name in imported(module) if name.split(".")[0] in FORBIDDEN}
    bad |= {name for name in imported(module) if name.startswith("webhook.") and name.split(".")[1] in IO_MODULES}
    assert not bad, f"webhook/{module}.py imports {sorted(bad)}"


def test_every_module_is_classified() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(PURE) | set(IO_MODULES), "classify new modules as pure or I/O in this test"
