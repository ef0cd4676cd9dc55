# syntax=docker/dockerfile:1
# The CPU serving image: FastAPI + ONNX Runtime on the committed models/, no torch, non-root.
#
#   docker build -t hwr:local .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp hwr:local
#
# The GPU variant (onnxruntime-gpu on a CUDA runtime base) is Dockerfile.gpu. Build, run and
# measured size: docs/deployment.md.

# ---------------------------------------------------------------------------------------------
# builder: a virtualenv holding the service's runtime dependencies and nothing else.
# They come from requirements/serve-cpu.txt: every package pinned with its hashes (`make lock`
# compiles it from pyproject.toml's [project] dependencies + the `cpu` and `postgres` extras), so
# two builds of one commit install the same files, pip refuses any file whose hash differs, and
# the image can never pull the `train` extra (torch). `postgres` (psycopg[binary], its own libpq:
# 12.5 MB) lets HWR_WRITER_DB be a postgresql:// URL without rebuilding the image.
# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
COPY requirements/serve-cpu.txt ./requirements.txt
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# --require-hashes: every package, transitive ones included, must be pinned with its hash;
# --only-binary: wheels only, so nothing is compiled from a source distribution at build time.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.txt \
    && /opt/venv/bin/pip freeze --exclude pip --exclude setuptools > /opt/venv/requirements.lock \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && if grep -iE '^(torch|torchvision|onnxruntime-gpu)==' /opt/venv/requirements.lock; then \
         echo 'torch / onnxruntime-gpu must not be in the CPU runtime image' >&2; exit 1; fi \
    && find /opt/venv/lib -depth -type d -path '*/site-packages/numpy/*' -name tests -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/cv2/data

# ---------------------------------------------------------------------------------------------
# runtime: the same slim base, the venv, the service code and the models. Code and models are
# owned by root and only readable by the service user, so the container can run --read-only.
# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime

ARG GIT_SHA=unknown
# The code is MIT; the models it ships carry their data's terms too: the grapheme model is trained
# on CMATERdb, non-commercial use only (docs/models_and_data.md).
LABEL org.opencontainers.image.title="handwriting-service" \
      org.opencontainers.image.description="Handwritten character recognition: FastAPI + ONNX Runtime (CPU)" \
      org.opencontainers.image.licenses="MIT AND LicenseRef-models-see-docs-models-and-data" \
      org.opencontainers.image.revision="${GIT_SHA}"

# uid/gid 10001: numeric, so Kubernetes/Container Apps can verify runAsNonRoot.
# /var/lib/hwr: the writer enrolments database (HWR_WRITER_DB); owned by the service so a named
# volume mounted there (docker-compose.yml) starts writable on a read-only root filesystem.
RUN groupadd --gid 10001 hwr \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin hwr \
    && mkdir -p /var/lib/hwr && chown 10001:10001 /var/lib/hwr

COPY --from=builder /opt/venv /opt/venv
WORKDIR /srv/hwr
COPY contract/ contract/
COPY app/ app/
COPY models/ models/
RUN python -m compileall -q app

# Every HWR_* setting (app/config.py) can be overridden at `docker run -e` / compose time.
# ORT_DISABLE_TELEMETRY: ONNX Runtime 1.3x otherwise tries to persist a telemetry device id under
# $HOME at start-up and logs a warning on a read-only filesystem.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    HWR_MODEL_DIR=/srv/hwr/models \
    HWR_WRITER_MODEL_DIR=/srv/hwr/models/writers \
    HWR_WRITER_DB=/var/lib/hwr/writers.sqlite3 \
    HWR_HOST=0.0.0.0 \
    HWR_PORT=8000 \
    HWR_LOG_LEVEL=INFO

USER 10001:10001
EXPOSE 8000

# Readiness, not liveness: healthy only once the models are loaded. Python's urllib, because the
# slim base has no curl; the port follows HWR_PORT. Written without spaces on purpose: podman's
# Docker-compatible API (podman 4.3) splits a compose healthcheck's CMD arguments at spaces.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "__import__('urllib.request').request.urlopen('http://127.0.0.1:'+__import__('os').environ.get('HWR_PORT','8000')+'/health/ready',timeout=4)"]

CMD ["python", "-m", "app"]
