"""`mode list`, `mode get`, `mode set --dry-run` and `diff`, over a recording stand-in for the API
server: the dry run and the diff only read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from webhook.cluster.diff import namespace_diff
from webhook.cluster.modes import ModeError, format_result, list_modes, set_mode, wait_for_webhook
from webhook.cluster.namespaces import meta_from
from webhook.engine.config import Config
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins

PLUGINS = load_plugins()


def workload(kind: str, name: str, *, paused: bool = False, owned: bool = False, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"metadata": {"labels": {"app": name}, "annotations": annotations or {}}, "spec": {"containers": [{"name": name, "image": "nginx"}]}}
    metadata: dict[str, Any] = {"name": name, "namespace": "shop"}
    if owned:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": True}]
    if kind == "Pod":
        return {"metadata": {**metadata, **template["metadata"]}, "spec": template["spec"]}
    if kind == "CronJob":
        return {"metadata": metadata, "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}}
    return {"metadata": metadata, "spec": {"paused": paused, "template": template}}


class RecordingKube:
    """GETs from a dict of paths; every other call is recorded (and must not happen in a dry run)."""

    def __init__(self, namespaces: Sequence[dict[str, Any]], lists: dict[str, list[dict[str, Any]]]) -> None:
        self.namespaces = {n["metadata"]["name"]: n for n in namespaces}
        self.lists = lists
        self.writes: list[tuple[str, str]] = []

    def get(self, path: str, **_: Any) -> dict[str, Any] | None:
        prefix = "/api/v1/namespaces/"
        return self.namespaces.get(path[len(prefix):]) if path.startswith(prefix) and path.count("/") == 4 else None

    def items(self, path: str, **_: Any) -> list[dict[str, Any]]:
        if path == "/api/v1/namespaces":
            return list(self.namespaces.values())
        return self.lists.get(path, [])

    def call(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.writes.append((method, path))
        return {}


def ns(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}}}


@pytest.fixture
def kube() -> RecordingKube:
    return RecordingKube(
        [ns("shop", {"meshswitch.io/mode": "istio"}), ns("plain"), ns("typo", {"meshswitch.io/mode": "istoi"}), ns("kube-system"),
         ns("meshswitch-dev-probe-0a1b2c3d", {"meshswitch.io/mode": "istio"})],
        {
            "/apis/apps/v1/namespaces/shop/deployments": [workload("Deployment", "web"), workload("Deployment", "held", paused=True)],
            "/apis/apps/v1/namespaces/shop/statefulsets": [workload("StatefulSet", "db")],
            "/apis/apps/v1/namespaces/shop/replicasets": [workload("ReplicaSet", "web-7d9f", owned=True)],
            "/apis/batch/v1/namespaces/shop/cronjobs": [workload("CronJob", "report", annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "report"})],
            "/api/v1/namespaces/shop/pods": [workload("Pod", "web-7d9f-x", owned=True), workload("Pod", "debug")],
        },
    )  # fmt: skip


def test_set_dry_run_changes_nothing_and_lists_what_would_roll(kube: RecordingKube) -> None:
    result = set_mode(kube, "shop", "linkerd", PLUGINS, dry_run=True, restart=True)  # type: ignore[arg-type]
    assert kube.writes == [], "a dry run only reads"
    assert format_result(result) == [
        "namespace/shop meshswitch.io/mode: istio -> linkerd (dry run: nothing changed)",
        "deployment.apps/web would restart",
        "statefulset.apps/db would restart",
        "deployment.apps/held would not restart: paused (kubectl rollout resume it first)",
    ]


def test_set_dry_run_of_the_same_mode_and_without_workloads(kube: RecordingKube) -> None:
    assert format_result(set_mode(kube, "shop", "istio", PLUGINS, dry_run=True))[0] == (  # type: ignore[arg-type]
        "namespace/shop meshswitch.io/mode=istio already set, no change (dry run: nothing changed)"
    )
    assert format_result(set_mode(kube, "plain", "native", PLUGINS, dry_run=True)) == [  # type: ignore[arg-type]
        "namespace/plain meshswitch.io/mode: (none) -> native (dry run: nothing changed)",
        "no Deployment, StatefulSet or DaemonSet to restart",
    ]
    assert kube.writes == []


def test_set_without_dry_run_writes_the_label(kube: RecordingKube) -> None:
    set_mode(kube, "plain", "istio", PLUGINS)  # type: ignore[arg-type]
    assert kube.writes == [("PATCH", "/api/v1/namespaces/plain")]


def test_set_refuses_an_unknown_mode_before_any_call(kube: RecordingKube) -> None:
    with pytest.raises(ModeError, match="'consul' is not an installed mode; accepted: "):
        set_mode(kube, "shop", "consul", PLUGINS, dry_run=True)  # type: ignore[arg-type]


def test_list_and_get(kube: RecordingKube) -> None:
    rows = {r.namespace: r for r in list_modes(kube, PLUGINS)}  # type: ignore[arg-type]
    assert "meshswitch-dev-probe-0a1b2c3d" not in rows, "the dev cluster's probes are left out"
    assert (rows["shop"].mode, rows["shop"].selected_by) == ("istio", "meshswitch.io/mode=istio")
    assert rows["plain"].mode == "-" and rows["kube-system"].selected_by.startswith("never injected")
    assert rows["typo"].mode == "refused" and "not an installed mode" in rows["typo"].problems[0]
    [one] = list_modes(kube, PLUGINS, only="shop")  # type: ignore[arg-type]
    assert one == rows["shop"]
    with pytest.raises(ModeError, match="namespace nowhere not found"):
        list_modes(kube, PLUGINS, only="nowhere")  # type: ignore[arg-type]


def test_a_mode_its_mesh_turns_off_is_not_refused() -> None:
    """meshswitch.io/mode=istio with istio-injection=disabled: pods are admitted with nothing, so
    `mode get` printed `refused` (exit 1) for a namespace whose pods the webhook admits."""
    kube = RecordingKube([ns("shop", {"meshswitch.io/mode": "istio", "istio-injection": "disabled"}), ns("typo", {"meshswitch.io/mode": "istoi"})], {})
    rows = {r.namespace: r for r in list_modes(kube, PLUGINS)}  # type: ignore[arg-type]
    assert rows["shop"].mode == "-" and rows["shop"].selected_by == "meshswitch.io/mode=istio, turned off: pods here get no mesh"
    assert "istio is turned off by namespace-label istio-injection=disabled" in rows["shop"].problems[0]
    assert rows["typo"].mode == "refused"


def test_diff_per_workload(kube: RecordingKube) -> None:
    injector = Injector(plugins=PLUGINS, config=Config())
    diffs = {d.name: d.lines() for d in namespace_diff(kube, "shop", "linkerd", injector)}  # type: ignore[arg-type]
    assert kube.writes == []
    assert sorted(diffs) == ["cronjob.batch/report", "deployment.apps/held", "deployment.apps/web", "pod/debug", "statefulset.apps/db"], "owned objects are left out"
    web = diffs["deployment.apps/web"]
    assert web[0] == "deployment.apps/web: istio -> linkerd"
    assert "  + plugins: linkerd" in web and "  - plugins: istio" in web
    assert any(line.startswith("  + init containers: linkerd-init, linkerd-proxy") for line in web)
    assert any(line.startswith("  - init containers: istio-init, istio-proxy") for line in web)
    report = diffs["cronjob.batch/report"]
    assert report[0] == "cronjob.batch/report: istio+dapr -> linkerd+dapr"
    assert not any("daprd" in line for line in report), "dapr stays: neither gained nor lost"
    same = {d.name: d.lines() for d in namespace_diff(kube, "shop", "istio", injector)}  # type: ignore[arg-type]
    assert same["deployment.apps/web"] == ["deployment.apps/web: istio -> istio", "  no change"]
    refused = {d.name: d.lines() for d in namespace_diff(kube, "typo", "istio", injector)}  # type: ignore[arg-type]
    assert refused == {}
    with pytest.raises(ModeError):
        namespace_diff(kube, "shop", "consul", injector)  # type: ignore[arg-type]


def test_diff_of_a_pod_the_webhook_injected() -> None:
    """A bare Pod is stored injected; diff judged it as it stands, already injected under any mode:
    `pod/debug: nothing (istio) -> nothing (linkerd)  no change`, where its replacement would move
    from istio to linkerd."""
    from tests.helpers import apply

    injector = Injector(plugins=PLUGINS, config=Config())
    shop = ns("shop", {"meshswitch.io/mode": "istio"})
    pod = workload("Pod", "debug")
    stored = apply(pod, injector.inject(pod, meta_from(shop)).patch)
    kube = RecordingKube([shop], {"/api/v1/namespaces/shop/pods": [stored]})
    [diff] = namespace_diff(kube, "shop", "linkerd", injector)  # type: ignore[arg-type]
    lines = diff.lines()
    assert lines[0] == "pod/debug: istio -> linkerd"
    assert "  - plugins: istio" in lines and any(line.startswith("  + init containers: linkerd-init") for line in lines)
    [same] = namespace_diff(kube, "shop", "istio", injector)  # type: ignore[arg-type]
    assert same.lines() == ["pod/debug: istio -> istio", "  no change"]



class ProbeKube:
    """Answers the dry-run pods with these status annotations, one per attempt (the last repeats)."""

    def __init__(self, *statuses: str | None) -> None:
        self.statuses = list(statuses)

    def call(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"metadata": {"annotations": {} if status is None else {"meshswitch.io/status": status}}}


@pytest.mark.parametrize(
    ("status", "mode", "outcome"),
    [
        ('{"plugins":["istio"]}', "istio", None),
        (None, "native", None),
        ('{"plugins":["istio"]}', "native", "a new pod gets istio"),
        # A record the webhook did not write counts as no mesh, as the engine reads it.
        ('{"plugins":"istio"}', "istio", "a new pod gets no mesh"),
        ("not json", "istio", "a new pod gets no mesh"),
    ],
)
def test_wait_for_webhook_reads_the_dry_run_pods_status_record(status: str | None, mode: str, outcome: str | None) -> None:
    kube: Any = ProbeKube(status)
    assert wait_for_webhook(kube, "shop", mode, PLUGINS, timeout=0.0, sleep=lambda _: None) == outcome


def test_wait_for_webhook_tries_again_until_the_new_mode_is_injected() -> None:
    kube: Any = ProbeKube(None, '{"plugins":["linkerd"]}', '{"plugins":["istio"]}')
    assert wait_for_webhook(kube, "shop", "istio", PLUGINS, timeout=5.0, sleep=lambda _: None) is None
