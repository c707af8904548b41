# reference-istio: rebuild tests/reference/istio/golden/$(VERSION) with Istio's own injector.
#   make reference-istio VERSION=1.30.3 SRC=/work/src/istio-1.30.3
# The driver (main.go, build.sh) is tests/reference/istio; the build goes to
# ~/.cache/meshswitch/reference/istio-$(VERSION). Extra module replaces for
# pins the module proxy refuses: ISTIO_REPLACES="module=dir-or-module@version ...".
ISTIO_REF_DIR ?= tests/reference/istio
ISTIO_REF_BUILD = $(HOME)/.cache/meshswitch/reference/istio-$(VERSION)
GCP_98966259 ?= /work/src/go-control-plane-98966259b99a
ISTIO_REPLACES_1.30.3 = github.com/envoyproxy/go-control-plane/envoy=$(GCP_98966259)/envoy \
	github.com/envoyproxy/go-control-plane/contrib=$(GCP_98966259)/contrib \
	istio.io/client-go=istio.io/client-go@v1.30.3
ISTIO_REPLACES_1.29.6 = istio.io/api=istio.io/api@v1.29.6 istio.io/client-go=istio.io/client-go@v1.29.6
ISTIO_REPLACES_1.28.10 = istio.io/api=/work/src/istio-api-v1.28.9 istio.io/client-go=/work/src/istio-client-go-v1.28.9
ISTIO_REPLACES ?= $(ISTIO_REPLACES_$(VERSION))

.PHONY: reference-istio
reference-istio:
	@test -n "$(VERSION)" && test -n "$(SRC)" || { echo "usage: make reference-istio VERSION=<tag> SRC=<istio tree at that tag>"; exit 2; }
	$(ISTIO_REF_DIR)/build.sh "$(SRC)" "$(VERSION)" "$(ISTIO_REF_BUILD)" $(ISTIO_REPLACES)
	env -u ENABLE_NATIVE_SIDECARS "$(ISTIO_REF_BUILD)/istio-reference" -tag "$(VERSION)" \
		-out tests/reference/istio/golden/$(VERSION) -install tests/reference/istio/install \
		corpus=tests/corpus cases=tests/reference/istio/cases > /dev/null
	@echo "tests/reference/istio/golden/$(VERSION) rewritten"
