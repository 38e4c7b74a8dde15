"""Cost of every grey-box family member next to FF-5, in one run: the loss+gradient+Hessian pass
(ns/sample, wall and CPU, on ``--threads`` threads) and a complete Newton fit of ``--minutes`` of audio.

    python benchmarks/bench_family.py                      # every member, 20-min fits
    python benchmarks/bench_family.py --models ff5,opto --minutes 5 --no-fit

Goals (issue 9): an extended member's Hessian pass costs at most 3x FF-5's per sample; a 20-min
``opto`` fit takes at most 20 s on 2 cores.  The target of the fits is the built-in virtual opto
levelling amplifier (compress, peak reduction 65) on programme-like audio, so every member has
something to fit that it cannot match exactly.  Ratios to FF-5 are what to read on a loaded machine.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from bench_objective import SAMPLE_RATE, programme
from dynamatch import Compressor
from dynamatch.fitting import fit_arrays
from dynamatch.models.family import MODELS
from dynamatch.models.opto import OptoLevellingAmplifier
from dynamatch.optimize.objective import CompressorObjective

REPEATS = 3


def hessian_ns_per_sample(objective: CompressorObjective, model: str) -> tuple[float, float]:
    """(wall, CPU) ns/sample of one loss+gradient+Hessian pass, best of ``REPEATS``, at the defaults."""
    member = objective.with_model(model)
    q = member.kernel_params(Compressor(model=model, **(MODELS[model].defaults() | {"threshold_db": -25.0})))
    member.loss_grad_hess(q)  # compile or load the cache
    times = []
    for _ in range(REPEATS):
        wall, cpu = time.perf_counter(), time.process_time()
        member.loss_grad_hess(q)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(times)
    samples = member._dry.size
    return wall / samples * 1e9, cpu / samples * 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated members (FF-5 is always run)")
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the fitted audio")
    parser.add_argument("--pass-minutes", type=float, default=2.0, help="length of the timed Hessian pass")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-fit", action="store_true", help="time the Hessian pass only")
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    models = list(dict.fromkeys(["ff5", *args.models.split(",")]))
    device = OptoLevellingAmplifier(peak_reduction=65.0, mode="compress")

    dry = programme(args.pass_minutes * 60.0)
    objective = CompressorObjective(dry, device.process(dry, SAMPLE_RATE), SAMPLE_RATE)
    if not args.no_fit:
        fit_dry = programme(args.minutes * 60.0, seed=1)
        fit_wet = device.process(fit_dry, SAMPLE_RATE)
    print(f"Hessian pass on {args.pass_minutes:g} min, {args.threads} threads; "
          + ("no fits" if args.no_fit else f"Newton fits of {args.minutes:g} min") + f" at {SAMPLE_RATE} Hz")
    header = (f"{'model':<18}{'params':>7}{'wall ns/smp':>13}{'CPU ns/smp':>12}{'x FF-5':>8}"
              + ("" if args.no_fit else f"{'fit s':>9}{'x FF-5':>8}{'iters':>7}{'ESR':>10}"))
    print(header)
    print("-" * len(header))
    reference = {}
    for model in models:
        wall_ns, cpu_ns = hessian_ns_per_sample(objective, model)
        reference.setdefault("ns", cpu_ns)
        line = (f"{model:<18}{len(MODELS[model].parameters):>7}{wall_ns:>13.1f}{cpu_ns:>12.1f}"
                f"{cpu_ns / reference['ns']:>8.2f}")
        if not args.no_fit:
            fit_arrays(fit_dry[: SAMPLE_RATE * 2], fit_wet[: SAMPLE_RATE * 2], SAMPLE_RATE, model=model,
                       max_iterations=1, starts=1)  # compile everything the fit uses
            started = time.perf_counter()
            result = fit_arrays(fit_dry, fit_wet, SAMPLE_RATE, model=model)
            seconds = time.perf_counter() - started
            reference.setdefault("fit", seconds)
            line += f"{seconds:>9.1f}{seconds / reference['fit']:>8.2f}{result.nit:>7}{result.loss:>10.5f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
