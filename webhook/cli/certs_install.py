"""`meshswitch certs install`: its flags and handler, over webhook.cluster.install."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import sys
from pathlib import Path
from typing import Any

from webhook.cli.flags import seconds
from webhook.cluster.client import ApiError, Unreachable, connect
from webhook.cluster.install import DEFAULT_OVERLAP_SECONDS, DEFAULT_PROPAGATION_SECONDS, InstallError, install
from webhook.cluster.layout import CA_SECRET, DEFAULT_NAMESPACE, SERVICE, TLS_SECRET, WEBHOOK_CONFIG
from webhook.engine.errors import ConfigError


def add_install_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help=f"the webhook's namespace (default {DEFAULT_NAMESPACE})")
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument("--service", default=SERVICE, help=f"the webhook's Service, for the certificate's names (default {SERVICE})")
    parser.add_argument("--secret", default=TLS_SECRET, help=f"the serving Secret the Deployment mounts (default {TLS_SECRET})")
    parser.add_argument("--ca-secret", default=CA_SECRET, help=f"where the CA and its key are kept (default {CA_SECRET})")
    parser.add_argument("--webhook-config", default=WEBHOOK_CONFIG, help=f"the MutatingWebhookConfiguration (default {WEBHOOK_CONFIG})")
    parser.add_argument("--dns", action="append", default=[], metavar="NAME", help="another DNS name for the certificate (repeatable)")
    parser.add_argument("--ip", action="append", default=[], metavar="IP", help="an IP address for the certificate (repeatable)")
    parser.add_argument("--rotate-ca", action="store_true", help="replace the CA; the previous one stays trusted through the overlap")
    parser.add_argument(
        "--ca-overlap-seconds",
        type=seconds,
        default=DEFAULT_OVERLAP_SECONDS,
        help=f"how long a previous CA stays in the caBundle after a rotation (default {DEFAULT_OVERLAP_SECONDS})",
    )
    parser.add_argument(
        "--propagation-seconds",
        type=seconds,
        default=DEFAULT_PROPAGATION_SECONDS,
        help="after widening the caBundle in a rotation, wait this long before writing the new serving pair",
    )


def cmd_certs_install(args: argparse.Namespace) -> int:
    """Handler of `meshswitch certs install`."""
    from webhook.certs import check_names

    try:
        check_names(args.dns, args.ip)
    except ValueError as err:
        print(f"meshswitch certs install: {err}", file=sys.stderr)
        return 2
    ips = [str(ipaddress.ip_address(ip)) for ip in args.ip]
    try:
        kube = connect(args.kubeconfig)
        result = install(
            kube,
            namespace=args.namespace,
            service=args.service,
            tls_secret=args.secret,
            ca_secret=args.ca_secret,
            webhook_config=args.webhook_config,
            extra_dns=args.dns,
            ips=ips,
            rotate_ca=args.rotate_ca,
            overlap=dt.timedelta(seconds=args.ca_overlap_seconds),
            propagation_seconds=args.propagation_seconds,
        )
    except (InstallError, ConfigError) as err:
        print(f"meshswitch certs install: {err}", file=sys.stderr)
        return 1
    except ApiError as err:
        print(f"meshswitch certs install: the API server refused: {err.message}", file=sys.stderr)
        return 1
    except Unreachable as err:
        print(f"meshswitch certs install: cannot reach the cluster: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the scratch directory the cluster's files are written to
        print(f"meshswitch certs install: {err}", file=sys.stderr)
        return 1
    print("\n".join(result.lines))
    return 0


def configure_certs(parser: argparse.ArgumentParser) -> None:
    """`meshswitch certs generate` and `meshswitch certs install`."""
    from webhook.certs import add_certs_arguments, generate_from_args

    certs = parser.add_subparsers(dest="certs_command", metavar="COMMAND")
    sub = certs.add_parser("generate", help="write a CA and a serving certificate it signs", description="Write a CA and a serving certificate it signs.")
    add_certs_arguments(sub)
    sub.set_defaults(handler=generate_from_args, _parser=sub)
    register_certs_install(certs)


def register_certs_install(certs_subparsers: Any) -> argparse.ArgumentParser:
    """Add `install` to the subparsers of `meshswitch certs`."""
    parser: argparse.ArgumentParser = certs_subparsers.add_parser(
        "install",
        help="create or renew the webhook's CA and serving certificate in the cluster, and patch the caBundle",
        description="Create or renew the webhook's CA and serving certificate in the cluster, and patch the caBundle.",
    )
    add_install_arguments(parser)
    parser.set_defaults(handler=cmd_certs_install, _parser=parser)
    return parser
