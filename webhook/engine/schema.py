"""Kubernetes value types as a mesh's Go decoder reads an annotation's JSON into them (pure).

Istio and Linkerd read some annotations (`sidecar.istio.io/userVolume`, `proxy.istio.io/overrides`,
`config.linkerd.io/proxy-additional-env`) with Go's json.Unmarshal into core/v1 structs. A value of
the wrong JSON type fails there (Istio refuses the pod); copied into a pod as it is, it would make
the API server fail to decode the patched pod. `conform` reads a value the way Go does: wrong types
raise `TypeMismatch` with the path inside the value, fields Go does not know are dropped, a field
spelled in another case is Go's field, a null leaves a field unset. Only pods that carry such an
annotation pay for it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any

from webhook.engine import reasons
from webhook.engine.errors import PodDenied
from webhook.engine.settings import GO_SPACE, quantity, show

# The fields of each struct, as the Kubernetes 1.36 OpenAPI schema gives them (the test
# `test_type_table_follows_the_kubernetes_schema` derives this table from it again). A field's
# type: string, bool, int32, int64, quantity (resource.Quantity), int-or-string, time (metav1.Time),
# any (raw JSON), another struct's name, `[T]` a list of T, `{T}` a map of string to T.
_TABLE = {
    "Container": "args:[string] command:[string] env:[EnvVar] envFrom:[EnvFromSource] image:string imagePullPolicy:string lifecycle:Lifecycle livenessProbe:Probe name:string ports:[ContainerPort] readinessProbe:Probe resizePolicy:[ContainerResizePolicy] resources:ResourceRequirements restartPolicy:string restartPolicyRules:[ContainerRestartRule] securityContext:SecurityContext startupProbe:Probe stdin:bool stdinOnce:bool terminationMessagePath:string terminationMessagePolicy:string tty:bool volumeDevices:[VolumeDevice] volumeMounts:[VolumeMount] workingDir:string",
    "Volume": "awsElasticBlockStore:AWSElasticBlockStoreVolumeSource azureDisk:AzureDiskVolumeSource azureFile:AzureFileVolumeSource cephfs:CephFSVolumeSource cinder:CinderVolumeSource configMap:ConfigMapVolumeSource csi:CSIVolumeSource downwardAPI:DownwardAPIVolumeSource emptyDir:EmptyDirVolumeSource ephemeral:EphemeralVolumeSource fc:FCVolumeSource flexVolume:FlexVolumeSource flocker:FlockerVolumeSource gcePersistentDisk:GCEPersistentDiskVolumeSource gitRepo:GitRepoVolumeSource glusterfs:GlusterfsVolumeSource hostPath:HostPathVolumeSource image:ImageVolumeSource iscsi:ISCSIVolumeSource name:string nfs:NFSVolumeSource persistentVolumeClaim:PersistentVolumeClaimVolumeSource photonPersistentDisk:PhotonPersistentDiskVolumeSource portworxVolume:PortworxVolumeSource projected:ProjectedVolumeSource quobyte:QuobyteVolumeSource rbd:RBDVolumeSource scaleIO:ScaleIOVolumeSource secret:SecretVolumeSource storageos:StorageOSVolumeSource vsphereVolume:VsphereVirtualDiskVolumeSource",
    "EnvVar": "name:string value:string valueFrom:EnvVarSource",
    "EnvFromSource": "configMapRef:ConfigMapEnvSource prefix:string secretRef:SecretEnvSource",
    "Lifecycle": "postStart:LifecycleHandler preStop:LifecycleHandler stopSignal:string",
    "Probe": "exec:ExecAction failureThreshold:int32 grpc:GRPCAction httpGet:HTTPGetAction initialDelaySeconds:int32 periodSeconds:int32 successThreshold:int32 tcpSocket:TCPSocketAction terminationGracePeriodSeconds:int64 timeoutSeconds:int32",
    "ContainerPort": "containerPort:int32 hostIP:string hostPort:int32 name:string protocol:string",
    "ContainerResizePolicy": "resourceName:string restartPolicy:string",
    "ResourceRequirements": "claims:[ResourceClaim] limits:{quantity} requests:{quantity}",
    "ContainerRestartRule": "action:string exitCodes:ContainerRestartRuleOnExitCodes",
    "SecurityContext": "allowPrivilegeEscalation:bool appArmorProfile:AppArmorProfile capabilities:Capabilities privileged:bool procMount:string readOnlyRootFilesystem:bool runAsGroup:int64 runAsNonRoot:bool runAsUser:int64 seLinuxOptions:SELinuxOptions seccompProfile:SeccompProfile windowsOptions:WindowsSecurityContextOptions",
    "VolumeDevice": "devicePath:string name:string",
    "VolumeMount": "mountPath:string mountPropagation:string name:string readOnly:bool recursiveReadOnly:string subPath:string subPathExpr:string",
    "AWSElasticBlockStoreVolumeSource": "fsType:string partition:int32 readOnly:bool volumeID:string",
    "AzureDiskVolumeSource": "cachingMode:string diskName:string diskURI:string fsType:string kind:string readOnly:bool",
    "AzureFileVolumeSource": "readOnly:bool secretName:string shareName:string",
    "CephFSVolumeSource": "monitors:[string] path:string readOnly:bool secretFile:string secretRef:LocalObjectReference user:string",
    "CinderVolumeSource": "fsType:string readOnly:bool secretRef:LocalObjectReference volumeID:string",
    "ConfigMapVolumeSource": "defaultMode:int32 items:[KeyToPath] name:string optional:bool",
    "CSIVolumeSource": "driver:string fsType:string nodePublishSecretRef:LocalObjectReference readOnly:bool volumeAttributes:{string}",
    "DownwardAPIVolumeSource": "defaultMode:int32 items:[DownwardAPIVolumeFile]",
    "EmptyDirVolumeSource": "medium:string sizeLimit:quantity",
    "EphemeralVolumeSource": "volumeClaimTemplate:PersistentVolumeClaimTemplate",
    "FCVolumeSource": "fsType:string lun:int32 readOnly:bool targetWWNs:[string] wwids:[string]",
    "FlexVolumeSource": "driver:string fsType:string options:{string} readOnly:bool secretRef:LocalObjectReference",
    "FlockerVolumeSource": "datasetName:string datasetUUID:string",
    "GCEPersistentDiskVolumeSource": "fsType:string partition:int32 pdName:string readOnly:bool",
    "GitRepoVolumeSource": "directory:string repository:string revision:string",
    "GlusterfsVolumeSource": "endpoints:string path:string readOnly:bool",
    "HostPathVolumeSource": "path:string type:string",
    "ImageVolumeSource": "pullPolicy:string reference:string",
    "ISCSIVolumeSource": "chapAuthDiscovery:bool chapAuthSession:bool fsType:string initiatorName:string iqn:string iscsiInterface:string lun:int32 portals:[string] readOnly:bool secretRef:LocalObjectReference targetPortal:string",
    "NFSVolumeSource": "path:string readOnly:bool server:string",
    "PersistentVolumeClaimVolumeSource": "claimName:string readOnly:bool",
    "PhotonPersistentDiskVolumeSource": "fsType:string pdID:string",
    "PortworxVolumeSource": "fsType:string readOnly:bool volumeID:string",
    "ProjectedVolumeSource": "defaultMode:int32 sources:[VolumeProjection]",
    "QuobyteVolumeSource": "group:string readOnly:bool registry:string tenant:string user:string volume:string",
    "RBDVolumeSource": "fsType:string image:string keyring:string monitors:[string] pool:string readOnly:bool secretRef:LocalObjectReference user:string",
    "ScaleIOVolumeSource": "fsType:string gateway:string protectionDomain:string readOnly:bool secretRef:LocalObjectReference sslEnabled:bool storageMode:string storagePool:string system:string volumeName:string",
    "SecretVolumeSource": "defaultMode:int32 items:[KeyToPath] optional:bool secretName:string",
    "StorageOSVolumeSource": "fsType:string readOnly:bool secretRef:LocalObjectReference volumeName:string volumeNamespace:string",
    "VsphereVirtualDiskVolumeSource": "fsType:string storagePolicyID:string storagePolicyName:string volumePath:string",
    "EnvVarSource": "configMapKeyRef:ConfigMapKeySelector fieldRef:ObjectFieldSelector fileKeyRef:FileKeySelector resourceFieldRef:ResourceFieldSelector secretKeyRef:SecretKeySelector",
    "ConfigMapEnvSource": "name:string optional:bool",
    "SecretEnvSource": "name:string optional:bool",
    "LifecycleHandler": "exec:ExecAction httpGet:HTTPGetAction sleep:SleepAction tcpSocket:TCPSocketAction",
    "ExecAction": "command:[string]",
    "GRPCAction": "port:int32 service:string",
    "HTTPGetAction": "host:string httpHeaders:[HTTPHeader] path:string port:int-or-string scheme:string",
    "TCPSocketAction": "host:string port:int-or-string",
    "ResourceClaim": "name:string request:string",
    "ContainerRestartRuleOnExitCodes": "operator:string values:[int32]",
    "AppArmorProfile": "localhostProfile:string type:string",
    "Capabilities": "add:[string] drop:[string]",
    "SELinuxOptions": "level:string role:string type:string user:string",
    "SeccompProfile": "localhostProfile:string type:string",
    "WindowsSecurityContextOptions": "gmsaCredentialSpec:string gmsaCredentialSpecName:string hostProcess:bool runAsUserName:string",
    "LocalObjectReference": "name:string",
    "KeyToPath": "key:string mode:int32 path:string",
    "DownwardAPIVolumeFile": "fieldRef:ObjectFieldSelector mode:int32 path:string resourceFieldRef:ResourceFieldSelector",
    "PersistentVolumeClaimTemplate": "metadata:ObjectMeta spec:PersistentVolumeClaimSpec",
    "VolumeProjection": "clusterTrustBundle:ClusterTrustBundleProjection configMap:ConfigMapProjection downwardAPI:DownwardAPIProjection podCertificate:PodCertificateProjection secret:SecretProjection serviceAccountToken:ServiceAccountTokenProjection",
    "ConfigMapKeySelector": "key:string name:string optional:bool",
    "ObjectFieldSelector": "apiVersion:string fieldPath:string",
    "FileKeySelector": "key:string optional:bool path:string volumeName:string",
    "ResourceFieldSelector": "containerName:string divisor:quantity resource:string",
    "SecretKeySelector": "key:string name:string optional:bool",
    "SleepAction": "seconds:int64",
    "HTTPHeader": "name:string value:string",
    "ObjectMeta": "annotations:{string} creationTimestamp:time deletionGracePeriodSeconds:int64 deletionTimestamp:time finalizers:[string] generateName:string generation:int64 labels:{string} managedFields:[ManagedFieldsEntry] name:string namespace:string ownerReferences:[OwnerReference] resourceVersion:string selfLink:string uid:string",
    "PersistentVolumeClaimSpec": "accessModes:[string] dataSource:TypedLocalObjectReference dataSourceRef:TypedObjectReference resources:VolumeResourceRequirements selector:LabelSelector storageClassName:string volumeAttributesClassName:string volumeMode:string volumeName:string",
    "ClusterTrustBundleProjection": "labelSelector:LabelSelector name:string optional:bool path:string signerName:string",
    "ConfigMapProjection": "items:[KeyToPath] name:string optional:bool",
    "DownwardAPIProjection": "items:[DownwardAPIVolumeFile]",
    "PodCertificateProjection": "certificateChainPath:string credentialBundlePath:string keyPath:string keyType:string maxExpirationSeconds:int32 signerName:string userAnnotations:{string}",
    "SecretProjection": "items:[KeyToPath] name:string optional:bool",
    "ServiceAccountTokenProjection": "audience:string expirationSeconds:int64 path:string",
    "ManagedFieldsEntry": "apiVersion:string fieldsType:string fieldsV1:any manager:string operation:string subresource:string time:time",
    "OwnerReference": "apiVersion:string blockOwnerDeletion:bool controller:bool kind:string name:string uid:string",
    "TypedLocalObjectReference": "apiGroup:string kind:string name:string",
    "TypedObjectReference": "apiGroup:string kind:string name:string namespace:string",
    "VolumeResourceRequirements": "limits:{quantity} requests:{quantity}",
    "LabelSelector": "matchExpressions:[LabelSelectorRequirement] matchLabels:{string}",
    "LabelSelectorRequirement": "key:string operator:string values:[string]",
}  # fmt: skip

# uint and float64 are Go's own types, for values a mesh reads from its install's YAML.
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1), "uint": (0, 2**64 - 1)}
# metav1.Time reads RFC 3339 text (Go's time.RFC3339 layout).
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")
_QUANTITY_EXAMPLE = "a quantity such as 128Mi or 1"


# The struct names `conform` reads (a plugin's `object:` names one).
STRUCTS = frozenset(_TABLE)


class TypeMismatch(ValueError):
    """A value of the wrong JSON type for the Go field it lands in: where, and what it must be."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'the value'} {problem}")


