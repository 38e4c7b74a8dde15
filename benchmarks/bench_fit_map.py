"""Time ``fit_map`` over the paper's full workload: 26 settings (compress and limit, peak reduction
100 → 40 in steps of 5) × 20 minutes of 44.1 kHz audio = 520 minutes, on this machine's cores.

    python benchmarks/bench_fit_map.py                 # full size (goal: ≤ 8 min; the paper: < 20 min on a GPU)
    python benchmarks/bench_fit_map.py --minutes 2     # a quick look
    python benchmarks/bench_fit_map.py --minutes 1 --workers 2   # serial vs a 2-worker local Dask cluster

The audio is generated, as the dataset generator does it: one capture stimulus for every setting,
rendered through the virtual opto levelling amplifier.  To keep 11 GB of WAV off the disk, the
dataset renders each target in memory when the fit asks for it; rendering time is measured separately
and reported beside the fitting time (the total is what a user of a real dataset on disk would see,
minus disk reads).

``--workers N`` runs the same map twice, serially and on a local Dask cluster of N worker processes
(``dynamatch fit-map --workers N``), prints both wall times and checks that the maps are identical.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dynamatch.data.datasets import PairDataset, PairInfo
from dynamatch.data.stimulus import capture_stimulus
from dynamatch.maps.fit_map import DEFAULT_CHAIN, fit_map
from dynamatch.models.opto import OptoLevellingAmplifier

SAMPLE_RATE = 44100


class RenderedDataset(PairDataset):
    """A SignalTrain-like dataset whose targets are rendered on read (no disk)."""

    def __init__(self, minutes: float, chain, modes) -> None:
        started = time.perf_counter()
        self.stimulus = capture_stimulus(SAMPLE_RATE, duration_seconds=minutes * 60.0, seed=0)
        self.stimulus_seconds = time.perf_counter() - started
        self.render_seconds = 0.0
        n = self.stimulus.size
        pairs = [
            PairInfo(Path("memory/input.wav"), Path(f"memory/{mode}_{pr:g}.wav"), mode, float(pr), "train", "3c",
                     f"{mode}_{pr:g}", n / SAMPLE_RATE, n)
            for mode in modes for pr in chain
        ]
        super().__init__(Path("memory"), SAMPLE_RATE, pairs)

    def read(self, pair, *, start_seconds=0.0, duration_seconds=None):
        started = time.perf_counter()
        x = self.stimulus
        y = OptoLevellingAmplifier(pair.peak_reduction, pair.mode).process(x, SAMPLE_RATE)
        self.render_seconds += time.perf_counter() - started
        return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="audio per setting (paper: 20)")
    parser.add_argument("--modes", default="compress,limit")
    parser.add_argument("--workers", type=int, default=None,
                        help="also run on a local Dask cluster of this many workers and compare with the serial run")
    args = parser.parse_args()
    modes = args.modes.split(",")
    dataset = RenderedDataset(args.minutes, DEFAULT_CHAIN, modes)
    settings = len(DEFAULT_CHAIN) * len(modes)
    print(f"{settings} settings × {args.minutes:g} min = {settings * args.minutes:g} min of audio "
          f"(stimulus generated in {dataset.stimulus_seconds:.1f} s)")
    lines = []

    def on_setting(fit, index, total):
        lines.append(fit)
        print(f"  [{index + 1:>2}/{total}] {fit.mode:>8} PR {fit.peak_reduction:>5g}: ESR {fit.esr:.5f}, "
              f"{fit.iterations:>2} it, {fit.elapsed_seconds:5.1f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        serial_map = fit_map(dataset, Path(tmp) / "map.json", modes=modes, on_setting=on_setting)
        total = time.perf_counter() - started
    fitting = sum(f.elapsed_seconds for f in lines)
    goal = 8 * 60 * (args.minutes / 20.0)
    print(f"\nfitting {fitting:.1f} s + rendering targets {dataset.render_seconds:.1f} s + other {total - fitting - dataset.render_seconds:.1f} s"
          f" = {total:.1f} s wall")
    print(f"fitting time vs goal ({goal:.0f} s for this size): {fitting / goal:.2f}× of the budget; "
          f"mean {fitting / len(lines):.1f} s and {np.mean([f.iterations for f in lines]):.1f} iterations per setting")
    print(f"paper (RTX 3060, 520 min): < 1200 s; ratio paper/ours ≥ {1200 * (args.minutes / 20.0) / fitting:.1f}× "
          "(scaled to this size)")
    if args.workers:
        compare_workers(dataset, modes, args.workers, total, serial_map)


def compare_workers(dataset, modes, workers: int, serial_seconds: float, serial_map) -> None:
    """fit-map on a local Dask cluster of ``workers`` processes beside the serial wall time; same map."""
    from dynamatch.parallel import executor

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with executor(workers=workers) as pool:
            cluster_started = time.perf_counter() - started
            parallel_map = fit_map(dataset, Path(tmp) / "parallel.json", modes=modes, executor=pool)
        wall = time.perf_counter() - started
        a, b = serial_map, parallel_map
        same = all(np.array_equal(a.modes[m][k], b.modes[m][k]) for m in a.modes for k in a.modes[m])
    print(f"\nfit-map wall: serial {serial_seconds:.1f} s, {workers} local Dask workers {wall:.1f} s "
          f"(cluster start {cluster_started:.1f} s): {serial_seconds / wall:.2f}× ; maps identical: {same}")


if __name__ == "__main__":
    main()
