#!/usr/bin/env bash
# experiment=compare_fashion (every scalar preset, relaxed and the float twin, 3 seeds, 8 epochs of
# real Fashion-MNIST) on one CUDA GPU, JOBS runs at a time through the joblib launcher. Leaves in
# $OUT the sweep's comparison.{csv,md}, convergence.png and runs.tar.gz (each job's metrics.json,
# what the report is recomputed from).
#   DATA=/usr/share/datasets/fashion-mnist JOBS=8 bash benchmarks/gpu_compare_fashion.sh
# On a machine with PyTorch, Lightning and scikit-learn but without Hydra, the wheels in .whl/ are
# installed first; make them where pip reaches PyPI:
#   pip wheel --no-deps -w .whl hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_compare}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
JOBS=${JOBS:-8}
SITE=/tmp/site_compare
mkdir -p "$OUT"
if ! python3 -c "import hydra, hydra_plugins.hydra_joblib_launcher" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl
fi
export PYTHONPATH=$SITE:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
SWEEP=/tmp/compare_fashion
start=$(date +%s)
python3 train.py -m experiment=compare_fashion data.root="$DATA" threads=1 \
  trainer.accelerator=gpu trainer.devices=1 hydra/launcher=joblib hydra.launcher.n_jobs="$JOBS" \
  hydra.sweep.dir="$SWEEP" 2>&1 | grep -E "test acc|Error|Traceback|Sweep report" | tee "$OUT/sweep.txt"
echo "sweep: $(( $(date +%s) - start )) s with $JOBS jobs at a time" | tee -a "$OUT/sweep.txt"
cp "$SWEEP"/comparison.csv "$SWEEP"/comparison.md "$SWEEP"/convergence.png "$OUT"/ 2>/dev/null
(cd "$SWEEP" && tar czf "$OUT/runs.tar.gz" --exclude=checkpoints --exclude=csv --exclude=.hydra \
  --exclude='*.log' --exclude=curves.json ./*/)
cat "$OUT/comparison.md"
