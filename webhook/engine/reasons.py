"""Why a pod was or was not injected: stable codes (for logs, metrics, explain) and sentences."""

from __future__ import annotations

from dataclasses import dataclass

# Decisions that let the pod in.
INJECTED = "injected"
NOT_POD_CREATE = "not-pod-create"
IGNORED_NAMESPACE = "ignored-namespace"
OPTED_OUT = "opted-out"
NO_MODE = "no-mode"
NATIVE_MODE = "native-mode"
PLUGIN_DISABLED = "plugin-disabled"
HOST_NETWORK = "host-network"
ALREADY_INJECTED = "already-injected"
SIDECAR_PRESENT = "sidecar-present"
OTHER_MESH_PRESENT = "other-mesh-present"

# Denials: the pod is refused with a message naming the key, the value and what is accepted.
UNKNOWN_MODE = "unknown-mode"
CONFLICTING_MODES = "conflicting-modes"
INVALID_SETTING = "invalid-setting"
IMAGE_NOT_ALLOWED = "image-not-allowed"
INVALID_POD = "invalid-pod"  # a shape the API server would reject in validation

ALLOWED_CODES = (
    INJECTED, NOT_POD_CREATE, IGNORED_NAMESPACE, OPTED_OUT, NO_MODE, NATIVE_MODE,
    PLUGIN_DISABLED, HOST_NETWORK, ALREADY_INJECTED, SIDECAR_PRESENT, OTHER_MESH_PRESENT,
)  # fmt: skip
DENIAL_CODES = (UNKNOWN_MODE, CONFLICTING_MODES, INVALID_SETTING, IMAGE_NOT_ALLOWED, INVALID_POD)


@dataclass(frozen=True)
class Reason:
    """A stable code for machines and a sentence for people."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
