"""render() builds only the context names a plugin's per-pod leaves read: a template that reads
any of them still gets each one."""

from __future__ import annotations

from typing import Any

from pathlib import Path

import pytest

from tests.helpers import make_pod, namespace
from webhook.engine.config import Config
from webhook.engine.errors import ConfigError
from webhook.engine.injector import Injector
from webhook.engine.plugins import load_plugins
from webhook.engine.render import Workload, find_workload, render

EVERY_NAME = """\
name: agent
kind: runtime
description: reads every name of the render context
on:
  - {in: pod-annotation, key: example.com/inject, values: ["true"]}
settings:
  cpu: {key: example.com/cpu, type: cpu, default: 10m}
fragment:
  sidecars:
    - name: agent
      image: "example.com/agent:1"
      args:
        - "{{ app_ports | map(attribute='containerPort') | join(',') }}"
        - "{{ workload.kind }}/{{ workload.name }} {{ workload.apiVersion }} {{ workload.plural }}"
        - "{{ namespace.name }} {{ namespace.labels.get('team') }} {{ namespace.annotations.get('note') }}"
        - "{{ inherited | dictsort }}"
        - "{{ labels.get('app') }} {{ annotations.get('example.com/inject') }} {{ pod.metadata.name }}"
        - "{{ settings.cpu }} {{ native }} {{ hook }}"
"""


def test_every_context_name_reaches_a_template_that_reads_it(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(EVERY_NAME)
    injector = Injector(plugins=load_plugins([tmp_path]), config=Config())
    plugin = next(p for p in injector.plugins if p.name == "agent")
    assert {"app_ports", "workload", "namespace", "inherited", "hook"} <= plugin.fragment.reads
    pod = make_pod(
        labels={"app": "web"},
        annotations={"example.com/inject": "true"},
        containers=[{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]}],
    )
    ns = namespace("shop", {"team": "blue"}, {"note": "hi", "example.com/cpu": "20m"})
    addition = render(
        plugin, pod=pod, namespace=ns, settings={"cpu": "10m"}, workload=Workload("Deployment", "web"), native_sidecar=True
    )
    assert addition.sidecars[0]["args"] == [
        "8080,9090",
        "Deployment/web apps/v1 deployments",
        "shop blue hi",
        [("example.com/cpu", "20m")],  # the namespace's value of a key the pod does not set
        "web true web",
        "10m True {}",
    ]
    unknown = render(plugin, pod=pod, namespace=ns, settings={"cpu": "10m"}, workload=Workload("Widget", "w"), native_sidecar=False)
    assert unknown.sidecars[0]["args"][1] == "Widget/w v1 widgets"


# What kube-controller-manager makes from a CronJob, a Deployment and a StatefulSet, against what a
# file of that workload names (`meshswitch inject -f`): the webhook must name the same workload.
@pytest.mark.parametrize(
    ("generate_name", "owner", "labels", "expected"),
    [
        ("nightly-29938333-", {"kind": "Job", "name": "nightly-29938333"}, {}, Workload("CronJob", "nightly", from_pod=True)),
        ("web-7d9f8b6c5-", {"kind": "ReplicaSet", "name": "web-7d9f8b6c5"}, {"pod-template-hash": "7d9f8b6c5"}, Workload("Deployment", "web", from_pod=True)),
        ("db-", {"kind": "StatefulSet", "name": "db"}, {}, Workload("StatefulSet", "db", from_pod=True)),
        ("migrate-", {"kind": "Job", "name": "migrate"}, {}, Workload("Job", "migrate", from_pod=True)),
    ],
)  # fmt: skip
def test_a_pod_names_the_workload_a_file_would(generate_name: str, owner: dict[str, Any], labels: dict[str, str], expected: Workload) -> None:
    pod = {"metadata": {"generateName": generate_name, "labels": labels, "ownerReferences": [{**owner, "controller": True}]}}
    assert find_workload(pod) == expected


def test_envoy_names_a_cronjob_run_as_its_file_does() -> None:
    injector = Injector(plugins=load_plugins(), config=Config())
    cron_pod = make_pod(name=None)
    cron_pod["metadata"].update(generateName="nightly-29938333-", ownerReferences=[{"kind": "Job", "name": "nightly-29938333", "controller": True}])
    patch = injector.inject(cron_pod, namespace(labels={"meshswitch.io/mode": "envoy"})).patch
    added = next(op["value"] for op in patch if op["path"] == "/spec/initContainers")
    envoy = next(c for c in added if c["name"] == "envoy")
    assert envoy["args"][envoy["args"].index("--service-cluster") + 1] == "nightly"


PULL_SECRETS = """\
name: agent
kind: runtime
description: adds the install's pull secrets to the pod
on:
  - {in: pod-annotation, key: example.com/inject, values: ["true"]}
values:
  secrets: [agent-registry]
fragment:
  sidecars:
    - {name: agent, image: "example.com/agent:1"}
  imagePullSecrets: "{{ values.secrets }}"
"""


@pytest.mark.parametrize(("secrets", "rendered"), [(["agent-registry"], ["agent-registry"]), ([], []), ([1], None), ([""], [""]), ("x", None)])
def test_image_pull_secrets_render_to_a_list_of_names(tmp_path: Path, secrets: object, rendered: list[str] | None) -> None:
    (tmp_path / "agent.yaml").write_text(PULL_SECRETS)
    plugin = next(p for p in load_plugins([tmp_path]) if p.name == "agent")
    pod = make_pod(annotations={"example.com/inject": "true"})
    args = {"pod": pod, "namespace": namespace("shop"), "settings": {}, "workload": Workload("Pod", "web"), "native_sidecar": True, "values": {"secrets": secrets}}
    if rendered is None:
        with pytest.raises(ConfigError, match="fragment imagePullSecrets must render to a list of names"):
            render(plugin, **args)  # type: ignore[arg-type]
    else:
        assert list(render(plugin, **args).image_pull_secrets) == rendered  # type: ignore[arg-type]
