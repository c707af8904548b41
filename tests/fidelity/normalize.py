"""True equalities only: what the API server would store the same either way.

- API defaults the server fills in (a port's protocol TCP, a probe's timeouts, an HTTP probe's
  scheme), filled on both sides;
- quantity spellings (`0.1` and `100m`, `1Gi` and `1024Mi`), compared by value;
- an empty map, list or string and an absent key (the API omits empty fields);
- `false` and an absent key for the pod spec's plain booleans (`hostNetwork`, `hostPID`, `hostIPC`:
  Go `bool` fields with `omitempty`, so the API stores no `false`, and Istio's typed rendering drops it).

Nothing else: a difference in any value, name or order that the API keeps is a difference.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip

PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# PodSpec fields that are a plain Go bool (not *bool) with omitempty: false is never stored.
PLAIN_BOOLS = ("hostNetwork", "hostPID", "hostIPC")


def quantity(value: Any) -> Any:
    """A quantity's value as a Decimal, or the value unchanged when it is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return value
    text = value.strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number = text[: -len(suffix)]
            break
    else:
        suffix, number = "", text
    try:
        return (Decimal(number) * _SUFFIXES[suffix]).normalize()
    except ArithmeticError:
        return value


def _probe(probe: dict[str, Any]) -> dict[str, Any]:
    probe = {**PROBE_DEFAULTS, **probe}
    if "httpGet" in probe:
        probe["httpGet"] = {"scheme": "HTTP", "path": "/", **probe["httpGet"]}
    if "grpc" in probe:
        probe["grpc"] = {"service": "", **probe["grpc"]}
    return probe


def _container(container: dict[str, Any]) -> dict[str, Any]:
    container = dict(container)
    if container.get("ports"):
        container["ports"] = [{"protocol": "TCP", **port} for port in container["ports"]]
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(kind), dict):
            container[kind] = _probe(container[kind])
    resources = container.get("resources")
    if isinstance(resources, dict):
        container["resources"] = {
            part: {name: quantity(v) for name, v in (values or {}).items()} for part, values in resources.items() if values
        }
    for env in container.get("env") or []:
        if isinstance(env.get("valueFrom"), dict) and "resourceFieldRef" in env["valueFrom"]:
            ref = dict(env["valueFrom"]["resourceFieldRef"])
            ref["divisor"] = quantity(ref.get("divisor", "1"))
            env["valueFrom"] = {**env["valueFrom"], "resourceFieldRef": ref}
    return container


def _spec(spec: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in spec.items() if not (k in PLAIN_BOOLS and v is False)}
    for key in CONTAINER_LISTS:
        if isinstance(spec.get(key), list):
            spec[key] = [_container(c) for c in spec[key]]
    for volume in spec.get("volumes") or []:
        if isinstance(volume.get("emptyDir"), dict) and "sizeLimit" in volume["emptyDir"]:
            volume["emptyDir"] = {**volume["emptyDir"], "sizeLimit": quantity(volume["emptyDir"]["sizeLimit"])}
    return spec


def prune(value: Any) -> Any:
    """Drop empty maps, lists, strings and nulls, recursively (the API omits them)."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ({}, [], None, "")}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def pod(template: dict[str, Any]) -> dict[str, Any]:
    """A pod (or pod template) in the form both sides are compared in."""
    normal = {**template}
    if isinstance(normal.get("spec"), dict):
        normal["spec"] = _spec(normal["spec"])
    return prune(normal)  # type: ignore[no-any-return]
