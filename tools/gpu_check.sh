#!/usr/bin/env bash
# On a CUDA machine: model benchmarks (fp32, bf16, channels_last) and a short DDP run on the demo dataset, with
# every figure written to <out>/figures.txt (default work_dir/gpu_check), including the training epoch time
# extrapolated to NTU-60 X-Sub's 40,091 training samples. Usage: bash tools/gpu_check.sh [out]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-work_dir/gpu_check}
mkdir -p "$out"
figures="$out/figures.txt"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader;
  python -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'; } | tee "$figures"
bench() { python -m tools.benchmark --device cuda --batch 64 --steps 5 --repeats 5 --json "$out/bench.jsonl" "$@" | tee -a "$figures"; }
rm -f "$out/bench.jsonl"
bench --model ctrgcn --sf-groups 8
bench --model ctrgcn --sf-groups 8 --amp bf16
bench --model ctrgcn --sf-groups 8 --channels-last
bench --model ctrgcn --sf-groups 0
bench --model stgcn --sf-groups 0
bench --model tcagcn --sf-groups 0
python - "$out/bench.jsonl" <<'PY' | tee -a "$figures"
import json, sys
for line in open(sys.argv[1]):
    run = json.loads(line)
    rate = run['train']['ours']
    print(f"{run['setting']}: {rate:.0f} samples/s training -> NTU-60 X-Sub epoch (40,091 samples) "
          f"{40091 / rate / 60:.1f} min")
PY
gpus=$(nvidia-smi -L | wc -l)
start=$(date +%s)
torchrun --standalone --nproc_per_node "$gpus" main.py --config config/demo/joint.yaml --num_epoch 3 \
    --work-dir "$out/ddp" --overwrite > "$out/ddp.log" 2>&1
echo "DDP on $gpus GPU(s), demo, 3 epochs: $(( $(date +%s) - start )) s; $(grep 'last epoch' "$out/ddp/log.txt")" \
    | tee -a "$figures"
