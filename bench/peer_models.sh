#!/bin/sh
# Builds the benchmark models of ../shared/bench/PEER.md with sluice's own
# GGUF writer and quantizer, then runs `sluice bench` on each the way the
# peer figures were taken (pp64, tg32, 3 repetitions, 2 threads).
#
# usage: bench/peer_models.sh [BUILD_DIR] [MODEL_DIR] [BACKEND]
#   BUILD_DIR  where the sluice binary is (default: build)
#   MODEL_DIR  where to write the models (default: /tmp/sluice-bench; ~400 MB)
#   BACKEND    cpu (default) or vulkan (the device in SLUICE_BENCH_DEVICE,
#              default lavapipe)
# Needs ../shared/models/vocab/ggml-vocab-llama-spm.gguf (or SLUICE_MODELS).
set -eu
BIN="${1:-build}/sluice"
DIR="${2:-/tmp/sluice-bench}"
case "${3:-cpu}" in
  cpu) RUN="--backend cpu -t 2" ;;
  vulkan) RUN="--backend vulkan --device ${SLUICE_BENCH_DEVICE:-lavapipe}" ;;
  *) echo "backend must be cpu or vulkan" >&2; exit 2 ;;
esac
MODELS="${SLUICE_MODELS:-$(dirname "$0")/../../shared/models}"
VOCAB="$MODELS/vocab/ggml-vocab-llama-spm.gguf"
mkdir -p "$DIR"
[ -f "$DIR/tiny256-F32.gguf" ] || "$BIN" gen-model --shape tiny256 --vocab "$VOCAB" "$DIR/tiny256-F32.gguf"
[ -f "$DIR/smol-F16.gguf" ] || "$BIN" gen-model --shape smol --type f16 --vocab "$VOCAB" "$DIR/smol-F16.gguf"
for t in Q8_0 Q6_K Q4_K_M Q4_0; do
  [ -f "$DIR/tiny256-$t.gguf" ] || "$BIN" quantize "$DIR/tiny256-F32.gguf" "$DIR/tiny256-$t.gguf" $t > /dev/null
done
for t in Q8_0 Q4_0; do
  [ -f "$DIR/smol-$t.gguf" ] || "$BIN" quantize "$DIR/smol-F16.gguf" "$DIR/smol-$t.gguf" $t > /dev/null
done
"$BIN" bench -m "$MODELS/stories260K.gguf" -p 64 -n 32 -r 3 $RUN
for m in tiny256-F32 tiny256-Q8_0 tiny256-Q6_K tiny256-Q4_K_M tiny256-Q4_0 smol-Q8_0 smol-Q4_0; do
  "$BIN" bench -m "$DIR/$m.gguf" -p 64 -n 32 -r 3 $RUN | tail -n 2
done
