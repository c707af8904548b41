"""The CLI a platform engineer expects: flags and subcommands, the stderr summary, and bad input
that ends in one line on stderr, a non-zero exit and nothing on stdout."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.corpora import OWN as CORPUS
from tests.helpers import ROOT
from webhook.cli.main import COMMANDS, build_parser, main

SCRIPT = Path(sys.executable).parent / "meshswitch"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 8080}]}]
"""
DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox}]
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's own exits (--help, usage errors)
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write(directory: Path, name: str, text: str | bytes) -> str:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


# --- flags and subcommands --------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("meshswitch ") and out.split()[1][0].isdigit()


def test_help_imports_neither_the_engine_nor_yaml() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from webhook.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('webhook.engine', 'webhook.server', 'webhook.cluster', 'yaml', 'jinja2', 'kubernetes', 'cryptography', 'fastapi')))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand's parser (nested ones too), each built with its flags."""
    found = []
    for name in COMMANDS:
        top = build_parser([name])
        assert top._subparsers is not None
        commands = top._subparsers._group_actions[0]
        assert isinstance(commands, argparse._SubParsersAction)
        stack: list[tuple[str, argparse.ArgumentParser]] = [(f"meshswitch {name}", commands.choices[name])]
        while stack:
            label, parser = stack.pop()
            found.append((label, parser))
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend((f"{label} {sub}", p) for sub, p in action.choices.items())
    return found


PARSERS = _all_parsers()


@pytest.mark.parametrize(("label", "parser"), PARSERS, ids=[label for label, _ in PARSERS])
def test_every_flag_is_described(label: str, parser: argparse.ArgumentParser) -> None:
    assert parser.description, f"{label}: no description"
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help and action.help != argparse.SUPPRESS and len(action.help) > 10, f"{label} {action.option_strings or action.dest}: no help"


def test_there_are_nested_subcommands() -> None:
    labels = {label for label, _ in PARSERS}
    assert {"meshswitch mode list", "meshswitch mode get", "meshswitch mode set", "meshswitch certs install", "meshswitch diff"} <= labels


@pytest.mark.parametrize(
    ("command", "required"),
    [("inject", ["-f", "-"]), ("uninject", ["-f", "-"]), ("explain", ["-f", "-"]), ("check", []), ("diff", ["shop", "istio"]),
     ("mode set", ["shop", "istio"]), ("mode get", ["shop"]), ("certs install", [])],
)
def test_an_unknown_flag_shows_that_subcommands_usage(capsys: pytest.CaptureFixture[str], command: str, required: list[str]) -> None:
    code, out, err = run(capsys, *command.split(), *required, "--no-such-flag")
    assert code == 2 and out == ""
    assert err.startswith(f"usage: meshswitch {command} ") and "--no-such-flag" in err.splitlines()[-1]