@cache
def _fields(kind: str) -> Mapping[str, str]:
    return dict(part.split(":", 1) for part in _TABLE[kind].split())


@cache
def _folded(kind: str) -> Mapping[str, str]:
    return {_fold(name): name for name in _fields(kind)}


def _fold(name: str) -> str:
    # Go matches a JSON key to a field by exact name, else by Unicode simple case folding, under
    # which the Kelvin sign is k and the long s is s (they fold to ASCII, as field names are).
    return name.lower().replace("\u017f", "s")


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({show(value)})"
    return "an object" if isinstance(value, dict) else "a list"


def conform(
    value: Any, kind: str | Mapping[str, str], *, at: str = "", float64: bool = False, yaml_text: bool = False, exact_names: bool = False
) -> Any:
    """`value` as Go's json.Unmarshal reads it into `kind` (a struct's name, a type as in the table,
    or a struct given as a mapping of field name to type), written back as Go would write it.

    `at` is the path of `value` inside the annotation, for messages. `float64`: the value went
    through a float64 first (Istio's template reads userVolume with fromJSON and writes it with
    toYaml), so a whole number written as `4.2e2` is 420. `yaml_text`: the value is YAML that Go's
    sigs.k8s.io/yaml reads, which turns a number or boolean into text where a string is expected
    (and a map's keys into text). `exact_names`: a key names a field only in the field's own case, as
    the API server's decoder reads a pod (Go's json.Unmarshal also takes `RunAsUser`). Raises TypeMismatch.
    """
    if yaml_text:
        float64 = True  # that reader also takes a whole float (2.0) as an integer
    if value is None:
        return None
    if isinstance(kind, Mapping):
        return _struct(value, kind, {_fold(k): k for k in kind}, at, float64, yaml_text, exact_names)
    if kind in _TABLE:
        return _struct(value, _fields(kind), _folded(kind), at, float64, yaml_text, exact_names)
    if kind.startswith("["):
        if not isinstance(value, list):
            raise TypeMismatch(at, f"must be a list, got {_got(value)}")
        item = kind[1:-1]
        return [_zero(item) if v is None else conform(v, item, at=f"{at}[{i}]", float64=float64, yaml_text=yaml_text, exact_names=exact_names) for i, v in enumerate(value)]
    if kind.startswith("{"):
        if not isinstance(value, dict):
            raise TypeMismatch(at, f"must be an object, got {_got(value)}")
        item = kind[1:-1]
        keys = [go_yaml_key(k) if yaml_text else k for k in value]
        return {
            k: _zero(item) if v is None else conform(v, item, at=_join(at, k), float64=float64, yaml_text=yaml_text, exact_names=exact_names)
            for k, v in zip(keys, value.values(), strict=True)
        }
    return _scalar(value, kind, at, float64, yaml_text)


