#!/usr/bin/env bash
# Install everything the tests need (app venv + dev tools, Label Studio 1.23.2 in its own venv,
# redis-server) and run the whole suite, end-to-end tests with the real Label Studio included.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not e2e" -x`).
source "$(dirname "$0")/_venv.sh"
ensure_app_venv requirements-dev.txt
ensure_ls_venv
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server ..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq redis-server >/dev/null
fi
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
