#!/usr/bin/env bash
# The op benchmark, the fused kernels' break-even size and a short Lightning-against-plain training
# comparison on CUDA, in under six minutes (each part has its own time limit). Results go to $OUT
# (default /tmp/gpu_bench).
#   bash benchmarks/gpu.sh
# On a machine with PyTorch but without this project's dependencies, pure-Python wheels in .whl/
# (hydra-core, omegaconf, ...) and .whl/bench/ (snntorch, spikingjelly) are installed to a scratch
# folder first. Without a CUDA device it says so and exits.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_bench}
SITE=/tmp/site_bench
mkdir -p "$OUT"
if ! python3 -c "import hydra" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl
fi
if ! python3 -c "import snntorch, spikingjelly" 2>/dev/null && compgen -G ".whl/bench/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl/bench/*.whl
fi
export PYTHONPATH=$SITE:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
python3 -c "import torch" || { echo "gpu.sh: python3 cannot import torch"; exit 1; }
if ! python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu.sh: no CUDA device here; nothing to measure"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

# Every op and estimator, eager and eager formulas only; torch.compile for step and the peers.
timeout 120 python3 benchmarks/ops.py --devices cuda --compile-ops step \
  --json "$OUT/ops_cuda.json" --markdown "$OUT/ops_cuda.md" 2>&1 | grep -v Warning | tee "$OUT/ops_cuda.txt"
# A tensor four times larger, where launch overheads matter less (kernels already compiled once).
timeout 30 python3 benchmarks/ops.py --devices cuda --numel $((64 * 2**20)) --modes eager \
  --ops step --json "$OUT/ops_cuda_64m.json" --markdown "$OUT/ops_cuda_64m.md" 2>&1 | grep -v Warning | tee "$OUT/ops_cuda_64m.txt"
# Where the fused kernels start to pay on this device (surrogate.fused's CUDA threshold).
timeout 90 python3 benchmarks/fused_threshold.py --device cuda --min-log2 14 --max-log2 26 \
  --repeats 5 2>&1 | grep -v Warning | tee "$OUT/fused_threshold_cuda.txt"
timeout 100 python3 benchmarks/train.py --accelerator gpu --epochs 8 \
  --json "$OUT/train_cuda.json" 2>&1 | tee "$OUT/train_cuda.txt"
echo "gpu.sh: done; results in $OUT"