@pytest.mark.parametrize(("args", "lists"), [(["mode"], ["list", "get", "set"]), (["certs"], ["generate", "install"]), ([], ["inject", "mode"])])
def test_a_command_alone_prints_its_usage(capsys: pytest.CaptureFixture[str], args: list[str], lists: list[str]) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith(f"usage: {' '.join(['meshswitch', *args])} ") and "required" not in err
    assert all(name in err for name in lists)


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "HTTPS needs a certificate: give --cert-dir, or --cert-file and --key-file"),
        (["--cert-dir", "c", "--cert-file", "f"], "give --cert-dir, or --cert-file and --key-file, not both"),
        (["--cert-dir", "c", "--no-kube", "--kubeconfig", "k"], "--no-kube and --kubeconfig contradict each other"),
        (["--cert-dir", "c", "--max-header-line-bytes", "100"], "--max-header-line-bytes must be at least 1024"),
    ],
)
def test_serve_flags_that_make_no_server_are_usage_errors(capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    """docs/server.md: exit 2 for a configuration that cannot serve, with serve's usage (it was 1)."""
    code, out, err = run(capsys, "serve", *flags)
    assert code == 2 and out == ""
    assert err.startswith("usage: meshswitch serve") and f"meshswitch serve: error: {message}" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "--warn-days", "-5"], "argument --warn-days: '-5' is not a whole number of days 0 or more"),
        (["mode", "set", "shop", "istio", "--restart", "--wait-seconds", "nan"], "argument --wait-seconds: 'nan' is not a number of seconds 0 or more"),
        (["certs", "install", "--ca-overlap-seconds", "-1"], "argument --ca-overlap-seconds: '-1' is not a number of seconds 0 or more"),
        (["certs", "install", "--propagation-seconds", "inf"], "argument --propagation-seconds: 'inf' is not a number of seconds 0 or more"),
        (["check", "--url", "notaurl"], "argument --url: 'notaurl' is not an https:// URL; accepted: e.g. https://127.0.0.1:8443"),
        (["check", "--url", "https://127.0.0.1:99999"], "argument --url: 'https://127.0.0.1:99999' is not an https:// URL"),
    ],
)
def test_cluster_numbers_are_checked_as_the_flag(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """They were taken as given: --wait-seconds nan skipped the wait for the webhook's namespace
    cache, and a negative --warn-days or overlap silently meant never."""
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err


@pytest.mark.parametrize("command", [["mode", "list"], ["diff", "shop", "istio"], ["check"]])
def test_a_kubeconfig_that_is_not_utf8_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    """It said the codec's "'utf-8' codec can't decode byte 0xe9 in position 20: invalid continuation byte"."""
    kubeconfig = write(tmp_path, "kubeconfig", b"apiVersion: v1\nkind: Config\nusers: caf\xe9\n")
    code, out, err = run(capsys, *command, "--kubeconfig", kubeconfig)
    assert code == 1 and out == ""
    assert f"{kubeconfig}:3: not UTF-8 text (byte 0xe9 at offset 38); a kubeconfig is UTF-8 YAML" in err


UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
CLUSTER_COMMANDS = [["mode", "list"], ["mode", "set", "shop", "istio"], ["diff", "shop", "istio"], ["check"], ["certs", "install"]]


@pytest.mark.parametrize("command", CLUSTER_COMMANDS, ids=" ".join)
def test_a_cluster_that_does_not_answer_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    kubeconfig = write(tmp_path, "kubeconfig", UNREACHABLE_KUBECONFIG)
    code, out, err = run(capsys, *command, "--kubeconfig", kubeconfig)
    name = " ".join(word for word in command if word not in ("shop", "istio"))
    assert code == 1 and out == ""
    assert err.startswith(f"meshswitch {name}: cannot reach the cluster: MaxRetryError: "), err
    assert len(err.splitlines()) == 1, err


@pytest.mark.parametrize("command", CLUSTER_COMMANDS, ids=" ".join)
def test_a_bug_under_a_cluster_command_is_not_taken_for_an_unreachable_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """They caught every exception and said "cannot reach the cluster" for a bug of ours too."""
    from webhook.cluster import client

    def broken(*_: object, **__: object) -> object:
        raise KeyError("a bug")

    monkeypatch.setattr(client, "send", broken)
    kubeconfig = write(tmp_path, "kubeconfig", UNREACHABLE_KUBECONFIG)
    code, _, err = run(capsys, *command, "--kubeconfig", kubeconfig)
    assert code == 70 and "internal error: KeyError: 'a bug'" in err and "cannot reach" not in err, err
    monkeypatch.setenv("MESHSWITCH_DEBUG", "1")
    with pytest.raises(KeyError):
        main([*command, "--kubeconfig", kubeconfig])


def test_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    big = write(tmp_path, "big.yaml", "---\n".join(DEPLOYMENT.replace("name: web,", f"name: web{i},") for i in range(300)))
    for command in (["explain", "-f", big, "--mode", "istio"], ["inject", "-f", big, "--mode", "istio", "-q"]):
        process = subprocess.Popen([str(SCRIPT), *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.stdout.close()  # as `| head -1` does
        err = process.stderr.read().decode()
        process.wait(timeout=60)
        assert err == "", err
        assert process.returncode in (0, 141)


# --- input and output -------------------------------------------------------------------------------


def test_several_files_and_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.yaml", DEPLOYMENT)
    b = write(tmp_path, "b.yaml", DEPLOYMENT.replace("name: web,", "name: api,"))
    code, out, err = run(capsys, "inject", "-f", a, "-f", b, "--mode", "istio")
    assert code == 0, err
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["web", "api"]
    write(tmp_path / "dir", "one.yaml", DEPLOYMENT)
    write(tmp_path / "dir" / "sub", "two.yml", DEPLOYMENT.replace("name: web,", "name: deep,"))
    write(tmp_path / "dir", "notes.txt", "not yaml")
    _, out, _ = run(capsys, "inject", "-f", str(tmp_path / "dir"), "--mode", "istio")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["web"]
    _, out, _ = run(capsys, "inject", "-R", "-f", str(tmp_path / "dir"), "--mode", "istio")
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["web", "deep"]
    code, out, err = run(capsys, "inject", "-f", str(tmp_path / "dir" / "sub" / ".."), "-f", str(tmp_path / "empty"), "--mode", "istio")
    assert code == 1 and out == ""


def test_an_empty_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    write(tmp_path / "empty" / "deeper", "x.yaml", DEPLOYMENT)
    code, out, err = run(capsys, "inject", "-f", str(tmp_path / "empty"))
    assert code == 1 and out == "" and "a directory with no .yaml, .yml or .json files (-R reads its subdirectories too)" in err


@pytest.mark.parametrize("command", ["inject", "uninject"])
def test_output_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    source = write(tmp_path, "in.yaml", DEPLOYMENT + "---\n" + DAEMONSET)
    code, out, _ = run(capsys, command, "-f", source, "--mode", "istio", "-o", "json") if command == "inject" else run(capsys, command, "-f", source, "-o", "json")
    document = json.loads(out)
    assert code == 0 and document["kind"] == "List" and [i["kind"] for i in document["items"]] == ["Deployment", "DaemonSet"]
    _, out, _ = run(capsys, command, "-f", write(tmp_path, "one.yaml", DEPLOYMENT), "-o", "json")
    assert json.loads(out)["kind"] == "Deployment"


def test_inject_json_equals_inject_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = str(CORPUS / "web-frontend-deployment.yaml")
    _, as_yaml, _ = run(capsys, "inject", "-f", source, "--mode", "linkerd")
    _, as_json, _ = run(capsys, "inject", "-f", source, "--mode", "linkerd", "-o", "json")
    assert json.loads(as_json)["items"] == [d for d in yaml.safe_load_all(as_yaml) if d]


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_explain_records(tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    source = write(tmp_path, "in.yaml", DEPLOYMENT + "---\n" + DAEMONSET)
    code, out, _ = run(capsys, "explain", "-f", source, "--mode", "istio", "-o", output)
    records = json.loads(out) if output == "json" else yaml.safe_load(out)
    assert code == 0
    assert [(r["object"], r["namespace"], r["plugins"], r["reason"]["code"]) for r in records] == [
        ("deployment/web", "shop", ["istio"], "injected"),
        ("daemonset/agent", "kube-system", [], "ignored-namespace"),
    ]
    assert records[0]["source"] == f"{source}: document 1"


@pytest.mark.parametrize(
    "annotations, containers, mode, message",
    [
        ({"inject.istio.io/templates": "sidecar,gateway"}, "", "istio", "denied invalid-setting: istio: inject.istio.io/templates with gateway after sidecar"),
        ({"config.linkerd.io/close-wait-timeout": "5s"}, "", "linkerd", "denied invalid-setting: linkerd: config.linkerd.io/close-wait-timeout"),
        ({}, ", {name: istio-init, image: busybox}", "istio", "denied invalid-pod: spec.containers: the pod has its own container istio-init"),
    ],
)
def test_explain_says_what_inject_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], annotations: dict[str, str], containers: str, mode: str, message: str
) -> None:
    """explain stopped at the decision: it said `injected` (exit 0) for pods that inject and the
    webhook refuse after it, by a plugin's refuse rule or a container the plugin adds twice."""
    pod = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, annotations: {json.dumps(annotations)}}}\nspec:\n  containers: [{{name: a, image: b}}{containers}]\n"
    source = write(tmp_path, "in.yaml", pod)
    inject_code, _, inject_err = run(capsys, "inject", "-f", source, "--mode", mode)
    code, out, _ = run(capsys, "explain", "-f", source, "--mode", mode)
    assert inject_code == 1 and code == 1
    assert out.startswith(f"pod/p (default): {message}") and message.split(": ", 1)[1] in inject_err


