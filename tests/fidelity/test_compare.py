"""The comparator itself: it normalises only true equalities and reports every other difference."""

from __future__ import annotations

from tests.fidelity import normalize
from tests.fidelity.compare import differences


def pod(**container: object) -> dict[str, object]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx", **container}]}}


def test_quantity_spellings_are_equal() -> None:
    ours = pod(resources={"requests": {"cpu": "100m", "memory": "1Gi"}})
    theirs = pod(resources={"requests": {"cpu": "0.1", "memory": "1024Mi"}})
    assert differences(normalize.pod(ours), normalize.pod(theirs)) == []


def test_api_defaults_are_equal() -> None:
    ours = pod(ports=[{"containerPort": 80}], readinessProbe={"httpGet": {"port": 80, "path": "/"}})
    theirs = pod(ports=[{"containerPort": 80, "protocol": "TCP"}], readinessProbe={"httpGet": {"port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1})
    assert differences(normalize.pod(ours), normalize.pod(theirs)) == []


def test_empty_and_absent_are_equal() -> None:
    assert differences(normalize.pod(pod(resources={}, env=[])), normalize.pod(pod())) == []


def test_a_false_plain_bool_and_absent_are_equal() -> None:
    # hostNetwork is a Go bool with omitempty: the API stores no false (Istio's typed output drops it).
    def on_host(value: bool) -> dict[str, object]:
        return {"spec": {"hostNetwork": value, "containers": [{"name": "app", "image": "nginx"}]}}

    absent = {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}
    assert differences(normalize.pod(on_host(False)), normalize.pod(absent)) == []
    assert [d.path for d in differences(normalize.pod(on_host(True)), normalize.pod(absent))] == ["spec.hostNetwork"]


def test_a_different_value_is_a_difference() -> None:
    found = differences(normalize.pod(pod(resources={"limits": {"cpu": "1"}})), normalize.pod(pod(resources={"limits": {"cpu": "2"}})))
    assert [d.path for d in found] == ["spec.containers[app].resources.limits.cpu"]


def test_a_missing_env_var_is_one_difference_and_order_is_checked() -> None:
    ours = pod(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    theirs = pod(env=[{"name": "B", "value": "2"}, {"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    found = [d.path for d in differences(normalize.pod(ours), normalize.pod(theirs))]
    assert found == ["spec.containers[app].env[C]", "spec.containers[app].env[order]"]


def test_a_different_quantity_is_a_difference() -> None:
    found = differences(normalize.pod(pod(resources={"requests": {"memory": "1G"}})), normalize.pod(pod(resources={"requests": {"memory": "1Gi"}})))
    assert len(found) == 1
