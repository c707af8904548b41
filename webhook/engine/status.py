"""The `meshswitch.io/status` record read back: what an earlier injection added, so that a second
one skips it and `uninject` removes exactly it.

Anyone who may create a pod may write this annotation. A record of the wrong shape is not ours: it
is treated as absent (and the caller warns), never trusted field by field, because `build_patch`
extends it and `uninject` writes its saved values back into the pod.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from webhook.engine.settings import nesting_problem, show

STATUS_KEY = "meshswitch.io/status"

_LISTS = ("plugins", "initContainers", "containers", "volumes", "labels", "annotations", "created")
_SECTIONS = ("initContainers", "containers")


def _strings(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(i, str) for i in items)


def _names_record(record: Any) -> bool:
    """`{"names": [...], "created": bool}`: items a plugin appended to one list of a container."""
    return (
        isinstance(record, dict)
        and _strings(record.get("names", []))
        and isinstance(record.get("created", False), bool)
    )


def _place(record: Any) -> bool:
    """`{"section", "index"}`: where one of the pod's own containers was (`moved`, Istio's enable-core-dump)."""
    if not isinstance(record, dict):
        return False
    index = record.get("index")
    return record.get("section") in _SECTIONS and isinstance(index, int) and not isinstance(index, bool) and index >= 0


def _declared(record: Any) -> bool:
    """A container the pod declared under one of our names, kept to be put back where it was."""
    return _place(record) and isinstance(record.get("container"), dict)


def _mapping_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and all(check(v) for v in value.values())


# Each optional mapping of the record, and what each of its values must be.
_MAPS: Mapping[str, Callable[[Any], bool]] = {
    "env": _mapping_of(_names_record),
    "appended": _mapping_of(_mapping_of(_names_record)),
    "probes": _mapping_of(_mapping_of(lambda saved: saved is None or isinstance(saved, dict))),
    "declared": _mapping_of(_declared),
    "moved": _mapping_of(_place),
    "replaced": _mapping_of(lambda original: isinstance(original, str)),
    "replacedLabels": _mapping_of(lambda original: isinstance(original, str)),
    "digest": _mapping_of(lambda digest: isinstance(digest, str)),
}


def read_status(annotations: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parsed `meshswitch.io/status`: {} when absent, None when present but not a record we wrote."""
    raw = annotations.get(STATUS_KEY)
    if raw is None:
        return {}
    try:
        status = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(status, dict) or nesting_problem(status) is not None:
        return None
    if not all(_strings(status.get(name, [])) for name in _LISTS):
        return None
    if not all(check(status.get(name, {})) for name, check in _MAPS.items()):
        return None
    return status


def malformed_status_warning(annotations: Mapping[str, Any]) -> str | None:
    """The warning for a `meshswitch.io/status` that is not ours, or None."""
    if read_status(annotations) is not None:
        return None
    return f"annotation {STATUS_KEY}={show(annotations.get(STATUS_KEY, ''))} is not a status record meshswitch wrote; it is treated as absent"


def injected_plugins(annotations: Mapping[str, Any]) -> frozenset[str]:
    """Plugins that `meshswitch.io/status` records as already injected (none when it is malformed)."""
    status = read_status(annotations)
    return frozenset(status.get("plugins", ())) if status else frozenset()
