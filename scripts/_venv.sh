# Shared by start.sh, test.sh and demo.sh: create/update the virtualenvs idempotently, so that an
# interrupted install heals on the next run.
#
# Why: a first demo.sh stopped while pip installed Label Studio left a venv every later run failed
# in (pip's TypeError on a half-written distribution), because the only check was whether
# bin/label-studio existed. Now each install is bracketed by a marker, .lal-installing, written
# before anything is created or installed and removed only once the venv holds every file of what
# was asked (scripts/_venv_check.py); a venv found with the marker, or failing that check against
# its stamps, is deleted and built again. Stamps are written to a temp file and renamed. Two runs
# at once (two terminals, CI) take turns: flock on the repository folder while installing.
# (A venv cannot be built elsewhere and renamed into place: its scripts name their interpreter's
# absolute path.) Quiet pip: this machine's pip.conf names local package folders that may be absent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
LS_PACKAGE="${LS_PACKAGE:-label-studio==1.23.2}"  # the tests of this script install a tiny stand-in

_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }; }

_lock() { exec 9<"$ROOT"; flock 9; }
_unlock() { exec 9<&-; }  # before test.sh execs pytest: the lock must not outlive the install

_write_atomic() {  # $1 = file, stdin = content
  local tmp="$1.tmp.$$"
  cat >"$tmp"
  mv -f "$tmp" "$1"
}

_venv_healthy() {  # $1 = venv: no marker, and whole against every stamp it has
  local venv="$1"
  [ -x "$venv/bin/python" ] && [ ! -e "$venv/.lal-installing" ] || return 1
  local stamps=()
  for s in "$venv"/.installed-*; do [ -f "$s" ] && stamps+=("$s"); done
  "$venv/bin/python" "$ROOT/scripts/_venv_check.py" "${stamps[@]}"
}

# $1 = venv folder, $2 = stamp name, $3 = stamp content (req/mod lines), $4 = newest input file or "",
# $5 = what to say when installing, rest = pip install arguments
_ensure_venv() {
  local venv="$1" stamp="$1/.installed-$2" content="$3" newer="$4" what="$5"
  shift 5
  if [ -e "$venv" ] && ! _venv_healthy "$venv"; then
    echo "$(basename "$venv") is incomplete (an interrupted install?): building it again"
    rm -rf "$venv"
  fi
  if [ -f "$stamp" ] && { [ -z "$newer" ] || [ ! "$newer" -nt "$stamp" ]; }; then return 0; fi
  echo "installing $what ..."
  mkdir -p "$venv"
  : >"$venv/.lal-installing"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  _pip "$venv/bin/pip" install -q --disable-pip-version-check "$@"
  printf '%s\n' "$content" | _write_atomic "$stamp"
  if ! "$venv/bin/python" "$ROOT/scripts/_venv_check.py" "$stamp"; then
    echo "$(basename "$venv"): the install did not give what it should (above); the next run rebuilds it" >&2
    return 1
  fi
  rm -f "$venv/.lal-installing"
}

ensure_app_venv() {  # $1 = requirements file (requirements.txt or requirements-dev.txt)
  local req="$1" newest="$ROOT/$1" content
  [ "$ROOT/requirements.txt" -nt "$newest" ] && newest="$ROOT/requirements.txt"
  content="$("$PY" "$ROOT/scripts/_venv_check.py" --names-from "$ROOT/$req")"
  _lock
  _ensure_venv "$ROOT/.venv" "$(basename "$req")" "$content" "$newest" "$req into .venv" -r "$ROOT/$req"
  _unlock
}

ensure_ls_venv() {  # the real Label Studio, in its own venv (it pins its own Django stack)
  if [ -n "${LABEL_STUDIO_BIN:-}" ] && [ -x "$LABEL_STUDIO_BIN" ]; then return; fi
  local name="${LS_PACKAGE%%[=<>]*}"
  _lock
  _ensure_venv "$ROOT/.venv-ls" ls "$(printf 'req %s\nmod %s' "$name" "${name//-/_}")" "" \
    "$LS_PACKAGE into .venv-ls (about 75 s)" "$LS_PACKAGE"
  _unlock
}
