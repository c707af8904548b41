"""Feeds Discovery from the API server: one list+watch per named control-plane object, nothing more."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from webhook.engine.discovery import ControlPlaneObject, Discovery
from webhook.cluster.client import KubeApi
from webhook.cluster.listwatch import ListWatch, RawObject

# Where each kind of control-plane object is listed; one object is at its collection's path + /name.
PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments",
    "ConfigMap": "/api/v1/namespaces/{namespace}/configmaps",
    "MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
}

log = logging.getLogger(__name__)


def get_control_plane_object(api: KubeApi, target: ControlPlaneObject) -> dict[str, Any] | None:
    """One GET of the object ``target`` names; None when it does not exist."""
    return api.get(f"{PATHS[target.kind].format(namespace=target.namespace)}/{target.name}")


class ControlPlaneWatch(ListWatch):
    """Watches one object by name (a field selector), so RBAC can grant exactly that object; or,
    where a plugin gives a label selector (Istio's revisions: istiod, istiod-canary, ...), every
    object it finds, each under its own name."""

    def __init__(self, discovery: Discovery, target: ControlPlaneObject, api: KubeApi) -> None:
        path = PATHS[target.kind].format(namespace=target.namespace)
        if target.selector:
            query = [("labelSelector", target.selector)]
        else:
            query = [("fieldSelector", f"metadata.name={target.name}")]
        super().__init__(
            list_objects=lambda: api.list_items(path, query=query),
            watch_objects=lambda version: api.watch(path, version, query=query),
        )
        self.what = target.describe_watch()
        self.discovery = discovery
        self.target = target

    def _name(self, obj: RawObject) -> str:
        return str((obj.get("metadata") or {}).get("name") or "") if self.target.selector else self.target.name

    def replace(self, items: Iterable[RawObject], resource_version: str) -> None:
        if self.target.selector:
            listed = {self._name(obj): obj for obj in items}
            # The named watch of the default object keeps it; a relist forgets only revisions gone.
            for name in set(self.discovery.seen(self.target.kind, self.target.namespace)) - set(listed) - {self.target.name}:
                self.discovery.forget(self.target.kind, self.target.namespace, name)
            for name, obj in listed.items():
                self.discovery.observe(self.target.kind, self.target.namespace, name, obj)
            self._warn()
            return
        found = next(iter(items), None)
        if found is None:
            self.discovery.forget(*self.target.key)
        else:
            self.discovery.observe(*self.target.key, found)
        self._warn()

    def _warn(self) -> None:
        for warning in self.discovery.unreported_warnings():
            log.warning("%s", warning)

    def on_object(self, kind: str, obj: RawObject) -> None:
        key = (self.target.kind, self.target.namespace, self._name(obj))
        if kind == "DELETED" and self.target.selector and key[2] == self.target.name:
            return  # the named watch owns the default object
        if kind == "DELETED":
            self.discovery.forget(*key)
        else:
            self.discovery.observe(*key, obj)
        self._warn()


def control_plane_watches(discovery: Discovery, api: KubeApi) -> list[ControlPlaneWatch]:
    """One watch per object any plugin names; start them with ``start()``."""
    return [ControlPlaneWatch(discovery, target, api) for target in discovery.watched()]
