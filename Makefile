# meshswitch: every install step lives here, so a fresh machine needs only python3 (and go for e2e).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install shell test unit e2e bench run run-standalone demo certs typecheck controlplane clean

# constraints.txt pins every package, transitive ones and the build backend included.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	PIP_CONSTRAINT=constraints.txt $(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# A shell with the venv active, so `meshswitch` is on PATH.
shell: $(STAMP)
	@echo "meshswitch is $(VENV)/bin/meshswitch; exit to leave this shell" >&2
	@VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $${SHELL:-/bin/sh} -i

test: $(STAMP)
	$(PY) -m mypy
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
	$(PY) -m tests.bench.cli

certs/tls.crt: | $(STAMP)
	$(VENV)/bin/meshswitch certs generate --out certs

certs: certs/tls.crt

# The local control plane (built once if missing), the webhook on https://127.0.0.1:8443, its
# MutatingWebhookConfiguration; prints `export KUBECONFIG=...`. Ctrl-C stops every process.
# Another port: make run WEBHOOK_PORT=9443.
NEEDS_GO = { echo "make $@: the local control plane needs Go >= 1.26 once (make controlplane); without Go: make run-standalone" >&2; exit 1; }
run: $(STAMP)
	@$(PY) -m webhook.dev.controlplane bin-dir >/dev/null || bash tests/controlplane/build.sh >/dev/null || $(NEEDS_GO)
	$(PY) -u -m webhook.dev up --port $(or $(WEBHOOK_PORT),8443)

# Only the webhook on https://127.0.0.1:8443, no cluster (no Go needed); with KUBECONFIG set it watches that cluster's namespaces.
run-standalone: $(STAMP) certs/tls.crt
	$(VENV)/bin/meshswitch serve --cert-dir certs --host 127.0.0.1 --port 8443 \
	  $(if $(KUBECONFIG),--kubeconfig $(KUBECONFIG),--namespace-labels-file examples/namespaces.yaml)

# A scripted tour against a fresh dev cluster: one Deployment per mode, a table of the pods, then stop.
demo: $(STAMP)
	@$(PY) -m webhook.dev.controlplane bin-dir >/dev/null || bash tests/controlplane/build.sh >/dev/null || $(NEEDS_GO)
	$(PY) -u -m webhook.dev demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .hypothesis

# Targets kept beside their subject (kind for users with Docker, ...).
-include mk/*.mk
