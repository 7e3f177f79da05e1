#!/usr/bin/env bash
# One-command demo: installs what is missing (app venv, Label Studio 1.23.2 in .venv-ls), then starts
# Label Studio and the backend on 127.0.0.1 with a trained Hausa NER project; state in ./var/demo.
# Options go to `python -m devtools.demo` (see --help), e.g. `bash scripts/demo.sh --headless`.
source "$(dirname "$0")/_venv.sh"
ensure_app_venv requirements.txt
ensure_ls_venv
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$ROOT/.venv/bin/python" -m devtools.demo "$@"
