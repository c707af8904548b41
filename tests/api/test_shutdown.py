"""SIGTERM: stop accepting, finish what is in flight, exit 0; a stream of reviews loses none."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable

import orjson

from .conftest import Webhook
from .pods import PLUGIN_ANNOTATIONS, make_pod, make_review

CLIENTS = 8


def stream(webhook: Webhook, stop: threading.Event, tally: Counter[str], lock: threading.Lock) -> None:
    """Send reviews on a keep-alive connection until the server stops taking connections.

    A failure to connect means the request never reached the server; a failure after the
    request was sent is a lost review.
    """
    body = orjson.dumps(make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"], containers=3, env=30)))
    conn: http.client.HTTPSConnection | None = None
    while True:
        if conn is None:
            if stop.is_set():
                return
            conn = webhook.connection(timeout=10)
            try:
                conn.connect()
            except (OSError, ssl.SSLError):
                with lock:
                    tally["refused"] += 1
                return
        try:
            conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            result = "ok" if response.status == 200 else f"status {response.status}"
            closing = response.will_close
        except (OSError, http.client.HTTPException) as exc:
            result, closing = f"lost: {type(exc).__name__}", True
        with lock:
            tally[result] += 1
        if closing:
            conn.close()
            conn = None


def test_sigterm_during_a_stream_loses_no_review_and_exits_0(own_webhook: Callable[..., Webhook]) -> None:
    webhook = own_webhook(extra=["--drain-seconds", "5"])
    stop, lock = threading.Event(), threading.Lock()
    tally: Counter[str] = Counter()
    threads = [threading.Thread(target=stream, args=(webhook, stop, tally, lock)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    with lock:
        before = tally["ok"]
    assert before > 0, webhook.log()
    webhook.process.terminate()
    code = webhook.process.wait(timeout=30)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert code == 0, webhook.log()
    lost = {result: n for result, n in tally.items() if result not in ("ok", "refused")}
    assert not lost, f"{lost} ({tally['ok']} answered)"
    assert tally["ok"] > before
    assert "Shutting down" in webhook.log()


def test_sigterm_when_idle_exits_0_promptly(own_webhook: Callable[..., Webhook]) -> None:
    webhook = own_webhook()
    started = time.monotonic()
    assert webhook.stop() == 0
    assert time.monotonic() - started < 5
