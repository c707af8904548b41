"""The golden cases through the real server over TLS: the same expected pods as the CLI gives."""

from __future__ import annotations

import base64

import jsonpatch
import orjson
import pytest

from tests.api.conftest import Webhook
from tests.api.pods import make_review
from tests.golden import CASES, UPDATE, case, check


@pytest.mark.skipif(UPDATE, reason="updating golden files from the CLI path")
@pytest.mark.parametrize("name", CASES)
def test_golden_case_through_the_webhook(name: str, webhook: Webhook) -> None:
    pod = case(name)
    review = make_review(pod, namespace=pod["metadata"]["namespace"])
    answer = webhook.post(review)
    assert answer.status == 200
    response = orjson.loads(answer.body)["response"]
    assert response["allowed"] is True and response["uid"] == review["request"]["uid"]
    patch = orjson.loads(base64.b64decode(response["patch"]))
    check(name, jsonpatch.apply_patch(pod, patch))
