#!/usr/bin/env bash
# Install (first run) and start the backend on embedded defaults: gunicorn on :9090, no API key,
# no Redis, no GPU; state in ./var. Configure with the environment variables listed in README.md.
source "$(dirname "$0")/_venv.sh"
ensure_app_venv requirements.txt
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m backend serve
