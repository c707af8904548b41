"""The offline subcommands: inject, uninject, explain and plugins, over the engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jsonpatch

from webhook.cli.documents import UsageError, dump, read_documents
from webhook.cluster.client import KubeApi, connect
from webhook.cluster.discovery_watch import PATHS
from webhook.cluster.namespaces import meta_from
from webhook.engine.config import SIDECAR_STYLES, Config
from webhook.engine.decide import MODE_KEY
from webhook.engine.discovery import Discovery
from webhook.engine.errors import PodDenied
from webhook.engine.injector import Injector
from webhook.engine.kube import NamespaceMeta
from webhook.engine.patch import uninject
from webhook.engine.plugins import PluginSet, load_plugins
from webhook.engine.render import Workload
from webhook.engine.values import load_values
from webhook.engine.workloads import iter_workloads, namespace_of, pod_template, transform


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
    documents = read_documents(args.file)

    def inject_one(pod: dict[str, Any], workload: Workload, namespace: str) -> dict[str, Any]:
        try:
            result = injector.inject(pod, _namespace_meta(args, namespace), workload=workload)
        except PodDenied as err:
            raise UsageError(f"{workload.kind}/{workload.name}: denied: {err.message}") from None
        for warning in result.warnings:
            print(f"warning: {workload.kind}/{workload.name}: {warning}", file=sys.stderr)
        return jsonpatch.apply_patch(pod, result.patch) if result.patch else pod

    output = [transform(doc, inject_one, default_namespace=args.namespace) if isinstance(doc, dict) else doc for doc in documents]
    dump(output, sys.stdout)
    return 0


def cmd_uninject(args: argparse.Namespace) -> int:
    documents = read_documents(args.file)
    output = [
        transform(doc, lambda pod, _w, _n: uninject(pod), default_namespace=args.namespace) if isinstance(doc, dict) else doc
        for doc in documents
    ]
    dump(output, sys.stdout)
    return 0


def _cluster_view(args: argparse.Namespace, plugins: PluginSet) -> tuple[KubeApi | None, Discovery | None]:
    """With --kubeconfig, explain reads the control planes (once) and the namespaces from the cluster."""
    if not getattr(args, "kubeconfig", None):
        return None, None
    api = connect(Path(args.kubeconfig))
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
    for document in read_documents(args.file):
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
        if plugin.revisions is not None:
            rows.append(f"    {plugin.revisions.key}: revision; pod label, else namespace label (default {plugin.revisions.default!r})")
        if plugin.sidecar_style_key:
            rows.append(f"    {plugin.sidecar_style_key}: sidecar style; \"false\" classic, any other value native")
        if plugin.declared == "merge":
            rows.append(f"    declared {', '.join(sorted(plugin.container_names))}: merged over the injected container")
        if plugin.releases is not None:
            rows.append(f"    releases: {', '.join(plugin.releases.known)} (from value {plugin.releases.value})")
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


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", required=True, help="YAML file, or - for standard input")
    parser.add_argument("--mode", help=f"stand in for the namespace label {MODE_KEY}")
    parser.add_argument("--namespace", default="default", help="namespace for objects that name none")
    parser.add_argument("--namespace-labels", help="the namespace's labels, k=v,k2=v2")
    parser.add_argument("--namespace-annotations", help="the namespace's annotations, k=v,k2=v2")
    parser.add_argument("--default-mode", default="native", help="mode when nothing selects one (default native)")
    parser.add_argument("--sidecar-style", choices=SIDECAR_STYLES, default="native", help="proxy as native sidecar or classic container")
    parser.add_argument("--templates-dir", action="append", help="a directory of plugin files that add or replace plugins")
    parser.add_argument("--values", help="installation values: a YAML file of plugin name to values")
