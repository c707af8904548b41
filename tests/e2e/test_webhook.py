"""End to end: the API server calls `meshswitch serve` for every pod CREATE, and the stored pods carry the sidecars.

Each scenario runs in a namespace of its own. Pods never run (there is no kubelet): the pod objects are checked.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.corpora import Corpus, corpora, documents
from webhook.dev import controlplane as cp
from webhook.dev import cluster as dc

from .conftest import NamespaceFactory, namespace_validation_paused

pytestmark = pytest.mark.e2e

MODE = dc.MODE_LABEL
STATUS = cp.STATUS_ANNOTATION
POLL_SECONDS = 60.0
DENIED = f'admission webhook "{dc.WEBHOOK_NAME}" denied the request'
# plugin: (its traffic-redirect init container or None, its sidecar)
SIDECARS = {
    "istio": ("istio-init", "istio-proxy"),
    "linkerd": ("linkerd-init", "linkerd-proxy"),
    "envoy": ("envoy-init", "envoy"),
    "dapr": (None, "daprd"),
}
INJECTED_NAMES = {name for pair in SIDECARS.values() for name in pair if name}

T = TypeVar("T")


# --- helpers --------------------------------------------------------------------------------------


def eventually(what: str, probe: Callable[[], T | None], timeout: float = POLL_SECONDS) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    found = cp.wait_until(what, probe, timeout)
    assert found is not None
    return found


def pod_body(
    name: str = "web", labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return a small Pod with one app container listening on 8080."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels or {}), "annotations": dict(annotations or {})},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]},
    }


def create_pod(client: Any, namespace: str, body: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """Create a pod through the API server and return the stored (or dry-run) object as a dict."""
    core: Any = k8s.CoreV1Api(client)
    response = core.create_namespaced_pod(
        namespace, dict(body), dry_run="All" if dry_run else None, _preload_content=False
    )
    pod: dict[str, Any] = json.loads(response.data)
    return pod


def answer_cache_hits(server: dc.WebhookServer) -> float:
    """The webhook's meshswitch_answer_cache_hits, from its /metrics."""
    context = ssl.create_default_context(cadata=server.ca_pem.decode())
    with urllib.request.urlopen(f"{server.url}/metrics", context=context, timeout=10) as response:
        text = response.read().decode()
    (line,) = [line for line in text.splitlines() if line.startswith("meshswitch_answer_cache_hits_total ")]
    return float(line.split()[1])