def test_explain_warns_as_inject_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The render's warnings too: a Linkerd proxy without trust anchors cannot start."""
    source = write(tmp_path, "in.yaml", DEPLOYMENT)
    _, _, inject_err = run(capsys, "inject", "-f", source, "--mode", "linkerd")
    code, out, _ = run(capsys, "explain", "-f", source, "--mode", "linkerd", "-o", "json")
    warnings = json.loads(out)[0]["warnings"]
    assert code == 0 and any("no identity trust anchors" in w for w in warnings)
    assert all(f"warning: deployment/web (shop): {w}" in inject_err for w in warnings)


def test_the_summary_on_stderr_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.yaml", DEPLOYMENT + "---\n" + DAEMONSET + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n")
    code, out, err = run(capsys, "inject", "-f", source, "--mode", "istio")
    assert code == 0 and out
    assert err.splitlines() == [
        "deployment/web (shop) injected: istio",
        "daemonset/agent (kube-system) skipped: ignored-namespace: namespace kube-system is never injected",
    ]
    _, injected, _ = run(capsys, "inject", "-f", source, "--mode", "istio", "-q")
    assert injected == out
    _, _, err = run(capsys, "uninject", "-f", write(tmp_path, "injected.yaml", injected))
    assert err.splitlines() == [
        "deployment/web (shop) uninjected: istio",
        "daemonset/agent (kube-system) unchanged: no meshswitch.io/status annotation, so nothing meshswitch injected",
    ]
    code, _, err = run(capsys, "uninject", "-q", "-f", write(tmp_path, "injected.yaml", injected))
    assert code == 0 and err == ""


