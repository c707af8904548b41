"""End to end: one pod author's huge settings cannot fail anyone else's pod create.

The API server checks the 256 KiB limit on annotations in validation, after mutating admission, so
`kubectl create --dry-run=server` delivers an annotation of up to the 3 MiB request limit to the
webhook. Before the per-setting limits, eight such dry runs made a normal create fail.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from webhook.dev import cluster as dc

from .conftest import NamespaceFactory
from .test_webhook import DENIED, MODE, assert_injected, create_pod, denial, pod_body

pytestmark = pytest.mark.e2e

HOSTILE_CLIENTS = 8
HOSTILE_ROUNDS = 3
NORMAL_CREATES = 24
# The API server refuses a request body over 3 MiB itself; this annotation stays under it.
MAXIMAL = ",".join(str(1 + i % 65535) for i in range(560_000))[: 3 * 1024 * 1024 - 64 * 1024]


def test_maximal_dry_run_does_not_fail_a_concurrent_create(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={MODE: "istio"})
    hostile = pod_body("hostile", annotations={"traffic.sidecar.istio.io/excludeOutboundPorts": MAXIMAL})
    refusals: list[str] = []
    unexpected: list[str] = []
    stop = threading.Event()

    def attack() -> None:
        for _ in range(HOSTILE_ROUNDS):
            if stop.is_set():
                return
            try:
                create_pod(kube_client, ns, hostile, dry_run=True)
                unexpected.append("a maximal annotation was admitted")
            except ApiException as exc:
                refusals.append(denial(exc) if exc.status == 400 else f"HTTP {exc.status}: {exc.body!r:.300}")

    attackers = [threading.Thread(target=attack) for _ in range(HOSTILE_CLIENTS)]
    for thread in attackers:
        thread.start()
    created, failures = 0, []
    started = time.monotonic()
    try:
        for index in range(NORMAL_CREATES):
            try:
                pod = create_pod(kube_client, ns, pod_body(f"web-{index}"))
                assert_injected(pod, "istio")
                created += 1
            except ApiException as exc:
                failures.append(f"web-{index}: HTTP {exc.status}: {exc.body!r:.300}")
    finally:
        stop.set()
        for thread in attackers:
            thread.join(120)
    assert not failures, failures
    assert created == NORMAL_CREATES
    assert not unexpected, unexpected
    assert refusals, "the hostile dry runs must have reached the webhook"
    for message in refusals:
        # Refused by the webhook, naming the key and the limit, quoting a short prefix only.
        assert DENIED in message, message
        assert "traffic.sidecar.istio.io/excludeOutboundPorts" in message and "longer than" in message, message
        assert len(message) < 1024, f"the refusal repeats the value ({len(message)} characters)"
    assert time.monotonic() - started < 120
