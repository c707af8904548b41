"""Writes the generated Istio case files (one per key family) into tests/reference/istio/cases."""

import copy, json, yaml, os
from typing import Any

Doc = dict[str, Any]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")

def container(name: str = "app", image: str = "ghcr.io/example/app:1.0.0", port: int | None = 8080, **extra: Any) -> Doc:
    c: Doc = {"name": name, "image": image}
    if port:
        c["ports"] = [{"name": "http", "containerPort": port}]
    c.update(extra)
    return c

def deployment(name: str, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
               ns: str = "shop", containers: list[Doc] | None = None, init: list[Doc] | None = None, **spec: Any) -> Doc:
    lbl = {"app": name}
    tlabels = dict(lbl)
    tlabels.update(labels or {})
    meta: Doc = {"labels": tlabels}
    if annotations:
        meta["annotations"] = annotations
    pod: Doc = {"containers": containers or [container()]}
    if init:
        pod["initContainers"] = init
    pod.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": dict(lbl)},
            "spec": {"replicas": 1, "selector": {"matchLabels": lbl},
                     "template": {"metadata": meta, "spec": pod}}}

def pod(name: str, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
        ns: str = "shop", containers: list[Doc] | None = None, init: list[Doc] | None = None, **spec: Any) -> Doc:
    meta: Doc = {"name": name, "namespace": ns, "labels": {"app": name, **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    p: Doc = {"containers": containers or [container()]}
    if init:
        p["initContainers"] = init
    p.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": p}

cases: dict[str, tuple[str, list[Doc]]] = {}
def case(stem: str, *docs: Doc, note: str = "") -> None:
    cases[stem] = (note, list(docs))

def A(k: str, v: str, name: str | None = None) -> Doc:
    return deployment(name or k.split("/")[-1].lower(), annotations={k: v})

# --- sidecar.istio.io/inject (annotation and label)
case("sidecar-inject-annotation-false", A("sidecar.istio.io/inject", "false", "inject-anno-false"), note="annotation opts the pod out")
case("sidecar-inject-annotation-true", A("sidecar.istio.io/inject", "true", "inject-anno-true"))
case("sidecar-inject-annotation-invalid", A("sidecar.istio.io/inject", "yes", "inject-anno-invalid"), note="not true/false: falls back to the policy")
case("sidecar-inject-label-false", deployment("inject-label-false", labels={"sidecar.istio.io/inject": "false"}))
case("sidecar-inject-label-true", deployment("inject-label-true", labels={"sidecar.istio.io/inject": "true"}))
case("sidecar-inject-label-over-annotation", deployment("inject-label-wins", labels={"sidecar.istio.io/inject": "true"}, annotations={"sidecar.istio.io/inject": "false"}), note="label wins over annotation")
# --- resources
case("proxy-cpu-request", A("sidecar.istio.io/proxyCPU", "250m", "proxy-cpu"))
case("proxy-cpu-limit", A("sidecar.istio.io/proxyCPULimit", "1500m", "proxy-cpu-limit"))
case("proxy-memory-request", A("sidecar.istio.io/proxyMemory", "256Mi", "proxy-memory"))
case("proxy-memory-limit", A("sidecar.istio.io/proxyMemoryLimit", "768Mi", "proxy-memory-limit"))
case("proxy-resources-all", deployment("proxy-resources-all", annotations={
    "sidecar.istio.io/proxyCPU": "50m", "sidecar.istio.io/proxyMemory": "64Mi",
    "sidecar.istio.io/proxyCPULimit": "500m", "sidecar.istio.io/proxyMemoryLimit": "256Mi"}))
case("proxy-cpu-request-invalid", A("sidecar.istio.io/proxyCPU", "lots", "proxy-cpu-invalid"), note="refused: not a quantity")
# --- image
case("proxy-image", A("sidecar.istio.io/proxyImage", "registry.example.com/mesh/proxyv2:custom", "proxy-image"))
case("proxy-image-type", A("sidecar.istio.io/proxyImageType", "distroless", "proxy-image-type"))
# --- interception
for mode in ["NONE", "TPROXY", "REDIRECT"]:
    case("interception-mode-" + mode.lower(), A("sidecar.istio.io/interceptionMode", mode, "interception-" + mode.lower()))
case("interception-mode-invalid", A("sidecar.istio.io/interceptionMode", "BOGUS", "interception-invalid"), note="refused")
case("cap-net-bind-service", A("sidecar.istio.io/capNetBindService", "true", "cap-net-bind"))
# --- logging
case("log-level", A("sidecar.istio.io/logLevel", "debug", "log-level"))
case("component-log-level", A("sidecar.istio.io/componentLogLevel", "misc:debug,upstream:info", "component-log-level"))
case("agent-log-level", A("sidecar.istio.io/agentLogLevel", "default:debug,xds:info", "agent-log-level"))
# --- stats (read by the proxy agent, not the injector)
case("stats-inclusion-prefixes", A("sidecar.istio.io/statsInclusionPrefixes", "cluster.outbound,listener", "stats-prefixes"))
case("stats-inclusion-suffixes", A("sidecar.istio.io/statsInclusionSuffixes", "upstream_cx_active", "stats-suffixes"))
case("stats-inclusion-regexps", A("sidecar.istio.io/statsInclusionRegexps", "http.*\\.rbac.*", "stats-regexps"))
case("stats-histogram-buckets", A("sidecar.istio.io/statsHistogramBuckets", '{"istiocustom":[1,5,10,50,100,500,1000,5000,10000]}', "stats-buckets"))
# --- volumes, bootstrap, misc
case("user-volume", deployment("user-volume", annotations={
    "sidecar.istio.io/userVolume": json.dumps({"custom-certs": {"secret": {"secretName": "custom-certs"}}}),
    "sidecar.istio.io/userVolumeMount": json.dumps({"custom-certs": {"mountPath": "/etc/custom-certs", "readOnly": True}})}))
case("user-volume-mount-only", A("sidecar.istio.io/userVolumeMount", json.dumps({"app-data": {"mountPath": "/var/app-data"}}), "user-volume-mount"))
case("bootstrap-override", A("sidecar.istio.io/bootstrapOverride", "custom-bootstrap", "bootstrap-override"))
case("enable-core-dump", A("sidecar.istio.io/enableCoreDump", "true", "enable-core-dump"))
case("discovery-address", A("sidecar.istio.io/discoveryAddress", "istiod-canary.istio-system.svc:15012", "discovery-address"))
case("native-sidecar-true", A("sidecar.istio.io/nativeSidecar", "true", "native-true"))
case("native-sidecar-false", A("sidecar.istio.io/nativeSidecar", "false", "native-false"))
probes: Doc = dict(
    livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
    readinessProbe={"httpGet": {"path": "/ready", "port": "http"}},
    startupProbe={"tcpSocket": {"port": 8080}, "failureThreshold": 30})
case("rewrite-app-http-probers-default", deployment("probes-default", containers=[container(**copy.deepcopy(probes))]), note="probe rewriting on by default")
case("rewrite-app-http-probers-false", deployment("probes-not-rewritten", annotations={"sidecar.istio.io/rewriteAppHTTPProbers": "false"}, containers=[container(**copy.deepcopy(probes))]))
case("rewrite-app-http-probers-true", deployment("probes-rewritten", annotations={"sidecar.istio.io/rewriteAppHTTPProbers": "true"}, containers=[container(**copy.deepcopy(probes))]))
case("probes-named-ports", deployment("named-port-probes", containers=[container(
    ports=[{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9901}],
    livenessProbe={"httpGet": {"path": "/live", "port": "admin", "scheme": "HTTP", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
    readinessProbe={"httpGet": {"path": "/ready", "port": "http"}},
    startupProbe={"grpc": {"port": 9901}})], ))
case("probes-grpc-exec", deployment("grpc-exec-probes", containers=[container(
    livenessProbe={"grpc": {"port": 8080, "service": "health"}},
    readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]}})]))
case("probes-native-sidecar-init", deployment("native-init-probes", annotations={"sidecar.istio.io/nativeSidecar": "true"},
    init=[{"name": "log-shipper", "image": "ghcr.io/example/shipper:2.1", "restartPolicy": "Always",
           "ports": [{"name": "shipper", "containerPort": 2020}],
           "startupProbe": {"httpGet": {"path": "/started", "port": "shipper"}},
           "livenessProbe": {"httpGet": {"path": "/live", "port": 2020}}}],
    containers=[container(readinessProbe={"httpGet": {"path": "/ready", "port": 8080}})]), note="native-sidecar app init container with probes, proxy as native sidecar too")
case("probes-native-sidecar-init-classic-proxy", deployment("native-init-probes-classic",
    init=[{"name": "log-shipper", "image": "ghcr.io/example/shipper:2.1", "restartPolicy": "Always",
           "ports": [{"name": "shipper", "containerPort": 2020}],
           "livenessProbe": {"httpGet": {"path": "/live", "port": "shipper"}}}],
    containers=[container()]))
# --- traffic.sidecar.istio.io
T = "traffic.sidecar.istio.io/"
case("traffic-include-inbound-ports", A(T + "includeInboundPorts", "8080,9090", "include-inbound-ports"))
case("traffic-include-inbound-ports-none", A(T + "includeInboundPorts", "", "include-inbound-none"), note="empty: no inbound capture")
case("traffic-exclude-inbound-ports", A(T + "excludeInboundPorts", "9901,9902", "exclude-inbound-ports"))
case("traffic-include-outbound-ports", A(T + "includeOutboundPorts", "443,5432", "include-outbound-ports"))
case("traffic-exclude-outbound-ports", A(T + "excludeOutboundPorts", "3306,6379", "exclude-outbound-ports"))
case("traffic-include-outbound-ip-ranges", A(T + "includeOutboundIPRanges", "10.0.0.0/8,172.16.0.0/12", "include-outbound-cidrs"))
case("traffic-exclude-outbound-ip-ranges", A(T + "excludeOutboundIPRanges", "169.254.169.254/32,10.96.0.0/12", "exclude-outbound-cidrs"))
case("traffic-exclude-outbound-ip-ranges-invalid", A(T + "excludeOutboundIPRanges", "10.0.0.0/99", "exclude-outbound-bad"), note="refused")
case("traffic-exclude-inbound-ports-invalid", A(T + "excludeInboundPorts", "http", "exclude-inbound-bad"), note="refused")
case("traffic-exclude-interfaces", A(T + "excludeInterfaces", "eth1,net1", "exclude-interfaces"))
case("traffic-kubevirt-interfaces", A(T + "kubevirtInterfaces", "k6t-eth0", "kubevirt-interfaces"))
case("traffic-exclude-interfaces-invalid", A(T + "excludeInterfaces", "eth0,an-interface-name-too-long", "exclude-interfaces-bad"), note="refused from 1.30 on (interface name checks); injected as given before")
case("reroute-virtual-interfaces", A("istio.io/reroute-virtual-interfaces", "k6t-eth0,tap0", "reroute-virtual"))
# --- status / readiness
case("status-port", A("status.sidecar.istio.io/port", "15030", "status-port"))
case("status-port-zero", A("status.sidecar.istio.io/port", "0", "status-port-zero"), note="0 disables the readiness probe")
case("status-port-invalid", A("status.sidecar.istio.io/port", "70000", "status-port-bad"), note="refused")
R = "readiness.status.sidecar.istio.io/"
case("readiness-initial-delay-seconds", A(R + "initialDelaySeconds", "5", "readiness-delay"))
case("readiness-period-seconds", A(R + "periodSeconds", "7", "readiness-period"))
case("readiness-failure-threshold", A(R + "failureThreshold", "9", "readiness-failure"))
case("readiness-application-ports", A(R + "applicationPorts", "8080", "readiness-app-ports"), note="legacy key, not read")
# --- proxy config
case("proxy-config", A("proxy.istio.io/config", "concurrency: 2\nterminationDrainDuration: 20s\nproxyMetadata:\n  ISTIO_META_DNS_CAPTURE: \"true\"\n", "proxy-config"))
case("proxy-config-hold-application", A("proxy.istio.io/config", "holdApplicationUntilProxyStarts: true\n", "proxy-config-hold"))
case("proxy-config-interception-tproxy", A("proxy.istio.io/config", "interceptionMode: TPROXY\n", "proxy-config-tproxy"))
case("proxy-config-image-type", A("proxy.istio.io/config", "image:\n  imageType: distroless\n", "proxy-config-image"))
case("proxy-config-invalid", A("proxy.istio.io/config", "concurrency: lots\n", "proxy-config-bad"), note="refused")
# --- prometheus
prom = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics"}
case("prometheus-scrape-merge", deployment("prom-merge", annotations=dict(prom)))
case("prometheus-scrape-false", deployment("prom-scrape-false", annotations={"prometheus.io/scrape": "false"}))
case("prometheus-scrape-port-only", deployment("prom-port-only", annotations={"prometheus.io/port": "9102"}))
case("prometheus-merge-metrics-false", deployment("prom-merge-off", annotations=dict(prom, **{"prometheus.istio.io/merge-metrics": "false"})))
case("prometheus-merge-metrics-invalid", A("prometheus.istio.io/merge-metrics", "maybe", "prom-merge-bad"), note="refused")
# --- templates
case("inject-templates-sidecar", A("inject.istio.io/templates", "sidecar", "templates-sidecar"))
gw = deployment("ingress-gw", annotations={"inject.istio.io/templates": "gateway"},
                labels={"istio": "ingressgateway", "sidecar.istio.io/inject": "true"},
                containers=[{"name": "istio-proxy", "image": "auto"}], ns="istio-ingress")
case("inject-templates-gateway", gw, note="gateway deployment as istio's gateway chart writes it: istio-proxy with image auto")
case("inject-templates-unknown", A("inject.istio.io/templates", "nonexistent", "templates-unknown"), note="refused")
case("inject-templates-sidecar-grpc-agent", A("inject.istio.io/templates", "grpc-agent", "templates-grpc-agent"))
# --- overrides / pods
case("istio-proxy-partial-override", deployment("proxy-override", containers=[container(), {
    "name": "istio-proxy", "image": "auto",
    "resources": {"requests": {"cpu": "300m"}, "limits": {"memory": "2Gi"}},
    "env": [{"name": "EXTRA_FLAG", "value": "on"}],
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}}]), note="pod declares istio-proxy partially; its fields win")
case("app-lifecycle-hooks", deployment("lifecycle-hooks", containers=[container(lifecycle={
    "postStart": {"exec": {"command": ["sh", "-c", "echo started > /tmp/started"]}},
    "preStop": {"httpGet": {"path": "/shutdown", "port": 8080}}})]))
