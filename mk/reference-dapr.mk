# make reference-dapr VERSION=<tag> SRC=<checkout of github.com/dapr/dapr at that tag>
# Builds tests/reference/dapr (our driver of Dapr's own injector code) against SRC and rewrites
# tests/reference/dapr/golden/<VERSION>/. The go.mod/go.sum for the build are generated from SRC's
# own (its requires, replaces and sums) into a directory outside the repo; nothing of Dapr's is
# committed. See tests/reference/dapr/README.md for getting SRC.
DAPR_REF_DIR   := tests/reference/dapr
DAPR_REF_BUILD  = $(HOME)/.cache/meshswitch/reference/dapr-$(VERSION)
# v1.16 has a different SidecarConfig shape (scheduler address list, no native sidecar); v1.17 has
# no native sidecar.
DAPR_REF_TAGS   = $(if $(filter v1.16.%,$(VERSION)),dapr116,$(if $(filter v1.17.%,$(VERSION)),dapr117,))
# Module versions a release pins that the Go module proxy refuses ("403 ... This module version is
# not available"), pointed at a served version: old=new@version, space-separated. Recorded in
# meta.yaml (go_modules) by the program itself.
DAPR_REF_REPLACE_v1.16.19 := github.com/dapr/components-contrib=github.com/dapr/components-contrib@v1.16.1
DAPR_REF_REPLACE_v1.17.13 := github.com/dapr/components-contrib=github.com/dapr/components-contrib@v1.16.1
DAPR_REF_REPLACE ?= $(DAPR_REF_REPLACE_$(VERSION))

.PHONY: reference-dapr

reference-dapr:
	@test -n "$(VERSION)" -a -n "$(SRC)" || { echo "usage: make reference-dapr VERSION=v1.18.3 SRC=/path/to/dapr-checkout"; exit 2; }
	@test -f "$(SRC)/pkg/injector/patcher/sidecar.go" || { echo "$(SRC) is not a dapr checkout"; exit 2; }
	mkdir -p $(DAPR_REF_BUILD)
	{ echo 'module meshswitch/reference/dapr'; \
	  grep '^go ' $(abspath $(SRC))/go.mod; \
	  echo 'require github.com/dapr/dapr v0.0.0'; \
	  sed -e '/^module /d' -e '/^go /d' -e '/^toolchain /d' $(abspath $(SRC))/go.mod; \
	  echo 'replace github.com/dapr/dapr => $(abspath $(SRC))'; \
	} > $(DAPR_REF_BUILD)/go.mod
	cp $(abspath $(SRC))/go.sum $(DAPR_REF_BUILD)/go.sum
	for r in $(DAPR_REF_REPLACE); do go mod edit -replace=$$r $(DAPR_REF_BUILD)/go.mod || exit 1; done
	cd $(DAPR_REF_DIR) && nice -n 10 go build -modfile=$(DAPR_REF_BUILD)/go.mod -mod=mod \
	  -tags '$(DAPR_REF_TAGS)' -o $(DAPR_REF_BUILD)/dapr-reference .
	$(DAPR_REF_BUILD)/dapr-reference -src $(abspath $(SRC)) -version $(VERSION) \
	  -trust-anchors $(abspath $(DAPR_REF_DIR))/trust-anchors.pem \
	  -corpus $(abspath tests/corpus) -cases $(abspath $(DAPR_REF_DIR))/cases \
	  -install $(abspath $(DAPR_REF_DIR))/install \
	  -out $(abspath $(DAPR_REF_DIR))/golden/$(VERSION)
