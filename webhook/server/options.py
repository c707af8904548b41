"""What `meshswitch serve` takes: its flags and the options they make."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

from webhook.engine.config import SIDECAR_STYLES, Config
from webhook.engine.errors import ConfigError
from webhook.server.answers import DEFAULT_MAX_BYTES as DEFAULT_ANSWER_CACHE_BYTES

DEFAULT_PORT = 8443
# The largest pod etcd stores (its default request cap, 1.5 MiB) is far larger as the review the
# apiserver sends: Go's encoder writes each `<`, `>`, `&` and control character as six bytes
# (`\u003c`), so an 800 KB pod of them made a 4.8 MB review. Six times the cap, and room for the
# review around it (Istio's injector takes 6 MiB, Linkerd's 10 MB).
ETCD_MAX_OBJECT_BYTES = 3 * 512 * 1024
DEFAULT_MAX_BODY_BYTES = 6 * ETCD_MAX_OBJECT_BYTES + 1024 * 1024
# Longer than the 90 s idle timeout of Go's HTTP client, so the apiserver, not us, closes idle
# connections: a server-side close can cross a request already on the wire (kubernetes#127335).
DEFAULT_KEEP_ALIVE_SECONDS = 120.0
# No longer than the API server waits for us (timeoutSeconds: 5 in our webhook configuration).
DEFAULT_READ_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_MAX_HEADER_LINE_BYTES = 8 * 1024


def _whole(text: str, low: int, high: int | None = None) -> int:
    """argparse type: a whole number in [low, high]; the message says what is accepted."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        accepted = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {accepted}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1)


def _non_negative(text: str) -> int:
    return _whole(text, 0)


def _port(text: str) -> int:
    # A number past 65535 would be taken modulo 65536 by the socket layer and listen elsewhere.
    try:
        return _whole(text, 0, 65535)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; accepted: a whole number from 1 to 65535, or 0 for one the system picks") from None


