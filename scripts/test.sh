#!/usr/bin/env bash
# Install everything the tests need (app venv + dev tools, Label Studio 1.23.2 in its own venv,
# redis-server) and run the whole suite, end-to-end tests with the real Label Studio included.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not e2e" -x`).
source "$(dirname "$0")/_venv.sh"
ensure_app_venv requirements-dev.txt
ensure_ls_venv
# System tools of the tests: redis-server (RQ tests), chromium (the demo's browser test),
# docker-compose (validates docker-compose.yml; no Docker engine is needed or installed)
APT_PKGS=""
command -v redis-server >/dev/null 2>&1 || APT_PKGS="$APT_PKGS redis-server"
command -v chromium >/dev/null 2>&1 || APT_PKGS="$APT_PKGS chromium"
command -v docker-compose >/dev/null 2>&1 || APT_PKGS="$APT_PKGS docker-compose"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || APT_PKGS="$APT_PKGS postgresql"  # Label Studio on PostgreSQL (e2e)
if [ -n "$APT_PKGS" ]; then
  echo "installing$APT_PKGS ..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
fi
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
