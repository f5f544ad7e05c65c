#!/bin/sh
# pipeline_cache.sh — cold vs warm start of `sluice run` on a Vulkan device:
# wall time of the whole process (start to exit; with -n 16 on stories260K
# generation is a few ms, so this is start-up plus the first token) and the
# time the process spent in vkCreateComputePipelines (SLUICE_LOG=debug line).
#
#   cold:  a fresh empty XDG_CACHE_HOME per run (sluice's pipeline cache and
#          Mesa's own shader cache both empty)
#   warm:  one XDG_CACHE_HOME filled by a first run, then reused
# Each twice: with Mesa's shader cache on (what users get) and off
# (MESA_SHADER_CACHE_DISABLE=true: sluice's cache alone).
#
# usage: bench/pipeline_cache.sh [BIN] [MODEL] [DEVICE] [RUNS]
set -eu
BIN=${1:-build/sluice}
MODEL=${2:-${SLUICE_MODELS:-../shared/models}/stories260K.gguf}
DEV=${3:-llvmpipe}
RUNS=${4:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

one() { # $1: XDG_CACHE_HOME; prints "wall_s pipeline_ms"
    XDG_CACHE_HOME=$1 SLUICE_LOG=debug /usr/bin/time -f "wall %e" "$BIN" run -m "$MODEL" --backend vulkan \
        --device "$DEV" -p "Once upon a time" -n 16 --temp 0 >/dev/null 2>"$TMP/err"
    w=$(sed -n 's/^wall //p' "$TMP/err")
    p=$(sed -n 's/.*pipeline(s) created in \([0-9.]*\) ms.*/\1/p' "$TMP/err")
    echo "$w ${p:-?}"
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

for mesa in on off; do
    if [ $mesa = off ]; then export MESA_SHADER_CACHE_DISABLE=true; else unset MESA_SHADER_CACHE_DISABLE; fi
    : >"$TMP/cold"
    i=0
    while [ $i -lt "$RUNS" ]; do
        one "$(mktemp -d -p "$TMP")" >>"$TMP/cold"
        i=$((i + 1))
    done
    WARM=$(mktemp -d -p "$TMP")
    one "$WARM" >/dev/null
    : >"$TMP/warm"
    i=0
    while [ $i -lt "$RUNS" ]; do
        one "$WARM" >>"$TMP/warm"
        i=$((i + 1))
    done
    bytes=$(find "$WARM/sluice" -name 'vk-*.bin' -printf '%s\n' 2>/dev/null | head -n 1)
    for k in cold warm; do
        printf 'mesa cache %-3s %s: wall %s s (runs: %s), pipelines %s ms (runs: %s), sluice cache file %s bytes\n' \
            $mesa $k "$(cut -d' ' -f1 "$TMP/$k" | median)" "$(cut -d' ' -f1 "$TMP/$k" | tr '\n' ' ')" \
            "$(cut -d' ' -f2 "$TMP/$k" | median)" "$(cut -d' ' -f2 "$TMP/$k" | tr '\n' ' ')" "${bytes:-0}"
    done
done
