"""`meshswitch.io/status` stays a record the API server accepts and meshswitch reads back (SPEC.md
rule 7): the pod's originals are left out where they would pass the API server's bound on a pod's
annotations, and a record that cannot be read never leads to a second injection."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.helpers import apply, make_injector, make_pod, namespace
from webhook.engine import reasons
from webhook.engine.errors import PodDenied
from webhook.engine.patch import uninject
from webhook.engine.settings import MAX_VALUES
from webhook.engine.status import ANNOTATIONS_LIMIT, STATUS_KEY, annotation_bytes, read_status

INJECTOR = make_injector()
ISTIO_NS = namespace("demo", {"istio-injection": "enabled"})


def probed(headers: list[dict[str, str]], **container: Any) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/ready", "port": 8080, "httpHeaders": headers}}
    return {"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}], "readinessProbe": probe, **container}


def many_containers(count: int) -> list[dict[str, Any]]:
    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": 8080}}

    return [
        {
            "name": f"c{i}", "image": "nginx", "ports": [{"containerPort": 8080}],
            "readinessProbe": probe("/ready"), "livenessProbe": probe("/live"), "startupProbe": probe("/started"),
            "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo started"]}}},
        }  # fmt: skip
        for i in range(count)
    ]


def injected(pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod as the API server stores it after our patch, and its status record as read back."""
    result = INJECTOR.inject(pod, ISTIO_NS)
    assert result.reason.code == reasons.INJECTED and result.patch
    out = apply(pod, result.patch)
    status = read_status(out["metadata"]["annotations"])
    assert status, f"the record written ({len(out['metadata']['annotations'][STATUS_KEY])} bytes) is refused by read_status"
    return out, status


def mesh_own_bytes(out: dict[str, Any]) -> int:
    """The annotations the mesh's own injector leaves: ours but for meshswitch.io/status."""
    return annotation_bytes({k: v for k, v in out["metadata"]["annotations"].items() if k != STATUS_KEY})


def assert_idempotent(out: dict[str, Any]) -> None:
    again = INJECTOR.inject(out, ISTIO_NS)
    assert again.reason.code == reasons.ALREADY_INJECTED and again.patch == [], again.reason
    assert not any(STATUS_KEY in w for w in again.warnings), again.warnings


LARGE_PODS = {
    "one-270000-char-probe-header": lambda: make_pod(containers=[probed([{"name": "X-Token", "value": "x" * 270_000}])]),
    "1000-containers-with-their-own-100k-annotation": lambda: make_pod(
        containers=many_containers(1000), annotations={"example.com/notes": "n" * 100_000}
    ),
    "own-annotations-near-the-limit": lambda: make_pod(
        containers=[probed([{"name": "X-Token", "value": "t" * 2_000}])], annotations={"example.com/blob": "b" * 260_000}
    ),
    "non-ascii-header": lambda: make_pod(containers=[probed([{"name": "X-Name", "value": "é" * 140_000}])]),
}


@pytest.mark.parametrize("make", LARGE_PODS.values(), ids=LARGE_PODS)
def test_rule7_status_never_takes_the_pod_past_the_api_servers_annotation_limit(make: Any) -> None:
    out, status = injected(make())
    assert mesh_own_bytes(out) <= ANNOTATIONS_LIMIT, "precondition: the mesh's own injected pod is accepted"
    assert annotation_bytes(out["metadata"]["annotations"]) <= ANNOTATIONS_LIMIT
    assert status["omitted"] == ["probes"], "the originals that did not fit are left out, and the record says so"
    assert status["plugins"] == ["istio"] and status["initContainers"] == ["istio-init", "istio-proxy"]
    assert_idempotent(out)
    with pytest.raises(ValueError, match="left out probes .* cannot restore"):
        uninject(out)


def test_rule7_a_probe_header_list_of_more_values_than_the_reader_takes_is_read_back() -> None:
    """6700 headers {name: a, value: ""}: a 161 KB record, under the byte bound but over MAX_VALUES."""
    pod = make_pod(containers=[probed([{"name": "a", "value": ""}] * 6700)])
    out, status = injected(pod)
    assert status["omitted"] == ["probes"]
    assert_idempotent(out)


