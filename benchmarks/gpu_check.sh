#!/usr/bin/env bash
# CUDA checks on a GPU machine that has PyTorch but not necessarily this project's dependencies:
# the op tests (their "cuda" cases run when a GPU is present) and short trainings on the GPU.
#   bash benchmarks/gpu_check.sh            (wheels for missing pure-Python packages in .whl/)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if ! python3 -c "import hydra, hydra_plugins.hydra_joblib_launcher" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# The op tests' CUDA cases (their CPU cases run in CI), and the compile tests whole.
python3 -m pytest -q -x -p no:cacheprovider tests/library/test_scalar_ops.py tests/library/test_argmax.py \
  tests/library/test_api.py -k cuda 2>&1 | tail -3 | tee "$OUT/ops.txt"
python3 -m pytest -q -x -p no:cacheprovider tests/library/test_quality.py 2>&1 | tail -3 | tee -a "$OUT/ops.txt"
run=0
for args in "op=ste" "op=gumbel trainer.precision=bf16-mixed" "model=plain_cnn op=atan"; do
  run=$((run + 1))
  python3 train.py $args trainer.accelerator=gpu trainer.devices=1 callbacks.progress_refresh_rate=0 \
    hydra.run.dir="$OUT/run$run" 2>&1 | grep -E "test acc|Error" | tee -a "$OUT/train.txt"
done
echo "== summary"; cat "$OUT/ops.txt" "$OUT/train.txt"
