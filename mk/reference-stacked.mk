# make reference-stacked DAPR_SRC=/work/src/dapr-v1.18.3 DAPR_VERSION=v1.18.3
# Dapr stacked on a mesh as a cluster renders it: the API server calls mutating webhooks sorted by
# configuration name, so dapr-sidecar-injector runs before istio-sidecar-injector and
# linkerd-proxy-injector (Istio's chart sets reinvocationPolicy: Never; Dapr adds nothing once daprd
# exists). Each case of tests/reference/stacked/cases/<mesh>/ goes through Dapr's reference program,
# then the mesh's, for every release below; the results are written to
# tests/reference/stacked/golden/dapr-<DAPR_VERSION>/<mesh>-<release>/. The reference programs are
# the cached builds of `make reference-dapr`, `reference-istio` and `reference-linkerd`
# (~/.cache/meshswitch/reference/*): build those first.
STACKED_DIR       := tests/reference/stacked
STACKED_BIN       := $(HOME)/.cache/meshswitch/reference
STACKED_ISTIO     ?= 1.28.10 1.29.6 1.30.3
STACKED_LINKERD   ?= edge-25.10.7 edge-26.8.3
STACKED_TMP       := $(HOME)/.cache/meshswitch/reference/stacked-tmp

.PHONY: reference-stacked

reference-stacked:
	@test -n "$(DAPR_VERSION)" -a -n "$(DAPR_SRC)" || { echo "usage: make reference-stacked DAPR_VERSION=v1.18.3 DAPR_SRC=/path/to/dapr-checkout"; exit 2; }
	@test -x $(STACKED_BIN)/dapr-$(DAPR_VERSION)/dapr-reference || { echo "run make reference-dapr VERSION=$(DAPR_VERSION) first"; exit 2; }
	rm -rf $(STACKED_TMP) $(STACKED_DIR)/golden/dapr-$(DAPR_VERSION)
	set -e; for mesh in istio linkerd; do \
	  $(STACKED_BIN)/dapr-$(DAPR_VERSION)/dapr-reference -src $(abspath $(DAPR_SRC)) -version $(DAPR_VERSION) \
	    -trust-anchors $(abspath tests/reference/dapr/trust-anchors.pem) \
	    -cases $(abspath $(STACKED_DIR))/cases/$$mesh -out $(STACKED_TMP)/$$mesh > /dev/null; \
	done
	set -e; for v in $(STACKED_ISTIO); do \
	  out=$(STACKED_DIR)/golden/dapr-$(DAPR_VERSION)/istio-$$v; \
	  env -u ENABLE_NATIVE_SIDECARS $(STACKED_BIN)/istio-$$v/istio-reference -tag $$v \
	    -out $(STACKED_TMP)/istio-$$v stacked=$(STACKED_TMP)/istio/cases > /dev/null; \
	  mkdir -p $$out && cp $(STACKED_TMP)/istio-$$v/stacked/* $$out/; \
	done
	set -e; for v in $(STACKED_LINKERD); do \
	  out=$(STACKED_DIR)/golden/dapr-$(DAPR_VERSION)/linkerd-$$v; \
	  $(STACKED_BIN)/linkerd-$$v/linkerd-reference -version $$v -anchors tests/reference/linkerd/trust-anchors.pem \
	    -out $(STACKED_TMP)/linkerd-$$v -in stacked=$(STACKED_TMP)/linkerd/cases > /dev/null; \
	  mkdir -p $$out && cp $(STACKED_TMP)/linkerd-$$v/stacked/* $$out/; \
	done
	rm -rf $(STACKED_TMP)
	@echo "$(STACKED_DIR)/golden/dapr-$(DAPR_VERSION) rewritten"
