"""`make demo`'s table, the pure parts."""

from __future__ import annotations

from webhook.dev.demo import _said, pod_reasons


def test_webhook_said_reads_only_the_pods_reviews() -> None:
    """The Namespace's /validate review is logged under its name too: the table said
    `valid-labels, then already-injected on reinvocation`, and `valid-labels` for an opted-out pod
    the webhook never saw (`not called (objectSelector)`)."""
    log = [
        {"msg": "review", "namespace": "demo-istio", "kind": "Namespace", "reason": "valid-labels"},
        {"msg": "review", "namespace": "demo-istio", "kind": "Pod", "reason": "injected"},
        {"msg": "review", "namespace": "demo-other", "kind": "Pod", "reason": "native-mode"},
        {"msg": "review", "namespace": "demo-istio", "kind": "Pod", "reason": "already-injected"},
        {"msg": "review", "namespace": "demo-opted-out", "kind": "Namespace", "reason": "valid-labels"},
    ]
    assert _said(pod_reasons(log, "demo-istio")) == "injected, then already-injected on reinvocation"
    assert _said(pod_reasons(log, "demo-opted-out")) == "not called (objectSelector)"
