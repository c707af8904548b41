"""Pods and AdmissionReviews as the apiserver sends them, for the API tests and the load benchmark."""

from __future__ import annotations

import copy
import uuid
from typing import Any

V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"
API_VERSIONS = (V1, V1BETA1)

# What selects each shipped plugin on a pod in a namespace that selects nothing.
PLUGIN_ANNOTATIONS: dict[str, dict[str, str]] = {
    "istio": {"meshswitch.io/mode": "istio"},
    "linkerd": {"linkerd.io/inject": "enabled"},
    "envoy": {"meshswitch.io/mode": "envoy"},
    "dapr": {"dapr.io/enabled": "true", "dapr.io/app-id": "web", "dapr.io/app-port": "8080"},
    "native": {"meshswitch.io/mode": "native"},
}

# Namespaces for --namespace-labels-file: a plain one, and one per namespace-level selector.
NAMESPACES_YAML = """\
demo: {}
istio-demo:
  istio-injection: enabled
linkerd-demo:
  labels: {}
  annotations:
    linkerd.io/inject: enabled
mesh-off:
  istio-injection: disabled
"""


def container(name: str, *, image: str, port: int, env: int) -> dict[str, Any]:
    """An application container as a Deployment's controller would create it, defaults filled in."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": f"{name.upper().replace('-', '_')}_SETTING_{i}", "value": f"value-{i}"} for i in range(env)]
        + [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "volumeMounts": [
            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 1000},
    }


def make_pod(
    *,
    namespace: str = "demo",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    containers: int = 1,
    env: int = 10,
    name: str | None = None,
) -> dict[str, Any]:
    """A Deployment-owned pod at CREATE time: generateName, no name, managedFields set."""
    images = ["ghcr.io/example/web:1.4.2", "ghcr.io/example/worker:1.4.2", "ghcr.io/example/metrics:0.9.0"]
    metadata: dict[str, Any] = {
        "generateName": "web-7d9c8b6f5d-",
        "namespace": namespace,
        "labels": {"app": "web", "pod-template-hash": "7d9c8b6f5d", **(labels or {})},
        "annotations": dict(annotations or {}),
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d9c8b6f5d",
                "uid": "0d8a7b4e-5d1c-4f38-9a0e-6c1f1b2d3e4f",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": [
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-11-20T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {}}},
            }
        ],
    }
    if name is not None:
        metadata["name"] = name
        del metadata["generateName"]
    per_container = [env // containers + (1 if i < env % containers else 0) for i in range(containers)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [
                container(
                    ["web", "worker", "metrics"][i] if i < 3 else f"extra-{i}",
                    image=images[i % 3],
                    port=8080 + i,
                    env=per_container[i],
                )
                for i in range(containers)
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        ],
                    },
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "web",
            "serviceAccount": "web",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
        },
        "status": {},
    }


def make_review(
    obj: dict[str, Any],
    *,
    api_version: str = V1,
    uid: str | None = None,
    operation: str = "CREATE",
    namespace: str | None = None,
    kind: dict[str, str] | None = None,
    resource: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview request for ``obj`` (a Pod unless ``kind`` says otherwise), its keys in
    the order the kube-apiserver writes them."""
    kind = kind or {"group": "", "version": "v1", "kind": "Pod"}
    resource = resource or {"group": "", "version": "v1", "resource": "pods"}
    namespace = namespace if namespace is not None else obj.get("metadata", {}).get("namespace", "demo")
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "namespace": namespace,
        "operation": operation,
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "5b1b6a3c-2f1e-4c7d-8a9b-0c1d2e3f4a5b",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        },
        "object": copy.deepcopy(obj),
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if operation != "CREATE":
        request["oldObject"] = copy.deepcopy(obj)
        request["options"] = None
    # The apiserver's order (Go's TypeMeta writes kind first; uid is AdmissionRequest's first
    # field): the answer cache keys only bodies laid out so.
    return {"kind": "AdmissionReview", "apiVersion": api_version, "request": request}


def maximal_value(setting: Any) -> str | None:
    """A value of ``setting`` (a webhook.engine.settings.Setting) as long as it accepts, or None.

    Lists are filled to the setting's maximum length; a free-text setting repeats its default
    when its pattern takes a comma-separated repetition. The value is checked to parse.
    """
    longest = setting.longest
    if setting.type == "ports":
        parts, size, port = [], 0, 1
        while size + len(str(port)) + 1 <= longest:
            parts.append(str(port))
            size += len(str(port)) + 1
            port = port % 65535 + 1
        value = ",".join(parts)
    elif setting.type == "cidrs":
        parts, size, index = [], 0, 0
        while True:
            cidr = f"10.{index // 256 % 256}.{index % 256}.0/24"
            if size + len(cidr) + 1 > longest:
                break
            parts.append(cidr)
            size += len(cidr) + 1
            index += 1
        value = ",".join(parts)
    elif setting.type == "string" and isinstance(setting.default, str) and setting.default:
        value = setting.default
        while len(value) + 1 + len(setting.default) <= longest:
            value += "," + setting.default
    else:
        return None
    for candidate in (value, setting.default if isinstance(setting.default, str) else None):
        if not candidate:
            continue
        try:
            setting.parse(candidate)
        except ValueError:
            continue
        return candidate
    return None


def maximal_annotations(plugin: Any) -> dict[str, str]:
    """Every setting of a plugin that takes a long value, at its longest."""
    return {
        setting.keys[0]: value
        for setting in plugin.settings
        if (value := maximal_value(setting)) is not None and len(value) > 64
    }
