"""`serve --workers N`: N processes share the port through SO_REUSEPORT, all of them answer, and
SIGTERM drains every one."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from .conftest import start_webhook
from .pods import make_pod, make_review


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_two_workers_share_the_port_and_all_answer(tmp_path: Path) -> None:
    webhook = start_webhook(tmp_path, extra=["--workers", "2"])
    try:
        workers = children(webhook.process.pid)
        assert len(workers) == 2
        answered: set[int] = set()
        deadline = time.monotonic() + 30
        # Fresh connections land on either listener; both must show up in the review log.
        while len(answered) < 2 and time.monotonic() < deadline:
            answer = webhook.post(make_review(make_pod(namespace="istio-demo")))
            assert answer.status == 200 and answer.json()["response"]["allowed"] is True
            answered = {orjson.loads(line)["pid"] for line in webhook.log().splitlines() if '"msg":"review"' in line}
        assert answered == set(workers), "each worker should answer some connections"
    finally:
        code = webhook.stop(timeout=20)
    assert code == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)


def test_workers_must_be_a_positive_number(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "webhook.server", "--cert-dir", str(tmp_path), "--no-kube", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--workers" in result.stderr and "at least 1" in result.stderr
