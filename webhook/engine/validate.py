"""POST /validate, the pure half: is a Namespace's governance label one the webhook can act on?

A `meshswitch.io/mode` value that is no installed mode, or keys that select two meshes at once,
would deny every pod created in the namespace, and the reason would surface only in a ReplicaSet's
events. Refusing the label write instead gives the same message, at the moment it is typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.engine import reasons
from webhook.engine.config import Config
from webhook.engine.decide import MODE_KEY, Decision, decide
from webhook.engine.errors import BadRequest, PodDenied
from webhook.engine.keys import unknown_keys
from webhook.engine.kube import NamespaceMeta
from webhook.engine.plugins import Plugin, PluginSet

# What the namespace's labels would do to the plainest pod: the decision pods there would get.
_PROBE_POD: Mapping[str, Any] = {"metadata": {"name": "meshswitch-validate"}, "spec": {"containers": [{"name": "app", "image": "app"}]}}
REFUSED = (reasons.UNKNOWN_MODE, reasons.CONFLICTING_MODES)
VALID = "valid-labels"  # the verdict's code (logs, metrics) when nothing is wrong


@dataclass(frozen=True)
class NamespaceVerdict:
    """Allowed or not; the message pods would get; warnings to show whoever wrote the namespace."""

    allowed: bool
    code: str
    message: str = ""
    warnings: tuple[str, ...] = ()


def _string_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def validate_namespace(
    namespace: Mapping[str, Any], *, plugins: PluginSet, config: Config, old: Mapping[str, Any] | None = None
) -> NamespaceVerdict:
    """Refuse a namespace whose labels would deny every pod (unknown mode, two meshes); warn on unknown keys.

    An update (``old`` given) that leaves such labels as they were is allowed, with the refusal as a
    warning: the namespace was labelled so before (while the webhook was down, or before a plugin
    was removed) and refusing every other edit to it (a PSA label, a GitOps annotation) would fix
    nothing. Only writing the offending labels is refused."""
    verdict = _judge(namespace, plugins, config)
    if verdict.allowed or old is None:
        return verdict
    before = _judge(old, plugins, config)
    if before.allowed or before.message != verdict.message:
        return verdict
    warning = f"pods here are refused, as before this update: {verdict.message}"
    return NamespaceVerdict(True, verdict.code, "", (*verdict.warnings, warning))


def namespace_keys_selecting(plugin: Plugin, labels: Mapping[str, str], annotations: Mapping[str, str]) -> list[str]:
    """The namespace keys among `plugin`'s on keys that match, as `key=value`."""
    found = []
    for match in plugin.on:
        if match.on_pod:
            continue
        if match.place == "namespace-label":
            value = labels.get(match.key)
        elif match.place == "namespace-annotation":
            value = annotations.get(match.key)
        else:
            value = labels.get(match.key, annotations.get(match.key))
        if value is not None and value.lower() in match.values:
            found.append(f"{match.key}={value}")
    return found


def mode_label_conflicts(labels: Mapping[str, str], annotations: Mapping[str, str], decision: Decision, plugins: PluginSet) -> list[str]:
    """Another mesh's own key beside `meshswitch.io/mode`: the mode wins here, but that mesh's own
    injector, if installed, would add its proxy too (`check` fails it, /validate warns)."""
    explicit = labels.get(MODE_KEY)
    if explicit is None:
        return []
    conflicts = []
    for plugin in plugins.meshes:
        keys = namespace_keys_selecting(plugin, labels, annotations)
        if keys and plugin.name != decision.mode:
            conflicts.append(
                f"{MODE_KEY}={explicit} conflicts with {', '.join(keys)} (which selects {plugin.name}): meshswitch injects "
                f"{decision.mode}, but {plugin.name}'s own injector, if installed, would add its proxy too; remove {', '.join(k.split('=')[0] for k in keys)}"
            )
    return conflicts


def _judge(namespace: Mapping[str, Any], plugins: PluginSet, config: Config) -> NamespaceVerdict:
    metadata = namespace.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    labels, annotations = _string_map(metadata.get("labels")), _string_map(metadata.get("annotations"))
    meta = NamespaceMeta(str(metadata.get("name") or ""), labels, annotations)
    warnings = unknown_keys(labels, plugins, where="namespace label") + unknown_keys(annotations, plugins, where="namespace annotation")
    try:
        decision = decide(_PROBE_POD, meta, plugins=plugins, config=config)
    except PodDenied as err:
        if err.code in REFUSED:
            return NamespaceVerdict(False, err.code, err.message, tuple(warnings))
        # A namespace-level setting that does not parse: pods that do not override it are refused.
        warnings.append(f"pods here that do not set their own value are refused: {err.message}")
        return NamespaceVerdict(True, err.code, "", tuple(warnings))
    # Pods are not refused for these, so neither is the write; whoever wrote it is told (check fails them).
    if MODE_KEY in labels and meta.name not in config.ignored_namespaces:
        warnings += mode_label_conflicts(labels, annotations, decision, plugins)
        if decision.reason.code == reasons.PLUGIN_DISABLED:
            warnings.append(f"{MODE_KEY}={labels[MODE_KEY]} selects {decision.mode}, but {decision.reason.message}: pods here get no mesh")
    return NamespaceVerdict(True, VALID, "", tuple(warnings))


def namespace_objects(body: bytes) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The Namespace an AdmissionReview carries (request.object) and, on an update, the one it
    replaces (request.oldObject); BadRequest when there is no Namespace."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    request = document.get("request") if isinstance(document, dict) else None
    request = request if isinstance(request, dict) else {}
    obj, old = request.get("object"), request.get("oldObject")
    if not isinstance(obj, dict):
        raise BadRequest("request.object must be a Namespace object")
    for field, value in (("object", obj), ("oldObject", old)):
        if isinstance(value, dict) and value.get("kind", "Namespace") != "Namespace":
            raise BadRequest(f"request.{field}.kind must be Namespace, got {str(value.get('kind'))[:64]!r}")
    if old is not None and not isinstance(old, dict):
        raise BadRequest("request.oldObject must be a Namespace object or null")
    return obj, old
