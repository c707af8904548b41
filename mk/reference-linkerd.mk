# make reference-linkerd VERSION=<linkerd tag> SRC=<checkout of that tag>
# Builds tests/reference/linkerd (Linkerd's own proxy-injector webhook handler, driven offline)
# against SRC in ~/.cache/meshswitch/reference/linkerd-VERSION and rewrites
# tests/reference/linkerd/golden/VERSION/ from tests/corpus/*.yaml and
# tests/reference/linkerd/cases/*.yaml, and tests/reference/linkerd/cni/*.yaml as an install with the
# CNI plugin renders them (cniEnabled: true), and tests/reference/linkerd/ha/*.yaml with the proxy
# resources of values-ha.yaml (linkerd install --ha), and tests/reference/linkerd/options/*.yaml with
# other install options linkerd-init and the proxy read, and tests/reference/linkerd/proxy/*.yaml with the
# proxy's own install values (ports, log, await, inbound policy, gid, wait before exit, timeouts,
# ...) and linkerd-init's (skipped subnets, log level and format), and tests/reference/linkerd/workers/*.yaml
# with the proxy's workers, control streams, HTTP/2 keep-alives and probes and linkerd-init's user, group
# and privileged mode, and tests/reference/linkerd/cores/*.yaml with proxy.cores, a root linkerd-init
# with a close-wait timeout and the proxy's own securityContext, tracing/*.yaml with proxy tracing
# enabled, token/*.yaml without the projected identity token, mounts/*.yaml with the
# service-account and xtables-lock mount values, empty/*.yaml with values written empty, and
# security/*.yaml with a proxy.securityContext of fields Kubernetes does not know, validator/*.yaml with the
# CNI plugin and networkValidator.securityContext, and gateway/*.yaml with proxy.isGateway and
# proxy.isIngress. See tests/reference/linkerd/README.md.
LINKERD_REF_DIR := tests/reference/linkerd

.PHONY: reference-linkerd

