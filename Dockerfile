# syntax=docker/dockerfile:1
# meshswitch: the admission webhook image. Build: docker build -t meshswitch:dev .
# Two stages on the same pinned base: the builder makes the wheel and installs it, with the exact
# versions pyproject.toml pins, into a venv; the final stage gets the venv, the templates and
# nothing else (no compiler, no pip), and runs as uid 65532 on a read-only root filesystem.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY webhook/ webhook/
# The wheel of meshswitch itself; its dependencies (pinned in pyproject.toml, and transitively in
# constraints.txt) come as binary wheels only, so nothing is compiled and the venv is reproducible.
ENV PIP_CONSTRAINT=/src/constraints.txt
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/meshswitch \
 && python -m pip --python /opt/meshswitch/bin/python install --only-binary=:all: /wheels/meshswitch-*.whl \
 && python -m pip --python /opt/meshswitch/bin/python check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="meshswitch" \
      org.opencontainers.image.description="Mutating admission webhook that injects the sidecar of the mesh a namespace or pod selects" \
      org.opencontainers.image.licenses="Apache-2.0"
# pip, setuptools and wheel are build tools: the final stage runs the venv, never installs.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel
COPY --from=builder /opt/meshswitch /opt/meshswitch
COPY templates/ /opt/meshswitch/templates/
ENV PATH=/opt/meshswitch/bin:$PATH \
    MESHSWITCH_TEMPLATES_DIR=/opt/meshswitch/templates \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/opt/meshswitch/bin/meshswitch", "serve"]
CMD ["--cert-dir", "/etc/meshswitch/certs"]
