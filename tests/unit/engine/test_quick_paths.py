"""The quick passes (review's `_well_typed`, decide's `_scan_containers`) never let through what
the checks that name the field would refuse: they only decide whether those checks must run."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.engine import review
from webhook.engine.decide import _check_containers, _scan_containers
from webhook.engine.errors import BadRequest, PodDenied


def good_pod() -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "app:1",
        "ports": [{"containerPort": 8080}],
        "env": [{"name": "A", "value": "1"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"httpGet": {"port": 8080}},
        "resources": {},
    }
    return {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}, "annotations": {"c": "d"}, "ownerReferences": [{}]},
        "spec": {"containers": [container], "initContainers": [dict(container, name="init")], "volumes": [{"name": "data"}]},
    }


# (path, value): each makes the pod one the naming check refuses.
BAD = [
    (("kind",), "Deployment"),
    (("metadata",), []),
    (("metadata", "name"), 3),
    (("metadata", "generateName"), []),
    (("metadata", "namespace"), {}),
    (("metadata", "labels"), []),
    (("metadata", "labels", "a"), 1),
    (("metadata", "annotations", "c"), None),
    (("metadata", "ownerReferences"), {}),
    (("metadata", "ownerReferences", 0), "x"),
    (("spec",), None),
    (("spec", "containers"), {}),
    (("spec", "containers", 0), "app"),
    (("spec", "containers", 0, "name"), 1),
    (("spec", "containers", 0, "env"), {}),
    (("spec", "containers", 0, "env", 0), "A=1"),
    (("spec", "containers", 0, "ports", 0), 8080),
    (("spec", "containers", 0, "volumeMounts"), "data"),
    (("spec", "containers", 0, "livenessProbe"), []),
    (("spec", "containers", 0, "securityContext"), "x"),
    (("spec", "initContainers"), "x"),
    (("spec", "initContainers", 0, "resources"), []),
    (("spec", "volumes", 0), "data"),
    (("spec", "volumes", 0, "name"), 5),
    (("spec", "ephemeralContainers"), [1]),
]


def with_value(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    pod = good_pod()
    node: Any = pod
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return pod


def test_a_well_typed_pod_takes_the_quick_pass() -> None:
    pod = good_pod()
    pod["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    assert review._well_typed(pod)
    assert review._check_pod(pod) is pod and "managedFields" not in pod["metadata"]
    assert review._check_pod_naming(copy.deepcopy(pod)) == pod


@pytest.mark.parametrize(("path", "value"), BAD, ids=[".".join(map(str, p)) for p, _ in BAD])
def test_a_bad_pod_gets_the_naming_check(path: tuple[Any, ...], value: Any) -> None:
    pod = with_value(path, value)
    assert not review._well_typed(pod)
    with pytest.raises(BadRequest) as quick:
        review._check_pod(copy.deepcopy(pod))
    with pytest.raises(BadRequest) as naming:
        review._check_pod_naming(pod)
    assert str(quick.value) == str(naming.value)


CONTAINERS = [
    [],
    [{"name": "app"}],
    [{"name": ""}],
    [{"image": "x"}],
    ["app"],
    [{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 65535}]}],
    [{"name": "app", "ports": [{"containerPort": 0}]}],
    [{"name": "app", "ports": [{"containerPort": True}]}],
    [{"name": "app", "ports": [{"containerPort": "80"}]}],
    [{"name": "app", "ports": ["80"]}],
    [{"name": "app", "ports": {"containerPort": 80}}],
    [{"name": 7}],
]


@pytest.mark.parametrize("containers", CONTAINERS)
@pytest.mark.parametrize("init", [None, [], [{"name": "init"}], [{"name": "init", "ports": [{}]}], "x"])
def test_scan_is_sure_only_when_the_check_passes(containers: list[Any], init: Any) -> None:
    pod: dict[str, Any] = {"spec": {"containers": containers}}
    if init is not None:
        pod["spec"]["initContainers"] = init
    names, app, valid = _scan_containers(pod)
    try:
        _check_containers(pod)
        passes = True
    except PodDenied:
        passes = False
    assert not valid or passes
    if passes and isinstance(init, list | None):
        assert valid  # the quick answer is the usual one
    sections = [s for s in (pod["spec"].get("initContainers") or (), containers)]
    assert names == {c["name"] for s in sections for c in s if isinstance(c, dict) and isinstance(c.get("name"), str)}
    assert app == {c["name"] for c in containers if isinstance(c, dict) and isinstance(c.get("name"), str)}
