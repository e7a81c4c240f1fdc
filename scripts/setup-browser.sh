#!/usr/bin/env bash
# Headless Chromium for the browser tests (test/browser.test.ts) and the demo screenshot: Debian's `chromium`
# package, driven by playwright-core (an npm devDependency, so no browser download). Idempotent; needs root for
# apt-get. Prints nothing and exits 0 when chromium is already there.
set -euo pipefail
say() { echo "[setup-browser] $*" >&2; }

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get: install Chromium >= 120 and set CHROMIUM=/path/to/chrome for the browser tests"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "need root to apt-get install chromium; the browser tests will be skipped"
  exit 0
fi
say "apt-get install chromium"
apt-get update -qq >&2
# fonts-dejavu-core: readable text in screenshots (the demo test saves one).
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
say "chromium ready: $(chromium --version 2>/dev/null || echo /usr/bin/chromium)"
