"""The offline CLI: multi-document files, Lists, CronJobs, kinds that pass through, and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.corpora import OWN as CORPUS
from tests.helpers import ROOT, validate_pod
from webhook.cli.main import main
from webhook.engine.workloads import pod_template

CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: batch}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {dapr.io/enabled: "true", dapr.io/app-id: report}
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: busybox}]
"""
LIST = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: one}
    spec: {containers: [{name: app, image: nginx}]}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {a: "1"}
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata: {name: rs}
    spec:
      selector: {matchLabels: {app: rs}}
      template:
        metadata: {labels: {app: rs}}
        spec: {containers: [{name: app, image: nginx}]}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", ["web-frontend-deployment.yaml", "payments-api-deployment.yaml", "redis-cache-deployment.yaml"])
def test_inject_injects_deployments_and_leaves_services(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = CORPUS / name
    code, out, err = run(capsys, "inject", "-f", str(source), "--mode", "istio")
    assert code == 0, err
    before = [d for d in yaml.safe_load_all(source.read_text()) if d]
    after = [d for d in yaml.safe_load_all(out) if d]
    assert len(after) == len(before)
    for original, injected in zip(before, after, strict=True):
        if original["kind"] == "Deployment":
            template = pod_template(injected)
            assert template is not None
            validate_pod(template)
            assert [c["name"] for c in template["spec"]["initContainers"]][:2] == ["istio-init", "istio-proxy"]
        else:
            assert injected == original
    assert [d["kind"] for d in after] == ["Deployment", "Service"]


def test_inject_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", open(CORPUS / "db-migrate-job.yaml"))  # noqa: SIM115
    code, out, _ = run(capsys, "inject", "-f", "-", "--mode", "linkerd")
    job = yaml.safe_load(out)
    assert code == 0 and [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]][:2] == ["linkerd-init", "linkerd-proxy"]
    assert job["spec"]["template"]["metadata"]["labels"]["linkerd.io/proxy-job"] == "orders-db-migrate-20250114"


def test_inject_cronjob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, CRONJOB), "--namespace-labels", "istio-injection=enabled")
    assert code == 0, err
    template = yaml.safe_load(out)["spec"]["jobTemplate"]["spec"]["template"]
    validate_pod(template)
    names = [c["name"] for c in template["spec"]["initContainers"]]
    assert names == ["istio-init", "istio-proxy", "daprd"]
    assert template["metadata"]["labels"]["dapr.io/app-id"] == "report"


def test_inject_list_and_pass_through_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inject", "-f", write(tmp_path, LIST), "--mode", "envoy")
    items = yaml.safe_load(out)["items"]
    assert code == 0
    assert [c["name"] for c in items[0]["spec"]["initContainers"]] == ["envoy-init", "envoy"]
    assert items[1] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    assert [c["name"] for c in items[2]["spec"]["template"]["spec"]["initContainers"]] == ["envoy-init", "envoy"]


