"""The connection bounds' flags: defaults within the API server's webhook timeout, nonsense refused."""

from __future__ import annotations

import argparse
import asyncio

import httpx
import orjson
import pytest

from webhook.cluster.namespaces import StaticNamespaces
from webhook.engine.config import Config
from webhook.engine.errors import ConfigError
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.server.app import create_app
from webhook.server.options import ETCD_MAX_OBJECT_BYTES, ServeOptions, add_serve_arguments
from webhook.server.protocol import BoundedHttpProtocol, Limits, bounded_protocol


def options(*flags: str) -> ServeOptions:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return ServeOptions.from_args(parser.parse_args(["--cert-dir", "certs", *flags]))


def test_defaults_fit_the_webhook_timeout() -> None:
    defaults = options()
    assert 0 < defaults.read_timeout_seconds <= 5, "the manifests' timeoutSeconds is 5"
    assert defaults.max_header_line_bytes <= defaults.max_header_bytes <= 64 * 1024
    assert defaults.graceful_timeout_seconds <= 5


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-header-line-bytes", "100"], "at least 1024"),
        (["--max-header-bytes", "4096", "--max-header-line-bytes", "8192"], "at most --max-header-bytes"),
    ],
)
def test_bounds_that_cannot_work_are_refused(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        options(*flags)


def test_the_protocol_class_carries_its_limits() -> None:
    limits = Limits(max_header_bytes=4096, max_header_line_bytes=2048, read_timeout_seconds=1.5)
    protocol = bounded_protocol(limits)
    assert issubclass(protocol, BoundedHttpProtocol) and protocol.limits == limits
    assert BoundedHttpProtocol.limits == Limits(), "each server gets a class of its own"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--port", "70000"], "argument --port: '70000' is not a port; accepted: a whole number from 1 to 65535, or 0"),
        (["--port", "-1"], "'-1' is not a port; accepted: a whole number from 1 to 65535, or 0 for one the system picks"),
        (["--port", "https"], "'https' is not a port"),
        (["--max-body-bytes", "-1"], "argument --max-body-bytes: '-1' is not a whole number of at least 1"),
        (["--max-header-bytes", "0"], "argument --max-header-bytes: '0' is not a whole number of at least 1"),
        (["--answer-cache-bytes", "-5"], "argument --answer-cache-bytes: '-5' is not a whole number of at least 0"),
        (["--keep-alive-seconds", "0"], "argument --keep-alive-seconds: '0' is not a number of seconds above 0"),
        (["--cert-poll-seconds", "nan"], "argument --cert-poll-seconds: 'nan' is not a number of seconds above 0"),
        (["--drain-seconds", "-1"], "argument --drain-seconds: '-1' is not a number of seconds 0 or more"),
        (["--read-timeout-seconds", "0"], "argument --read-timeout-seconds: '0' is not a number of seconds above 0 and at most 30"),
        (["--read-timeout-seconds", "31"], "'31' is not a number of seconds above 0 and at most 30"),
        (["--read-timeout-seconds", "abc"], "'abc' is not a number of seconds above 0 and at most 30"),
        (["--read-timeout-seconds", "nan"], "'nan' is not a number of seconds above 0 and at most 30"),
        (["--allow-registry", ""], "argument --allow-registry: '' is not an image prefix; accepted: a registry host"),
        (["--allow-registry", "reg istry.io"], "'reg istry.io' is not an image prefix"),
    ],
)
def test_numbers_out_of_range_are_refused_as_the_flag(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        options(*flags)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_numbers_in_range_are_taken() -> None:
    taken = options("--port", "65535", "--answer-cache-bytes", "0", "--drain-seconds", "0")
    assert (taken.port, taken.answer_cache_bytes, taken.drain_seconds) == (65535, 0, 0.0)
    assert options("--port", "0").port == 0, "a free port the system picks (tests use it)"
    assert options("--allow-registry", "registry.example.com/mesh/").config.allowed_registries == ("registry.example.com/mesh",)


def test_the_default_body_limit_takes_the_largest_pod_etcd_stores() -> None:
    """A pod at etcd's cap made of characters Go's encoder escapes (six bytes each) is a review
    the API server sends and the webhook must answer: refusing it refuses a pod the cluster accepts."""
    from tests.api.pods import make_pod, make_review

    pod = make_pod(namespace="demo")
    pod["spec"]["containers"][0]["env"] = [{"name": "HTML", "value": "<" * ETCD_MAX_OBJECT_BYTES}]
    body = orjson.dumps(make_review(pod)).replace(b"<", b"\\u003c")  # as the apiserver writes it
    assert len(body) > 6 * ETCD_MAX_OBJECT_BYTES

    injector = Injector(plugins=load_plugins(), config=Config())
    app = create_app(injector=injector, namespaces=StaticNamespaces(), max_body_bytes=options().max_body_bytes)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook") as client:
            return await client.post("/mutate", content=body, headers={"Content-Type": "application/json"})

    response = asyncio.run(post())
    assert response.status_code == 200, response.text[:300]
    assert response.json()["response"]["allowed"] is True
