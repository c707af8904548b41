# meshswitch: every install step lives here, so a fresh machine needs only python3 (and go for e2e).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test unit e2e bench run certs typecheck controlplane clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e -m e2e

# kube-apiserver, etcd and kube-controller-manager, built once from Go modules into ~/.cache/meshswitch.
controlplane:
	bash tests/controlplane/build.sh

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m tests.bench.engine
	$(PY) -m tests.bench.load

certs/tls.crt: | $(STAMP)
	$(VENV)/bin/meshswitch certs generate --out certs

certs: certs/tls.crt

# Serves on https://127.0.0.1:8443; with KUBECONFIG set it watches that cluster's namespaces.
run: $(STAMP) certs/tls.crt
	$(VENV)/bin/meshswitch serve --cert-dir certs --host 127.0.0.1 --port 8443 \
	  $(if $(KUBECONFIG),--kubeconfig $(KUBECONFIG),--namespace-labels-file examples/namespaces.yaml)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .hypothesis

# Targets kept beside their subject (kind for users with Docker, ...).
-include mk/*.mk