def test_dapr_on_a_mesh_in_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dapr = DEPLOYMENT.replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: web}, annotations: {dapr.io/enabled: 'true', dapr.io/app-id: web}}")
    _, _, err = run(capsys, "inject", "-f", write(tmp_path, "in.yaml", dapr), "--mode", "linkerd")
    # Offline, without linkerd-config or --set linkerd.identityTrustAnchorsPEM, Linkerd's proxy cannot start: said first.
    assert err.splitlines() == [
        "warning: deployment/web (shop): linkerd: no identity trust anchors (linkerd-config was not found and the values "
        "set no identityTrustAnchorsPEM): the proxy cannot start without them",
        "deployment/web (shop) injected: linkerd, dapr",
    ]


def test_unknown_keys_warn_in_explain_and_inject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path, "in.yaml", DEPLOYMENT.replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: web}, annotations: {sidecar.istio.io/proxyCPUlimit: '2'}}"))
    code, out, _ = run(capsys, "explain", "-f", source, "--mode", "istio")
    expected = "pod annotation sidecar.istio.io/proxyCPUlimit is not a key istio reads, so it has no effect; did you mean sidecar.istio.io/proxyCPULimit?"
    assert code == 0 and f"    warning: {expected}" in out.splitlines()
    code, _, err = run(capsys, "inject", "-f", source, "--mode", "istio", "-q")
    assert code == 0 and f"warning: deployment/web (shop): {expected}" in err.splitlines()


# --- bad input --------------------------------------------------------------------------------------

