"""What the docs state as fact about the code, held to the code: a claim that went stale fails here."""

from __future__ import annotations

import argparse
import base64
import json
import re

import pytest

from tests.helpers import ROOT, make_injector, namespace
from webhook.engine.plugins import Plugin, load_plugins
from webhook.server.options import add_serve_arguments

DOCS = ROOT / "docs"
# Words in the values table that are no value's name: what a value stands for in the mesh's own terms.
NOT_VALUES = {"dapr": {"runAsUser", "runAsGroup", "placement", "scheduler"}, "linkerd": {"nft", "legacy"}}


def _table_row(text: str, first_cell: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"one row for {first_cell}"
    return rows[0]


@pytest.mark.parametrize("plugin", [p for p in load_plugins() if p.values], ids=lambda p: p.name)
def test_the_values_table_lists_each_plugins_values(plugin: Plugin) -> None:
    """docs/delegation.md listed Linkerd `resources` and `initResources`, which --values refuses, and
    left out half of Istio's and Linkerd's values."""
    section = (DOCS / "delegation.md").read_text().partition("## Installation values")[2].partition("\n## ")[0]
    row = _table_row(section, plugin.name)
    named = set(re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", row))
    values = set(plugin.values)
    assert values - named == set(), "values the table does not list"
    assert named - values - NOT_VALUES.get(plugin.name, set()) == set(), "the table lists what is no value"


def test_the_serve_flags_table_lists_every_flag() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    flags = {option for action in parser._actions for option in action.option_strings if option.startswith("--")} - {"--help"}
    rows = [line.split("|")[1] for line in (DOCS / "server.md").read_text().splitlines() if line.startswith("| `--")]
    documented = set(re.findall(r"--[a-z-]+", " ".join(rows)))
    assert flags - documented == set(), "serve flags missing from docs/server.md's table"
    assert documented - flags == set(), "docs/server.md's table names flags serve does not have"


def test_the_example_reviews_patch_is_as_server_md_says() -> None:
    """The 22 operations and 8 volumes server.md showed had become 23 and 9 (istio-ca-crl)."""
    review = json.loads((ROOT / "examples" / "admissionreview-istio.json").read_text())
    request = review["request"]
    patch = make_injector().inject(request["object"], namespace(request["namespace"])).patch
    text = (DOCS / "server.md").read_text()
    count = re.search(r"decoded, its (\d+) operations are", text)
    assert count and int(count.group(1)) == len(patch)
    volumes = re.search(r"add /spec/volumes/- \(x(\d+)\)(.*?)\nadd ", text, re.DOTALL)
    assert volumes
    listed = re.findall(r"[a-z-]+", volumes.group(2))
    added = [op["value"]["name"] for op in patch if op["path"] == "/spec/volumes/-"]
    assert int(volumes.group(1)) == len(listed) and listed == added
    readme_patch = re.search(r'"patch":"([A-Za-z0-9+/=]+)\.\.\."', (ROOT / "README.md").read_text())
    assert readme_patch, "README's answer shows the patch's beginning"
    answer = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    assert answer.startswith(readme_patch.group(1)[: len(readme_patch.group(1)) // 4 * 4])


def test_the_grace_period_shipping_md_states_is_the_deployments() -> None:
    stated = re.search(r"`terminationGracePeriodSeconds: (\d+)`", (DOCS / "shipping.md").read_text())
    shipped = re.search(r"terminationGracePeriodSeconds: (\d+)", (ROOT / "manifests" / "base" / "deployment.yaml").read_text())
    assert stated and shipped and stated.group(1) == shipped.group(1)


def test_the_dev_cluster_registration_is_named_as_make_run_names_it() -> None:
    """controlplane.md said `make run` registered MutatingWebhookConfiguration/meshswitch; it registers meshswitch-dev."""
    from webhook.dev.cluster import CONFIG_NAME

    named = re.findall(r"(?:Mutating|Validating)WebhookConfiguration[/ ]`?([a-z0-9-]+)", (DOCS / "controlplane.md").read_text())
    assert named and set(named) == {CONFIG_NAME}


def test_the_entry_count_shipping_md_states_is_the_manifests() -> None:
    import yaml

    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
    stated = re.search(r"\| MutatingWebhookConfiguration `meshswitch` \| (\w+) entries", (DOCS / "shipping.md").read_text())
    shipped = yaml.safe_load((ROOT / "manifests" / "base" / "mutatingwebhook.yaml").read_text())
    assert stated and words[stated.group(1)] == len(shipped["webhooks"])


def _flags(*command: str) -> set[str]:
    from webhook.cli.main import build_parser

    parser = build_parser(command)
    for name in command:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return {option for action in parser._actions for option in action.option_strings} - {"-h", "--help"}


@pytest.mark.parametrize(
    "command, doc",
    [
        (("inject",), "cli.md"), (("uninject",), "cli.md"), (("explain",), "cli.md"), (("plugins",), "cli.md"), (("diff",), "cli.md"),
        (("mode", "list"), "cli.md"), (("mode", "get"), "cli.md"), (("mode", "set"), "cli.md"), (("certs", "generate"), "cli.md"),
        (("certs", "install"), "shipping.md"), (("check",), "shipping.md"), (("serve",), "server.md"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v,
)  # fmt: skip
def test_every_flag_is_documented(command: tuple[str, ...], doc: str) -> None:
    """cli.md says it has every flag; --set, --sidecar-style, --default-mode, --kubeconfig and more were in none."""
    text = (DOCS / doc).read_text()
    missing = {flag for flag in _flags(*command) if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)}
    assert missing == set()
