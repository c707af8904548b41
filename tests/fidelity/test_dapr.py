"""Dapr: every golden of every release line (tests/reference/dapr/golden/<V>/) against meshswitch.

meshswitch is configured as the reference injector was (meta.yaml: release, registry, trust
anchors, control-plane namespace, trust and cluster domain, classic sidecars as the chart's
`nativeSidecar: false`; an install folder's chart values as the dapr values a platform team sets
to the same effect, CHART_TO_PLUGIN), renders the same input, and must produce the same pod except for the
differences listed in intended/dapr.yaml. Where Dapr skipped a pod, meshswitch injects nothing;
where Dapr refused one, meshswitch denies it, naming the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import pytest

from tests.fidelity import harness, reference
from tests.fidelity.compare import Difference
from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.values import apply_values, check_values
from webhook.engine.workloads import TEMPLATE_PATHS

MESH = "dapr"
ENABLED_KEY = "dapr.io/enabled"
APP_ID_KEY = "dapr.io/app-id"


def _enable(obj: dict[str, Any]) -> dict[str, Any]:
    """meta.yaml's corpus_enabled_rule: enabled and app-id (the object's name) on every pod, if absent."""
    kind = str(obj.get("kind", ""))
    if kind.endswith("List") and isinstance(obj.get("items"), list):
        return {**obj, "items": [_enable(i) if isinstance(i, dict) else i for i in obj["items"]]}
    path = TEMPLATE_PATHS.get(kind)
    if path is None:
        return obj
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path:
        node = node.setdefault(key, {})
    metadata = out.get("metadata") or {}
    name = metadata.get("name") or str(metadata.get("generateName") or "").removesuffix("-")
    annotations = node.setdefault("metadata", {}).setdefault("annotations", {})
    annotations.setdefault(ENABLED_KEY, "true")
    annotations.setdefault(APP_ID_KEY, name)
    return out


def _given_for(folder: str, doc: dict[str, Any]) -> dict[str, Any]:
    return _enable(doc) if folder == "corpus-enabled" else doc


def _install_folders() -> tuple[str, ...]:
    """install/<name>: inputs rendered by an install with other chart values (meta.yaml `install`)."""
    names = {
        name
        for version in reference.versions(MESH)
        for name, entry in (reference.meta(MESH, version).get("install") or {}).items()
        if "install_error" not in entry
    }
    return tuple(f"install/{name}" for name in sorted(names))


CASES = list(reference.cases(MESH, folders=("corpus", "cases", "corpus-enabled", *_install_folders()), given_for=_given_for))
INTENDED = harness.Intended.load(MESH)


def plugin_values(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The dapr plugin's install values that reproduce the reference injector's settings."""
    injector = meta["injector"]
    return {
        "version": str(meta["release_tag"]).removeprefix("v"),
        "registry": meta["helm_chart_values"]["global.registry"],
        "controlPlaneNamespace": injector["control_plane_namespace"],
        "trustDomain": injector["control_plane_trust_domain"],
        "clusterDomain": injector["kube_cluster_domain"],
        "trustAnchors": meta["driver_fixed_values"]["trust_anchors_pem"],
    }


# Dapr chart values (umbrella layout, dotted) and the dapr plugin value a platform team sets to the
# same effect. meshswitch discovers only the release (the injector's image tag, global.tag); the
# injector's other settings live in its Deployment's env, which meshswitch does not read, so they
# are given as meshswitch values, one for one.
CHART_TO_PLUGIN = {
    "global.registry": "registry",
    "global.mtls.enabled": "mtlsEnabled",
    "global.mtls.controlPlaneTrustDomain": "trustDomain",
    "global.actors.enabled": "actorsEnabled",
    "global.actors.serviceName": "actorsServiceName",
    "global.reminders.serviceName": "remindersServiceName",
    "global.reminders.skipMigration": "skipReminderMigration",
    "global.scheduler.enabled": "schedulerEnabled",
    "dapr_sidecar_injector.image.name": "sidecarImageName",
    "dapr_sidecar_injector.sidecarImagePullPolicy": "imagePullPolicy",
    "dapr_sidecar_injector.sidecarRunAsNonRoot": "sidecarRunAsNonRoot",
    "dapr_sidecar_injector.sidecarRunAsUser": "sidecarRunAsUser",
    "dapr_sidecar_injector.sidecarRunAsGroup": "sidecarRunAsGroup",
    "dapr_sidecar_injector.sidecarReadOnlyRootFilesystem": "sidecarReadOnlyRootFilesystem",
    "dapr_sidecar_injector.sidecarDropALLCapabilities": "sidecarDropAllCapabilities",
    "dapr_sidecar_injector.enableK8sDownwardAPIs": "enableK8sDownwardAPIs",
    "dapr_sidecar_injector.kubeClusterDomain": "clusterDomain",
    "dapr_sidecar_injector.ignoreEntrypointTolerations": "ignoreEntrypointTolerations",
}
# Chart values that change nothing in the pod Dapr renders: who may create injected pods (not
# modelled, meta.yaml request_user), the control plane's own logs, replicas and Sentry client.
CHART_NO_POD_EFFECT = {
    "global.logAsJson", "global.ha.enabled", "global.mtls.sentryAddress", "global.mtls.mountSentryVolume",
    "dapr_sidecar_injector.allowedServiceAccounts", "dapr_sidecar_injector.allowedServiceAccountsPrefixNames",
}  # fmt: skip


