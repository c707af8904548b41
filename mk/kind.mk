# make kind-e2e: meshswitch in a kind cluster, for users with Docker and kind (https://kind.sigs.k8s.io).
# It builds the image from the Dockerfile, loads it into the cluster, applies manifests/ with that
# image, creates the certificates (meshswitch certs install), waits for the rollout, runs
# `meshswitch check`, then the tests that drive the installed webhook (tests/e2e/shipping/test_kind.py).
# make kind-down deletes the cluster. See docs/shipping.md.
KIND            ?= kind
KUBECTL         ?= kubectl
KIND_CLUSTER    ?= meshswitch
KIND_IMAGE_NAME ?= meshswitch
KIND_IMAGE_TAG  ?= dev
KIND_DIR        := build/kind
KIND_KUBECONFIG := $(KIND_DIR)/kubeconfig
KIND_KUBECTL    := $(KUBECTL) --kubeconfig $(KIND_KUBECONFIG)

.PHONY: kind-up kind-image kind-deploy kind-e2e kind-down

kind-up:
	mkdir -p $(KIND_DIR)
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || $(KIND) create cluster --name $(KIND_CLUSTER) --wait 120s
	$(KIND) get kubeconfig --name $(KIND_CLUSTER) > $(KIND_KUBECONFIG)

kind-image: kind-up
	docker build -t $(KIND_IMAGE_NAME):$(KIND_IMAGE_TAG) .
	$(KIND) load docker-image $(KIND_IMAGE_NAME):$(KIND_IMAGE_TAG) --name $(KIND_CLUSTER)

# An overlay of manifests/ that only swaps the image for the one just loaded (imagePullPolicy IfNotPresent).
kind-deploy: $(STAMP) kind-image
	printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' \
	  'resources: [../../manifests]' 'images:' '  - name: ghcr.io/meshswitch/meshswitch' \
	  '    newName: $(KIND_IMAGE_NAME)' '    newTag: "$(KIND_IMAGE_TAG)"' > $(KIND_DIR)/kustomization.yaml
	$(KIND_KUBECTL) apply -k $(KIND_DIR)
	$(VENV)/bin/meshswitch certs install --kubeconfig $(KIND_KUBECONFIG) --namespace meshswitch-system
	$(KIND_KUBECTL) -n meshswitch-system rollout restart deployment/meshswitch
	$(KIND_KUBECTL) -n meshswitch-system rollout status deployment/meshswitch --timeout=180s

kind-e2e: kind-deploy
	$(VENV)/bin/meshswitch check --kubeconfig $(KIND_KUBECONFIG) --namespace meshswitch-system -l e2e.meshswitch.io/kind=none
	MESHSWITCH_KIND_KUBECONFIG=$(KIND_KUBECONFIG) $(PY) -m pytest tests/e2e/shipping/test_kind.py -p no:cacheprovider

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)
	rm -rf $(KIND_DIR)