@pytest.mark.parametrize("headers", [100, 3000, 6600, 6700, 20_000])
@pytest.mark.parametrize("value", [0, 10, 1_000])
def test_rule7_the_largest_records_round_trip(headers: int, value: int) -> None:
    pod = make_pod(containers=[probed([{"name": f"h{i}", "value": "v" * value} for i in range(headers)])])
    out, status = injected(pod)
    assert annotation_bytes(out["metadata"]["annotations"]) <= ANNOTATIONS_LIMIT
    written = out["metadata"]["annotations"][STATUS_KEY]
    assert status == orjson.loads(written)
    if "omitted" not in status:
        assert uninject(out) == pod, "a whole record restores exactly"
    assert_idempotent(out)


def test_rule7_a_record_just_within_the_bound_keeps_the_originals() -> None:
    small, _ = injected(make_pod(containers=[probed([{"name": "X-Token", "value": ""}])]))
    other, base = mesh_own_bytes(small), len(small["metadata"]["annotations"][STATUS_KEY])
    fits = ANNOTATIONS_LIMIT - other - len(STATUS_KEY) - base  # header text the whole record can still hold
    out, status = injected(make_pod(containers=[probed([{"name": "X-Token", "value": "v" * fits}])]))
    assert annotation_bytes(out["metadata"]["annotations"]) == ANNOTATIONS_LIMIT and "omitted" not in status
    pod = make_pod(containers=[probed([{"name": "X-Token", "value": "v" * (fits + 1)}])])
    out, status = injected(pod)
    assert annotation_bytes(out["metadata"]["annotations"]) < ANNOTATIONS_LIMIT and status["omitted"] == ["probes"]


def test_the_common_pod_keeps_the_whole_record() -> None:
    pod = make_pod(containers=[probed([{"name": "X-Token", "value": "secret"}])])
    out, status = injected(pod)
    assert "omitted" not in status and status["probes"]["app"]["readinessProbe"] == pod["spec"]["containers"][0]["readinessProbe"]
    assert uninject(out) == pod


def test_originals_once_left_out_stay_out_when_another_plugin_joins() -> None:
    out, _ = injected(make_pod(containers=[probed([{"name": "X-Token", "value": "x" * 270_000}])]))
    out["metadata"]["annotations"]["dapr.io/enabled"] = "true"
    result = INJECTOR.inject(out, ISTIO_NS)
    assert result.plugins == ("dapr",)
    joined = apply(out, result.patch)
    status = read_status(joined["metadata"]["annotations"])
    assert status and status["plugins"] == ["istio", "dapr"]
    assert status["omitted"] == ["probes", "appended"]
    assert not any(name in status for name in ("probes", "env", "appended"))
    with pytest.raises(ValueError, match="cannot restore"):
        uninject(joined)


def test_annotations_with_no_room_for_the_record_are_refused_naming_it() -> None:
    """The mesh's own pod is accepted, but not even the names of what was injected fit: a clear
    refusal rather than the API server's "metadata.annotations: Too long"."""
    probe = make_pod()
    other = mesh_own_bytes(injected(probe)[0])
    pod = make_pod(annotations={"example.com/blob": "b" * (ANNOTATIONS_LIMIT - other - len("example.com/blob") - 30)})
    with pytest.raises(PodDenied) as refused:
        INJECTOR.inject(pod, ISTIO_NS)
    assert refused.value.code == reasons.INVALID_POD
    assert STATUS_KEY in refused.value.message and str(ANNOTATIONS_LIMIT) in refused.value.message


UNREADABLE = {
    "not-json": "{not json",
    "wrong-shape": '{"plugins": "istio"}',
    "more-values-than-the-reader-takes": orjson.dumps({"plugins": ["istio"], "x": [0] * (MAX_VALUES + 1)}).decode(),
}


@pytest.mark.parametrize("record", UNREADABLE.values(), ids=UNREADABLE)
def test_rule7_an_unreadable_record_on_a_pod_that_carries_the_mesh_is_never_injected_twice(record: str) -> None:
    out, _ = injected(make_pod())
    out["metadata"]["annotations"][STATUS_KEY] = record
    result = INJECTOR.inject(out, ISTIO_NS)
    assert result.reason.code == reasons.ALREADY_INJECTED and result.patch == [], result.reason
    assert STATUS_KEY in result.reason.message and "istio-init, istio-proxy" in result.reason.message
    assert any(w.startswith(f"annotation {STATUS_KEY}=") and "treated as injected" in w for w in result.warnings), result.warnings


def test_rule7_an_unreadable_record_on_a_pod_without_the_mesh_is_treated_as_absent() -> None:
    pod = make_pod(annotations={STATUS_KEY: "{not json"})
    result = INJECTOR.inject(pod, ISTIO_NS)
    assert result.reason.code == reasons.INJECTED and result.patch
    assert any("treated as absent" in w for w in result.warnings)