def _leaves(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def install_values(entry: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The dapr plugin values and sidecar style for an install folder (meta.yaml install.<name>):
    each chart value set, as the platform team gives it to meshswitch."""
    values: dict[str, Any] = {}
    style = "classic"
    for path, value in _leaves(entry["values"]):
        if path in CHART_NO_POD_EFFECT:
            continue
        if path == "global.tag":
            values["version"] = str(value)  # discovered from the injector's image tag
        elif path == "dapr_sidecar_injector.nativeSidecar":
            # Only releases whose chart passes it on (1.18: NATIVE_SIDECAR_ENABLED) read it.
            native = entry["injector"]["release_specific"].get("native_sidecar_enabled", False)
            style = "native" if native else "classic"
        elif path == "dapr_sidecar_injector.kubeClusterDomain" and not value:
            # Empty: Dapr's injector detects the domain from its pod's DNS settings; meshswitch is told it.
            values["clusterDomain"] = entry["injector"]["kube_cluster_domain"]
        elif path == "dapr_sidecar_injector.ignoreEntrypointTolerations":
            # A JSON list in the chart; what Dapr parsed (none when it does not parse) as a list here.
            values["ignoreEntrypointTolerations"] = entry["injector"]["ignore_entrypoint_tolerations"] or []
        elif path in ("dapr_sidecar_injector.sidecarRunAsUser", "dapr_sidecar_injector.sidecarRunAsGroup"):
            values[CHART_TO_PLUGIN[path]] = int(value)
        elif path in CHART_TO_PLUGIN:
            values[CHART_TO_PLUGIN[path]] = value
        else:
            raise AssertionError(f"chart value {path} has no meshswitch value in CHART_TO_PLUGIN")
    return values, style


@cache
def injector_for(version: str, install: str | None = None) -> Injector:
    plugins = load_plugins()
    meta = reference.meta(MESH, version)
    values = plugin_values(meta)
    # The chart's default is `nativeSidecar: false`: daprd is an ordinary container.
    style = "classic"
    if install is not None:
        extra, style = install_values(meta["install"][install])
        values.update(extra)
    checked = check_values(plugins, {MESH: values}, source=f"{version}/meta.yaml")
    return Injector(plugins=apply_values(plugins, checked), config=Config(sidecar_style=style))


def case_injector(case: reference.GoldenCase) -> Injector:
    """install/<name>/ inputs were rendered by an install with other values."""
    folder, _, rest = case.source.partition("/")
    return injector_for(case.version, rest.split("/", 1)[0] if folder == "install" else None)


def _pairs(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(where, ours, theirs) per object whose pod is compared; a List per item."""
    if isinstance(theirs.get("items"), list) and str(theirs.get("kind", "")).endswith("List"):
        assert len(ours["items"]) == len(theirs["items"])
        for index, (mine, other) in enumerate(zip(ours["items"], theirs["items"], strict=True)):
            for where, a, b in _pairs(mine, other):
                yield f"items[{index}].{where}" if where else f"items[{index}]", a, b
    else:
        yield "", ours, theirs


def _differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[Difference]:
    found = []
    for where, a, b in _pairs(ours, theirs):
        for difference in harness.compare(a, b):
            path = f"{where}.{difference.path}" if where else difference.path
            found.append(Difference(path, difference.ours, difference.theirs))
    return found


def _is_refusal(reason: str) -> bool:
    text = reason.split(": ", 1)[1] if reason.startswith("items[") else reason
    return not text.startswith(("skipped by the webhook handler:", "no patch:"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_dapr_renders_as_dapr(case: reference.GoldenCase) -> None:
    rendering = harness.render(case, case_injector(case))
    if case.reason is not None and _is_refusal(case.reason):
        assert rendering.denied is not None, f"Dapr refused ({case.reason}); meshswitch did not"
        assert APP_ID_KEY in rendering.denied, rendering.denied  # the only key Dapr refuses for
        return
    if case.reason is not None:  # Dapr skipped: meshswitch injects nothing either
        assert rendering.denied is None, rendering.denied
        assert _differences(rendering.obj, case.given) == [], f"Dapr skipped ({case.reason}); meshswitch injected"
    else:
        assert rendering.denied is None or INTENDED.denial_listed(case), f"denied: {rendering.denied}"
    if rendering.denied is not None:
        return
    harness.assert_explained(INTENDED, case, _differences(rendering.obj, case.expected))


def test_every_intended_difference_is_used() -> None:
    for case in CASES:
        rendering = harness.render(case, case_injector(case))
        if case.reason is not None and _is_refusal(case.reason):
            continue
        if rendering.denied is not None:
            INTENDED.denial_listed(case)
            continue
        INTENDED.unexplained(case, _differences(rendering.obj, case.expected))
    unused = [e.id or e.path for i, e in enumerate(INTENDED.entries) if i not in INTENDED.used]
    assert INTENDED.entries, "intended/dapr.yaml is empty"
    assert not unused, f"intended differences that match nothing: {unused}"


def test_every_version_has_cases() -> None:
    versions = {c.version for c in CASES}
    assert versions == set(reference.versions(MESH)) and len(versions) >= 2, versions


def _keys_md() -> set[str]:
    """Every key of the table in tests/reference/dapr/KEYS.md (first column)."""
    import re

    text = (reference.REFERENCE / MESH / "KEYS.md").read_text()
    return set(re.findall(r"^\| `(dapr\.io/[a-z0-9-]+)`", text, flags=re.M))


def test_every_key_dapr_reads_is_a_key_of_the_plugin() -> None:
    plugin = load_plugins()[MESH]
    ours = {k for s in plugin.settings for k in s.keys} | {m.key for m in plugin.on}
    keys = _keys_md()
    assert len(keys) == 64, sorted(keys)
    assert keys == ours, {"missing": sorted(keys - ours), "extra": sorted(ours - keys)}