def list_pods(client: Any, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """List pods as dicts."""
    core: Any = k8s.CoreV1Api(client)
    response = core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def create_object(client: Any, namespace: str, obj: Mapping[str, Any]) -> None:
    """Create one object of a kind the shared manifests use, as `kubectl apply` would."""
    core: Any = k8s.CoreV1Api(client)
    apps: Any = k8s.AppsV1Api(client)
    batch: Any = k8s.BatchV1Api(client)
    creators = {
        "Deployment": apps.create_namespaced_deployment,
        "Job": batch.create_namespaced_job,
        "Service": core.create_namespaced_service,
        "ServiceAccount": core.create_namespaced_service_account,
    }
    creators[obj["kind"]](namespace, dict(obj))


def deployable(corpus: Corpus) -> list[dict[str, Any]]:
    """The corpus's Deployments (and the ServiceAccounts they use) that a bare test namespace can run
    pods for: no hostNetwork (meshes skip those), no missing ServiceAccount or PriorityClass. One
    replica each, and no namespace of their own."""
    chosen: list[dict[str, Any]] = []
    for path in corpus.files():
        objects = documents(path)
        accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
        for obj in objects:
            spec = obj.get("spec", {}).get("template", {}).get("spec", {}) if obj["kind"] == "Deployment" else None
            if spec is None or spec.get("hostNetwork"):
                continue
            account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            if account != "default" and account not in accounts:
                continue
            if not str(spec.get("priorityClassName", "system-")).startswith("system-"):
                continue
            if account in accounts:
                chosen.append(strip_namespace(accounts.pop(account)))
            chosen.append(strip_namespace({**obj, "spec": {**obj["spec"], "replicas": 1}}))
    assert sum(o["kind"] == "Deployment" for o in chosen) >= 5, f"{corpus.name}: too few Deployments to run"
    return chosen


def strip_namespace(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in obj["metadata"].items() if k != "namespace"}
    return {**obj, "metadata": metadata}


def plugins(pod: Mapping[str, Any]) -> list[str]:
    """Return the plugins meshswitch recorded in the pod's status annotation."""
    annotations = pod["metadata"].get("annotations") or {}
    if STATUS not in annotations:
        return []
    recorded: list[str] = json.loads(annotations[STATUS])["plugins"]
    return recorded


def init_names(pod: Mapping[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers") or []]


def container_names(pod: Mapping[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"]["containers"]]


def assert_injected(pod: Mapping[str, Any], *expected: str) -> None:
    """The pod carries exactly the sidecars of `expected`, as native sidecars, redirect first."""
    assert plugins(pod) == list(expected), pod["metadata"].get("annotations")
    inits = {c["name"]: c for c in pod["spec"].get("initContainers") or []}
    order = init_names(pod)
    for plugin in expected:
        redirect, sidecar = SIDECARS[plugin]
        assert sidecar in inits, f"{sidecar} not in initContainers {order}"
        assert inits[sidecar].get("restartPolicy") == "Always", f"{sidecar} is not a native sidecar"
        if redirect is not None:
            assert redirect in inits, f"{redirect} not in initContainers {order}"
            assert inits[redirect].get("restartPolicy") is None
            assert order.index(redirect) < order.index(sidecar)
    wanted = {name for plugin in expected for name in SIDECARS[plugin] if name}
    assert not (INJECTED_NAMES - wanted) & set(order), f"unexpected sidecars in {order}"
    assert not INJECTED_NAMES & set(container_names(pod)), "sidecars must not be ordinary containers"


def assert_untouched(pod: Mapping[str, Any], containers: tuple[str, ...] = ("app",)) -> None:
    """The pod holds only what its author wrote."""
    assert STATUS not in (pod["metadata"].get("annotations") or {})
    assert not init_names(pod)
    assert tuple(container_names(pod)) == containers


def denial(exc: ApiException) -> str:
    """Return the message of an API server refusal."""
    assert exc.body is not None
    message: str = json.loads(exc.body)["message"]
    return message


# --- selecting a mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", ["istio", "linkerd", "envoy"])
def test_namespace_mode_injects_its_mesh(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory, mesh: str
) -> None:
    ns = namespace_factory(labels={MODE: mesh})
    pod = create_pod(kube_client, ns, pod_body())
    assert_injected(pod, mesh)
    assert container_names(pod) == ["app"]
    # What the API server stored, not only what it answered.
    stored = list_pods(kube_client, ns)
    assert [p["metadata"]["name"] for p in stored] == ["web"]
    assert_injected(stored[0], mesh)


def test_dapr_on_istio_gets_both_sidecars(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={MODE: "istio"})
    pod = create_pod(kube_client, ns, pod_body(annotations={"dapr.io/enabled": "true", "dapr.io/app-id": "web"}))
    assert_injected(pod, "istio", "dapr")
    # Mesh first, so Dapr's traffic goes through it.
    assert init_names(pod) == ["istio-init", "istio-proxy", "daprd"]
    env = {e["name"] for e in pod["spec"]["containers"][0].get("env", [])}
    assert {"DAPR_HTTP_PORT", "DAPR_GRPC_PORT"} <= env


def test_istio_injection_enabled_namespace(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={"istio-injection": "enabled"})
    assert_injected(create_pod(kube_client, ns, pod_body()), "istio")


def test_gateway_pod_declaring_istio_proxy_gets_istios_merge(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    # What Istio's gateway Helm chart writes: istio-proxy with image auto and the gateway template.
    ns = namespace_factory(labels={"istio-injection": "enabled"})
    body = pod_body("gateway", labels={"istio": "ingressgateway"}, annotations={"inject.istio.io/templates": "gateway"})
    body["spec"]["containers"] = [{"name": "istio-proxy", "image": "auto", "ports": [{"containerPort": 8080, "name": "http"}]}]
    pod = create_pod(kube_client, ns, body, dry_run=True)
    proxies = [c for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"] if c["name"] == "istio-proxy"]
    assert len(proxies) == 1, "merged, never duplicated"
    proxy = proxies[0]
    assert proxy["image"].startswith("docker.io/istio/proxyv2:") and proxy["args"][:2] == ["proxy", "router"]
    assert {"containerPort": 8080, "name": "http", "protocol": "TCP"} in proxy["ports"], "the chart's own fields are kept"
    assert "istio-init" not in init_names(pod)
    assert pod["metadata"]["annotations"]["proxy.istio.io/overrides"]


def test_interception_mode_none_is_accepted_without_istio_init(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={"istio-injection": "enabled"})
    pod = create_pod(kube_client, ns, pod_body(annotations={"sidecar.istio.io/interceptionMode": "NONE"}), dry_run=True)
    assert init_names(pod) == ["istio-proxy"]
    proxy = pod["spec"]["initContainers"][0]
    assert {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "NONE"} in proxy["env"]


@pytest.mark.parametrize(("name", "canonical"), [("a" * 62 + ".orders", "a" * 62), ("a" * 61 + "--orders", "a" * 61)])
def test_pod_name_cut_for_the_canonical_name_is_still_a_label_value(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory, name: str, canonical: str
) -> None:
    """Istio cuts the name at 63 and trims one '-'; 'a...a.' or 'a...a-' was refused by the API server."""
    ns = namespace_factory(labels={MODE: "istio"})
    pod = create_pod(kube_client, ns, pod_body(name), dry_run=True)
    assert_injected(pod, "istio")
    assert pod["metadata"]["labels"]["service.istio.io/canonical-name"] == canonical


def test_ambient_namespace_gets_no_sidecar(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={"istio-injection": "enabled", "istio.io/dataplane-mode": "ambient"})
    assert_untouched(create_pod(kube_client, ns, pod_body(), dry_run=True))


@pytest.mark.parametrize("where", ["label", "annotation"])
def test_sidecar_istio_io_inject_false_is_left_alone(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory, where: str
) -> None:
    ns = namespace_factory(labels={"istio-injection": "enabled"})
    key = {"sidecar.istio.io/inject": "false"}
    body = pod_body(labels=key) if where == "label" else pod_body(annotations=key)
    assert_untouched(create_pod(kube_client, ns, body))


@pytest.mark.parametrize("where", ["label", "annotation"])
def test_meshswitch_inject_false_is_left_alone(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory, where: str
) -> None:
    # The label never reaches the webhook (objectSelector); the annotation reaches it and the engine opts out.
    ns = namespace_factory(labels={MODE: "istio"})
    key = {dc.INJECT_KEY: "false"}
    body = pod_body(labels=key) if where == "label" else pod_body(annotations=key)
    assert_untouched(create_pod(kube_client, ns, body))


def test_unlabelled_namespace_is_left_alone(kube_client: Any, webhook: dc.WebhookServer, namespace: str) -> None:
    assert_untouched(create_pod(kube_client, namespace, pod_body()))


# --- workloads through kube-controller-manager ----------------------------------------------------


@pytest.mark.parametrize("corpus", corpora(), ids=lambda c: c.name)
def test_corpus_deployments_are_injected(
    corpus: Corpus, kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={MODE: "istio"})
    objects = deployable(corpus)
    for obj in objects:
        create_object(kube_client, ns, obj)
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    expected = sum(int(d["spec"].get("replicas", 1)) for d in deployments.values())

    pods = eventually(
        f"{expected} pods from {len(deployments)} Deployments",
        lambda: (found if len(found := list_pods(kube_client, ns)) >= expected else None),
    )
    apps: Any = k8s.AppsV1Api(kube_client)
    sets = {rs.metadata.name: rs for rs in apps.list_namespaced_replica_set(ns).items}
    seen = set()
    for pod in pods:
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "ReplicaSet" and owner["name"] in sets
        deployment = sets[owner["name"]].metadata.owner_references[0].name
        seen.add(deployment)
        assert_injected(pod, "istio")
        template = deployments[deployment]["spec"]["template"]["spec"]
        assert container_names(pod) == [c["name"] for c in template["containers"]]
        # The app's own init containers run after the proxy, inside the mesh.
        app_inits = [c["name"] for c in template.get("initContainers", [])]
        assert init_names(pod) == ["istio-init", "istio-proxy", *app_inits]
    assert seen == set(deployments)


def test_a_rollouts_pods_are_answered_from_the_cache(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    """The real API server's reviews take the answer cache's raw-body path: a ReplicaSet's pods
    are byte-identical apart from the uid and managedFields' time (to the second)."""
    ns = namespace_factory(labels={MODE: "istio"})
    apps: Any = k8s.AppsV1Api(kube_client)
    labels = {"app": "rollout"}
    hits = answer_cache_hits(webhook)
    # Eight replicas, which the ReplicaSet controller creates in bursts of 1, 2, 4 and 1 within a
    # moment. An answer is stored on the second sight of its body and replayed from the third, and
    # managedFields' time makes bodies of different seconds differ: even split by two second
    # boundaries, three of the eight pods share a second. Without the token's automount: the
    # ServiceAccount admission plugin names each pod's token volume kube-api-access-<random>,
    # which makes every pod's body unique.
    template = {"metadata": {"labels": labels}, "spec": {**pod_body()["spec"], "automountServiceAccountToken": False}}
    deployment = {"metadata": {"name": "rollout"}, "spec": {"replicas": 8, "selector": {"matchLabels": labels}, "template": template}}
    apps.create_namespaced_deployment(ns, {"apiVersion": "apps/v1", "kind": "Deployment", **deployment})
    pods = eventually("the Deployment's 8 pods", lambda: found if len(found := list_pods(kube_client, ns, "app=rollout")) >= 8 else None)
    for pod in pods:
        assert_injected(pod, "istio")
    assert answer_cache_hits(webhook) > hits


def test_a_rollouts_pods_with_their_own_token_volumes_share_one_answer(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    """The default: each pod mounts its service account token, from a volume the ServiceAccount
    admission plugin names kube-api-access-<random> per pod. The cache key leaves that name out
    (and managedFields' time), so all but the first two of eight pods are answered from the cache;
    Linkerd's proxy mounts the token too, so each answer must carry the pod's own volume name."""
    ns = namespace_factory(labels={MODE: "linkerd"})
    apps: Any = k8s.AppsV1Api(kube_client)
    labels = {"app": "tokens"}
    hits = answer_cache_hits(webhook)
    template = {"metadata": {"labels": labels}, "spec": pod_body()["spec"]}
    deployment = {"metadata": {"name": "tokens"}, "spec": {"replicas": 8, "selector": {"matchLabels": labels}, "template": template}}
    apps.create_namespaced_deployment(ns, {"apiVersion": "apps/v1", "kind": "Deployment", **deployment})
    pods = eventually("the Deployment's 8 pods", lambda: found if len(found := list_pods(kube_client, ns, "app=tokens")) >= 8 else None)
    volumes = set()
    for pod in pods:
        assert_injected(pod, "linkerd")
        (token,) = [v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
        volumes.add(token)
        proxy = next(c for c in pod["spec"]["initContainers"] if c["name"] == "linkerd-proxy")
        mounted = [m["name"] for m in proxy["volumeMounts"] if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"]
        assert mounted == [token]
    assert len(volumes) == 8
    assert answer_cache_hits(webhook) - hits >= 6


def test_job_pod_is_injected(kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory) -> None:
    ns = namespace_factory(labels={MODE: "linkerd"})
    job = strip_namespace(next(d for c in corpora() for d in documents(c.directory / "report-generator-job.yaml")))
    create_object(kube_client, ns, job)
    selector = f"job-name={job['metadata']['name']}"
    parallel = int(job["spec"].get("parallelism", 1))
    pods = eventually(f"the Job's {parallel} pods", lambda: found if len(found := list_pods(kube_client, ns, selector)) >= parallel else None)
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
        assert_injected(pod, "linkerd")
        assert container_names(pod) == [c["name"] for c in job["spec"]["template"]["spec"]["containers"]]


# --- switching ------------------------------------------------------------------------------------


def test_relabel_switches_the_mesh_of_new_pods(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={MODE: "istio"})
    apps: Any = k8s.AppsV1Api(kube_client)
    core: Any = k8s.CoreV1Api(kube_client)
    labels = {"app": "shop"}
    apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "shop"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_body()["spec"]},
            },
        },
    )
    (before,) = eventually("the Deployment's pod", lambda: list_pods(kube_client, ns, "app=shop"))
    assert_injected(before, "istio")
    pid = webhook.pid

    core.patch_namespace(ns, {"metadata": {"labels": {MODE: "linkerd"}}})
    # The webhook's namespace cache follows the watch; no restart.
    probe = pod_body("probe")
    eventually(
        "the webhook to see the relabelled namespace",
        lambda: plugins(create_pod(kube_client, ns, probe, dry_run=True)) == ["linkerd"],
        timeout=30.0,
    )
    assert webhook.pid == pid

    core.delete_namespaced_pod(before["metadata"]["name"], ns, grace_period_seconds=0)
    old = before["metadata"]["name"]
    (after,) = eventually(
        "the replacement pod",
        lambda: [p for p in list_pods(kube_client, ns, "app=shop") if p["metadata"]["name"] != old] or None,
    )
    assert_injected(after, "linkerd")


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ["pod", "namespace"])
def test_unknown_mode_is_denied_with_our_message(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory, on: str
) -> None:
    mode = {MODE: "nosuchmesh"}
    # /validate refuses this label when it is written (tests/e2e/test_labels.py); a namespace can
    # still carry it from before the install, or from while the webhook was down, as here.
    with namespace_validation_paused(kube_client):
        ns = namespace_factory(labels=mode if on == "namespace" else None)
    with pytest.raises(ApiException) as caught:
        create_pod(kube_client, ns, pod_body(labels=mode if on == "pod" else None))
    assert caught.value.status == 400
    message = denial(caught.value)
    assert DENIED in message and "meshswitch.io/mode" in message and "nosuchmesh" in message, message
    assert not list_pods(kube_client, ns)


def test_bad_setting_is_denied_with_our_message(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={MODE: "istio"})
    with pytest.raises(ApiException) as caught:
        create_pod(kube_client, ns, pod_body(annotations={"sidecar.istio.io/proxyCPU": "lots"}))
    assert caught.value.status == 400
    message = denial(caught.value)
    assert DENIED in message and "sidecar.istio.io/proxyCPU" in message and "lots" in message, message


# --- dry run --------------------------------------------------------------------------------------


def test_server_side_dry_run_returns_the_mutated_pod(
    kube_client: Any, webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    ns = namespace_factory(labels={MODE: "envoy"})
    pod = create_pod(kube_client, ns, pod_body(), dry_run=True)
    assert_injected(pod, "envoy")
    assert not list_pods(kube_client, ns), "a dry run stores nothing"
    reviews = [r for r in webhook.reviews() if r.get("namespace") == ns]
    assert reviews and reviews[-1]["dry_run"] is True


# --- the webhook unreachable ----------------------------------------------------------------------


def test_webhook_down_failure_policy(
    kube_client: Any, stopped_webhook: dc.WebhookServer, namespace_factory: NamespaceFactory
) -> None:
    """Fail refuses pods, Ignore admits them uninjected, and kube-system is never sent to the webhook."""
    assert not stopped_webhook.alive()
    ns = namespace_factory(labels={MODE: "istio"})

    def refused() -> str | None:
        try:
            create_pod(kube_client, ns, pod_body("probe"), dry_run=True)
        except ApiException as exc:
            return denial(exc) if "failed calling webhook" in denial(exc) else None
        return None

    # failurePolicy Fail (the session's registration)
    message = eventually("failurePolicy Fail to refuse the pod", refused, timeout=30.0)
    assert dc.WEBHOOK_NAME in message
    with pytest.raises(ApiException) as caught:
        create_pod(kube_client, ns, pod_body())
    assert "failed calling webhook" in denial(caught.value)

    # System namespaces are outside the namespaceSelector: admitted even under Fail.
    core: Any = k8s.CoreV1Api(kube_client)
    cp.wait_for_service_account(kube_client, "kube-system")
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    system_pod = create_pod(kube_client, "kube-system", pod_body(name))
    core.delete_namespaced_pod(name, "kube-system", grace_period_seconds=0)
    assert_untouched(system_pod)

    # failurePolicy Ignore: admitted, without sidecars.
    dc.register(kube_client, stopped_webhook, failure_policy="Ignore")
    eventually("failurePolicy Ignore to admit the pod", lambda: refused() is None, timeout=30.0)
    assert_untouched(create_pod(kube_client, ns, pod_body()))
