#!/usr/bin/env bash
# One-stop set-up on a fresh Debian 12 machine (root) or any machine with a WebGPU adapter:
#   1. npm dependencies, 2. a CPU WebGPU driver for machines without a GPU
#   (Mesa 25 lavapipe from bookworm-backports, unpacked into .cache/lavapipe, never installed system-wide),
#   3. the build (AssemblyScript -> build/*.wasm, tsup -> dist/).
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

# 2. CPU WebGPU driver: always unpacked on Linux x86-64, since a system Mesa may be too old for Dawn (Debian 12's
#    lavapipe is). At run time it is the only driver where none exists, and an extra one otherwise (a GPU wins).
lvp=$root/.cache/lavapipe
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && [ ! -f "$lvp/lvp_icd.json" ]; then
  if command -v apt-get >/dev/null; then
    need=()
    ldconfig -p | grep -q 'libvulkan.so.1 ' || need+=(libvulkan1)
    ldconfig -p | grep -q 'libLLVM-15.so.1 ' || need+=(libllvm15)
    if [ ${#need[@]} -gt 0 ]; then
      say "apt-get install ${need[*]}"
      [ "$(id -u)" = 0 ] || { say "need root to install ${need[*]}"; exit 1; }
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
    fi
    say "fetching Mesa lavapipe from bookworm-backports"
    tmp=$(mktemp -d)
    mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$tmp/sources.list"
    o=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
       -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives" -o APT::Sandbox::User=root)
    apt-get "${o[@]}" update -qq >&2
    (cd "$tmp" && apt-get "${o[@]}" download mesa-vulkan-drivers >&2)
    dpkg -x "$tmp"/mesa-vulkan-drivers_*.deb "$tmp/x"
    mkdir -p "$lvp"
    cp "$tmp/x/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" "$lvp/"
    printf '{"file_format_version":"1.0.0","ICD":{"api_version":"1.4.305","library_path":"%s"}}\n' \
      "$lvp/libvulkan_lvp.so" > "$lvp/lvp_icd.json"
    rm -rf "$tmp"
    say "lavapipe ready: $lvp/lvp_icd.json"
  else
    say "no apt-get: for WebGPU without a GPU, install Mesa >= 23 lavapipe (mesa-vulkan-drivers)"
  fi
fi

# 3. Build.
if [ ! -f dist/index.js ] || [ -n "$(find assembly src bindings shaders package.json tsup.config.ts -newer dist/index.js -type f | head -1)" ]; then
  say "npm run build"
  npm run build >&2
fi
