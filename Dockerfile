# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target operator -t kubetune-operator .   slim: the operator, no torch
#   docker build --target trainer  -t kubetune-trainer  .   CUDA: torch, the trainer extra
# Both install the project the way the README does (pip install with an extra) and run as
# the non-root user 1000 that the rendered pods expect.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---- operator -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS operator-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator operator
COPY trainer trainer
RUN python -m venv /opt/kubetune && /opt/kubetune/bin/pip install ".[operator]"

FROM ${PYTHON_IMAGE} AS operator
COPY --from=operator-build /opt/kubetune /opt/kubetune
ENV PATH=/opt/kubetune/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin kubetune
USER 1000:1000
EXPOSE 8080 9090
ENTRYPOINT ["kubetune", "operator"]

# ---- trainer --------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS trainer
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator operator
COPY trainer trainer
RUN python3 -m venv /opt/kubetune && /opt/kubetune/bin/pip install ".[trainer]"
ENV PATH=/opt/kubetune/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp
# The workspace volume is mounted at /workspace; uid 1000 owns it through the pod's fsGroup.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin kubetune) \
    && mkdir -p /workspace && chown 1000:1000 /workspace
WORKDIR /workspace
USER 1000:1000
CMD ["python", "-m", "kubetune_trainer"]
