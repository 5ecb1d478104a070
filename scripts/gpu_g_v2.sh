#!/usr/bin/env bash
# G v2 training on a lent GPU, in one device call (docs/generator.md, "G v2 on a GPU").
# Here, first (the data and the loss networks travel with the call; .gpu/ is git-ignored):
#   .venv/bin/python scripts/thin_dataset.py data/v2 .gpu/v2 --every 8 --keep-landmarks
#   mkdir -p .gpu/cache && cp -r ~/.cache/freehead/pretrained .gpu/cache/
# Then, through the device tool with carry [".gpu"] and timeout_s 600:
#   bash scripts/gpu_g_v2.sh 480
# It trains from the committed training state's newest checkpoint for SECONDS (default
# 480), then copies the run's newest checkpoint and logs to $OUT (at most 8 files come
# back). PYTHON (default python3, the device image's) and CONFIG may be overridden.
set -euo pipefail
seconds=${1:-480}
py=${PYTHON:-python3}
config=${CONFIG:-configs/generator_v2_gpu.yaml}
out=${OUT:-out/g_v2_gpu}
run=runs/g_v2_gpu
init=$(ls training_state/g_v2/checkpoints/*.safetensors | tail -n 1)
export PYTHONPATH=src FREEHEAD_CACHE=.gpu/cache PYTHONUNBUFFERED=1
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
status=0
timeout "$seconds" "$py" -m freehead train generator --data .gpu/v2 --out "$run" \
    --config "$config" --init "$init" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
    echo "gpu_g_v2: training failed with status $status" >&2
    exit "$status"
fi
newest=$(ls "$run"/checkpoints/*.safetensors 2>/dev/null | tail -n 1 || true)
if [ -z "$newest" ]; then
    echo "gpu_g_v2: no checkpoint was written in ${seconds} s" >&2
    exit 1
fi
mkdir -p "$out"
cp "$newest" "$run"/train.csv "$run"/val.csv "$run"/run_info.json "$run"/config.yaml "$out"/
echo "gpu_g_v2: $(basename "$newest") and the logs are in $out"
