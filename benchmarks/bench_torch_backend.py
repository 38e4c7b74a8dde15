"""The generated torch objectives beside the numba kernels: ns per sample for loss / +gradient / +Hessian
of each family member on each device and dtype, branch fixed-point passes (cold and warm), float32 error
against the float64 numba result, and a whole damped Newton fit of the first member on each backend.

    python benchmarks/bench_torch_backend.py --minutes 2            # CPU, FF-5
    python benchmarks/bench_torch_backend.py --minutes 20 --devices cpu-torch,cuda --batch-chunks 16
    python benchmarks/bench_torch_backend.py --minutes 0.5 --models ff5,opto,feedback --no-fit --chunk-seconds 2

Timing figures on a shared machine are noisy; the float32 errors and pass counts are not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_objective import SAMPLE_RATE, programme  # noqa: E402

from dynamatch import Compressor  # noqa: E402
from dynamatch.fitting import fit_arrays  # noqa: E402
from dynamatch.optimize.objective import CompressorObjective  # noqa: E402
from dynamatch.optimize.torch_backend import TorchCompressorObjective  # noqa: E402

TRUTH = dict(threshold_db=-24.0, ratio=5.0, attack_ms=4.0, release_ms=120.0, makeup_db=3.0)
POINT = dict(threshold_db=-21.0, ratio=3.5, attack_ms=2.0, release_ms=90.0, makeup_db=2.0)


def timed(function, repeats: int = 3) -> float:
    function()
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def relative(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--devices", default="cpu-torch")
    parser.add_argument("--batch-chunks", type=int, default=4)
    parser.add_argument("--models", default="ff5", help="comma-separated family members")
    parser.add_argument("--chunk-seconds", type=float, default=12.0)
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    import torch

    dry = programme(args.minutes * 60.0)
    wet = Compressor(**TRUTH).process(dry, SAMPLE_RATE) + 1e-3 * np.random.default_rng(1).normal(size=dry.size)
    models = [m for m in args.models.split(",") if m]
    print(f"{args.minutes:g} min, {dry.size} samples, {args.chunk_seconds:g}-s chunks, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    for model in models:
        member(model, dry, wet, args)
    if args.fit:
        for device in [None] + [d for d in args.devices.split(",") if d]:
            started = time.perf_counter()
            result = fit_arrays(dry, wet, SAMPLE_RATE, model=models[0], device=device, coarse=False,
                                **chunking_of(args))
            print(f"fit {models[0]} on {device or 'numba'}: {time.perf_counter() - started:.2f} s, {result.nit} "
                  f"iterations, ESR {result.loss:.6g}, {result.params}")


def chunking_of(args) -> dict:
    return dict(chunk_seconds=args.chunk_seconds, warmup_seconds=min(1.0, args.chunk_seconds / 5))


def member(model: str, dry: np.ndarray, wet: np.ndarray, args) -> None:
    """The timing rows of one family member."""
    import torch

    n = dry.size
    chunking = chunking_of(args)
    reference = CompressorObjective(dry, wet, SAMPLE_RATE, model=model, **chunking)
    values = {p.name: (p.starts[0] if p.starts else p.default) for p in reference.spec.parameters} | POINT
    q = reference.kernel_params(Compressor(model=model, **values))
    exact = reference.loss_grad_hess(q)
    rows = [("numba", "float64", *(timed(f) * 1e9 / n for f in
             (lambda: reference.loss(q), lambda: reference.loss_grad(q), lambda: reference.loss_grad_hess(q))), 0.0, 0.0, 0.0)]
    for device in [d for d in args.devices.split(",") if d]:
        for dtype in ("float64", "float32"):
            objective = TorchCompressorObjective(dry, wet, SAMPLE_RATE, model=model, device=device, dtype=dtype,
                                                 batch_chunks=args.batch_chunks, **chunking)
            loss, grad, hess = objective.loss_grad_hess(q)
            cold = objective.passes
            objective.loss(q)
            warm = objective.passes
            sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

            def run(f):
                return lambda: (f(q), sync())

            times = [timed(run(f)) * 1e9 / n for f in (objective.loss, objective.loss_grad, objective.loss_grad_hess)]
            rows.append((f"torch {device}", dtype, *times, abs(loss / exact[0] - 1), relative(grad, exact[1]),
                         relative(hess, exact[2])))
            print(f"  {model} {device} {dtype}: branch passes cold {cold}, warm {warm}")
    print(f"{model}: {'backend':16} {'dtype':8} {'loss':>8} {'+grad':>8} {'+hess':>8}  ns/sample   rel.err loss / grad / hess")
    for name, dtype, a, b, c, el, eg, eh in rows:
        print(f"{model}: {name:16} {dtype:8} {a:8.2f} {b:8.2f} {c:8.2f}              {el:.1e} / {eg:.1e} / {eh:.1e}")


if __name__ == "__main__":
    main()
