# Shared by start.sh and test.sh: create/update the virtualenvs idempotently.
# Quiet pip: this machine's pip.conf names local package folders that may be absent (harmless warnings).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"

_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }; }

ensure_app_venv() {  # $1 = requirements file
  local req="$1"
  local stamp="$ROOT/.venv/.installed-$(basename "$req")"
  if [ ! -x "$ROOT/.venv/bin/python" ]; then "$PY" -m venv "$ROOT/.venv"; fi
  if [ ! -f "$stamp" ] || [ "$ROOT/$req" -nt "$stamp" ] || [ "$ROOT/requirements.txt" -nt "$stamp" ]; then
    echo "installing $req into .venv ..."
    _pip "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/$req"
    touch "$stamp"
  fi
}

ensure_ls_venv() {  # the real Label Studio, in its own venv (it pins its own Django stack)
  if [ -n "${LABEL_STUDIO_BIN:-}" ] && [ -x "$LABEL_STUDIO_BIN" ]; then return; fi
  if [ ! -x "$ROOT/.venv-ls/bin/label-studio" ]; then
    echo "installing label-studio==1.23.2 into .venv-ls (about 75 s) ..."
    "$PY" -m venv "$ROOT/.venv-ls"
    _pip "$ROOT/.venv-ls/bin/pip" install -q --disable-pip-version-check label-studio==1.23.2
  fi
}
