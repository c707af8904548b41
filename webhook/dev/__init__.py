"""The local control plane and dev cluster behind `make run`, `make demo` and the e2e suite."""