case("already-injected-status", deployment("already-injected", annotations={"sidecar.istio.io/status": json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": ["istio-envoy"], "imagePullSecrets": None, "revision": "default"})}), note="status annotation present without the containers")
case("inject-templates-agentgateway", deployment("agent-gw", annotations={"inject.istio.io/templates": "agentgateway", "gateway.istio.io/agentgatewayImage": "distroless"}, containers=[{"name": "agentgateway", "image": "auto"}], ns="istio-ingress"), note="agentgateway template (1.29+) and its image annotation; refused by 1.28 (no such template)")
case("istio-rev-label", deployment("rev-canary", labels={"istio.io/rev": "canary"}), note="revision label: kube-inject with revision default still injects")
case("istio-rev-label-default", deployment("rev-default", labels={"istio.io/rev": "default"}))
case("bare-pod", pod("bare-pod"))
case("bare-pod-default-namespace", pod("bare-pod-nons", ns=None) if False else {k: v for k, v in pod("bare-pod-nons").items()})
cases["bare-pod-default-namespace"][1][0]["metadata"].pop("namespace")
case("host-network-skipped", deployment("host-net", hostNetwork=True), note="skipped: host networking")
case("kube-system-skipped", deployment("in-kube-system", ns="kube-system"), note="skipped: system namespace")
# --- labels the template reads
case("label-topology-network", deployment("network-label", labels={"topology.istio.io/network": "network-east"}))
case("label-security-tls-mode", deployment("tls-mode-label", labels={"security.istio.io/tlsMode": "disabled"}))
case("label-canonical-name-revision", deployment("canonical", labels={"service.istio.io/canonical-name": "checkout", "service.istio.io/canonical-revision": "v7"}))
case("label-app-kubernetes-io", deployment("k8s-labels", labels={"app.kubernetes.io/name": "cart", "app.kubernetes.io/version": "3.2.1", "version": "v3"}))
case("label-version", deployment("version-label", labels={"version": "v2"}))
case("label-workload-name", deployment("workload-name", labels={"service.istio.io/workload-name": "orders-primary"}))
case("label-networking-tunnel", deployment("tunnel-label", labels={"networking.istio.io/tunnel": "disabled"}), note="only read when ISTIO_META_ENABLE_HBONE is set")
case("kubectl-default-container", deployment("default-container", annotations={"kubectl.kubernetes.io/default-container": "sidecar-helper", "kubectl.kubernetes.io/default-logs-container": "sidecar-helper"}, containers=[container(), container(name="sidecar-helper", image="busybox:1.36", port=None, command=["sleep", "infinity"])]))
case("multus-networks", A("k8s.v1.cni.cncf.io/networks", "macvlan-conf", "multus"), note="only read when istio-cni is enabled")
case("datadog-apm-env", A("apm.datadoghq.com/env", '{"DD_ENV":"prod"}', "datadog-env"), note="only read with tracer datadog")
case("otel-resource-attributes", deployment("otel-attrs", annotations={"resource.opentelemetry.io/service.namespace": "shop-ns", "resource.opentelemetry.io/service.version": "9.9", "resource.opentelemetry.io/service.instance.id": "otel-1"}), note="1.30 only, and only with an OTel extension provider set to OTEL_SEMANTIC_CONVENTIONS")
case("ports-udp-sctp", deployment("udp-ports", containers=[container(ports=[{"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "tcp-dns", "containerPort": 53}, {"name": "sig", "containerPort": 3868, "protocol": "SCTP"}])]))

os.makedirs(OUT, exist_ok=True)
for stem, (note, docs) in sorted(cases.items()):
    with open(os.path.join(OUT, stem + ".yaml"), "w") as f:
        if note:
            f.write("# " + note + "\n")
        f.write(yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False))
print(len(cases), "cases")
