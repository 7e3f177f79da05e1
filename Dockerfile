# syntax=docker/dockerfile:1
# LLM active-learning ML backend for Label Studio: gunicorn serving `python -m backend serve`.
# The same image runs the RQ workers (docker-compose.yml overrides the command).
#
#   docker build -t lal-backend .                                   # CPU torch (default)
#   docker build -t lal-backend:cu128 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .   # GPU (CUDA 12.8) torch
#
# The GPU variant needs the NVIDIA container toolkit on the host and `gpus: all` on the service.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    MODEL_DIR=/data \
    HOST=0.0.0.0 \
    PORT=9090 \
    WORKERS=1 \
    THREADS=8 \
    LOG_LEVEL=INFO

WORKDIR /app

# Non-root user owning only the model store; the code stays read-only for it.
RUN groupadd --system --gid 10001 lal \
    && useradd --system --uid 10001 --gid lal --home-dir /app --shell /usr/sbin/nologin lal \
    && mkdir -p /data \
    && chown lal:lal /data

# torch first, from the chosen index (CPU wheels by default: ~200 MB instead of several GB of CUDA),
# then the rest of the requirements, which see torch already satisfied.
COPY requirements.txt /app/requirements.txt
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}" \
    && pip install -r /app/requirements.txt

COPY backend /app/backend
COPY model /app/model

USER 10001:10001
VOLUME ["/data"]
EXPOSE 9090

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '9090'), timeout=4)"]

CMD ["python", "-m", "backend", "serve"]
