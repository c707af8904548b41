"""Server-wide settings that shape every decision: default mode, sidecar style, ignored namespaces."""

from __future__ import annotations

from dataclasses import dataclass, field

SIDECAR_STYLES = ("native", "classic")
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class Config:
    """What the operator chose at start-up; one instance is shared by every review."""

    default_mode: str = "native"
    # None: each mesh's own default (the installed release's), else native. Set: the operator's
    # choice, which only a pod's meshswitch.io/sidecar or the mesh's own annotation overrides.
    sidecar_style: str | None = None
    webhook_namespace: str = "meshswitch-system"
    extra_ignored_namespaces: frozenset[str] = frozenset()
    allowed_registries: tuple[str, ...] = (
        "docker.io/istio",
        "gcr.io/istio-release",
        "registry.istio.io/release",
        "cr.l5d.io/linkerd",
        "ghcr.io/dapr",
        "docker.io/daprio",
        "docker.io/envoyproxy",
    )
    ignored_namespaces: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        ignored = SYSTEM_NAMESPACES | {self.webhook_namespace} | self.extra_ignored_namespaces
        object.__setattr__(self, "ignored_namespaces", frozenset(ignored))
