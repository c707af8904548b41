"""The `meshswitch.io/status` record read back: what an earlier injection added, so that a second
one skips it and `uninject` removes exactly it.

Anyone who may create a pod may write this annotation. A record of the wrong shape is not ours: it
is treated as absent (and the caller warns), never trusted field by field, because `build_patch`
extends it and `uninject` writes its saved values back into the pod.

The record is written by `status_text` only in a form `read_status` reads back, and within the
API server's bound on a pod's annotations: where the pod's originals would not fit, they are left
out and the record says so (`omitted`), so that `uninject` refuses rather than restores wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from webhook.engine import reasons
from webhook.engine.errors import PodDenied
from webhook.engine.settings import MAX_NESTING, MAX_VALUES, nesting_problem, show

STATUS_KEY = "meshswitch.io/status"
# The API server's bound on a pod's annotations, keys plus values in UTF-8 bytes (apimachinery's
# TotalAnnotationSizeLimitB): past it the pod is refused with "metadata.annotations: Too long".
ANNOTATIONS_LIMIT = 262_144
# The parts of the record that keep the pod's own values, or name the items added to each app
# container, for `uninject` alone; they grow with the pod, and are what `omitted` lists.
RESTORE_SECTIONS = ("probes", "declared", "moved", "replaced", "replacedLabels", "replacedImagePullSecrets", "env", "appended")

_LISTS = ("plugins", "initContainers", "containers", "volumes", "imagePullSecrets", "labels", "annotations", "created", "omitted")
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
    pull_secrets = status.get("replacedImagePullSecrets", [])
    if not isinstance(pull_secrets, list) or not all(isinstance(s, dict) for s in pull_secrets):
        return None
    return status


def malformed_status_warning(annotations: Mapping[str, Any], then: str = "it is treated as absent") -> str | None:
    """The warning for a `meshswitch.io/status` that is not ours (saying what follows), or None."""
    if read_status(annotations) is not None:
        return None
    return f"annotation {STATUS_KEY}={show(annotations.get(STATUS_KEY, ''))} is not a status record meshswitch wrote; {then}"


def annotation_bytes(annotations: Mapping[str, str]) -> int:
    """The size of `metadata.annotations` as the API server measures it: UTF-8 bytes of keys and values."""
    text = "".join(annotations) + "".join(annotations.values())
    return len(text) if text.isascii() else len(text.encode())


def _readable(raw: bytes, status: Mapping[str, Any]) -> bool:
    """Whether `read_status` takes the record back. Each value takes at least one character and
    each level of nesting an opening bracket, so a short, flat text needs no walk (the common pod)."""
    if len(raw) <= MAX_VALUES and raw.count(b"{") + raw.count(b"[") < MAX_NESTING:
        return True
    return nesting_problem(status) is None


def status_text(status: dict[str, Any], *, others: int) -> str:
    """The record as the annotation's value, where the pod's other annotations (after the patch)
    take `others` bytes. When the whole record would pass the API server's bound, or be more than
    `read_status` reads, the restore sections are left out and listed in `omitted` (as they stay
    once left out); raises PodDenied when even the record of what was injected does not fit."""
    room = ANNOTATIONS_LIMIT - others - len(STATUS_KEY)
    raw = orjson.dumps(status)
    if len(raw) <= room and not status.get("omitted") and _readable(raw, status):
        return raw.decode()
    left_out = [name for name in RESTORE_SECTIONS if status.pop(name, None)]
    status["omitted"] = [name for name in RESTORE_SECTIONS if name in left_out or name in status.get("omitted", ())]
    raw = orjson.dumps(status)
    if len(raw) > room or not _readable(raw, status):
        raise PodDenied(
            reasons.INVALID_POD,
            f"the pod's annotations would total {others + len(STATUS_KEY) + len(raw)} bytes with {STATUS_KEY} "
            f"({len(raw)} bytes, the record of what was injected), over the API server's limit of {ANNOTATIONS_LIMIT}; "
            f"accepted: annotations that leave {len(STATUS_KEY) + len(raw)} bytes for it",
        )
    return raw.decode()


def omitted_warning(status: Mapping[str, Any]) -> str:
    """Why `uninject` leaves a pod whose record left the originals out as it is."""
    left_out = ", ".join(str(name) for name in status.get("omitted") or ())
    return (
        f"{STATUS_KEY} left out {left_out} to keep the pod's annotations within the API server's "
        f"{ANNOTATIONS_LIMIT} bytes, so uninject cannot restore the pod exactly; it is left as it is"
    )
