# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target operator -t kubetune-operator .   slim: the operator, no torch
#   docker build --target trainer  -t kubetune-trainer  .   CUDA runtime: torch, the trainer extra
# Both install exactly the versions in uv.lock (`uv sync --frozen`, the versions CI tested) into
# /opt/kubetune in a build stage, copy only that environment into the final stage, and run as
# the non-root user 1000 that the rendered pods expect. Without registry access, or behind a
# TLS-inspecting proxy, see docs/images.md (the base ARGs and hack/build-ca/).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG TRAINER_BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---- the locked requirements ----------------------------------------------------------
# uv.lock -> one hashed requirements file per image (`uv export --frozen`). A stage of its own so
# that the dependency layers below depend on these files alone, not on every pyproject.toml edit.
FROM ${PYTHON_IMAGE} AS locked
WORKDIR /src
# Extra CA certificates for the build only (hack/build-ca/README.md); never in a final stage.
COPY hack/build-ca/ /etc/kubetune-build-ca/
COPY hack/bootstrap-uv.py hack/build-env.sh hack/
RUN . hack/build-env.sh && python3 hack/bootstrap-uv.py 0.13.9 /usr/local/bin
COPY pyproject.toml uv.lock ./
# The operator image also serves `kubetune api` (the api extra: FastAPI, uvicorn). The trainer's
# file includes the gguf extra (llama-cpp-python: llama.cpp's quantizer and runtime).
RUN mkdir /locked \
    && uv export --frozen --no-emit-project --extra operator --extra api \
         -o /locked/operator.txt >/dev/null \
    && uv export --frozen --no-emit-project --extra trainer --extra gguf \
         -o /locked/trainer.txt >/dev/null

# ---- operator -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS operator-build
WORKDIR /src
COPY --from=locked /usr/local/bin/uv /usr/local/bin/uv
COPY hack/build-ca/ /etc/kubetune-build-ca/
COPY hack/build-env.sh hack/
# The locked dependencies in one stage, the project in the next: the final stage copies each
# as a layer of its own, so a source edit leaves the dependencies' layer cached.
COPY --from=locked /locked/operator.txt ./
RUN . hack/build-env.sh && uv venv --python "$(command -v python3)" /opt/kubetune \
    && uv pip install --require-hashes --no-deps -r operator.txt

FROM operator-build AS operator-project
COPY pyproject.toml ./
COPY operator operator
COPY trainer trainer
COPY contract contract
RUN . hack/build-env.sh && install_project

FROM ${PYTHON_IMAGE} AS operator
COPY --from=operator-build /opt/kubetune /opt/kubetune
COPY --from=operator-project /project/ /
ENV PATH=/opt/kubetune/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin kubetune
USER 1000:1000
EXPOSE 8080 9090
ENTRYPOINT ["kubetune", "operator"]

# ---- trainer --------------------------------------------------------------------------
FROM ${TRAINER_BASE_IMAGE} AS trainer-build
ENV DEBIAN_FRONTEND=noninteractive
# A C++ compiler and CMake: llama-cpp-python is a source distribution (llama.cpp's C++).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
       g++ cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY --from=locked /usr/local/bin/uv /usr/local/bin/uv
COPY hack/build-ca/ /etc/kubetune-build-ca/
COPY hack/build-env.sh hack/
COPY --from=locked /locked/trainer.txt ./
# llama.cpp built for any x86-64 CPU (no -march=native), without its multimodal library, as
# hack/venv.sh builds it.
RUN . hack/build-env.sh && uv venv --python "$(command -v python3)" /opt/kubetune \
    && CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" \
       uv pip install --require-hashes --no-deps -r trainer.txt
# llama.cpp's converter from the same hash-pinned sdist (GGUF export; KUBETUNE_LLAMA_CPP below).
COPY uv.lock ./
COPY hack/llama-cpp.sh hack/
RUN . hack/build-env.sh && mv "$(KUBETUNE_CACHE=/tmp/kubetune hack/llama-cpp.sh)" /opt/llama.cpp

FROM trainer-build AS trainer-project
COPY pyproject.toml ./
COPY operator operator
COPY trainer trainer
COPY contract contract
RUN . hack/build-env.sh && install_project

FROM ${TRAINER_BASE_IMAGE} AS trainer
ENV DEBIAN_FRONTEND=noninteractive
# g++ and the Python headers stay: DeepSpeed builds its C++ ops (cpu_adam for ZeRO offload)
# just in time, with the ninja wheel from uv.lock (docs/images.md: DeepSpeed ops).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-dev g++ \
    && rm -rf /var/lib/apt/lists/*
COPY --from=trainer-build /opt/kubetune /opt/kubetune
COPY --from=trainer-build /opt/llama.cpp /opt/llama.cpp
COPY --from=trainer-project /project/ /
ENV PATH=/opt/kubetune/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp KUBETUNE_LLAMA_CPP=/opt/llama.cpp
# The workspace volume is mounted at /workspace; uid 1000 owns it through the pod's fsGroup.
RUN (id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --no-create-home --shell /usr/sbin/nologin kubetune) \
    && mkdir -p /workspace && chown 1000:1000 /workspace
WORKDIR /workspace
USER 1000:1000
CMD ["python", "-m", "kubetune_trainer"]
