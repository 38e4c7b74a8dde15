#!/usr/bin/env bash
# GPU figures of issue 13 in one command (<= 5 minutes on a machine with an NVIDIA GPU):
#   bash benchmarks/gpu_check.sh
# (The CUDA test and benchmark lines cover every family member.)
# Installs dynamatch (keeping a CUDA torch that is already there, else pip's default CUDA build), runs the
# CUDA equality tests, then prints: the Hessian-strategy table on CPU and CUDA (batch 16 x 12 s, the
# paper's size), the torch objective on CUDA (ns/sample, float32 error, a whole fit of 20 min against
# numba), and the epoch time of a neural model trained with --accelerator gpu --precision bf16-mixed.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  $PIP install -q torch  # the default PyPI wheel is a CUDA build
fi
$PIP install -q -e ".[dev]" 2>&1 | grep -v '^WARNING' || true
.venv/bin/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
date -u
echo "== equality tests on CUDA"
timeout 180 .venv/bin/python -m pytest tests/test_torch_backend.py -q -k "cuda" 2>&1 | tail -3
echo "== Hessian strategies, batch 16 x 12 s"
timeout 300 .venv/bin/dynamatch bench hessian --batch 16 --seconds 12 --device cuda --repeats 3 --threads 4 \
  -o gpu_check/hessian_cuda | cat || echo "(hessian table on CUDA did not finish)"
echo "== torch objective on CUDA and a 20-min fit"
timeout 200 .venv/bin/python benchmarks/bench_torch_backend.py --minutes 20 --devices cuda --batch-chunks 16 \
  || echo "(objective benchmark did not finish)"
echo "== every other family member's torch objective on CUDA (1 min, 2-s chunks; feedback runs a sequential loop)"
timeout 150 .venv/bin/python benchmarks/bench_torch_backend.py --minutes 1 --devices cuda --batch-chunks 30 \
  --chunk-seconds 2 --no-fit --models ff5-knee,ff5-rms,ff5-emphasis,opto,level,rms-level-knee,gain-db,ff5-hp,ff5-emphasis-hp,opto-hp,feedback,feedback-hp \
  || echo "(member benchmark did not finish)"
echo "== neural training on GPU, bf16-mixed"
timeout 200 .venv/bin/python - <<'PY' || echo "(training check did not finish)"
import tempfile, time
from pathlib import Path
from dynamatch.data.generate import generate_signaltrain_like
from dynamatch.neural.train import train
root = generate_signaltrain_like(Path(tempfile.mkdtemp()), duration_seconds=60.0, peak_reductions=[40, 80], seed=0)
for accelerator, precision in (("gpu", "bf16-mixed"), ("gpu", "32-true")):
    started = time.perf_counter()
    result = train("tcn-300-c", root, Path(tempfile.mkdtemp()), max_epochs=2.0, accelerator=accelerator,
                   precision=precision, progress=False)
    print(f"tcn-300-c {accelerator} {precision}: {(time.perf_counter() - started) / 2:.1f} s per epoch "
          f"({result.steps} steps), val loss {result.best_val_loss:.4g}")
PY
