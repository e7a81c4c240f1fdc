#!/usr/bin/env bash
# Compares tuning.mmaTiles tables (and other tunings) by the kernel time of whole model steps, in one call of the
# lent GPU: for each spec, one bench/generate.js run with --profile, printing its step times, each profiled step's
# total kernel time and its linear (tensor-core) kernels. Kernel totals are steady between runs; step times swing
# with the lent host's CPU, so compare the "# profile" lines.
#
#   bash bench/mma-tables.sh "<generate.js args>" 'name|tune|table' ...
#     tune:  --tune's key=value list (may be empty)
#     table: --mma-tiles JSON (may be empty: the device's tuned table)
#   e.g. (device run, carry [".gpu", "build/bench", ".benchcfg"]):
#   source .gpu/setup.sh && bash bench/mma-tables.sh "--batch 32,64 --steps 8 --prefill 128 --profile" \
#     'tuned||' 'no split|mmaSplitWorkgroups=0|' \
#     'staged 64|mmaSplitWorkgroups=264|[{"maxTokens":64,"tile":[2,2,2,2,1]},{"maxTokens":null,"tile":[4,4,2,4,1]}]'
set -u
cd "$(dirname "$0")/.."
args="$1"
shift
for spec in "$@"; do
  IFS='|' read -r name tune table <<< "$spec"
  echo "=== $name${tune:+ (--tune $tune)}"
  # shellcheck disable=SC2086 # args is a list of options
  node build/bench/generate.js .benchcfg/llama-3.2-1b $args ${tune:+--tune "$tune"} ${table:+--mma-tiles "$table"} 2>&1 |
    grep -E '^\| (prefill|decode)|^# profile|^#  .*(mma|reduce|to_half)|GPU errors'
done