def _join(at: str, name: Any) -> str:
    return f"{at}.{name}" if at else str(name)


def _zero(kind: str) -> Any:
    """What a null list item or map value decodes to: the element type's zero value."""
    return {"string": "", "bool": False, "int32": 0, "int64": 0}.get(kind, {} if kind in _TABLE else None)


def _struct(
    value: Any, fields: Mapping[str, str], folded: Mapping[str, str], at: str, float64: bool, yaml_text: bool = False, exact_names: bool = False
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeMismatch(at, f"must be an object, got {_got(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        key = go_yaml_key(key) if yaml_text else key
        name = key if key in fields else folded.get(_fold(key)) if isinstance(key, str) and not exact_names else None
        if name is None:
            continue  # a field Go does not know: dropped
        if item is None:
            out.pop(name, None)  # null: the field stays unset (a pointer field is reset to nil)
            continue
        out[name] = conform(item, fields[name], at=_join(at, name), float64=float64, yaml_text=yaml_text, exact_names=exact_names)
    return out


def _scalar(value: Any, kind: str, at: str, float64: bool, yaml_text: bool = False) -> Any:
    if kind == "string":
        if yaml_text and isinstance(value, bool | int | float):
            return go_yaml_text(value)
        if not isinstance(value, str):
            raise TypeMismatch(at, f"must be a string, got {_got(value)}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise TypeMismatch(at, f"must be true or false, got {_got(value)}")
    elif kind in _INT_RANGES:
        return _whole(value, kind, at, float64, "must be a whole number")
    elif kind == "float64":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise TypeMismatch(at, f"must be a number, got {_got(value)}")
    elif kind == "int-or-string":
        if not isinstance(value, str):
            return _whole(value, "int32", at, float64, "must be a string or a whole number")
    elif kind == "quantity":
        # resource.Quantity takes a JSON string or number (its own text): a number always reads.
        if isinstance(value, bool) or not isinstance(value, str | int | float) or (isinstance(value, str) and not _is_quantity(value)):
            raise TypeMismatch(at, f"must be {_QUANTITY_EXAMPLE}, got {_got(value)}")
    elif kind == "time":
        if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
            raise TypeMismatch(at, f"must be a time such as 2024-01-02T15:04:05Z, got {_got(value)}")
    return value


def _whole(value: Any, kind: str, at: str, float64: bool, must: str) -> int:
    low, high = _INT_RANGES[kind]
    if float64 and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TypeMismatch(at, f"{must} from {low} to {high}, got {_got(value)}")
    return value


def go_float_text(number: float, *, bits: int = 64) -> str:
    """Go's strconv.FormatFloat(number, 'g', -1, bits), which fmt's %v also writes: the shortest
    digits that read back as the same float64 (or float32), in exponent form from a decimal
    exponent of 6 or below -4 (`999999`, `1e+06`, `1.2345679e+08`)."""
    if bits == 32:
        try:
            number = struct.unpack("f", struct.pack("f", number))[0]
        except OverflowError:
            number = math.copysign(math.inf, number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    shortest = repr(abs(number))
    if bits == 32:
        rounded = abs(number)
        shortest = next(t for p in range(1, 10) if struct.unpack("f", struct.pack("f", float(t := f"{rounded:.{p - 1}e}")))[0] == rounded)
    _, digits, exponent = Decimal(shortest).normalize().as_tuple()
    shown = "".join(map(str, digits))
    power = len(shown) + int(exponent) - 1
    minus = "-" if number < 0 else ""
    if power < -4 or power >= 6:
        mantissa = shown[0] + ("." + shown[1:] if len(shown) > 1 else "")
        return f"{minus}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    return minus + format(Decimal(shortest).normalize(), "f")


def go_yaml_text(value: bool | int | float) -> str:
    """A YAML number or boolean as sigs.k8s.io/yaml writes it where Go expects a string: an integer
    as written (one beyond 64 bits is a float to Go's YAML), a float as float32's shortest %g."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return str(value)
    return go_float_text(float(value), bits=32)


def go_yaml_key(key: Any) -> Any:
    """A YAML map key as sigs.k8s.io/yaml makes it a JSON key (a float's key with float64's digits)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    return go_float_text(key) if isinstance(key, float) else key


def _is_quantity(text: str) -> bool:
    """resource.ParseQuantity after Go's TrimSpace: the project's quantity grammar, with a sign."""
    body = text.strip(GO_SPACE)
    if body[:1] == "-":
        body = body[1:]
        if body[:1] == "+":
            return False
    return quantity(body) is not None


def check_annotation(value: Any, kind: str | Mapping[str, str], *, key: str, at: str = "", float64: bool = False) -> Any:
    """`conform` for the value of annotation `key`: a mismatch refuses the pod with the key and
    the path inside the value (`annotation K: data.readOnly must be true or false, got ...`)."""
    try:
        return conform(value, kind, at=at, float64=float64)
    except TypeMismatch as err:
        raise PodDenied(reasons.INVALID_SETTING, f"annotation {key}: {err}") from None
