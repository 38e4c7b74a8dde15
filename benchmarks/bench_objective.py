"""Cost of the exact 4A-2A objective: loss, loss + gradient, loss + gradient + Hessian (numba, streaming
forward mode) against the same 5×5 Hessian by torchcomp + ``torch.autograd.functional.hessian``
(reverse over reverse).

    python benchmarks/bench_objective.py --minutes 20

Each measurement runs in its own subprocess so that peak memory is that process's ``ru_maxrss``
increase over the measured call (JIT compilation is done beforehand on a tiny signal).  The torch
Hessian (one thread, subnormals flushed, pre-filter by torchlpc's recursion; see ``tests/naive.py``)
runs on a shorter piece (``--torch-seconds``) and is extrapolated per sample.  Wall and CPU
time (``time.process_time``, all threads of the process) are both shown: on a shared machine wall time
is inflated by other load, CPU time much less so; ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44100
REPEATS = 3


def programme(seconds: float, seed: int = 0) -> np.ndarray:
    """Programme-like mono signal: sections of 2–10 s at different loudness, each a decaying rhythmic
    envelope over a harmonic tone plus low-passed noise."""
    rng = np.random.default_rng(seed)
    total = int(seconds * SAMPLE_RATE)
    out = np.empty(total)
    start = 0
    while start < total:
        n = min(int(rng.uniform(2.0, 10.0) * SAMPLE_RATE), total - start)
        t = np.arange(n) / SAMPLE_RATE
        f0 = rng.uniform(80.0, 400.0)
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
        noise = np.cumsum(rng.normal(size=n))
        noise -= np.convolve(noise, np.ones(64) / 64, mode="same")  # crude band-pass
        noise /= np.std(noise) + 1e-12
        beat_seconds = rng.uniform(0.25, 0.7)
        envelope = np.exp(-(t % beat_seconds) / rng.uniform(0.05, 0.4))
        section = envelope * (0.6 * tone / 1.8 + 0.4 * rng.uniform(0.1, 1.0) * noise / 3.0)
        out[start:start + n] = section * 10.0 ** (rng.uniform(-30.0, -3.0) / 20.0)
        start += n
    return out


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pair(seconds: float):
    from dynamatch import Compressor

    dry = programme(seconds)
    wet = Compressor(threshold_db=-28.0, ratio=4.0, attack_ms=2.0, release_ms=150.0, makeup_db=3.0).process(
        dry, SAMPLE_RATE
    )
    return dry, wet


def _point():
    from dynamatch import Compressor

    return Compressor(-25.0, 3.0, 4.0, 100.0, 2.0).kernel_vector(SAMPLE_RATE)


def worker_numba(minutes: float, threads: int) -> dict:
    import numba

    from dynamatch.optimize.objective import CompressorObjective

    numba.set_num_threads(threads)
    q = _point()
    tiny = CompressorObjective(*_pair(2.0), SAMPLE_RATE)
    for method in (tiny.loss, tiny.loss_grad, tiny.loss_grad_hess):  # compile / load the cache
        method(q)
    dry, wet = _pair(minutes * 60.0)
    objective = CompressorObjective(dry, wet, SAMPLE_RATE)
    # the objective holds three float64 arrays of the signal's length
    result = {"samples": dry.size, "threads": threads, "held_mib": 3 * dry.nbytes / 2**20}
    del dry, wet
    for name, method in (("loss", objective.loss), ("loss+grad", objective.loss_grad),
                         ("loss+grad+hess", objective.loss_grad_hess)):
        before = _peak_rss_mib()
        method(q)  # warm-up call, also the memory measurement
        extra = _peak_rss_mib() - before
        times = []
        for _ in range(REPEATS):
            start, start_cpu = time.perf_counter(), time.process_time()
            method(q)
            times.append((time.perf_counter() - start, time.process_time() - start_cpu))
        wall, cpu = min(times)
        result[name] = {"seconds": wall, "cpu_seconds": cpu, "peak_extra_mib": extra}
    return result


def worker_torch(seconds: float) -> dict:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from naive import prefilter_naive, torchcomp_esr

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # decaying sensitivities turn subnormal: 5-10x slower without this
    q = torch.tensor(_point(), dtype=torch.float64)
    dry, wet = _pair(0.2)
    torch.autograd.functional.hessian(torchcomp_esr(dry, prefilter_naive(wet))[0], q)  # JIT warm-up
    dry, wet = _pair(seconds)
    esr, _ = torchcomp_esr(dry, prefilter_naive(wet))
    before = _peak_rss_mib()
    torch.autograd.functional.hessian(esr, q)  # warm-up call at full size, also the memory measurement
    extra = _peak_rss_mib() - before
    start, start_cpu = time.perf_counter(), time.process_time()
    torch.autograd.functional.hessian(esr, q)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {"samples": dry.size, "threads": 1,
            "torch hessian": {"seconds": wall, "cpu_seconds": cpu, "peak_extra_mib": extra}}


def _run_worker(*args: str) -> dict:
    command = [sys.executable, __file__, "--worker", *args]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the numba signal")
    parser.add_argument("--torch-seconds", type=float, default=12.0, help="length of the torch piece")
    parser.add_argument("--threads", type=int, default=2, help="numba threads for the parallel row")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, length, threads = args.worker[0], float(args.worker[1]), int(args.worker[2])
        print(json.dumps(worker_numba(length, threads) if kind == "numba" else worker_torch(length)))
        return

    rows = []
    for threads in sorted({1, args.threads}):
        rows.append(_run_worker("numba", str(args.minutes), str(threads)))
    rows.append(_run_worker("torch", str(args.torch_seconds), "1"))

    print(f"signal: {args.minutes:g} min at {SAMPLE_RATE} Hz for numba, {args.torch_seconds:g} s for torch "
          f"(torch per-sample figures extrapolate linearly)")
    print(f"objective arrays held (dry, detector log level, pre-filtered target): {rows[0]['held_mib']:.0f} MiB")
    header = (f"{'method':<16}{'threads':>8}{'samples':>11}{'wall s':>9}{'wall ns/sample':>16}"
              f"{'CPU ns/sample':>15}{'peak extra MiB':>16}")
    print(header)
    print("-" * len(header))
    per_sample = {}
    for row in rows:
        for name, figures in row.items():
            if not isinstance(figures, dict):
                continue
            ns = figures["seconds"] / row["samples"] * 1e9
            cpu_ns = figures["cpu_seconds"] / row["samples"] * 1e9
            per_sample[(name, row["threads"])] = (cpu_ns, figures["peak_extra_mib"] / row["samples"])
            print(f"{name:<16}{row['threads']:>8}{row['samples']:>11}{figures['seconds']:>9.3f}{ns:>16.1f}"
                  f"{cpu_ns:>15.1f}{figures['peak_extra_mib']:>16.1f}")
    torch_ns, torch_mib_per_sample = per_sample[("torch hessian", 1)]
    numba_ns, numba_mib_per_sample = per_sample[("loss+grad+hess", 1)]
    print(f"\nHessian speed-up in CPU time, 1 thread each: {torch_ns / numba_ns:.0f}x "
          f"(torch {torch_ns:.0f} ns/sample vs numba {numba_ns:.1f} ns/sample)")
    walls = {(name, row["threads"]): row[name]["seconds"] / row["samples"] * 1e9
             for row in rows for name in row if isinstance(row[name], dict)}
    best_numba = min(v for (name, _), v in walls.items() if name == "loss+grad+hess")
    print(f"Hessian speed-up in wall time, all {args.threads} cores for numba vs torch on 1 thread: "
          f"{walls[('torch hessian', 1)] / best_numba:.0f}x "
          f"(torch {walls[('torch hessian', 1)]:.0f} ns/sample vs numba {best_numba:.1f} ns/sample)")
    torch_12s_mib = torch_mib_per_sample * 12 * SAMPLE_RATE
    print(f"torch Hessian peak memory: {torch_12s_mib:.0f} MiB per 12 s chunk, "
          f"{torch_mib_per_sample * rows[0]['samples'] / 1024:.1f} GiB extrapolated to {args.minutes:g} min; "
          f"numba: {numba_mib_per_sample * rows[0]['samples']:.1f} MiB extra beyond its input arrays (O(1))")


if __name__ == "__main__":
    main()
