#!/usr/bin/env bash
# The grapheme model's GPU run: one prepared script, every variant side by side on one GPU.
#
#   scripts/train_graphemes_gpu.sh [PACK_DIR ...]     (default: runs/pack/a runs/pack/b)
#
# Needs only python3 with torch and numpy (the pack carries the data, preprocessed, and the config:
# python -m training pack --config training/configs/graphemes.yaml --out runs/pack/a --out runs/pack/b).
# Each variant trains for MINUTES (default 7.5) of wall time with training.packed; the compared
# variants differ from the committed config (training/configs/graphemes.yaml) only as named below.
# Writes RESULTS (default runs/gpu): <variant>/best.pt, <variant>.log and summary.log (all logs).
set -uo pipefail
set -f  # the variants' JSON values hold brackets: no globbing
cd "$(dirname "$0")/.." || exit 1

MINUTES=${MINUTES:-7.5}
RESULTS=${RESULTS:-runs/gpu}
PYTHON=${PYTHON:-python3}
packs=("$@")
[ ${#packs[@]} -gt 0 ] || packs=(runs/pack/a runs/pack/b)
pack_args=()
for p in "${packs[@]}"; do pack_args+=(--pack "$p"); done
mkdir -p "$RESULTS"

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} >"$RESULTS/device.txt"

declare -A variants=(
  # the committed recipe: 64 px canvases, stride-2 stem, widths 64/128/256
  [main]=""
  # narrower: 48/96/192
  [narrow]='--set model_kwargs.widths=[48,96,192]'
  # the narrower network on 32 px canvases (the pack's 64 px canvases average-pooled 2×2)
  [px32]='--set packed.downsample=2 --set model_kwargs.stem_stride=1 --set model_kwargs.widths=[48,96,192]'
  # full resolution through the first stage (stride-1 stem), the former widths 32/64/128
  [full_res]='--set model_kwargs.stem_stride=1 --set model_kwargs.widths=[32,64,128]'
  # the seed study's recipe on the narrower network: CutMix + Mixup, Cutout, OHEM
  [seed_recipe]='--set model_kwargs.widths=[48,96,192] --set mix=["cutmix","mixup"] --set mix_p=0.5 --set packed.augment.cutout_p=0.5 --set loss="ohem"'
)

for name in "${!variants[@]}"; do
  # shellcheck disable=SC2086  # the variant's --set words split on purpose
  PYTHONUNBUFFERED=1 "$PYTHON" -m training.packed "${pack_args[@]}" --run-dir "$RESULTS/$name" \
    --minutes "$MINUTES" ${variants[$name]} >"$RESULTS/$name.log" 2>&1 &
done
wait

{
  cat "$RESULTS/device.txt"
  for name in "${!variants[@]}"; do
    echo "=== $name: ${variants[$name]}"
    cat "$RESULTS/$name.log"
  done
} >"$RESULTS/summary.log"
for name in "${!variants[@]}"; do echo "$name: $(tail -n 1 "$RESULTS/$name.log")"; done
