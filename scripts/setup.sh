#!/usr/bin/env bash
# One-stop set-up on a fresh Debian 12 machine (root) or any machine with a WebGPU adapter:
#   1. npm dependencies, 2. the build (AssemblyScript -> build/*.wasm, tsup -> dist/), 3. a CPU WebGPU driver for
#   machines without a GPU (Mesa 25 lavapipe from bookworm-backports, unpacked into .cache/lavapipe by
#   `webgpu-llm setup`, never installed system-wide).
# Idempotent: each step is skipped when its output is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { echo "[setup] $*" >&2; }

# 1. npm dependencies (npm 11 runs no install scripts by default; none of ours needs one).
if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >&2
fi

# Headless Chromium for the browser tests (Debian's package; skipped when present or without root).
bash scripts/setup-browser.sh || say "chromium could not be installed: the browser tests will be skipped"

# 2. Build (the CLI of step 3 runs from dist/).
if [ ! -f dist/index.js ] || [ -n "$(find assembly src bindings shaders package.json tsup.config.ts -newer dist/index.js -type f | head -1)" ]; then
  say "npm run build"
  npm run build >&2
fi

# 3. CPU WebGPU driver: always unpacked on Linux x86-64, since a system Mesa may be too old for Dawn (Debian 12's
#    lavapipe is). At run time it is the only driver where none exists, and an extra one otherwise (a GPU wins).
#    The package's own `webgpu-llm setup` does it (bindings/node/lavapipe.ts), into the checkout's .cache/lavapipe.
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && [ ! -f "$root/.cache/lavapipe/lvp_icd.json" ]; then
  if command -v apt-get >/dev/null; then
    node dist/cli.js setup --dir "$root/.cache/lavapipe" >/dev/null
  else
    say "no apt-get: for WebGPU without a GPU, install Mesa >= 23 lavapipe (mesa-vulkan-drivers); the CPU backend needs nothing"
  fi
fi
