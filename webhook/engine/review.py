"""AdmissionReview on the wire: parse a request body, build the response (pure: stdlib and orjson)."""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import orjson

from webhook.engine.errors import BadRequest

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")

# Reason codes of the reviews the server answers without asking the engine.
NOT_POD_CREATE = "not-pod-create"


class GroupVersionKind(TypedDict, total=False):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict, total=False):
    group: str
    version: str
    resource: str


class AdmissionRequest(TypedDict, total=False):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: str
    userInfo: dict[str, Any]
    object: dict[str, Any] | None
    oldObject: dict[str, Any] | None
    dryRun: bool
    options: dict[str, Any] | None


class Status(TypedDict, total=False):
    """The metav1.Status carried in a refusal; the apiserver shows ``message`` to the user."""

    status: Literal["Success", "Failure"]
    code: int
    reason: str
    message: str


class AdmissionResponse(TypedDict, total=False):
    uid: str
    allowed: bool
    patchType: Literal["JSONPatch"]
    patch: str
    status: Status
    warnings: list[str]


class AdmissionReview(TypedDict, total=False):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest
    response: AdmissionResponse


@dataclass(frozen=True, slots=True)
class Review:
    """The few facts of an AdmissionReview that the webhook acts on; ``pod`` is the raw object."""

    api_version: str
    uid: str
    operation: str
    namespace: str
    kind: str
    group: str
    sub_resource: str
    pod: dict[str, Any] | None
    dry_run: bool

    @property
    def is_pod_create(self) -> bool:
        return self.pod is not None

    @property
    def pod_name(self) -> str:
        """The pod's name, or its generateName (controllers' pods have no name yet)."""
        if self.pod is None:
            return ""
        metadata = self.pod.get("metadata") or {}
        return str(metadata.get("name") or metadata.get("generateName") or "")


