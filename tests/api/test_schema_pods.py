"""Property: every Pod the 1.36 schema allows gets, through the real TLS server, either a patch that
applies and leaves a Pod that still validates strictly, or a refusal naming a key; never code 500.

MESHSWITCH_SCHEMA_EXAMPLES=2000 for a longer hunt than make test's.
"""

from __future__ import annotations

import base64
import copy
import http.client
import os
import re
from collections.abc import Iterator
from typing import Any

import jsonpatch
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.engine.plugins import load_plugins

from .conftest import Webhook
from .pods import PLUGIN_ANNOTATIONS, make_review
from .schema_pods import pod_validator, pods

EXAMPLES = int(os.environ.get("MESHSWITCH_SCHEMA_EXAMPLES", "300"))

# Selections: each mesh, Dapr alone and on Istio, and nothing.
SELECTIONS = [
    PLUGIN_ANNOTATIONS["istio"],
    PLUGIN_ANNOTATIONS["linkerd"],
    PLUGIN_ANNOTATIONS["envoy"],
    PLUGIN_ANNOTATIONS["dapr"],
    {**PLUGIN_ANNOTATIONS["istio"], **PLUGIN_ANNOTATIONS["dapr"]},
    {},
]
SETTING_KEYS = sorted({key for plugin in load_plugins() for setting in plugin.settings for key in setting.keys})
# Values a pod author may write: valid ones, edges, and nonsense.
SETTING_VALUES = st.one_of(
    st.sampled_from(["8080", "0", "65535", "65536", "2147483647", "2147483648", "-1", "true", "10.0.0.0/8", "*", "100m", "1Gi", ""]),
    st.sampled_from(["8080,9090", "15000-15010", "10.0.0.0/8,fd00::/8", "debug", "misc:error", "docker.io/istio/proxyv2:1.28.0"]),
    st.text(max_size=20),
)
ANNOTATIONS = st.builds(
    lambda selection, extra: {**extra, **selection},
    st.sampled_from(SELECTIONS),
    st.dictionaries(st.sampled_from(SETTING_KEYS), SETTING_VALUES, max_size=3),
)


class Client:
    """One keep-alive HTTPS connection to the server, reopened when it closes."""

    def __init__(self, webhook: Webhook) -> None:
        self.webhook = webhook
        self.conn: http.client.HTTPSConnection | None = None

    def post(self, review: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = orjson.dumps(review)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self.webhook.connection(timeout=30)
            try:
                self.conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, orjson.loads(data)
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@pytest.fixture(scope="module")
def client(webhook: Webhook) -> Iterator[Client]:
    connection = Client(webhook)
    yield connection
    connection.close()


def names_a_key(message: str, pod: dict[str, Any]) -> bool:
    annotations = pod["metadata"].get("annotations") or {}
    return bool(re.search(r"\bspec\.[a-zA-Z]+", message)) or any(key in message for key in annotations)


def test_schema_pods_get_a_patch_or_a_refusal_never_an_internal_error(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = dict.fromkeys(("generated", "valid", "patched", "skipped", "refused"), 0)
    validator = pod_validator()

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(pod=pods(ANNOTATIONS))
    def check(pod: dict[str, Any]) -> None:
        tally["generated"] += 1
        if not validator.is_valid(pod):
            return  # the API server would reject it before any webhook
        tally["valid"] += 1
        status, answer = client.post(make_review(copy.deepcopy(pod)))
        assert status == 200, answer
        response = answer["response"]
        if not response["allowed"]:
            assert response["status"]["code"] == 400, response["status"]
            message = response["status"]["message"]
            assert names_a_key(message, pod), message
            tally["refused"] += 1
            return
        if "patch" not in response:
            tally["skipped"] += 1
            return
        ops = orjson.loads(base64.b64decode(response["patch"]))
        result = jsonpatch.apply_patch(pod, ops)
        errors = sorted(validator.iter_errors(result), key=str)
        assert not errors, f"patched pod no longer validates: {errors[0].json_path}: {errors[0].message}"
        tally["patched"] += 1

    check()
    with capsys.disabled():
        print("\nschema pods: " + ", ".join(f"{k} {v}" for k, v in tally.items()))
    # Most drawn pods must be valid ones, and both outcomes must have been seen.
    assert tally["valid"] >= EXAMPLES // 2, tally
    assert tally["patched"] > 0 and tally["refused"] > 0, tally
