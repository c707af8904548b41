"""YAML out through libyaml: `dump_yaml` (events straight into libyaml's emitter) writes what the
pure-Python SafeDumper writes, byte for byte, for every corpus file, its injected form, and odd scalars."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.corpora import corpora
from webhook.cli.documents import KubeLoader, OutputResolver, dump_yaml, read_documents
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
    """The pure-Python dumper with the CLI's three choices: no anchors, literal blocks for multi-line
    strings, and strings kubectl would read as something else (`y`, `1e3`) quoted."""

    yaml_implicit_resolvers = OutputResolver.yaml_implicit_resolvers

    def ignore_aliases(self, data: Any) -> bool:
        return True


class PureKubeLoader(yaml.SafeLoader):
    """The pure-Python loader with the CLI's resolvers: what libyaml must load the same as."""

    yaml_implicit_resolvers = KubeLoader.yaml_implicit_resolvers
    bool_values = KubeLoader.bool_values


Reference.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def reference(bodies: list[Any]) -> str:
    return yaml.dump_all(bodies, Dumper=Reference, sort_keys=False, default_flow_style=False).replace("\n...\n", "\n")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_loaded_and_dumped_as_pure_python_would(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bodies = [d.body for d in read_documents([str(path)])]
    assert bodies == [d for d in yaml.load_all(path.read_text(), Loader=PureKubeLoader) if d is not None]
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


# Plain scalars kubectl (sigs.k8s.io/yaml, go-yaml v2) reads as strings though YAML 1.1 does not,
# and those it reads as numbers or booleans, each with what it becomes.
KUBECTL_SCALARS: list[tuple[str, Any]] = [
    ("12:30", "12:30"), ("1:1", "1:1"), ("1:20.5", "1:20.5"), ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
    ("2024-05-01", "2024-05-01"), ("=", "="), ("0x1F", 31), ("010", 8), ("0b11", 3), ("1_000", 1000), ("yes", True),
    ("off", False), ("y", True), ("N", False), ("1e3", 1000.0), (".5", 0.5), ("08", 8.0), ("1.5", 1.5), ("e3", "e3"),
    ("~", None), (".", "."), ("-1", -1),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value"), KUBECTL_SCALARS, ids=[t for t, _ in KUBECTL_SCALARS])
def test_plain_scalars_load_as_kubectl_reads_them_and_strings_dump_quoted(text: str, value: Any, tmp_path: Path) -> None:
    path = tmp_path / "scalar.yaml"
    path.write_text(f"k: {text}\n")
    loaded = read_documents([str(path)])[0].body["k"]
    assert loaded == value and type(loaded) is type(value)
    assert yaml.load(f"k: {text}", Loader=PureKubeLoader)["k"] == value
    written = dump_yaml([{"k": text}])  # the same text as a string must read back as that string
    assert yaml.load(written, Loader=KubeLoader) == {"k": text} == yaml.load(written, Loader=yaml.SafeLoader)


def test_inject_keeps_time_like_annotations_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {at: 12:30, ratio: 1:1, when: 2024-05-01T10:00:00Z, eq: =}
spec:
  containers: [{name: app, image: nginx}]
"""
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    assert main(["inject", "-q", "-f", str(path), "--mode", "istio"]) == 0
    out = capsys.readouterr().out
    annotations = yaml.load(out, Loader=KubeLoader)["metadata"]["annotations"]
    assert {k: annotations[k] for k in ("at", "ratio", "when", "eq")} == {"at": "12:30", "ratio": "1:1", "when": "2024-05-01T10:00:00Z", "eq": "="}
    assert yaml.safe_load(out)["metadata"]["annotations"]["at"] == "12:30"  # quoted: any YAML reader agrees


BOMB = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"  {name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n" for prev, name in zip("abc", "bcd", strict=True)
)  # 10^4 scalars from 4 lines; through g (3 more lines) 10^7, which took 20 s and 600 MB


def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("kind: ConfigMap\n---\n" + BOMB)
    assert main(["inject", "-f", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"{path}: document 2: excessive aliasing: its aliases expand to over " in err


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: [*a]}\n"])
def test_recursive_alias_is_refused(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(text)
    assert main(["uninject", "-f", str(path)]) == 1
    assert f"{path}: document 1: an alias refers to a node that contains it" in capsys.readouterr().err


def test_anchors_reused_as_kubernetes_files_reuse_them_still_load(tmp_path: Path) -> None:
    env = "".join(f"  - {{name: V{i}, value: '{i}'}}\n" for i in range(50))
    uses = "".join(f"- {{name: c{i}, image: nginx, env: *env}}\n" for i in range(60))  # 60 x 101 nodes, 98% copies
    path = tmp_path / "anchors.yaml"
    path.write_text(f"env: &env\n{env}containers:\n{uses}")
    body = read_documents([str(path)])[0].body
    assert len(body["containers"]) == 60 and body["containers"][59]["env"][49] == {"name": "V49", "value": "49"}
    assert body["containers"][0]["env"] is not body["containers"][1]["env"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!binary aGVsbG8=", "document 2: -o json: data.x: a !!binary value has no JSON form"),
        ("!!set {a, b}", "document 2: -o json: data.x: a !!set has no JSON form"),
        ("[1, .inf]", "document 2: -o json: data.x[1]: inf has no JSON form"),
        ("{v: .nan}", "document 2: -o json: data.x.v: nan has no JSON form"),
    ],
)
def test_json_output_names_the_field_json_cannot_hold(value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(f"kind: ConfigMap\n---\nkind: ConfigMap\ndata:\n  x: {value}\n")
    assert main(["inject", "-q", "-o", "json", "-f", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"meshswitch inject: {path}: {message}" in err


def test_json_output_writes_integers_past_64_bits_and_timestamps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("kind: ConfigMap\ndata: {big: 123456789012345678901234567890, at: !!timestamp 2024-05-01T10:00:00Z, none: null}\n")
    assert main(["uninject", "-q", "-o", "json", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"big": 123456789012345678901234567890' in out
    assert json.loads(out)["data"] == {"big": 123456789012345678901234567890, "at": "2024-05-01T10:00:00+00:00", "none": None}