@pytest.mark.parametrize("name", ["wordpress-deployment.yaml", "batch-workers-list.yaml", "postgres-statefulset.yaml"])
def test_inject_then_uninject_round_trips(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = CORPUS / name
    _, injected, _ = run(capsys, "inject", "-f", str(source), "--mode", "istio")
    code, restored, _ = run(capsys, "uninject", "-f", write(tmp_path, injected))
    assert code == 0
    assert [d for d in yaml.safe_load_all(restored) if d] == [d for d in yaml.safe_load_all(source.read_text()) if d]


def test_inject_twice_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, once, _ = run(capsys, "inject", "-f", str(CORPUS / "grpc-greeter-deployment.yaml"), "--mode", "linkerd")
    _, twice, _ = run(capsys, "inject", "-f", write(tmp_path, once), "--mode", "linkerd")
    assert list(yaml.safe_load_all(once)) == list(yaml.safe_load_all(twice))


def test_explain_one_line_per_workload(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "-f", str(CORPUS / "batch-workers-list.yaml"), "--namespace-labels", "istio-injection=enabled")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 1
    assert all("istio [injected]" in line for line in lines)
    code, out, _ = run(capsys, "explain", "-f", str(CORPUS / "kube-proxy-daemonset.yaml"), "--mode", "istio")
    assert "nothing [ignored-namespace]" in out


def test_plugins_lists_names_kinds_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    for text in ("istio  (mesh)", "linkerd  (mesh)", "dapr  (runtime)", "envoy  (mesh)", "native  (native)",
                 "sidecar.istio.io/proxyCPU (pod): cpu", "dapr.io/app-port (pod): int",  # Istio reads its keys on pods only
                 "dapr.io/enable-native-sidecar (pod): truthy",
                 "config.beta.linkerd.io/proxy-enable-native-sidecar (pod): bool",
                 "config.linkerd.io/close-wait-timeout (pod): duration"):
        assert text in out


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("kind: Pod\nmetadata: {name: x\n", [], "in.yaml:3: document 1: not valid YAML"),
        (CRONJOB, ["--mode", "consul"], "--mode 'consul' is not an installed mode; accepted: "),
        (CRONJOB, ["--namespace-labels", "meshswitch.io/mode=consul"], "cronjob/report: denied: namespace label meshswitch.io/mode='consul'"),
        (CRONJOB.replace("app-id: report}", 'app-id: report, dapr.io/app-port: "http"}'), [], "pod annotation dapr.io/app-port='http' is not a whole number"),
        (CRONJOB.replace(", dapr.io/app-id: report}", "}"), [], "cronjob/report: denied: pod annotation dapr.io/app-id"),
        (CRONJOB, ["--namespace-labels", "novalue"], "meshswitch inject: --namespace-labels 'novalue': 'novalue' is not key=value"),
    ],
)
def test_bad_input_one_line_on_stderr_nothing_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, args: list[str], message: str) -> None:
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, text), *args)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inject", "-f", "/nonexistent.yaml")
    assert code == 1 and out == "" and "cannot read" in err


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "meshswitch"
    result = subprocess.run([str(script), "plugins"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and "istio" in result.stdout


LINKERD_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, annotations: {linkerd.io/inject: enabled}}
spec:
  containers: [{name: app, image: nginx, ports: [{containerPort: 8080}]}]
"""


def test_set_pins_the_release_and_reads_trust_anchors_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchors = tmp_path / "ca.crt"
    anchors.write_text("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    code, out, err = run(
        capsys, "inject", "-f", write(tmp_path, LINKERD_POD),
        "--set", "linkerd.version=edge-25.10.7", "--set", f"linkerd.identityTrustAnchorsPEM=@{anchors}",
    )  # fmt: skip
    assert code == 0 and "trust anchors" not in err
    pod = yaml.safe_load(out)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["linkerd-proxy", "app"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"] == anchors.read_text()
    code, _, err = run(capsys, "inject", "-f", write(tmp_path, LINKERD_POD))
    assert code == 0 and "linkerd: no identity trust anchors" in err


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("linkerd.bogus=1", "linkerd: unknown value 'bogus'"),
        ("linkerd", "accepted: plugin.key=value or plugin.key=@file"),
        ("linkerd.identityTrustAnchorsPEM=@/nonexistent/ca.crt", "cannot read /nonexistent/ca.crt"),
        ("linkerd.proxyUID=abc", "linkerd.proxyUID='abc' is not a whole number"),
        ("linkerd.resources={", "--set linkerd.resources='{': did not find expected node content; accepted: a YAML value"),
        ("linkerd.proxyUID=12:30", "linkerd.proxyUID='12:30' is not a whole number"),  # text, as kubectl reads it (not 750)
    ],
)
def test_bad_set_is_a_clear_error(assignment: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inject", "-f", write(tmp_path, LINKERD_POD), "--set", assignment)
    assert code == 1 and message in err, err


@pytest.mark.parametrize("command", ["inject", "uninject"])
@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("items: abc", "in.yaml: document 1: items: must be a list of objects, got a string ('abc')"),
        ("items: {a: 1}", "in.yaml: document 1: items: must be a list of objects, got a mapping"),
        ("items: [5]", "in.yaml: document 1: items[0]: must be an object (a mapping with apiVersion and kind), got a number (5)"),
        ("items: [{kind: List, items: [x]}]", "document 1: items[0].items[0]: must be an object"),
    ],
)
def test_list_whose_items_are_not_objects_is_refused(command: str, items: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, command, "-f", write(tmp_path, f"apiVersion: v1\nkind: List\n{items}\n"))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.parametrize("command", ["inject", "uninject", "explain"])
@pytest.mark.parametrize("items", ["items: null\n", "items: []\n", ""])
def test_list_without_items_passes_through(command: str, items: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = f"apiVersion: v1\nkind: List\n{items}"
    code, out, err = run(capsys, command, "-f", write(tmp_path, text))
    assert code == 0, err
    assert command == "explain" and out == "" or yaml.safe_load(out) == yaml.safe_load(text)


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_a_document_too_deep_to_write_is_an_error_not_a_crash(output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  x: " + "[" * 3000 + "]" * 3000 + "\n"
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, text), "-o", output)
    assert code == 1 and out == ""
    assert "nests too deeply for the output writer" in err, err


@pytest.mark.parametrize(
    ("command", "flag", "message"),
    [
        ("inject", "--values", "values.yaml:2: not UTF-8 text (byte 0xe9 at offset 22); YAML files are UTF-8 (installation values)"),
        ("plugins", "--templates-dir", "extra.yaml:2: not UTF-8 text (byte 0xe9 at offset 22); YAML files are UTF-8 (a plugin file)"),
        ("inject", "--set", "--set linkerd.identityTrustAnchorsPEM: "),
    ],
)
def test_file_that_is_not_utf8_is_one_line_naming_it(command: str, flag: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = b"istio: {}\n# owner: caf\xe9\n"
    (tmp_path / "values.yaml").write_bytes(raw)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "extra.yaml").write_bytes(raw)
    value = {"--values": str(tmp_path / "values.yaml"), "--templates-dir": str(tmp_path / "dir"),
             "--set": f"linkerd.identityTrustAnchorsPEM=@{tmp_path / 'values.yaml'}"}[flag]  # fmt: skip
    args = [command, flag, value] + (["-f", write(tmp_path, LINKERD_POD)] if command == "inject" else [])
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "internal error" not in err


@pytest.mark.parametrize("command", ["inject", "explain"])
@pytest.mark.parametrize("text", [CRONJOB, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"])
@pytest.mark.parametrize(
    ("flag", "value"), [("--namespace-labels", "novalue"), ("--namespace-annotations", "a=b,=c"), ("--namespace-labels", "a=b,c")]
)
def test_bad_namespace_flag_is_the_flags_error_with_or_without_a_workload(
    command: str, text: str, flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, command, "-f", write(tmp_path, text), flag, value)
    bad = value.split(",")[-1]
    assert code == 1 and out == ""
    assert err == f"meshswitch {command}: {flag} {value!r}: {bad!r} is not key=value; accepted: key=value pairs separated by commas, k=v,k2=v2\n"


@pytest.mark.parametrize("status", ["{not json", "[]", '{"plugins": 5}', '{"moved": {"app": {"section": "volumes", "index": 0}}}', '{"replacedLabels": {"a": 1}}'])
def test_uninject_says_a_malformed_status_is_not_ours(status: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"meshswitch.io/status": status}},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}}  # fmt: skip
    code, out, err = run(capsys, "uninject", "-f", write(tmp_path, yaml.safe_dump(pod)))
    assert code == 0 and yaml.safe_load(out) == pod
    assert f"warning: pod/p (default): annotation meshswitch.io/status={status!r} is not a status record meshswitch wrote; it is treated as absent" in err
    assert "pod/p (default) unchanged: meshswitch.io/status is present but not a record meshswitch wrote, so nothing is removed" in err
    assert "no meshswitch.io/status annotation" not in err
    code, _, err = run(capsys, "uninject", "-q", "-f", write(tmp_path, yaml.safe_dump(pod)))
    assert code == 0 and err.startswith("warning: pod/p (default): annotation meshswitch.io/status=")  # shown with -q too


def _probed_pod(headers: list[dict[str, str]]) -> str:
    probe = {"httpGet": {"path": "/ready", "port": 8080, "httpHeaders": headers}}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "app", "image": "nginx", "readinessProbe": probe}]}})  # fmt: skip


@pytest.mark.parametrize(
    "headers", [[{"name": "X-Token", "value": "x" * 270_000}], [{"name": "a", "value": ""} for _ in range(6700)]], ids=["270000-chars", "6700-headers"]
)
def test_rule7_inject_on_its_own_output_adds_nothing(headers: list[dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, first, _ = run(capsys, "inject", "--mode", "istio", "-f", write(tmp_path, _probed_pod(headers)))
    assert code == 0
    annotations = yaml.safe_load(first)["metadata"]["annotations"]
    assert sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items()) <= 262_144
    code, second, err = run(capsys, "inject", "--mode", "istio", "-f", write(tmp_path, first))
    assert code == 0 and yaml.safe_load(second) == yaml.safe_load(first)
    assert "pod/p (default) skipped: already-injected" in err and "treated as absent" not in err


def test_uninject_says_what_a_record_that_left_the_originals_out_cannot_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, injected, _ = run(capsys, "inject", "--mode", "istio", "-f", write(tmp_path, _probed_pod([{"name": "X-Token", "value": "x" * 270_000}])))
    code, out, err = run(capsys, "uninject", "-q", "-f", write(tmp_path, injected))
    assert code == 0 and yaml.safe_load(out) == yaml.safe_load(injected), "never a restore that is silently wrong"
    assert "warning: pod/p (default): meshswitch.io/status left out probes" in err and "uninject cannot restore the pod exactly" in err


def test_inject_leaves_a_meshed_pod_with_an_unreadable_record_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, injected, _ = run(capsys, "inject", "--mode", "istio", "-f", write(tmp_path, _probed_pod([])))
    garbled = yaml.safe_load(injected)
    garbled["metadata"]["annotations"]["meshswitch.io/status"] = "{not json"
    code, out, err = run(capsys, "inject", "--mode", "istio", "-f", write(tmp_path, yaml.safe_dump(garbled)))
    assert code == 0 and yaml.safe_load(out) == garbled
    assert "warning: pod/p (default): annotation meshswitch.io/status='{not json' is not a status record meshswitch wrote; the pod already has istio-init, istio-proxy, so it is treated as injected" in err


def test_namespace_annotation_values_may_hold_commas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Linkerd's namespace port lists: the webhook reads them from the namespace, the CLI from the flag.
    flag = "config.linkerd.io/skip-outbound-ports=25,587,config.linkerd.io/opaque-ports=3306, 6379"
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, LINKERD_POD), "--mode", "linkerd", "--namespace-annotations", flag, "-q")
    assert code == 0, err
    init = next(c for c in yaml.safe_load(out)["spec"]["initContainers"] if c["name"] == "linkerd-init")
    assert init["args"][init["args"].index("--outbound-ports-to-ignore") + 1].endswith("25,587")
    assert "3306,6379" in out


TEMPLATE_NAMED = """\
apiVersion: apps/v1
kind: {kind}
metadata: {{name: store}}
spec:
  selector: {{matchLabels: {{app: store}}}}
  template:
    metadata:
      name: store-pod
      labels: {{app: store}}
      annotations: {{dapr.io/enabled: "true"}}
    spec:
      containers: [{{name: store, image: nginx}}]
"""


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_a_templates_own_name_is_not_the_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    """A controller does not copy its template's metadata.name to the pods it creates, so Dapr's app
    id cannot fall back to it: the webhook would deny those pods (a Deployment's) or name each one
    apart (a StatefulSet's store-0, store-1), and the CLI says so rather than render another pod."""
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, TEMPLATE_NAMED.format(kind=kind)), "--mode", "native")
    assert code == 1 and out == ""
    assert f"{kind.lower()}/store: denied: pod annotation dapr.io/app-id is absent or empty" in err
    assert "a StatefulSet's <name>-<ordinal>" in err
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: store-0, annotations: {dapr.io/enabled: 'true'}}\nspec: {containers: [{name: a, image: nginx}]}\n"
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, pod), "--mode", "native")
    assert code == 0 and yaml.safe_load(out)["metadata"]["labels"]["dapr.io/app-id"] == "store-0"


def test_a_denial_in_a_list_names_the_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As the shape errors do (docs/cli.md): two items of one kind and name are told apart."""
    text = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: x}
  spec:
    selector: {matchLabels: {app: x}}
    template:
      metadata: {labels: {app: x}, annotations: {sidecar.istio.io/interceptionMode: BOGUS}}
      spec: {containers: [{name: x, image: nginx}]}
"""
    code, out, err = run(capsys, "inject", "-f", write(tmp_path, text), "--mode", "istio")
    assert code == 1 and out == ""
    assert "in.yaml: document 1: items[1] deployment/x: denied: pod annotation sidecar.istio.io/interceptionMode='BOGUS'" in err
