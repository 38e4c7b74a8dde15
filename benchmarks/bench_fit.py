"""A complete damped-Newton fit on 20 minutes of 44.1 kHz audio (goal: ≤ 15 s on 2 cores), beside the
paper's default strategy (torchcomp + ``torch.autograd.functional.hessian``) on the same audio.

    python benchmarks/bench_fit.py                       # 20 min, target from the virtual opto LA-2A
    python benchmarks/bench_fit.py --minutes 5 --target compressor

The target is a realistic one by default: the built-in virtual opto levelling amplifier (peak
reduction 65, compress), which the 5-parameter model cannot match exactly.  The torch side computes
the same pre-filtered ESR, gradient and 5×5 Hessian on ``--torch-seconds`` of the audio (its memory
grows with length: ≈ 300 MiB per 12 s) and is extrapolated per sample to the whole signal and to the
number of Newton iterations dynamatch needed; the numba side is measured in full.
"""

from __future__ import annotations

import argparse
import resource
import time

import numba

from bench_objective import SAMPLE_RATE, _run_worker, programme
from dynamatch import Compressor
from dynamatch.fitting import fit_arrays
from dynamatch.models.opto import OptoLevellingAmplifier


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--target", choices=["opto", "compressor"], default="opto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-seconds", type=float, default=12.0)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    numba.set_num_threads(args.threads)

    tiny = programme(2.0)
    fit_arrays(tiny, Compressor(-20, 3, 3, 100, 0).process(tiny, SAMPLE_RATE), SAMPLE_RATE, max_iterations=2)

    dry = programme(args.minutes * 60.0)
    if args.target == "opto":
        device = OptoLevellingAmplifier(peak_reduction=65.0, mode="compress")
    else:
        device = Compressor(threshold_db=-28.0, ratio=4.0, attack_ms=2.0, release_ms=150.0, makeup_db=3.0)
    wet = device.process(dry, SAMPLE_RATE)
    before = peak_rss_mib()
    started = time.perf_counter()
    result = fit_arrays(dry, wet, SAMPLE_RATE, method="newton")
    elapsed = time.perf_counter() - started
    extra_mib = peak_rss_mib() - before
    hessians = result.nit + 1
    print(f"audio: {args.minutes:g} min at {SAMPLE_RATE} Hz ({dry.size} samples); target: {device}")
    print(f"dynamatch Newton ({args.threads} threads): {elapsed:.2f} s wall, {result.nit} iterations, "
          f"{result.nfev} objective calls, ESR {result.loss:.5f}, {result.message}")
    print(f"  peak memory beyond the input arrays: {extra_mib:.0f} MiB; fitted {result.params}")
    print(f"  goal ≤ 15 s for 20 min: {elapsed / (15.0 * args.minutes / 20.0):.2f}× of the budget")
    if args.no_torch:
        return
    row = _run_worker("torch", str(args.torch_seconds), "1")
    figures = row["torch hessian"]
    per_sample = figures["seconds"] / row["samples"]
    torch_fit = per_sample * dry.size * hessians
    print(f"torchcomp + autograd Hessian (1 thread): {per_sample * 1e9:.0f} ns/sample measured on "
          f"{args.torch_seconds:g} s (memory: see bench_objective.py)")
    print(f"  the same {hessians} Hessian evaluations on all {args.minutes:g} min: ≈ {torch_fit:.0f} s "
          f"(extrapolated; line-search losses not counted)")
    print(f"speed-up of the whole fit: ≥ {torch_fit / elapsed:.0f}× "
          f"(torch on 1 thread; with 2 threads at best half of that: ≥ {torch_fit / elapsed / 2:.0f}×)")


if __name__ == "__main__":
    main()
