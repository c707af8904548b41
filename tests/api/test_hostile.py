"""Issue 10's defects as regression tests, through the real server over TLS.

Pods the API server accepts get a patch or a reasoned refusal, never InternalError; oversized
values are refused before parsing, briefly; oversized headers, stalled clients and aborted
connections cost bounded time and memory.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import orjson
import pytest

from webhook.engine.plugins import load_plugins

from .conftest import ROOT, Webhook
from .pods import PLUGIN_ANNOTATIONS, make_pod, make_review, maximal_annotations

READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """A server with the default body limit (4 MiB) and a short read deadline, to test stalls quickly."""
    from .conftest import start_webhook

    server = start_webhook(
        tmp_path_factory.mktemp("hostile"), extra=["--read-timeout-seconds", str(READ_TIMEOUT), "--drain-seconds", "0.5"]
    )
    yield server
    assert server.stop() == 0, server.log()


def review_of(pod: dict[str, Any]) -> dict[str, Any]:
    return make_review(pod)


def pod_with(mode: str, **container: Any) -> dict[str, Any]:
    pod = make_pod(annotations=PLUGIN_ANNOTATIONS[mode])
    pod["spec"]["containers"][0].update(container)
    return pod


def answer_of(webhook: Webhook, pod: dict[str, Any]) -> dict[str, Any]:
    answer = webhook.post(review_of(pod))
    assert answer.status == 200, answer.body[:500]
    response: dict[str, Any] = answer.json()["response"]
    return response


def assert_no_server_path(text: str) -> None:
    assert str(ROOT) not in text and "templates/" not in text and ".py" not in text, text


def patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ops = orjson.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(pod, ops)
    return result


# --- pods the API server accepts: a patch, never InternalError -----------------------------------


def test_probe_on_an_undeclared_named_port_is_left_alone(hostile: Webhook) -> None:
    probe = {"httpGet": {"path": "/live", "port": "admin"}, "periodSeconds": 10}
    pod = pod_with("istio", livenessProbe=probe)
    response = answer_of(hostile, pod)
    assert response["allowed"] is True, response
    result = patched(pod, response)
    web = result["spec"]["containers"][0]
    assert web["livenessProbe"] == probe, "Istio leaves a probe on an unknown named port as it is"
    assert web["readinessProbe"]["httpGet"]["path"] == "/app-health/web/readyz", "the other probes are rewritten"


def test_tcp_probe_on_an_undeclared_named_port_is_left_alone(hostile: Webhook) -> None:
    probe = {"tcpSocket": {"port": "grpc-admin"}}
    pod = pod_with("istio", startupProbe=probe)
    response = answer_of(hostile, pod)
    assert response["allowed"] is True, response
    assert patched(pod, response)["spec"]["containers"][0]["startupProbe"] == probe


@pytest.mark.parametrize(
    "status",
    [
        '{"plugins":"istio"}', "[1,2]", "not json", '{"plugins":["dapr"],"created":3}', '{"env":{"web":5}}', '{"probes":[]}',
        # Parts that build_patch extends or uninject writes back into the pod.
        '{"appended":[]}', '{"appended":{"web":{"env":5}}}', '{"replaced":[]}', '{"replaced":{"k":1}}', '{"declared":[]}',
        '{"declared":{"istio-proxy":{"section":"volumes","index":0,"container":{}}}}', '{"probes":{"web":{"readinessProbe":5}}}',
        '{"digest":{"istio":[]}}', '{"moved":{"enable-core-dump":{"section":"initContainers","index":-1}}}', '{"moved":{"x":5}}',
        '{"replacedLabels":{"dapr.io/app-id":null}}', '{"created":["/x"],"x":' + '{"a":' * 300 + "1" + "}" * 300 + "}",
    ],
)  # fmt: skip
@pytest.mark.parametrize("mode", ["istio", "linkerd", "dapr"])
def test_malformed_status_is_treated_as_absent_with_a_warning(hostile: Webhook, status: str, mode: str) -> None:
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS[mode], "meshswitch.io/status": status})
    response = answer_of(hostile, pod)
    assert response["allowed"] is True, response
    assert response.get("patch"), "a status that is not ours records nothing: the pod is injected"
    assert any("meshswitch.io/status" in w and "treated as absent" in w for w in response["warnings"]), response
    written = orjson.loads(patched(pod, response)["metadata"]["annotations"]["meshswitch.io/status"])
    assert written["plugins"] == [mode]


# --- shapes the API server rejects: a refusal naming the field -----------------------------------


# Each plugin's init containers and its proxy: what a pod gets, whatever containers it has.
SIDECARS = {
    "istio": (["istio-init"], "istio-proxy"),
    "linkerd": (["linkerd-init"], "linkerd-proxy"),
    "envoy": (["envoy-init"], "envoy"),
    "dapr": ([], "daprd"),
}


@pytest.mark.parametrize("style", ["classic", "native"])
@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy", "dapr"])
def test_no_containers_gets_the_plugins_patch(hostile: Webhook, mode: str, style: str) -> None:
    # As the meshes' own injectors do (Dapr's and Istio's add their sidecar to the empty list): with
    # classic sidecars the pod is the proxy alone, which the API server accepts; with native ones it
    # still has no containers, and the API server refuses it with its own message.
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS[mode], "meshswitch.io/sidecar": style})
    pod["spec"]["containers"] = []
    response = answer_of(hostile, pod)
    assert response["allowed"] is True and response.get("patch"), response
    spec = patched(pod, response)["spec"]
    inits, proxy = SIDECARS[mode]
    init_containers = [(c["name"], c.get("restartPolicy")) for c in spec.get("initContainers", [])]
    containers = [c["name"] for c in spec["containers"]]
    if style == "classic":
        assert (init_containers, containers) == ([(name, None) for name in inits], [proxy]), spec
    else:
        assert (init_containers, containers) == ([*((name, None) for name in inits), (proxy, "Always")], []), spec


@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy", "dapr"])
def test_windows_pod_is_refused_naming_the_field(hostile: Webhook, mode: str) -> None:
    # The sidecars' Linux security fields are forbidden in a windows pod: the API server would refuse
    # the injected pod with a message about a container the user never wrote.
    pod = make_pod(annotations=PLUGIN_ANNOTATIONS[mode])
    pod["spec"]["os"] = {"name": "windows"}
    response = answer_of(hostile, pod)
    assert response["allowed"] is False and response["status"]["code"] == 400, response
    assert response["status"]["message"].startswith("spec.os.name: Unsupported value"), response
    pod["spec"]["os"] = {"name": "linux"}
    assert answer_of(hostile, pod)["allowed"] is True


@pytest.mark.parametrize("section", ["containers", "initContainers"])
@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy", "dapr"])
def test_nameless_container_is_refused_naming_the_field(hostile: Webhook, section: str, mode: str) -> None:
    pod = make_pod(annotations=PLUGIN_ANNOTATIONS[mode])
    pod["spec"].setdefault(section, [{"name": "x", "image": "busybox"}])
    del pod["spec"][section][0]["name"]
    response = answer_of(hostile, pod)
    assert response["allowed"] is False and response["status"]["code"] == 400, response
    assert f"spec.{section}[0].name" in response["status"]["message"]


@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy", "dapr"])
def test_port_without_container_port_is_refused_naming_the_field(hostile: Webhook, mode: str) -> None:
    pod = pod_with(mode, ports=[{"name": "http", "protocol": "TCP"}])
    response = answer_of(hostile, pod)
    assert response["allowed"] is False and response["status"]["code"] == 400, response
    assert "spec.containers[0].ports[0].containerPort" in response["status"]["message"]


@pytest.mark.parametrize(
    "where, value, field",
    [
        ("container", {"ports": {"http": 8080}}, "spec.containers[0].ports"),
        ("container", {"ports": ["http"]}, "spec.containers[0].ports[0]"),
        ("container", {"env": "A=1"}, "spec.containers[0].env"),
        ("container", {"livenessProbe": ["x"]}, "spec.containers[0].livenessProbe"),
        ("metadata", {"ownerReferences": {"kind": "ReplicaSet"}}, "metadata.ownerReferences"),
        ("metadata", {"ownerReferences": ["rs"]}, "metadata.ownerReferences[0]"),
    ],
)
def test_wrong_json_types_are_a_bad_request_naming_the_field(hostile: Webhook, where: str, value: Any, field: str) -> None:
    pod = make_pod(annotations=PLUGIN_ANNOTATIONS["istio"])
    (pod["spec"]["containers"][0] if where == "container" else pod["metadata"]).update(value)
    answer = hostile.post(review_of(pod))
    assert answer.status == 400, answer.body
    status = answer.json()
    assert status["kind"] == "Status" and field in status["message"], status


# --- settings: bounded by their field, refused before parsing, quoted briefly ---------------------


@pytest.mark.parametrize(
    "key, value, accepted",
    [
        ("readiness.status.sidecar.istio.io/periodSeconds", "999999999999999999", "2147483647"),
        ("readiness.status.sidecar.istio.io/failureThreshold", "2147483648", "2147483647"),
        ("status.sidecar.istio.io/port", "65536", "65535"),
    ],
)
def test_integer_settings_are_bounded_by_their_field(hostile: Webhook, key: str, value: str, accepted: str) -> None:
    response = answer_of(hostile, make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], key: value}))
    assert response["allowed"] is False, response
    message = response["status"]["message"]
    assert key in message and value in message and accepted in message, message


def test_int32_maximum_is_accepted(hostile: Webhook) -> None:
    key = "readiness.status.sidecar.istio.io/periodSeconds"
    response = answer_of(hostile, make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], key: "2147483647"}))
    assert response["allowed"] is True and response.get("patch"), response


HUGE = 3_900_000


@pytest.mark.parametrize(
    "mode, key, unit",
    [
        ("istio", "traffic.sidecar.istio.io/excludeOutboundPorts", "8080,"),
        ("istio", "traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.0/8,"),
        ("istio", "sidecar.istio.io/componentLogLevel", "misc:error,"),
        ("istio", "sidecar.istio.io/proxyCPU", "1"),
        ("istio", "meshswitch.io/mode", "x"),
        ("linkerd", "config.linkerd.io/opaque-ports", "25,"),
        ("linkerd", "config.linkerd.io/skip-subnets", "10.0.0.0/8,"),
        ("dapr", "dapr.io/app-id", "a"),
    ],
)
def test_oversized_value_is_refused_quickly_and_quoted_briefly(hostile: Webhook, mode: str, key: str, unit: str) -> None:
    value = (unit * (HUGE // len(unit) + 1))[:HUGE]
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS[mode], key: value})
    started = time.monotonic()
    response = answer_of(hostile, pod)
    elapsed = time.monotonic() - started
    assert response["allowed"] is False, response
    message = response["status"]["message"]
    assert key in message and len(message) < 600, message[:600]
    assert unit.rstrip(",")[:8] in message, "a short prefix of the value is quoted"
    assert elapsed < 2.0, f"{elapsed:.2f} s for a refusal"


@pytest.mark.parametrize("mode", ["istio", "linkerd", "envoy"])
def test_maximal_settings_are_accepted(hostile: Webhook, mode: str) -> None:
    annotations = maximal_annotations(load_plugins()[mode])
    assert annotations, "every mesh has list settings"
    pod = make_pod(annotations={**PLUGIN_ANNOTATIONS[mode], **annotations})
    response = answer_of(hostile, pod)
    assert response["allowed"] is True and response.get("patch"), str(response)[:500]


def test_normal_reviews_are_answered_while_huge_ones_arrive(hostile: Webhook) -> None:
    value = ("8080," * 700_000)[:3_500_000]
    huge = orjson.dumps(review_of(make_pod(annotations={**PLUGIN_ANNOTATIONS["istio"], "traffic.sidecar.istio.io/excludeOutboundPorts": value})))
    stop = threading.Event()

    def flood() -> None:
        for _ in range(20):
            if stop.is_set():
                return
            hostile.post(huge)

    floods = [threading.Thread(target=flood) for _ in range(4)]
    for thread in floods:
        thread.start()
    try:
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            response = answer_of(hostile, make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]))
            slowest = max(slowest, time.monotonic() - started)
            assert response["allowed"] is True
    finally:
        stop.set()
        for thread in floods:
            thread.join(60)
    assert slowest < 2.0, f"a normal review waited {slowest:.2f} s"


# --- no server paths in any answer ---------------------------------------------------------------


def test_internal_error_answer_names_no_server_path() -> None:
    from tests.api.test_failures import Broken as BrokenEngine
    from tests.api.test_failures import post

    from webhook.cluster.namespaces import StaticNamespaces
    from webhook.server.app import create_app
    from webhook.server.reviewlog import ReviewLog

    from webhook.engine.errors import ConfigError

    class PathError:
        plugins = ()

        def __init__(self, error: type[Exception]) -> None:
            self.error = error

        def inject(self, pod: Any, namespace: Any) -> Any:
            raise self.error(f"{ROOT}/templates/istio.yaml:219: template error: list object has no element 0")

    for engine in (PathError(ValueError), PathError(ConfigError), BrokenEngine()):
        app = create_app(injector=engine, namespaces=StaticNamespaces(), review_log=ReviewLog(fd=-1))  # type: ignore[arg-type]
        response = post(app, make_review(make_pod())).json()["response"]
        assert response["status"]["code"] == 500
        assert_no_server_path(response["status"]["message"])


# --- headers, deadlines, protocol errors ---------------------------------------------------------


def raw(webhook: Webhook, data: bytes, *, then: bytes = b"", wait: float = 10.0) -> tuple[bytes, float]:
    """Send bytes over TLS and read until the server closes; returns what came back and how long it
    took. ``then`` is sent after a pause, so that the server gets it in a later read."""
    sock = socket.create_connection(("127.0.0.1", webhook.port))
    tls = webhook.context.wrap_socket(sock, server_hostname="localhost")
    tls.settimeout(wait)
    started = time.monotonic()
    out = b""
    try:
        if data:
            tls.sendall(data)
        if then:
            time.sleep(0.3)
            try:
                tls.sendall(then)
            except OSError:
                pass  # the server may already have closed
        while chunk := tls.recv(65536):
            out += chunk
    except (ssl.SSLError, OSError):
        pass
    finally:
        tls.close()
    return out, time.monotonic() - started


def status_of(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    assert b"connection: close" in head.lower(), head
    status: dict[str, Any] = orjson.loads(body)
    assert status["kind"] == "Status" and status["status"] == "Failure"
    return int(head.split(b" ")[1]), status


POST = b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    "request_bytes, limit",
    [
        (POST + b"X-Big: " + b"a" * (64 * 1024 * 1024) + b"\r\n\r\n", "32768"),
        (POST + b"X-Line: " + b"a" * 9000 + b"\r\n\r\n", "8192"),
        (POST + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(400)) + b"\r\n", "32768"),
        (b"POST /" + b"a" * 40000 + b" HTTP/1.1\r\n\r\n", "32768"),
    ],
    ids=["64MiB-header", "long-line", "many-headers", "long-url"],
)
def test_oversized_headers_get_431_at_once(hostile: Webhook, request_bytes: bytes, limit: str) -> None:
    answer, elapsed = raw(hostile, request_bytes)
    status, body = status_of(answer)
    assert status == 431 and limit in body["message"], body
    assert elapsed < 3.0


@pytest.mark.parametrize(
    "request_bytes",
    [b"", POST, POST + b"Content-Length: 100\r\n\r\n{\"apiVersion\""],
    ids=["nothing", "partial-headers", "partial-body"],
)
def test_stalled_clients_are_closed_by_the_deadline(hostile: Webhook, request_bytes: bytes) -> None:
    answer, elapsed = raw(hostile, request_bytes)
    status, body = status_of(answer)
    assert status == 408 and body["reason"] == "Timeout", body
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 2.0, elapsed


def test_a_client_that_never_handshakes_is_closed_by_the_deadline(hostile: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", hostile.port)) as sock:
        sock.settimeout(10)
        started = time.monotonic()
        try:
            sock.recv(1)
        except OSError:
            pass
        assert time.monotonic() - started < READ_TIMEOUT + 2.0


def test_keep_alive_request_after_an_answer_has_its_own_deadline(hostile: Webhook) -> None:
    body = orjson.dumps(review_of(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"])))
    complete = POST + b"Content-Length: %d\r\n\r\n" % len(body) + body
    answer, elapsed = raw(hostile, complete + POST)  # one whole request, then half of the next
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    second = answer[answer.index(b"HTTP/1.1 408") :]
    assert status_of(second)[0] == 408
    assert elapsed < READ_TIMEOUT + 2.0


@pytest.mark.parametrize("garbage", [b"GARBAGE\r\n\r\n", b"POST /mutate HTTP/1.1\r\nContent-Length: x\r\n\r\n"])
def test_unparsable_requests_get_a_json_400(hostile: Webhook, garbage: bytes) -> None:
    status, body = status_of(raw(hostile, garbage)[0])
    assert status == 400 and body["reason"] == "BadRequest", body


def smuggling_upgrade() -> tuple[bytes, bytes]:
    """Headers asking for ``Upgrade: h2c``, and a body that is itself a whole review request."""
    inner = orjson.dumps(make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]), uid="inner-smuggled"))
    body = POST + b"Content-Length: %d\r\n\r\n" % len(inner) + inner
    head = POST + b"Upgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head, body


@pytest.mark.parametrize("body_read", ["same-read", "later-read"])
def test_an_upgrade_request_gets_a_json_400_and_the_connection_closes(hostile: Webhook, body_read: str) -> None:
    """httptools stops at the headers of an upgrade request: the app got an empty body, and the
    body's bytes were read as the next request (a review smuggled inside it was answered 200), or,
    in the same read, dropped with whatever was pipelined after them, left unanswered."""
    head, body = smuggling_upgrade()
    healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    if body_read == "same-read":
        answer, elapsed = raw(hostile, head + body + healthz)
    else:
        answer, elapsed = raw(hostile, head, then=body + healthz)
    assert len(re.findall(rb"HTTP/1\.1 \d{3} ", answer)) == 1, answer  # one answer, nothing after it
    assert b"inner-smuggled" not in answer, answer
    status, status_body = status_of(answer)
    assert status == 400 and status_body["reason"] == "BadRequest", status_body
    assert "Upgrade header" in status_body["message"], status_body
    assert elapsed < READ_TIMEOUT, f"closed after {elapsed:.2f} s: not at once"


def test_a_connect_request_gets_a_json_400(hostile: Webhook) -> None:
    status, body = status_of(raw(hostile, b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")[0])
    assert status == 400 and "CONNECT" in body["message"], body


def test_an_upgrade_header_without_connection_upgrade_is_a_normal_request(hostile: Webhook) -> None:
    """Without ``Connection: upgrade`` the header asks for nothing (RFC 9110 7.8): the body is read by
    its Content-Length and the connection stays open for the next request."""
    review = orjson.dumps(make_review(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]), uid="with-upgrade-header"))
    request = POST + b"Upgrade: h2c\r\nContent-Length: %d\r\n\r\n" % len(review) + review
    healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer, _ = raw(hostile, request + healthz)
    assert answer.startswith(b"HTTP/1.1 200") and b"with-upgrade-header" in answer, answer[:300]
    assert answer.count(b"HTTP/1.1 200") == 2 and answer.endswith(b'{"status":"ok"}'), answer[-300:]


@pytest.mark.parametrize("method, path, status", [("GET", "/nope", 404), ("POST", "/healthz", 405), ("GET", "/mutate", 405)])
def test_unknown_paths_and_methods_get_a_json_status(hostile: Webhook, method: str, path: str, status: int) -> None:
    answer = hostile.request(method, path, b"{}" if method == "POST" else None, {"Content-Type": "application/json"})
    assert answer.status == status and answer.headers["content-type"] == "application/json", answer
    body = answer.json()
    assert body["kind"] == "Status" and body["code"] == status, body


def test_stalled_clients_do_not_hold_the_others(hostile: Webhook) -> None:
    sockets = []
    try:
        for _ in range(100):
            tls = hostile.context.wrap_socket(socket.create_connection(("127.0.0.1", hostile.port)), server_hostname="localhost")
            tls.sendall(POST)
            sockets.append(tls)
        started = time.monotonic()
        response = answer_of(hostile, make_pod(annotations=PLUGIN_ANNOTATIONS["istio"]))
        assert response["allowed"] is True and time.monotonic() - started < 1.0
    finally:
        for tls in sockets:
            tls.close()


# --- memory and shutdown ------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_aborted_connections_do_not_leak(own_webhook: Callable[..., Webhook]) -> None:
    """Each connection reset before its answer was read used to stay in memory (~20-70 KB) until the
    keep-alive timer (120 s) fired; 600 of them now cost about nothing."""
    server = own_webhook()
    body = orjson.dumps(review_of(make_pod(annotations=PLUGIN_ANNOTATIONS["istio"], containers=3, env=30)))
    request = POST + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def abort(count: int) -> None:
        for _ in range(count):
            tls = server.context.wrap_socket(socket.create_connection(("127.0.0.1", server.port)), server_hostname="localhost")
            tls.sendall(request)
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            tls.close()

    abort(100)  # warm-up: allocator pools, caches
    time.sleep(0.5)
    before = rss_mb(server.process.pid)
    abort(600)
    time.sleep(1.0)
    grown = rss_mb(server.process.pid) - before
    assert grown < 4.0, f"RSS grew {grown:.1f} MB over 600 aborted connections"


def test_shutdown_is_not_held_by_a_client_stalled_mid_body(own_webhook: Callable[..., Webhook]) -> None:
    server = own_webhook(extra=["--drain-seconds", "0.5"])
    tls = server.context.wrap_socket(socket.create_connection(("127.0.0.1", server.port)), server_hostname="localhost")
    try:
        tls.sendall(POST + b"Content-Length: 100000\r\n\r\n{\"apiVersion\":")
        time.sleep(0.3)
        started = time.monotonic()
        assert server.stop(timeout=15) == 0, server.log()
        assert time.monotonic() - started < 3.0, "the drain must bound the exit"
    finally:
        tls.close()
