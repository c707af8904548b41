"""YAML out through libyaml: `dump_yaml` (events straight into libyaml's emitter) writes what the
pure-Python SafeDumper writes, byte for byte, for every corpus file, its injected form, and odd scalars."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpora import corpora
from webhook.cli.documents import dump_yaml, read_documents
from webhook.cli.main import main

FILES = [path for corpus in corpora() for path in corpus.files()]
ODD: list[Any] = [
    {"float": 1.5, "date": dt.date(2024, 1, 1), "multi": "x\ny", "bool-like": "true", "octal-like": "010", "none": None,
     "empty-list": [], "empty-map": {}, "empty": "", "dash": "- x", "colon": "a: b", "lead": "  lead", "unicode": "ünï",
     "negative": -3, "exp": "1e3", "tilde": "~", "null": "null", "yes": "yes", "hex": "0x1F", "long": "x" * 200,
     "hash": "a #b", "trailing": "tail\n", "int-key": {1: "one"}, "nested": [[1, [2]], {"a": [{}]}]},
    "a scalar document",
    [1, 2],
]  # fmt: skip


class Reference(yaml.SafeDumper):
    """The pure-Python dumper with the CLI's two choices: no anchors, literal blocks for multi-line strings."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


Reference.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def reference(bodies: list[Any]) -> str:
    return yaml.dump_all(bodies, Dumper=Reference, sort_keys=False, default_flow_style=False).replace("\n...\n", "\n")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_loaded_and_dumped_as_pure_python_would(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bodies = [d.body for d in read_documents([str(path)])]
    assert bodies == [d for d in yaml.load_all(path.read_text(), Loader=yaml.SafeLoader) if d is not None]
    assert dump_yaml(bodies) == reference(bodies)
    assert main(["inject", "-q", "-f", str(path), "--mode", "istio", "--namespace-annotations", "dapr.io/enabled=true"]) in (0, 1)
    injected = capsys.readouterr().out
    if injected:
        bodies = list(yaml.load_all(injected, Loader=yaml.SafeLoader))
        assert dump_yaml(bodies) == reference(bodies) == injected


def test_odd_scalars() -> None:
    assert dump_yaml(ODD) == reference(ODD)


def test_anchors_are_unshared_before_in_place_injection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: a}
  spec:
    template:
      spec:
        containers: &app [{name: app, image: nginx}]
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: b}
  spec:
    template:
      metadata: {annotations: {dapr.io/enabled: "true", dapr.io/app-id: anchored}}
      spec:
        containers: *app
"""
    path = tmp_path / "anchors.yaml"
    path.write_text(text)
    assert main(["inject", "-q", "-f", str(path)]) == 0
    a, b = yaml.safe_load(capsys.readouterr().out)["items"]
    assert "env" not in a["spec"]["template"]["spec"]["containers"][0], "b's Dapr env must not leak into a through the alias"
    assert [e["name"] for e in b["spec"]["template"]["spec"]["containers"][0]["env"]] == ["DAPR_HTTP_PORT", "DAPR_GRPC_PORT", "APP_PROTOCOL"]
