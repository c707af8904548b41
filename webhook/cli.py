"""The `meshswitch` command: offline inject/uninject/explain, plugins, and the server's entry points."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import jsonpatch
import yaml

from webhook.config import SIDECAR_STYLES, Config
from webhook.decide import MODE_KEY
from webhook.errors import ConfigError, MeshswitchError, PodDenied
from webhook.injector import Injector
from webhook.kube import NamespaceMeta
from webhook.patch import uninject
from webhook.plugins import PluginSet, load_plugins
from webhook.render import Workload
from webhook.values import load_values
from webhook.discovery import Discovery
from webhook.discovery_watch import PATHS
from webhook.kubeapi import KubeApi
from webhook.namespaces import meta_from
from webhook import check, install, modes
from webhook.certs import add_certs_arguments, generate_from_args
from webhook.server import ServeOptions, add_serve_arguments, run
from webhook.workloads import iter_workloads, namespace_of, pod_template, transform, workload_of


class _Dumper(yaml.SafeDumper):
    """Block-style YAML without anchors (injected parts are shared objects, not aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


class UsageError(MeshswitchError):
    """A command-line value is wrong."""


def _parse_pairs(text: str | None, *, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag}: {part!r} is not key=value; accepted: k=v,k2=v2")
        pairs[key.strip()] = value.strip()
    return pairs


def _read_documents(source: str) -> list[Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{source}: cannot read: {err.strerror}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise UsageError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None


def _dump(documents: Sequence[Any], out: IO[str]) -> None:
    out.write(yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=False).replace("\n...\n", "\n"))


def _load_plugins(args: argparse.Namespace) -> PluginSet:
    plugins = load_plugins([Path(d) for d in args.templates_dir or ()])
    return load_values(Path(args.values), plugins) if getattr(args, "values", None) else plugins


def _build_injector(args: argparse.Namespace) -> Injector:
    return Injector(plugins=_load_plugins(args), config=Config(default_mode=args.default_mode, sidecar_style=args.sidecar_style))


def _namespace_meta(args: argparse.Namespace, name: str) -> NamespaceMeta:
    labels = _parse_pairs(args.namespace_labels, flag="--namespace-labels")
    annotations = _parse_pairs(args.namespace_annotations, flag="--namespace-annotations")
    if args.mode:
        labels[MODE_KEY] = args.mode
    return NamespaceMeta(name=name, labels=labels, annotations=annotations)


def _describe(obj: Any) -> str:
    metadata = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{metadata.get('name') or metadata.get('generateName') or '?'}"


def cmd_inject(args: argparse.Namespace) -> int:
    injector = _build_injector(args)
    documents = _read_documents(args.file)

    def inject_one(pod: dict[str, Any], workload: Workload, namespace: str) -> dict[str, Any]:
        try:
            result = injector.inject(pod, _namespace_meta(args, namespace), workload=workload)
        except PodDenied as err:
            raise UsageError(f"{workload.kind}/{workload.name}: denied: {err.message}") from None
        for warning in result.warnings:
            print(f"warning: {workload.kind}/{workload.name}: {warning}", file=sys.stderr)
        return jsonpatch.apply_patch(pod, result.patch) if result.patch else pod

    output = [transform(doc, inject_one, default_namespace=args.namespace) if isinstance(doc, dict) else doc for doc in documents]
    _dump(output, sys.stdout)
    return 0


def cmd_uninject(args: argparse.Namespace) -> int:
    documents = _read_documents(args.file)
    output = [
        transform(doc, lambda pod, _w, _n: uninject(pod), default_namespace=args.namespace) if isinstance(doc, dict) else doc
        for doc in documents
    ]
    _dump(output, sys.stdout)
    return 0


def _cluster_view(args: argparse.Namespace, plugins: PluginSet) -> tuple[KubeApi | None, Discovery | None]:
    """With --kubeconfig, explain reads the control planes (once) and the namespaces from the cluster."""
    if not getattr(args, "kubeconfig", None):
        return None, None
    api = KubeApi(Path(args.kubeconfig))
    discovery = Discovery(plugins)
    for target in discovery.watched():
        found = api.get(f"{PATHS[target.kind].format(namespace=target.namespace)}/{target.name}")
        if found is not None:
            discovery.observe(*target.key, found)
    return api, discovery


def cmd_explain(args: argparse.Namespace) -> int:
    plugins = _load_plugins(args)
    api, discovery = _cluster_view(args, plugins)
    injector = Injector(
        plugins=plugins,
        config=Config(default_mode=args.default_mode, sidecar_style=args.sidecar_style),
        discovery=discovery,
    )
    denied = False
    lines = []
    for document in _read_documents(args.file):
        if not isinstance(document, dict):
            continue
        for obj in iter_workloads(document):
            template = pod_template(obj)
            if template is None:
                continue
            namespace = namespace_of(obj, args.namespace)
            meta = _namespace_meta(args, namespace)
            if api is not None and not (args.namespace_labels or args.namespace_annotations or args.mode):
                found = api.get(f"/api/v1/namespaces/{namespace}")
                meta = meta_from(found) if found is not None else meta
            try:
                decision = injector.decide(template, meta)
            except PodDenied as err:
                denied = True
                lines.append(f"{_describe(obj)} ({namespace}): denied {err.code}: {err.message}")
                continue
            chosen = ", ".join(p.name for p in decision.plugins) or "nothing"
            lines.append(f"{_describe(obj)} ({namespace}): {chosen} [{decision.reason.code}] {decision.reason.message}")
            lines.extend(f"    warning: {w}" for w in injector.control_plane_warnings(decision))
    print("\n".join(lines))
    return 1 if denied else 0


def _format_plugins(plugins: PluginSet, *, with_values: bool = False) -> str:
    rows = []
    for plugin in plugins:
        rows.append(f"{plugin.name}  ({plugin.kind})  {plugin.description}")
        for match in plugin.on:
            rows.append(f"    on:  {match.describe()}")
        for match in plugin.off:
            rows.append(f"    off: {match.describe()}")
        for setting in plugin.settings:
            default = "" if setting.default in (None, [], "") else f" (default {setting.default!r})"
            rows.append(f"    {', '.join(setting.keys)}: {setting.type}{default}; accepts {setting.accepts()}")
        if with_values:
            for key, value in plugin.values.items():
                rows.append(f"    value {key}: {value!r}")
    return "\n".join(rows)


def cmd_plugins(args: argparse.Namespace) -> int:
    print(_format_plugins(_load_plugins(args), with_values=args.values is not None))
    return 0


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", required=True, help="YAML file, or - for standard input")
    parser.add_argument("--mode", help=f"stand in for the namespace label {MODE_KEY}")
    parser.add_argument("--namespace", default="default", help="namespace for objects that name none")
    parser.add_argument("--namespace-labels", help="the namespace's labels, k=v,k2=v2")
    parser.add_argument("--namespace-annotations", help="the namespace's annotations, k=v,k2=v2")
    parser.add_argument("--default-mode", default="native", help="mode when nothing selects one (default native)")
    parser.add_argument("--sidecar-style", choices=SIDECAR_STYLES, default="native", help="proxy as native sidecar or classic container")
    parser.add_argument("--templates-dir", action="append", help="a directory of plugin files that add or replace plugins")
    parser.add_argument("--values", help="installation values: a YAML file of plugin name to values")


def cmd_serve(args: argparse.Namespace) -> int:
    return run(ServeOptions.from_args(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshswitch", description="Inject the sidecar of the mesh a workload selects.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, text in (
        ("inject", cmd_inject, "inject sidecars into the workloads of a YAML file"),
        ("explain", cmd_explain, "say, per workload, what would be injected and why"),
    ):
        sub = commands.add_parser(name, help=text)
        _add_engine_arguments(sub)
        sub.set_defaults(handler=handler)
    sub.add_argument(
        "--kubeconfig",
        help="read namespaces (unless given by flags) and the meshes' control planes from this cluster",
    )
    sub = commands.add_parser("uninject", help="remove what meshswitch injected")
    sub.add_argument("-f", "--file", required=True)
    sub.add_argument("--namespace", default="default")
    sub.set_defaults(handler=cmd_uninject)
    sub = commands.add_parser("serve", help="serve the admission webhook over HTTPS")
    add_serve_arguments(sub)
    sub.set_defaults(handler=cmd_serve)
    certs = commands.add_parser("certs", help="certificates for the webhook").add_subparsers(dest="certs_command", required=True)
    sub = certs.add_parser("generate", help="write a CA and a serving certificate it signs")
    add_certs_arguments(sub)
    sub.set_defaults(handler=generate_from_args)
    install.register_certs_install(certs)
    check.register(commands)
    modes.register(commands)
    sub = commands.add_parser("plugins", help="list the installed plugins and their settings")
    sub.add_argument("--templates-dir", action="append")
    sub.add_argument("--values", nargs="?", const="", metavar="FILE", help="print the effective installation values (with FILE applied)")
    sub.set_defaults(handler=cmd_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (MeshswitchError, ConfigError) as err:
        print(f"meshswitch: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