reference-linkerd:
	@test -n "$(VERSION)" || { echo "usage: make reference-linkerd VERSION=<tag> SRC=<checkout of the tag>"; exit 2; }
	@test -n "$(SRC)" || { echo "usage: make reference-linkerd VERSION=<tag> SRC=<checkout of the tag>"; exit 2; }
	bin=$$($(LINKERD_REF_DIR)/build.sh '$(VERSION)' '$(SRC)') && \
	  "$$bin" -version '$(VERSION)' -anchors $(LINKERD_REF_DIR)/trust-anchors.pem \
	    -out $(LINKERD_REF_DIR)/golden/$(VERSION) \
	    -in corpus=tests/corpus -in cases=$(LINKERD_REF_DIR)/cases \
	    -in cni=$(LINKERD_REF_DIR)/cni -set cni:cniEnabled=true \
	    -in ha=$(LINKERD_REF_DIR)/ha -set ha:proxy.resources.cpu.request=100m \
	    -set ha:proxy.resources.memory.request=20Mi -set ha:proxy.resources.memory.limit=250Mi \
	    -in options=$(LINKERD_REF_DIR)/options -set options:proxyInit.runAsRoot=true \
	    -set 'options:proxyInit.ignoreInboundPorts="25"' -set options:proxyInit.ignoreOutboundPorts=443,6443 \
	    -set options:proxy.uid=2200 -set options:imagePullPolicy=Always \
	    -in proxy=$(LINKERD_REF_DIR)/proxy -set proxy:proxy.ports.admin=4291 -set proxy:proxy.ports.control=4290 \
	    -set proxy:proxy.ports.inbound=4243 -set proxy:proxy.ports.outbound=4240 \
	    -set proxy:proxy.logLevel=warn,linkerd=debug -set proxy:proxy.logFormat=json -set proxy:proxy.await=false \
	    -set proxy:proxy.defaultInboundPolicy=cluster-authenticated -set proxy:proxy.gid=2300 \
	    -set proxy:proxy.waitBeforeExitSeconds=15 -set proxy:proxy.inboundConnectTimeout=250ms \
	    -set proxy:proxy.outboundConnectTimeout=2s -set proxy:proxy.outboundDiscoveryCacheUnusedTimeout=10s \
	    -set proxy:proxy.inboundDiscoveryCacheUnusedTimeout=2m -set proxy:proxy.disableOutboundProtocolDetectTimeout=true \
	    -set proxy:proxy.disableInboundProtocolDetectTimeout=true -set proxy:proxy.logHTTPHeaders=insecure \
	    -set proxy:proxy.enableExternalProfiles=true -set proxy:proxy.enableShutdownEndpoint=true \
	    -set proxy:proxy.metrics.hostnameLabels=true -set 'proxy:proxy.requireIdentityOnInboundPorts="8443"' \
	    -set proxy:proxy.accessLog=json -set proxy:proxy.shutdownGracePeriod=45s \
	    -set proxy:proxyInit.skipSubnets=10.96.0.0/12 -set proxy:proxyInit.logLevel=debug \
	    -set proxy:proxyInit.logFormat=json \
	    -set 'proxy:proxy.additionalEnv=[{name: INSTALL_ENV, value: install}, {name: SHARED_ENV, value: install}]' \
	    -set 'proxy:proxy.experimentalEnv=[{name: LINKERD2_PROXY_EXPERIMENT, value: "on"}]' \
	    -set proxy:proxy.image.pullPolicy=Always -set proxy:proxyInit.image.pullPolicy=Never \
	    -set proxy:debugContainer.image.name=registry.example.com/linkerd/debug \
	    -set proxy:debugContainer.image.version=edge-26.1.1 -set proxy:debugContainer.image.pullPolicy=Never \
	    -in workers=$(LINKERD_REF_DIR)/workers -set workers:proxy.runtime.workers.minimum=2 \
	    -set workers:proxy.runtime.workers.maximum=4 -set workers:proxy.runtime.workers.maximumCPURatio=0.5 \
	    -set workers:proxy.control.streams.initialTimeout=5s -set workers:proxy.control.streams.idleTimeout=10m \
	    -set workers:proxy.control.streams.lifetime=30m \
	    -set workers:proxy.inbound.server.http2.keepAliveInterval=20s -set workers:proxy.inbound.server.http2.keepAliveTimeout=4s \
	    -set workers:proxy.outbound.server.http2.keepAliveInterval=30s -set workers:proxy.outbound.server.http2.keepAliveTimeout=5s \
	    -set workers:proxy.outbound.server.http2.maxConcurrentStreams=100 \
	    -set workers:proxy.livenessProbe.initialDelaySeconds=15 -set workers:proxy.livenessProbe.timeoutSeconds=3 \
	    -set workers:proxy.readinessProbe.initialDelaySeconds=4 -set workers:proxy.readinessProbe.timeoutSeconds=2 \
	    -set workers:proxy.startupProbe.initialDelaySeconds=1 -set workers:proxy.startupProbe.periodSeconds=2 \
	    -set workers:proxy.startupProbe.failureThreshold=90 \
	    -set workers:proxyInit.runAsUser=1000 -set workers:proxyInit.runAsGroup=1001 -set workers:proxyInit.privileged=true \
	    -set 'workers:proxy.capabilities={add: [NET_BIND_SERVICE], drop: [ALL]}' \
	    -in cores=$(LINKERD_REF_DIR)/cores -set cores:proxy.cores=3 -set cores:proxyInit.runAsRoot=true \
	    -set cores:proxyInit.closeWaitTimeoutSecs=60 \
	    -set 'cores:proxyInit.capabilities={add: [SYS_PTRACE], drop: [KILL]}' \
	    -set 'cores:proxy.securityContext={runAsUser: 3000, runAsNonRoot: true, readOnlyRootFilesystem: true}' \
	    -in tracing=$(LINKERD_REF_DIR)/tracing -set tracing:proxy.tracing.enabled=true \
	    -set tracing:proxy.tracing.traceServiceName=mesh-proxy -set tracing:proxy.tracing.collector.endpoint=collector.tracing:4317 \
	    -set tracing:proxy.tracing.collector.meshIdentity.serviceAccountName=collector \
	    -set tracing:proxy.tracing.collector.meshIdentity.namespace=tracing \
	    -in token=$(LINKERD_REF_DIR)/token -set token:identity.serviceAccountTokenProjection=false \
	    -in mounts=$(LINKERD_REF_DIR)/mounts \
	    -set 'mounts:proxy.saMountPath={name: sa-token, mountPath: /var/run/secrets/sa, readOnly: true}' \
	    -set 'mounts:proxyInit.saMountPath={name: init-sa-token, mountPath: /var/run/secrets/init-sa}' \
	    -set mounts:proxyInit.xtMountPath.mountPath=/run/xtables -set mounts:proxyInit.xtMountPath.name=xtables-lock \
	    -in empty=$(LINKERD_REF_DIR)/empty -set 'empty:proxy.logLevel=""' -set 'empty:proxy.logFormat=""' \
	    -set 'empty:proxy.defaultInboundPolicy=""' -set 'empty:proxy.control.streams.lifetime=""' \
	    -set 'empty:proxyInit.logLevel=""' -set 'empty:imagePullPolicy=""' -set 'empty:proxy.image.name=""' \
	    -set 'empty:proxy.control.streams.initialTimeout=""' -set 'empty:proxy.control.streams.idleTimeout=""' \
	    -set 'empty:proxy.inboundConnectTimeout=""' -set 'empty:proxy.outboundConnectTimeout=""' \
	    -set 'empty:proxy.inboundDiscoveryCacheUnusedTimeout=""' -set 'empty:proxy.outboundDiscoveryCacheUnusedTimeout=""' \
	    -set 'empty:proxy.logHTTPHeaders=""' -set 'empty:proxyInit.ignoreInboundPorts=""' \
	    -set 'empty:proxyInit.ignoreOutboundPorts=""' -set 'empty:proxy.opaquePorts=""' \
	    -in security=$(LINKERD_REF_DIR)/security -set 'security:proxy.securityContext={procMountType: Default, sysctls: [], RunAsUser: 5}' \
	    -in validator=$(LINKERD_REF_DIR)/validator -set validator:cniEnabled=true \
	    -set 'validator:networkValidator.securityContext={runAsUser: 1234, readOnlyRootFilesystem: true}' \
	    -in gateway=$(LINKERD_REF_DIR)/gateway -set gateway:proxy.isGateway=true -set gateway:proxy.isIngress=true
