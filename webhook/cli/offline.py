"""The offline subcommands: inject, uninject, explain and plugins, over the engine.

Every input problem ends as one UsageError line naming the file, the document, the object and the
field; nothing is written to stdout unless every document went through.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.cli.documents import Document, KubeLoader, UsageError, dump, expand, read_documents
from webhook.cli.shapes import ShapeError, check_list, check_workload

if TYPE_CHECKING:
    from webhook.cluster.client import KubeApi
    from webhook.engine.discovery import Discovery
    from webhook.engine.injector import Injector
    from webhook.engine.kube import NamespaceMeta
    from webhook.engine.plugins import PluginSet
    from webhook.engine.render import Workload

MODE_KEY = "meshswitch.io/mode"  # webhook.engine.decide.MODE_KEY, without importing the engine for --help
OUTPUTS = ("yaml", "json")
_TEMPLATE_PATH = re.compile(r"\S*templates/[\w.-]+\.ya?ml(:\d+)?:?\s*")


# --- flags -------------------------------------------------------------------------------------------


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", "--file", dest="files", action="append", required=True, metavar="FILE",
        help="a YAML or JSON file, a directory of them, or - for standard input (repeatable)",
    )  # fmt: skip
    parser.add_argument("-R", "--recursive", action="store_true", help="with a directory, read its subdirectories too")
    parser.add_argument("--namespace", default="default", help="namespace of objects that name none (default default)")


def add_output_arguments(parser: argparse.ArgumentParser, *, summary: bool = True) -> None:
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="yaml", help="output format: yaml (default) or json")
    if summary:
        parser.add_argument("-q", "--quiet", action="store_true", help="no per-workload summary on standard error")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", help=f"the mode to inject, in place of the namespace's {MODE_KEY} label (a mesh plugin's name, or native)")
    parser.add_argument("--namespace-labels", metavar="K=V,...", help="the namespace's labels, k=v,k2=v2")
    parser.add_argument("--namespace-annotations", metavar="K=V,...", help="the namespace's annotations, k=v,k2=v2 (a value may hold commas: k=25,587,k2=v2)")
    parser.add_argument("--default-mode", default="native", help="mode when nothing selects one (default native)")
    parser.add_argument(
        "--sidecar-style", choices=("native", "classic"), default=None,
        help="proxy as a native sidecar (an init container that keeps running) or a classic container "
        "(default: what the mesh release installed defaults to, else native)",
    )  # fmt: skip
    parser.add_argument("--templates-dir", action="append", metavar="DIR", help="a directory of plugin files that add or replace plugins (repeatable)")
    parser.add_argument("--values", metavar="FILE", help="installation values: a YAML file of plugin name to values")
    add_set_argument(parser)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", action="append", metavar="PLUGIN.KEY=VALUE",
        help="one installation value (after --values); =@FILE reads it from a file, e.g. linkerd.identityTrustAnchorsPEM=@ca.crt",
    )  # fmt: skip


def configure_inject(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    add_engine_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=cmd_inject)


def configure_explain(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--kubeconfig", help="read namespaces (unless given by flags) and the meshes' control planes from this cluster")
    parser.add_argument(
        "-o", "--output", choices=("text", *OUTPUTS), default="text",
        help="text (default, one line per workload), or yaml or json records",
    )  # fmt: skip
    parser.set_defaults(handler=cmd_explain)


def configure_uninject(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=cmd_uninject)


def configure_plugins(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--templates-dir", action="append", metavar="DIR", help="a directory of plugin files that add or replace plugins (repeatable)")
    parser.add_argument("--values", nargs="?", const="", metavar="FILE", help="print the effective installation values (with FILE applied)")
    add_set_argument(parser)
    parser.set_defaults(handler=cmd_plugins)


# --- shared ------------------------------------------------------------------------------------------


def _parse_pairs(text: str | None, *, flag: str, commas_in_values: bool = False) -> dict[str, str]:
    """`k=v,k2=v2`. With `commas_in_values` (annotations, whose values hold port lists such as
    Linkerd's `skip-outbound-ports=25,587`), a part without `=` continues the value before it; a
    label value can hold no comma, so there it is an error."""
    pairs: dict[str, str] = {}
    last: str | None = None
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep and commas_in_values and last is not None:
            pairs[last] += "," + part.strip()
            continue
        if not sep or not key.strip():
            raise UsageError(f"{flag} {text!r}: {part!r} is not key=value; accepted: key=value pairs separated by commas, k=v,k2=v2")
        last = key.strip()
        pairs[last] = value.strip()
    return pairs


def _set_values(plugins: PluginSet, assignments: list[str]) -> PluginSet:
    """`--set plugin.key=value` (`=@file` reads the file: trust anchors offline); YAML scalars as typed."""
    import yaml

    from webhook.engine.errors import not_utf8
    from webhook.engine.values import apply_values, check_values

    overrides: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        target, sep, raw = assignment.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise UsageError(f"--set {assignment!r}: accepted: plugin.key=value or plugin.key=@file")
        if raw.startswith("@"):
            try:
                value: Any = Path(raw[1:]).read_text(encoding="utf-8")
            except OSError as err:
                raise UsageError(f"--set {target}: cannot read {raw[1:]}: {err.strerror}") from None
            except UnicodeDecodeError as err:
                raise UsageError(f"--set {target}: {not_utf8(raw[1:], err, 'a value read with =@ is UTF-8 text')}") from None
        else:
            declared = plugins[name].values.get(key) if name in plugins else ""
            try:  # read as a file's value is (kubectl's scalars: `12:30` stays text)
                value = raw if isinstance(declared, str) else yaml.load(raw, Loader=KubeLoader)
            except yaml.YAMLError as err:
                problem = getattr(err, "problem", None) or "not YAML"
                raise UsageError(f"--set {target}={raw[:64]!r}: {problem}; accepted: a YAML value such as 1337, true, [a, b] or {{cpu: 100m}}") from None
        overrides.setdefault(name, {})[key] = value
    return apply_values(plugins, check_values(plugins, overrides, source="--set"))


def load_plugins_from(args: argparse.Namespace) -> PluginSet:
    from webhook.engine.plugins import load_plugins
    from webhook.engine.values import load_values

    plugins = load_plugins([Path(d) for d in args.templates_dir or ()])
    plugins = load_values(Path(args.values), plugins) if getattr(args, "values", None) else plugins
    return _set_values(plugins, getattr(args, "set", None) or [])


def build_injector(args: argparse.Namespace, plugins: PluginSet, discovery: Discovery | None = None) -> Injector:
    from webhook.engine.config import Config
    from webhook.engine.injector import Injector

    if args.mode is not None and args.mode not in plugins.modes:
        raise UsageError(f"--mode {args.mode!r} is not an installed mode; accepted: {', '.join(plugins.modes)}")
    if args.default_mode not in plugins.modes:
        raise UsageError(f"--default-mode {args.default_mode!r} is not an installed mode; accepted: {', '.join(plugins.modes)}")
    # Checked before any document is read: a bad flag is the flag's error, with or without a workload.
    _parse_pairs(args.namespace_labels, flag="--namespace-labels")
    _parse_pairs(args.namespace_annotations, flag="--namespace-annotations", commas_in_values=True)
    config = Config(default_mode=args.default_mode, sidecar_style=args.sidecar_style)
    return Injector(plugins=plugins, config=config, discovery=discovery)


def namespace_meta(args: argparse.Namespace, name: str) -> NamespaceMeta:
    from webhook.engine.kube import NamespaceMeta

    labels = _parse_pairs(args.namespace_labels, flag="--namespace-labels")
    annotations = _parse_pairs(args.namespace_annotations, flag="--namespace-annotations", commas_in_values=True)
    if args.mode:
        labels[MODE_KEY] = args.mode
    return NamespaceMeta(name=name, labels=labels, annotations=annotations)


def describe(obj: Any) -> str:
    """kind/name, lower-case as kubectl and linkerd print it."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{str(obj.get('kind')).lower()}/{metadata.get('name') or metadata.get('generateName') or '?'}"


def _listed(obj: Mapping[str, Any], where: str, field: str) -> list[tuple[str, Any]]:
    """(where, object) for `obj` or, in a List (nested ones too), each item; UsageError for a List
    whose items are not a list of objects."""
    try:
        items = check_list(obj)
    except ShapeError as err:
        raise UsageError(f"{where}: {field}{err}") from None
    if items is None:
        return [(f"{where}: {field[:-1] + ' ' if field else ''}{describe(obj)}", obj)]
    found: list[tuple[str, Any]] = []
    for index, item in enumerate(items):
        found.extend(_listed(item, where, f"{field}items[{index}]."))
    return found


def _objects(document: Document) -> list[tuple[str, Any]]:
    """(where, object) for the document and, in a List, each item."""
    body = document.body
    if not isinstance(body, dict):
        return []
    return _listed(body, document.where, "")


def check_shapes(documents: list[Document]) -> None:
    for document in documents:
        for where, obj in _objects(document):
            try:
                check_workload(obj)
            except ShapeError as err:
                raise UsageError(f"{where}: {err}") from None


def engine_failure(where: str, err: Exception) -> UsageError:
    """An unexpected engine error on the user's object: name the object, never our template files."""
    detail = _TEMPLATE_PATH.sub("", str(err)).strip() or type(err).__name__
    return UsageError(f"{where}: spec.template: meshswitch cannot inject this pod template ({detail[:200]})")


@dataclass
class Summary:
    """One line per workload on standard error (as `linkerd inject` prints), unless -q; before them,
    the warnings, which -q keeps."""

    quiet: bool
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def warn(self, label: str, warning: str | None) -> None:
        if warning is not None:  # the engine's warning helpers give None when there is nothing to say
            self.warnings.append(f"warning: {label}: {warning}")

    def flush(self) -> None:
        for line in self.warnings:
            print(line, file=sys.stderr)
        if not self.quiet and self.lines:
            sys.stderr.write("".join(f"{line}\n" for line in self.lines))


def _transform_all(documents: list[Document], fn: Callable[[dict[str, Any], Workload, str, str], dict[str, Any]], default_namespace: str) -> list[Any]:
    """``fn`` on every pod template, told where its object is as the shape errors say it
    (`FILE: document N: items[3] deployment/web`), so an object in a List is told apart."""
    from webhook.engine.workloads import list_items, transform

    def walk(obj: dict[str, Any], where: str, field: str) -> dict[str, Any]:
        items = list_items(obj)
        if items:
            walked = [walk(item, where, f"{field}items[{index}].") if isinstance(item, dict) else item for index, item in enumerate(items)]
            return {**obj, "items": walked}
        at = f"{where}: {field[:-1] + ' ' if field else ''}{describe(obj)}"
        return transform(obj, lambda pod, workload, ns: fn(pod, workload, ns, at), default_namespace=default_namespace)

    return [walk(d.body, d.where, "") if isinstance(d.body, dict) else d.body for d in documents]


def _label(workload: Workload, namespace: str) -> str:
    return f"{workload.kind.lower()}/{workload.name or '?'} ({namespace})"


# --- inject ------------------------------------------------------------------------------------------


def apply_ops(pod: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply the engine's RFC 6902 add, replace and remove operations to `pod`, in place, sharing the
    added values: jsonpatch deep-copies the document and every value, which cost more than the injection."""
    for op in ops:
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]]
        holder: Any = pod
        for part in parents:
            holder = holder[int(part)] if isinstance(holder, list) else holder[part]
        if op["op"] not in ("add", "replace", "remove"):
            raise ValueError(f"unexpected patch operation {op['op']!r}")
        if op["op"] == "remove":
            del holder[int(last) if isinstance(holder, list) else last]
        elif isinstance(holder, list):
            if last == "-":
                holder.append(op["value"])
            elif op["op"] == "add":
                holder.insert(int(last), op["value"])
            else:
                holder[int(last)] = op["value"]
        else:
            holder[last] = op["value"]
    return pod


def _as_created(template: dict[str, Any], workload: Workload) -> dict[str, Any]:
    """A controller's pod as the controller creates it from its template: the template's own
    `metadata.name` is not copied (Kubernetes' GetPodFromTemplate), so a setting that falls back to
    the pod's name (Dapr's app id) never reads it. The template itself is output as written."""
    metadata = template.get("metadata")
    if workload.kind == "Pod" or not isinstance(metadata, dict) or "name" not in metadata:
        return template
    return {**template, "metadata": {k: v for k, v in metadata.items() if k != "name"}}


def cmd_inject(args: argparse.Namespace) -> int:
    from webhook.engine.errors import PodDenied

    plugins = load_plugins_from(args)
    injector = build_injector(args, plugins)
    documents = read_documents(expand(args.files, recursive=args.recursive))
    check_shapes(documents)
    summary = Summary(args.quiet)

    def inject_one(pod: dict[str, Any], workload: Workload, namespace: str, where: str) -> dict[str, Any]:
        label = _label(workload, namespace)
        try:
            result = injector.inject(_as_created(pod, workload), namespace_meta(args, namespace), workload=workload)
        except PodDenied as err:
            raise UsageError(f"{where}: denied: {err.message}") from None
        except Exception as err:  # an engine failure on this object is reported as this object's
            raise engine_failure(where, err) from None
        for warning in result.warnings:
            summary.warn(label, warning)
        if result.plugins and result.patch:
            summary.add(f"{label} injected: {', '.join(result.plugins)}")
            return apply_ops(pod, result.patch)
        summary.add(f"{label} skipped: {result.reason.code}: {result.reason.message}")
        return pod

    output = _transform_all(documents, inject_one, args.namespace)
    summary.flush()
    dump(output, sys.stdout, args.output, [d.where for d in documents])
    return 0


# --- uninject ----------------------------------------------------------------------------------------


def cmd_uninject(args: argparse.Namespace) -> int:
    from webhook.engine.patch import uninject
    from webhook.engine.status import STATUS_KEY, malformed_status_warning, omitted_warning, read_status

    documents = read_documents(expand(args.files, recursive=args.recursive))
    check_shapes(documents)
    summary = Summary(args.quiet)

    def uninject_one(pod: dict[str, Any], workload: Workload, namespace: str, where: str) -> dict[str, Any]:
        label = _label(workload, namespace)
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        status = read_status(annotations)  # {} when absent, None when not a record of ours
        if status is None:
            # Anyone may write the annotation; a record not ours is not trusted to say what to remove.
            summary.warn(label, malformed_status_warning(annotations))
            summary.add(f"{label} unchanged: {STATUS_KEY} is present but not a record meshswitch wrote, so nothing is removed")
            return pod
        if not status:
            summary.add(f"{label} unchanged: no {STATUS_KEY} annotation, so nothing meshswitch injected")
            return pod
        if status.get("omitted"):
            # The originals were left out of the record to keep the pod within the API server's
            # bound: taking the rest away would leave the pod as it never was.
            summary.warn(label, omitted_warning(status))
            summary.add(f"{label} unchanged: {STATUS_KEY} does not hold the pod's originals, so nothing is removed")
            return pod
        try:
            result = uninject(pod)
        except Exception as err:
            raise UsageError(f"{where}: meshswitch.io/status does not match the pod ({type(err).__name__}: {err})") from None
        summary.add(f"{label} uninjected: {', '.join(str(p) for p in status.get('plugins') or ()) or 'nothing recorded'}")
        return result

    output = _transform_all(documents, uninject_one, args.namespace)
    summary.flush()
    dump(output, sys.stdout, args.output, [d.where for d in documents])
    return 0


# --- explain -----------------------------------------------------------------------------------------


def _cluster_view(args: argparse.Namespace, plugins: PluginSet) -> tuple[KubeApi | None, Discovery | None]:
    """With --kubeconfig, explain reads the control planes (once) and the namespaces from the cluster."""
    if not getattr(args, "kubeconfig", None):
        return None, None
    from webhook.cluster.client import connect
    from webhook.cluster.discovery_watch import get_control_plane_object
    from webhook.engine.discovery import Discovery

    api = connect(Path(args.kubeconfig))
    discovery = Discovery(plugins)
    for target in discovery.watched():
        found = get_control_plane_object(api, target)
        if found is not None:
            discovery.observe(*target.key, found)
    return api, discovery


def cmd_explain(args: argparse.Namespace) -> int:
    from webhook.cluster.namespaces import meta_from
    from webhook.engine.errors import PodDenied
    from webhook.engine.workloads import namespace_of, pod_template, workload_of

    plugins = load_plugins_from(args)
    api, discovery = _cluster_view(args, plugins)
    injector = build_injector(args, plugins, discovery)
    documents = read_documents(expand(args.files, recursive=args.recursive))
    check_shapes(documents)
    denied = False
    records: list[dict[str, Any]] = []
    for document in documents:
        for where, obj in _objects(document):
            template = pod_template(obj)
            if template is None:
                continue
            namespace = namespace_of(obj, args.namespace)
            meta = namespace_meta(args, namespace)
            if api is not None and not (args.namespace_labels or args.namespace_annotations or args.mode):
                found = api.get(f"/api/v1/namespaces/{namespace}")
                meta = meta_from(found) if found is not None else meta
            record: dict[str, Any] = {"object": describe(obj), "namespace": namespace, "source": where.rpartition(": ")[0]}
            workload = workload_of(obj)
            # The whole injection, not only the decision: a plugin's refuse rules, a container name
            # the plugin would add twice and the render's warnings (no trust anchors) come after it,
            # and explain must say what inject and the webhook would do.
            try:
                result = injector.inject(_as_created(dict(template), workload), meta, workload=workload)
            except PodDenied as err:
                denied = True
                record.update(allowed=False, plugins=[], reason={"code": err.code, "message": err.message}, warnings=injector.unknown_keys(template))
            except Exception as err:
                raise engine_failure(where, err) from None
            else:
                record.update(allowed=True, plugins=list(result.plugins), reason={"code": result.reason.code, "message": result.reason.message}, warnings=list(result.warnings))
            records.append(record)
    if args.output == "text":
        lines = []
        for record in records:
            reason = record["reason"]
            if record["allowed"]:
                chosen = ", ".join(record["plugins"]) or "nothing"
                lines.append(f"{record['object']} ({record['namespace']}): {chosen} [{reason['code']}] {reason['message']}")
            else:
                lines.append(f"{record['object']} ({record['namespace']}): denied {reason['code']}: {reason['message']}")
            lines.extend(f"    warning: {w}" for w in record["warnings"])
        if lines:
            print("\n".join(lines))
    else:
        dump([records], sys.stdout, args.output)  # one document: the list of records
    return 1 if denied else 0


# --- plugins -----------------------------------------------------------------------------------------


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
        if plugin.sidecar_style_setting:
            rows.append(f"    sidecar style: from setting {plugin.sidecar_style_setting} (true native, false classic)")
        if plugin.declared == "merge":
            rows.append(f"    declared {', '.join(sorted(plugin.container_names))}: merged over the injected container")
        if plugin.releases is not None:
            rows.append(f"    releases: {', '.join(plugin.releases.lines)} (from value {plugin.releases.value})")
        for setting in plugin.settings:
            default = "" if setting.default in (None, [], "") else f" (default {setting.default!r})"
            for key in setting.keys:  # one row per key, so that every key the mesh reads is listed
                where = "pod and namespace" if key in plugin.namespace_keys else "pod"
                rows.append(f"    {key} ({where}): {setting.type}{default}; accepts {setting.accepts()}")
        if with_values:
            for key, value in plugin.values.items():
                rows.append(f"    value {key}: {value!r}")
    return "\n".join(rows)


def cmd_plugins(args: argparse.Namespace) -> int:
    print(_format_plugins(load_plugins_from(args), with_values=args.values is not None))
    return 0