BAD = [
    ("binary", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00", "bad.yaml: a binary file, not YAML or JSON text"),
    ("latin-1", "metadata: {name: caf\xe9}\n".encode("latin-1"), "bad.yaml:1: not UTF-8 text (byte 0xe9 at offset 20)"),
    ("containers-string", DEPLOYMENT.replace("containers: [{name: web, image: nginx, ports: [{containerPort: 8080}]}]", 'containers: "x"'),
     "bad.yaml: document 1: deployment/web: spec.template.spec.containers: must be a list, got a string ('x')"),
    ("template-number", DEPLOYMENT.split("  template:")[0] + "  template: 5\n",
     "bad.yaml: document 1: deployment/web: spec.template: must be a pod template, got a number (5)"),
    ("no-template", DEPLOYMENT.split("  template:")[0], "bad.yaml: document 1: deployment/web: spec.template: is missing: a Deployment needs spec.template"),
    ("no-containers", DEPLOYMENT.replace("      containers: [{name: web, image: nginx, ports: [{containerPort: 8080}]}]", "      hostname: web"),
     "bad.yaml: document 1: deployment/web: spec.template.spec.containers: is missing"),
    ("port-string", DEPLOYMENT.replace("containerPort: 8080", "containerPort: http"),
     "bad.yaml: document 1: deployment/web: spec.template.spec.containers[0].ports[0].containerPort: must be a port number 1-65535, got a string ('http')"),
    ("label-number", DEPLOYMENT.replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: web, version: 2}}"),
     "bad.yaml: document 1: deployment/web: spec.template.metadata.labels.version: must be a string (quote it), got a number (2)"),
    ("list-item", "apiVersion: v1\nkind: List\nitems:\n- " + DEPLOYMENT.replace("\n", "\n  ").replace("containerPort: 8080", "containerPort: 0"),
     "bad.yaml: document 1: items[0] deployment/web: spec.template.spec.containers[0].ports[0].containerPort: must be a port number 1-65535, got a number (0)"),
    ("second-document", DEPLOYMENT + "---\n" + DAEMONSET.replace("containers: [{name: agent, image: busybox}]", "containers: [{image: busybox}]"),
     "bad.yaml: document 2: daemonset/agent: spec.template.spec.containers[0].name: must be a non-empty string, got null"),
    ("yaml", "kind: Pod\nmetadata: {name: x\n", "bad.yaml:3: document 1: not valid YAML"),
    ("inject-nope", DEPLOYMENT.replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: web, meshswitch.io/inject: nope}}"),
     "bad.yaml: document 1: deployment/web: denied: pod label meshswitch.io/inject='nope' is not a choice; accepted: true, false"),
]


@pytest.mark.parametrize("command", ["inject", "uninject", "explain"])
@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_input_is_one_line_naming_file_document_object_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, case: str, text: str | bytes, expected: str
) -> None:
    source = write(tmp_path, "bad.yaml", text)
    extra = ["--mode", "istio"] if command != "uninject" else []
    code, out, err = run(capsys, command, "-f", source, *extra)
    if case == "inject-nope":
        if command == "uninject":
            assert code == 0  # uninject decides nothing: the value is the user's to keep
            return
        if command == "explain":
            assert code == 1 and "denied invalid-setting: pod label meshswitch.io/inject='nope' is not a choice" in out
            return
    assert code == 1 and out == "", out
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"meshswitch {command}: {tmp_path}/") and expected in err, err
    assert "Traceback" not in err and "templates/" not in err


def test_consul_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("inject", "explain"):
        code, out, err = run(capsys, command, "-f", write(tmp_path, "in.yaml", DEPLOYMENT), "--mode", "consul")
        assert code == 1 and out == ""
        assert err.startswith(f"meshswitch {command}: --mode 'consul' is not an installed mode; accepted: ") and "namespace label" not in err


def test_no_traceback_for_a_file_through_the_console_script(tmp_path: Path) -> None:
    source = write(tmp_path, "bad.yaml", b"\xff\xfe\x00\x01binary")
    for command in ("inject", "uninject", "explain"):
        result = subprocess.run([str(SCRIPT), command, "-f", source], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
        assert result.stderr.strip() == f"meshswitch {command}: {source}: a binary file, not YAML or JSON text"
