"""Hypothesis strategies for Pods drawn from the Kubernetes 1.36 JSON schema kubernetes-validate ships.

The generator walks the strict schema (``v1.36.0-local-strict``): every required property, and a
few optional ones per object, to a bounded depth. It never writes ``null``: the API server decodes
a pod into Go structs and encodes it again before it calls a webhook, so a null never reaches us.
Strings are short; ports and names mix valid and odd values, because the webhook walks those.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from hypothesis import strategies as st
from referencing import Registry, Resource

SCHEMA_DIR = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.36.0-local-strict"
MAX_DEPTH = 6
MAX_OPTIONAL = 4

# Fields the webhook reads get more attention than their share of the schema would give them.
FAVOURED = {
    "io.k8s.api.core.v1.PodSpec": ("initContainers", "hostNetwork", "volumes", "serviceAccountName"),
    "io.k8s.api.core.v1.Container": ("ports", "livenessProbe", "readinessProbe", "startupProbe", "env", "restartPolicy"),
    "io.k8s.api.core.v1.Probe": ("httpGet", "tcpSocket", "grpc", "exec", "timeoutSeconds"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": ("labels", "annotations", "ownerReferences", "generateName"),
}

_NAME = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_TEXT = st.one_of(_NAME, st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12))
_PORT_NAMES = st.sampled_from(["http", "grpc", "admin", "metrics", "http-web"])


@functools.cache
def _documents() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = json.loads((SCHEMA_DIR / "pod-v1.json").read_text())
    definitions = json.loads((SCHEMA_DIR / "_definitions.json").read_text())
    return pod, definitions


@functools.cache
def pod_validator() -> jsonschema.Draft202012Validator:
    """The strict 1.36 Pod validator, built the way kubernetes_validate.validate builds it, once."""
    pod, definitions = _documents()
    registry: Registry[Any] = Resource.from_contents(pod) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(pod, registry=registry)


def _definition(ref: str) -> tuple[str, Mapping[str, Any]]:
    name = ref.rsplit("/", 1)[-1]
    return name, _documents()[1]["$defs"][name]


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type", [])
    declared = [declared] if isinstance(declared, str) else declared
    return [t for t in declared if t != "null"]


def value_for(schema: Mapping[str, Any], depth: int, name: str = "") -> st.SearchStrategy[Any]:
    """A strategy for one schema node."""
    if "$ref" in schema:
        definition, target = _definition(schema["$ref"])
        return object_of(definition, depth)
    if "oneOf" in schema or "anyOf" in schema:
        branches = [b for b in schema.get("oneOf", schema.get("anyOf")) if _types(b) or "$ref" in b]
        if name == "port" or any(_types(b) == ["integer"] for b in branches) and len(branches) == 2:
            return st.one_of(st.integers(1, 65535), _PORT_NAMES, st.integers(-5, 70000), _NAME)
        return st.one_of([value_for(b, depth, name) for b in branches])
    if "enum" in schema:
        return st.sampled_from([v for v in schema["enum"] if v is not None])
    types = _types(schema)
    if not types:
        return st.just({})  # free-form JSON (RawExtension): the smallest value
    kind = types[0]
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.just("2026-11-20T10:00:00Z")
        if schema.get("format") == "byte":
            return st.just("bWVzaHN3aXRjaA==")
        return _TEXT if name not in ("name", "image") else _NAME
    if kind == "integer":
        if name in ("containerPort", "hostPort"):
            return st.one_of(st.integers(1, 65535), st.integers(-3, 70000))
        bits = 63 if schema.get("format") == "int64" else 31
        return st.one_of(st.integers(0, 100), st.integers(-(2**bits), 2**bits - 1))
    if kind == "number":
        return st.floats(0, 100, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = value_for(schema.get("items", {}), depth + 1, name)
        most = 0 if depth >= MAX_DEPTH else 2 if depth > 2 else 3
        if name == "containers":
            # One pod in ten may have none (refused, naming spec.containers); the rest are worth injecting.
            return st.integers(0, 9).flatmap(lambda n: st.lists(items, min_size=1 if n else 0, max_size=3))
        return st.lists(items, max_size=most)
    if kind == "object":
        if "properties" in schema:
            return _properties(schema, depth, "")
        extra = schema.get("additionalProperties")
        values = value_for(extra, depth + 1) if isinstance(extra, Mapping) else _TEXT
        return st.dictionaries(_NAME, values, max_size=0 if depth >= MAX_DEPTH else 2)
    raise AssertionError(f"schema type {kind} is not handled")


@functools.cache
def object_of(definition: str, depth: int) -> st.SearchStrategy[Any]:
    _, schema = _definition("#/$defs/" + definition)
    if "properties" not in schema:
        if definition.endswith("resource.Quantity"):
            return st.sampled_from(["100m", "1", "128Mi", "2Gi", "0"])
        return value_for(schema, depth)
    return st.deferred(lambda: _properties(schema, depth, definition))


def _properties(schema: Mapping[str, Any], depth: int, definition: str) -> st.SearchStrategy[dict[str, Any]]:
    properties: Mapping[str, Any] = schema["properties"]
    required = [p for p in schema.get("required", ()) if p in properties]
    optional = sorted(p for p in properties if p not in required and p not in ("status", "managedFields"))
    favoured = [p for p in FAVOURED.get(definition, ()) if p in optional]
    budget = 0 if depth >= MAX_DEPTH else MAX_OPTIONAL if depth < 4 else 1

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen = list(required)
        if budget:
            chosen += draw(st.lists(st.sampled_from(favoured), max_size=len(favoured), unique=True)) if favoured else []
            chosen += draw(st.lists(st.sampled_from(optional), max_size=budget, unique=True)) if optional else []
        result: dict[str, Any] = {}
        for name in dict.fromkeys(chosen):
            result[name] = draw(value_for(properties[name], depth + 1, name))
        return result

    return build()


def pods(annotations: st.SearchStrategy[dict[str, str]]) -> st.SearchStrategy[dict[str, Any]]:
    """Pods in namespace ``demo`` whose annotations include a draw of ``annotations``."""
    metadata = object_of("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", 1)
    spec = object_of("io.k8s.api.core.v1.PodSpec", 1)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        meta = draw(metadata)
        meta.pop("managedFields", None)
        meta["namespace"] = "demo"
        meta["annotations"] = {**(meta.get("annotations") or {}), **draw(annotations)}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": draw(spec)}

    return build()