def parse(body: bytes) -> Review:
    """Read an AdmissionReview; raise BadRequest naming what is wrong with it.

    Only the fields the webhook reads are checked: the Pod itself is left as decoded dicts.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"body must be a JSON object (an AdmissionReview), got {_json_type(document)}")
    kind = document.get("kind")
    if kind != "AdmissionReview":
        raise BadRequest(f"kind must be AdmissionReview, got {_show(kind)}")
    api_version = document.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise BadRequest(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {_show(api_version)}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise BadRequest("request must be an object (an AdmissionReview sent to a webhook has one)")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadRequest(f"request.uid must be a non-empty string, got {_show(uid)}")
    operation = request.get("operation")
    if not isinstance(operation, str):
        raise BadRequest(f"request.operation must be a string, got {_show(operation)}")
    gvk = request.get("kind")
    if not isinstance(gvk, dict) or not isinstance(gvk.get("kind"), str):
        raise BadRequest("request.kind must be an object with group, version and kind")
    group = gvk.get("group", "")
    if not isinstance(group, str):
        raise BadRequest(f"request.kind.group must be a string, got {_show(group)}")
    sub_resource = request.get("subResource", "")
    if not isinstance(sub_resource, str):
        raise BadRequest(f"request.subResource must be a string, got {_show(sub_resource)}")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise BadRequest(f"request.dryRun must be a boolean, got {_show(dry_run)}")
    namespace = request.get("namespace", "")
    if not isinstance(namespace, str):
        raise BadRequest(f"request.namespace must be a string, got {_show(namespace)}")

    pod: dict[str, Any] | None = None
    if operation == "CREATE" and gvk["kind"] == "Pod" and group == "" and not sub_resource:
        pod = _check_pod(request.get("object"))
        if not namespace:
            namespace = pod["metadata"].get("namespace") or ""
            if not isinstance(namespace, str) or not namespace:
                raise BadRequest("request.namespace is missing: the pod's namespace must be named")
    return Review(
        api_version=api_version,
        uid=uid,
        operation=operation,
        namespace=namespace,
        kind=gvk["kind"],
        group=group,
        sub_resource=sub_resource,
        pod=pod,
        dry_run=dry_run,
    )


def _check_pod(obj: Any) -> dict[str, Any]:
    """Check the types of the parts of a Pod the engine walks, so that it never meets a surprise."""
    if _well_typed(obj):
        # The engine never reads managedFields; dropping them keeps the largest part of a pod out
        # of anything that walks it.
        obj["metadata"].pop("managedFields", None)
        return obj  # type: ignore[no-any-return]
    return _check_pod_naming(obj)


def _well_typed(obj: Any) -> bool:
    """The checks of `_check_pod_naming` in one pass that builds no message: a pod from an API
    server always passes. False sends the pod to `_check_pod_naming`, which says what is wrong.
    Exact types: decoded JSON has no subclasses (one that did would merely take the slow path)."""
    if type(obj) is not dict or obj.get("kind", "Pod") != "Pod":
        return False
    metadata = obj.get("metadata")
    if type(metadata) is not dict:
        return False
    for field in ("name", "generateName", "namespace"):
        value = metadata.get(field)
        if value is not None and type(value) is not str:
            return False
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is not None and (type(value) is not dict or not set(map(type, value.values())) <= _STR_ONLY):
            return False
    value = metadata.get("ownerReferences")
    if value is not None and (type(value) is not list or list(map(type, value)).count(dict) != len(value)):
        return False
    spec = obj.get("spec")
    if type(spec) is not dict or type(spec.get("containers")) is not list:
        return False
    for field in ("containers", "initContainers", "volumes", "ephemeralContainers"):
        items = spec.get(field)
        if items is None:
            continue
        if type(items) is not list or list(map(type, items)).count(dict) != len(items):
            return False
        for item in items:
            name = item.get("name")
            if name is not None and type(name) is not str:
                return False
            if field == "volumes":
                continue
            for key in _CONTAINER_LISTS:
                value = item.get(key)
                # All dicts, counted at C speed (faster than a set of the types for a long env list).
                if value is not None and (type(value) is not list or list(map(type, value)).count(dict) != len(value)):
                    return False
            for key in _CONTAINER_OBJECTS:
                value = item.get(key)
                if value is not None and type(value) is not dict:
                    return False
    return True


def _check_pod_naming(obj: Any) -> dict[str, Any]:
    """As `_well_typed`, raising BadRequest that names the first field of the wrong type."""
    if not isinstance(obj, dict):
        raise BadRequest(f"request.object must be a Pod object, got {_json_type(obj)}")
    if obj.get("kind", "Pod") != "Pod":
        raise BadRequest(f"request.object.kind must be Pod, got {_show(obj.get('kind'))}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise BadRequest(f"request.object.metadata must be an object, got {_json_type(metadata)}")
    # The engine never reads managedFields; dropping them keeps the largest part of a pod out of
    # anything that walks it.
    metadata.pop("managedFields", None)
    for field in ("name", "generateName", "namespace"):
        value = metadata.get(field)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"request.object.metadata.{field} must be a string, got {_json_type(value)}")
    for field in ("labels", "annotations"):
        _check_string_map(metadata.get(field), f"request.object.metadata.{field}")
    _check_objects(metadata.get("ownerReferences"), "request.object.metadata.ownerReferences")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise BadRequest(f"request.object.spec must be an object, got {_json_type(spec)}")
    containers = spec.get("containers")
    if not isinstance(containers, list):
        raise BadRequest(f"request.object.spec.containers must be a list, got {_json_type(containers)}")
    for field in ("containers", "initContainers", "volumes", "ephemeralContainers"):
        items = spec.get(field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise BadRequest(f"request.object.spec.{field} must be a list, got {_json_type(items)}")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest(
                    f"request.object.spec.{field}[{index}] must be an object, got {_json_type(item)}"
                )
            # Admission runs before validation, so a missing name is possible; a wrong type is not.
            name = item.get("name")
            if name is not None and not isinstance(name, str):
                raise BadRequest(
                    f"request.object.spec.{field}[{index}].name must be a string, got {_json_type(name)}"
                )
            if field != "volumes":
                _check_container(item, f"request.object.spec.{field}[{index}]")
    return obj


# Fields of a container the templates and hooks walk: a list of objects, or an object.
_CONTAINER_LISTS = ("ports", "env", "volumeMounts")
_CONTAINER_OBJECTS = ("livenessProbe", "readinessProbe", "startupProbe", "securityContext", "resources")


def _check_container(container: dict[str, Any], where: str) -> None:
    """Wrong JSON types here never come from an API server (it decodes into typed structs)."""
    for field in _CONTAINER_LISTS:
        _check_objects(container.get(field), f"{where}.{field}")
    for field in _CONTAINER_OBJECTS:
        value = container.get(field)
        if value is not None and not isinstance(value, dict):
            raise BadRequest(f"{where}.{field} must be an object, got {_json_type(value)}")


_DICT_ONLY = frozenset({dict})
_STR_ONLY = frozenset({str})


def _check_objects(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise BadRequest(f"{where} must be a list, got {_json_type(value)}")
    if set(map(type, value)) <= _DICT_ONLY:  # decoded JSON has no dict subclasses; a C-speed pass
        return
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BadRequest(f"{where}[{index}] must be an object, got {_json_type(item)}")


def _check_string_map(value: Any, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object of strings, got {_json_type(value)}")
    if set(map(type, value.values())) <= _STR_ONLY:
        return
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadRequest(f"{where}[{_show(key)}] must be a string, got {_json_type(item)}")


def allow(
    review: Review,
    *,
    patch: Sequence[Mapping[str, Any]] = (),
    warnings: Sequence[str] = (),
) -> AdmissionReview:
    """Admit the object, applying ``patch`` (RFC 6902 ops) when there is one."""
    response: AdmissionResponse = {"uid": review.uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        ops = patch if isinstance(patch, (list, tuple)) else list(patch)  # orjson takes both as they are
        response["patch"] = binascii.b2a_base64(orjson.dumps(ops), newline=False).decode("ascii")  # b64encode, one call less
    if warnings:
        response["warnings"] = list(warnings)
    return {"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response}


def deny(
    review: Review,
    *,
    message: str,
    code: int = 400,
    reason: str = "BadRequest",
    warnings: Sequence[str] = (),
) -> AdmissionReview:
    """Refuse the object; the apiserver shows ``message`` to whoever created it.

    Refusals use 400 by default, as Istio's injector does: they are about the pod's own settings.
    """
    response: AdmissionResponse = {
        "uid": review.uid,
        "allowed": False,
        "status": {"status": "Failure", "code": code, "reason": reason, "message": message},
    }
    if warnings:
        response["warnings"] = list(warnings)
    return {"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response}


def encode(review: AdmissionReview) -> bytes:
    return orjson.dumps(review)


def error_body(status: int, message: str) -> bytes:
    """The JSON of an HTTP error, shaped as a Kubernetes Status so kubectl-minded tools read it."""
    reasons = {
        400: "BadRequest",
        404: "NotFound",
        405: "MethodNotAllowed",
        408: "Timeout",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
    }
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": status,
            "reason": reasons.get(status, "BadRequest"),
            "message": message,
        }
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: Any) -> str:
    """A short rendering of a client's value for an error message (never the whole of it)."""
    if isinstance(value, str):
        return repr(value[:64] + ("..." if len(value) > 64 else ""))
    if value is None:
        return "nothing"
    return _json_type(value)
