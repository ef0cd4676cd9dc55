#!/usr/bin/env bash
# The grapheme model's GPU run: one prepared script, every variant side by side on one GPU.
#
#   scripts/train_graphemes_gpu.sh [PACK_DIR ...]   (default: every folder of PACK_ROOT holding a pack)
#   scripts/train_graphemes_gpu.sh --list           (each variant and its overrides, one a line)
#
# Needs only python3 with torch and numpy (the pack carries the data, preprocessed, and the config:
# python -m training pack --config training/configs/graphemes.yaml --out runs/pack/a --out runs/pack/b
# --out runs/pack/c; any number of parts, each small enough for one transfer to the GPU machine).
# Each variant trains for MINUTES (default 7) of wall time with training.packed; the variants differ
# from the committed config (training/configs/graphemes.yaml) only as named below, and EXTRA
# (--set words) is added to every one of them (a CPU smoke run: EXTRA='--set packed.batch_size=8').
# Writes RESULTS (default runs/gpu): <variant>/best.pt, <variant>.log and summary.log (all logs);
# with BRING_BACK set, also what a transfer back can hold there (scripts/gpu_bring_back.py).
set -uo pipefail
set -f  # the variants' JSON values hold brackets and braces: no globbing
cd "$(dirname "$0")/.." || exit 1

MINUTES=${MINUTES:-7}
RESULTS=${RESULTS:-runs/gpu}
PYTHON=${PYTHON:-python3}
PACK_ROOT=${PACK_ROOT:-runs/pack}
EXTRA=${EXTRA:-}
BRING_BACK=${BRING_BACK:-}

declare -A variants=(
  # the committed recipe: 64 px canvases, stride-2 stem, widths 64/128/256, blocks 2/2/2
  [main]=""
  # deeper: a third block in the last two stages
  [deep]='--set model_kwargs.blocks=[2,3,3]'
  # wider: 96/192/384
  [wide]='--set model_kwargs.widths=[96,192,384]'
  # the zoo's ResNet34 (timm's layout: 7×7/2 stem and max-pool, so 16 px reach its first stage)
  [resnet34]='--set model=resnet34 --set model_kwargs={"dropout":0.2}'
)

if [ "${1:-}" = "--list" ]; then
  for name in "${!variants[@]}"; do echo "$name ${variants[$name]}"; done
  exit 0
fi

packs=("$@")
if [ ${#packs[@]} -eq 0 ]; then
  set +f
  for meta in "$PACK_ROOT"/*/pack.json; do [ -e "$meta" ] && packs+=("$(dirname "$meta")"); done
  set -f
fi
[ ${#packs[@]} -gt 0 ] || { echo "no pack folders given and none in $PACK_ROOT" >&2; exit 2; }
pack_args=()
for p in "${packs[@]}"; do pack_args+=(--pack "$p"); done
mkdir -p "$RESULTS"

{
  date -u
  echo "packs: ${packs[*]}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} >"$RESULTS/device.txt"

for name in "${!variants[@]}"; do
  # shellcheck disable=SC2086  # the variant's --set words split on purpose
  PYTHONUNBUFFERED=1 "$PYTHON" -m training.packed "${pack_args[@]}" --run-dir "$RESULTS/$name" \
    --minutes "$MINUTES" ${variants[$name]} $EXTRA >"$RESULTS/$name.log" 2>&1 &
done
wait

{
  cat "$RESULTS/device.txt"
  for name in "${!variants[@]}"; do
    echo "=== $name: ${variants[$name]} $EXTRA"
    cat "$RESULTS/$name.log"
  done
} >"$RESULTS/summary.log"
for name in "${!variants[@]}"; do echo "$name: $(tail -n 1 "$RESULTS/$name.log")"; done
if [ -n "$BRING_BACK" ]; then
  "$PYTHON" scripts/gpu_bring_back.py "$RESULTS" "$BRING_BACK"
fi
