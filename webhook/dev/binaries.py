"""The control-plane binaries: kube-apiserver, kube-controller-manager and etcd, built once from the
Go module in tests/controlplane into a per-version cache, or taken from $MESHSWITCH_CONTROLPLANE_BIN."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_MODULE_DIR = REPO_ROOT / "tests" / "controlplane"
BUILD_SCRIPT = GO_MODULE_DIR / "build.sh"
BINARIES = ("kube-apiserver", "kube-controller-manager", "etcd")
BIN_DIR_ENV = "MESHSWITCH_CONTROLPLANE_BIN"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or queried."""


def _module_version(module: str, go_mod: Path = GO_MODULE_DIR / "go.mod") -> str:
    """Return the version go.mod requires for `module`."""
    for line in go_mod.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == module and parts[1].startswith("v"):
            return parts[1]
    raise ControlPlaneError(f"{module} not required in {go_mod}")


def versions() -> tuple[str, str]:
    """Return (kubernetes version, etcd version) pinned by the wrapper Go module."""
    return _module_version("k8s.io/kubernetes"), _module_version("go.etcd.io/etcd/server/v3")


def cache_dir() -> Path:
    """Return the per-version bin dir that build.sh fills (same key as build.sh)."""
    k8s, etcd = versions()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "meshswitch" / "controlplane" / f"{k8s}-etcd-{etcd}"


def _has_all(directory: Path) -> bool:
    """Tell whether every control-plane binary is an executable file in `directory`."""
    return all(os.access(directory / name, os.X_OK) for name in BINARIES)


def find_binaries() -> Path | None:
    """Return the dir holding all three binaries ($MESHSWITCH_CONTROLPLANE_BIN or the cache), if any."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Path(override) if _has_all(Path(override)) else None
    directory = cache_dir()
    return directory if _has_all(directory) else None


def build_binaries() -> Path:
    """Run build.sh (progress goes to stderr) and return the bin dir it prints last."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    directory = Path(lines[-1])
    if not _has_all(directory):
        raise ControlPlaneError(f"{BUILD_SCRIPT} printed {directory}, which lacks some of {BINARIES}")
    return directory


def resolve_binaries(build: bool = True) -> Path:
    """Return the bin dir, building it with build.sh when missing and `build` is true."""
    found = find_binaries()
    if found is not None:
        return found
    if not build:
        raise ControlPlaneError(f"control-plane binaries not found in {cache_dir()}; run tests/controlplane/build.sh")
    return build_binaries()