def _seconds(text: str, *, zero: bool = False) -> float:
    """argparse type: a finite number of seconds, above 0 (or at least 0 with `zero`)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        accepted = "0 or more" if zero else "above 0"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds {accepted}")
    return value


def _some_seconds(text: str) -> float:
    return _seconds(text)


def _any_seconds(text: str) -> float:
    return _seconds(text, zero=True)


def _registry(text: str) -> str:
    """An image prefix: an empty one would match no image at all, which is never what was meant."""
    prefix = text.strip().rstrip("/")
    if not prefix or any(c.isspace() for c in prefix):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an image prefix; accepted: a registry host with an optional path, e.g. registry.example.com/mesh"
        )
    return prefix


def _read_timeout(text: str) -> float:
    """argparse type: above 0 and at most 30 s, the longest timeoutSeconds the API server allows."""
    try:
        value = _seconds(text)
    except argparse.ArgumentTypeError:
        value = math.nan
    if not value <= 30:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0 and at most 30 (the API server's longest webhook timeout)"
        )
    return value


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``meshswitch serve`` takes; ``from_args`` reads ``add_serve_arguments`` flags."""

    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    kubeconfig: Path | None = None
    no_kube: bool = False
    namespace_labels_file: Path | None = None
    fail_open: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    answer_cache_bytes: int = DEFAULT_ANSWER_CACHE_BYTES
    workers: int = 1
    cert_poll_seconds: float = 10.0
    drain_seconds: float = 2.0
    keep_alive_seconds: float = DEFAULT_KEEP_ALIVE_SECONDS
    graceful_timeout_seconds: float = 5.0
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_line_bytes: int = DEFAULT_MAX_HEADER_LINE_BYTES
    template_dirs: tuple[Path, ...] = ()
    values_file: Path | None = None
    config: Config = field(default_factory=Config)
    log_level: str = "info"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeOptions:
        """Raise ConfigError when the flags do not make a server."""
        if args.cert_dir is not None:
            if args.cert_file is not None or args.key_file is not None:
                raise ConfigError("give --cert-dir, or --cert-file and --key-file, not both")
            cert_file, key_file = args.cert_dir / "tls.crt", args.cert_dir / "tls.key"
        elif args.cert_file is not None and args.key_file is not None:
            cert_file, key_file = args.cert_file, args.key_file
        else:
            raise ConfigError("HTTPS needs a certificate: give --cert-dir, or --cert-file and --key-file")
        if args.namespace_labels_file is not None and args.kubeconfig is not None:
            raise ConfigError("--namespace-labels-file stands in for a cluster; it does not go with --kubeconfig")
        if not 1024 <= args.max_header_line_bytes <= args.max_header_bytes:
            raise ConfigError("--max-header-line-bytes must be at least 1024 and at most --max-header-bytes")
        if args.no_kube and args.kubeconfig is not None:
            raise ConfigError("--no-kube and --kubeconfig contradict each other")
        config = Config(
            default_mode=args.default_mode,
            sidecar_style=args.sidecar_style,
            webhook_namespace=args.webhook_namespace,
            extra_ignored_namespaces=frozenset(args.ignore_namespace),
            **({"allowed_registries": tuple(args.allow_registry)} if args.allow_registry else {}),
        )
        return cls(
            cert_file=cert_file,
            key_file=key_file,
            host=args.host,
            port=args.port,
            kubeconfig=args.kubeconfig,
            no_kube=args.no_kube or args.namespace_labels_file is not None,
            namespace_labels_file=args.namespace_labels_file,
            fail_open=args.fail_open,
            max_body_bytes=args.max_body_bytes,
            answer_cache_bytes=args.answer_cache_bytes,
            workers=args.workers,
            cert_poll_seconds=args.cert_poll_seconds,
            drain_seconds=args.drain_seconds,
            keep_alive_seconds=args.keep_alive_seconds,
            read_timeout_seconds=args.read_timeout_seconds,
            max_header_bytes=args.max_header_bytes,
            max_header_line_bytes=args.max_header_line_bytes,
            template_dirs=tuple(args.templates_dir),
            values_file=args.values,
            config=config,
            log_level=args.log_level,
        )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``meshswitch serve`` (and ``python -m webhook.server``)."""
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--cert-dir", type=Path, help="directory holding tls.crt and tls.key (a Secret volume)")
    tls.add_argument("--cert-file", type=Path, help="serving certificate (PEM), with --key-file")
    tls.add_argument("--key-file", type=Path, help="its private key (PEM)")
    tls.add_argument("--cert-poll-seconds", type=_some_seconds, default=10.0, help="how often to check the files for a new pair")
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all IPv4)")
    net.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    net.add_argument("--max-body-bytes", type=_positive, default=DEFAULT_MAX_BODY_BYTES, help="larger bodies get 413")
    net.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes sharing the port (SO_REUSEPORT), one per core to use; default 1",
    )
    net.add_argument(
        "--answer-cache-bytes",
        type=_non_negative,
        default=DEFAULT_ANSWER_CACHE_BYTES,
        help=f"memory for finished answers to identical pods, per worker (default {DEFAULT_ANSWER_CACHE_BYTES}; 0: off)",
    )
    net.add_argument(
        "--keep-alive-seconds",
        type=_some_seconds,
        default=DEFAULT_KEEP_ALIVE_SECONDS,
        help="idle connection lifetime; keep it above the apiserver's 90 s",
    )
    net.add_argument(
        "--read-timeout-seconds",
        type=_read_timeout,
        default=DEFAULT_READ_TIMEOUT_SECONDS,
        help="a request's headers and body must arrive within this (and a handshake complete); keep it at or "
        "below the webhook's timeoutSeconds",
    )
    net.add_argument(
        "--max-header-bytes", type=_positive, default=DEFAULT_MAX_HEADER_BYTES, help="larger request headers get 431"
    )
    net.add_argument(
        "--max-header-line-bytes",
        type=_positive,
        default=DEFAULT_MAX_HEADER_LINE_BYTES,
        help="a longer header line gets 431",
    )
    net.add_argument(
        "--drain-seconds",
        type=_any_seconds,
        default=2.0,
        help="after SIGTERM, how long open connections may still send requests",
    )
    cluster = parser.add_argument_group("namespaces")
    cluster.add_argument("--kubeconfig", type=Path, help="kubeconfig to watch namespaces with (default: in-cluster)")
    cluster.add_argument("--no-kube", action="store_true", help="run without a cluster")
    cluster.add_argument(
        "--namespace-labels-file",
        type=Path,
        help="YAML mapping namespace name to labels, instead of a cluster (implies --no-kube)",
    )
    engine = parser.add_argument_group("injection")
    engine.add_argument("--templates-dir", type=Path, action="append", default=[], metavar="DIR", help="extra plugin directory (repeatable)")
    engine.add_argument("--values", type=Path, metavar="FILE", help="installation values: YAML of plugin name to values")
    engine.add_argument("--default-mode", default="native", help="mode when nothing selects one (default: native)")
    engine.add_argument(
        "--sidecar-style", choices=SIDECAR_STYLES, default=None,
        help="default proxy style (default: what each mesh release installed defaults to, else native)",
    )
    engine.add_argument("--webhook-namespace", default="meshswitch-system", help="the webhook's own namespace (never injected)")
    engine.add_argument("--ignore-namespace", action="append", default=[], metavar="NAME", help="another namespace never injected (repeatable)")
    engine.add_argument(
        "--allow-registry",
        action="append",
        type=_registry,
        default=[],
        metavar="PREFIX",
        help="an image prefix that per-pod image overrides may use, e.g. registry.example.com/mesh (repeatable; "
        "replaces the defaults: the meshes' own registries)",
    )
    engine.add_argument("--fail-open", action="store_true", help="admit a pod without injection when the webhook fails (default: refuse)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="least severe log level written (default info; warning drops the per-review lines)")
