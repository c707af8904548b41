"""`meshswitch diff NAMESPACE MODE`: per workload, what its pods would gain and lose if the namespace
switched to MODE. GETs only; the engine renders each pod template twice, under the namespace's labels
as they are and with `meshswitch.io/mode=MODE`, and the two status records are compared."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from webhook.cluster.client import KubeApi
from webhook.cluster.modes import get_namespace, validate_mode
from webhook.cluster.namespaces import meta_from
from webhook.engine.decide import MODE_KEY
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.patch import read_status, uninject
from webhook.engine.workloads import pod_template, workload_of

# What a pod is made of that injection changes, in the order the diff shows them.
PARTS = (("plugins", "plugins"), ("initContainers", "init containers"), ("containers", "containers"),
         ("volumes", "volumes"), ("labels", "labels"), ("annotations", "annotations"))  # fmt: skip
SOURCES = (
    ("deployment.apps", "/apis/apps/v1/namespaces/{namespace}/deployments"),
    ("statefulset.apps", "/apis/apps/v1/namespaces/{namespace}/statefulsets"),
    ("daemonset.apps", "/apis/apps/v1/namespaces/{namespace}/daemonsets"),
    ("replicaset.apps", "/apis/apps/v1/namespaces/{namespace}/replicasets"),
    ("cronjob.batch", "/apis/batch/v1/namespaces/{namespace}/cronjobs"),
    ("job.batch", "/apis/batch/v1/namespaces/{namespace}/jobs"),
    ("pod", "/api/v1/namespaces/{namespace}/pods"),
)
_KINDS = {"deployment.apps": "Deployment", "statefulset.apps": "StatefulSet", "daemonset.apps": "DaemonSet", "replicaset.apps": "ReplicaSet",
          "cronjob.batch": "CronJob", "job.batch": "Job", "pod": "Pod"}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What one pod gets: the injected parts by name, or the refusal."""

    mode: str
    parts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    refused: str | None = None

    def describe(self) -> str:
        if self.refused is not None:
            return "refused"
        return "+".join(self.parts.get("plugins", ())) or f"nothing ({self.mode})"


@dataclass(frozen=True)
class WorkloadDiff:
    name: str
    before: Outcome
    after: Outcome

    def lines(self) -> list[str]:
        head = f"{self.name}: {self.before.describe()} -> {self.after.describe()}"
        if self.after.refused is not None:
            return [f"{head}", f"  ! new pods would be refused: {self.after.refused}"]
        if self.before.refused is not None:
            head += "  (new pods are refused today)"
        rows = []
        for key, label in PARTS:
            gained = [n for n in self.after.parts.get(key, ()) if n not in self.before.parts.get(key, ())]
            lost = [n for n in self.before.parts.get(key, ()) if n not in self.after.parts.get(key, ())]
            if gained:
                rows.append(f"  + {label}: {', '.join(gained)}")
            if lost:
                rows.append(f"  - {label}: {', '.join(lost)}")
        return [head, *(rows or ["  no change"])]


def outcome(injector: Injector, template: Mapping[str, Any], namespace: NamespaceMeta, obj: Mapping[str, Any]) -> Outcome:
    """What a pod made from `template` gets in `namespace` (pure)."""
    pod = dict(template)
    try:
        result = injector.inject(pod, namespace, workload=workload_of(obj))
    except PodDenied as err:
        return Outcome(mode="", refused=err.message)
    if not result.patch:
        return Outcome(mode=result.mode)
    injected = jsonpatch.apply_patch(pod, result.patch)
    status = read_status((injected.get("metadata") or {}).get("annotations") or {})
    return Outcome(mode=result.mode, parts={key: tuple(str(n) for n in status.get(key) or ()) for key, _ in PARTS})


def as_written(template: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template before meshswitch injected it (pure): a bare Pod the webhook injected, or a
    template written by `meshswitch inject`, carries its status record, and as it stands it would
    read as already injected under any mode (`nothing (istio) -> nothing (linkerd)`)."""
    metadata = template.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    status = read_status(annotations) if isinstance(annotations, Mapping) else None
    if not status or status.get("omitted"):
        return template  # nothing recorded, or not restorable: judged as it is
    return uninject(template)


def _owned(obj: Mapping[str, Any]) -> bool:
    """Made by a controller that is listed itself (a Deployment's ReplicaSets, a CronJob's Jobs, pods)."""
    return any(ref.get("controller") for ref in (obj.get("metadata") or {}).get("ownerReferences") or ())


def namespace_diff(kube: KubeApi, namespace: str, mode: str, injector: Injector) -> list[WorkloadDiff]:
    """Raises ModeError for an unknown mode or namespace."""
    validate_mode(mode, injector.plugins)
    before = meta_from(get_namespace(kube, namespace))
    after = NamespaceMeta(before.name, {**before.labels, MODE_KEY: mode}, before.annotations)
    diffs = []
    for resource, path in SOURCES:
        for item in kube.items(path.format(namespace=namespace)):
            if _owned(item):
                continue
            obj = {**item, "kind": _KINDS[resource]}
            template = pod_template(obj)
            if template is None:
                continue
            name = f"{resource}/{(item.get('metadata') or {}).get('name')}"
            written = as_written(template)
            diffs.append(WorkloadDiff(name, outcome(injector, written, before, obj), outcome(injector, written, after, obj)))
    return diffs
