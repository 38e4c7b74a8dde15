r"""The 4A-2A paper's Hessian-strategy table, reproduced: time and peak memory of the exact 5×5 Hessian of the
pre-filtered ESR over a batch of chunks, by every strategy, each verified against the numba kernels first.

Strategies (``STRATEGIES``):

* ``autograd-rev-rev``  ``torch.autograd.functional.hessian`` through a pure-torch differentiable FF-5
  (the parallel scans of :mod:`dynamatch.kernels.torch_scan`, plain torch operations, branches held at
  those of the evaluation point, as in the paper);
* ``func-rev-rev``, ``func-fwd-rev``, ``func-rev-fwd``, ``func-fwd-fwd``: ``torch.func`` compositions of
  ``jacrev``/``jacfwd`` through the same function (forward mode is exact here: no custom autograd
  Functions are involved);
* ``torchcomp-rev-rev``: ``torch.autograd.functional.hessian`` through torchcomp + torchlpc (custom
  autograd Functions; only reverse-over-reverse is correct through them, see CONTEXT §7), when installed;
* ``torch-scan``: dynamatch's fused forward-mode sensitivities as torch scans (:mod:`dynamatch.optimize.torch_backend`);
* ``numba``: dynamatch's generated numba kernels (the reference).

Each strategy runs in its own process so its peak memory (RSS growth on CPU, ``max_memory_allocated``
on CUDA) is its own.  Loss: ESR of ``batch`` chunks of ``seconds`` each (no warm-up), each from rest.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..report.rows import write_rows_csv

STRATEGIES = ("autograd-rev-rev", "func-rev-rev", "func-fwd-rev", "func-rev-fwd", "func-fwd-fwd",
              "torchcomp-rev-rev", "torch-scan", "numba")
CPU_ONLY = ("numba",)
CUDA_NEVER = ("torchcomp-rev-rev",)  # its forward is numba on the CPU
SAMPLE_RATE = 44100
VERIFY_RTOL = 1e-6
# The paper (RTX 3060, batch 16 x 12 s): strategy -> (peak MB, ms)
PAPER_RTX3060 = {"autograd-rev-rev": (1066, 26.5), "func-rev-rev": (2358, 28.1), "func-fwd-rev": (3534, 28.1),
                 "func-rev-fwd": (6306, 64.7), "func-fwd-fwd": (5364, 38.9)}
TRUTH = dict(threshold_db=-24.0, ratio=5.0, attack_ms=4.0, release_ms=120.0, makeup_db=3.0)
POINT = dict(threshold_db=-21.0, ratio=3.5, attack_ms=2.0, release_ms=90.0, makeup_db=2.0)


@dataclass(frozen=True)
class HessianMeasurement:
    """One strategy on one device: median wall time per Hessian, peak memory beyond the data, and the
    relative error of its Hessian against the numba one (max |ΔH| / max |H|)."""

    strategy: str
    device: str
    batch: int
    seconds: float
    ms: float
    peak_mb: float
    relative_error: float
    status: str  # "ok", "wrong" (not timed), "skipped: why", "failed: why"


def _signals(batch: int, seconds: float):
    from ..data.stimulus import capture_stimulus
    from ..models.compressor import Compressor

    duration = batch * seconds
    dry = capture_stimulus(SAMPLE_RATE, duration_seconds=max(duration, 10.0), seed=0)[: int(round(duration * SAMPLE_RATE))]
    wet = Compressor(**TRUTH).process(dry, SAMPLE_RATE)
    wet = wet + 1e-3 * np.random.default_rng(1).normal(size=dry.size)
    return dry, wet


def _pure_torch_loss(objective, theta0):
    """ESR as a differentiable function of the 5 kernel parameters (plain torch ops), branches fixed at ``theta0``."""
    import torch

    from ..kernels.torch_scan import ff5_branches, ff5_gain_given_branches, prefilter_scan, static_gain
    from ..units import DB_TO_LOG

    x, level, t, counted = objective._chunks[0]
    weight = counted.to(x.dtype)
    _, _, target0 = static_gain(level, float(theta0[0]), float(theta0[1]))
    _, attacking, _ = ff5_branches(target0, float(theta0[2]), float(theta0[3]))
    zero, pole, energy = objective._zero, objective._pole, objective.target_energy

    def loss(theta):
        _, _, target = static_gain(level, theta[0], theta[1])
        gain = ff5_gain_given_branches(target, theta[2], theta[3], attacking)
        z = prefilter_scan(x * gain * torch.exp(DB_TO_LOG * theta[4]), zero, pole)
        return torch.sum((z - t) ** 2 * weight) / energy

    return loss


def _torchcomp_loss(objective):
    import torch
    import torchcomp
    from torchlpc import sample_wise_lpc

    x, level, t, counted = objective._chunks[0]
    batch, n = x.shape
    magnitude = x.abs().clamp_min(1e-10)
    pole = torch.full((batch, n, 1), -objective._pole, dtype=x.dtype)
    energy = objective.target_energy

    def loss(theta):
        gain = torchcomp.compexp_gain(magnitude, theta[0].expand(batch), theta[1].expand(batch),
                                      torch.full((batch,), -1000.0, dtype=x.dtype), torch.full((batch,), 0.5, dtype=x.dtype),
                                      theta[2].expand(batch), theta[3].expand(batch))
        u = x * gain * 10.0 ** (theta[4] / 20.0)
        z = sample_wise_lpc(u - torch.nn.functional.pad(u, (1, 0))[:, :-1], pole)
        return torch.sum((z - t) ** 2) / energy

    return loss


def _hessian_function(strategy: str, objective, numba_objective, q: np.ndarray):
    """A no-argument callable returning the Hessian (numpy) by ``strategy``."""
    if strategy == "numba":
        return lambda: numba_objective.loss_grad_hess(q)[2]
    if strategy == "torch-scan":
        return lambda: objective.loss_grad_hess(q)[2]
    import torch

    theta = torch.tensor(q, dtype=torch.float64, device=objective.device)
    if strategy == "torchcomp-rev-rev":
        loss = _torchcomp_loss(objective)
        return lambda: torch.autograd.functional.hessian(loss, theta).cpu().numpy()
    loss = _pure_torch_loss(objective, q)
    if strategy == "autograd-rev-rev":
        return lambda: torch.autograd.functional.hessian(loss, theta).cpu().numpy()
    from torch.func import jacfwd, jacrev

    outer, inner = strategy.removeprefix("func-").split("-")
    transform = {"rev": jacrev, "fwd": jacfwd}
    hessian = transform[outer](transform[inner](loss))
    return lambda: hessian(theta).detach().cpu().numpy()


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRSS:
    """Highest resident set size (MB) while the block runs, sampled every millisecond by a thread."""

    def __enter__(self):
        import threading

        self.peak = _rss_mb()
        self._stop = threading.Event()

        def watch():
            while not self._stop.wait(0.001):
                self.peak = max(self.peak, _rss_mb())

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def measure(strategy: str, device: str, batch: int, seconds: float, repeats: int, threads: int) -> HessianMeasurement:
    """Measure one strategy in this process (use :func:`hessian_table` for one process per strategy)."""
    import torch

    from ..models.compressor import Compressor
    from ..optimize.objective import CompressorObjective
    from ..optimize.torch_backend import TorchCompressorObjective

    import numba

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    def row(ms=math.nan, peak=math.nan, error=math.nan, status="ok"):
        return HessianMeasurement(strategy, device, batch, seconds, ms, peak, error, status)

    if strategy in CPU_ONLY and device != "cpu":
        return row(status="skipped: CPU only")
    if strategy in CUDA_NEVER and device != "cpu":
        return row(status="skipped: its forward runs on the CPU")
    if strategy == "torchcomp-rev-rev":
        try:
            import torchcomp  # noqa: F401
            import torchlpc  # noqa: F401
        except ImportError:
            return row(status="skipped: torchcomp/torchlpc not installed")
    dry, wet = _signals(batch, seconds)
    settings = dict(chunk_seconds=seconds, warmup_seconds=0.0)
    reference_objective = CompressorObjective(dry, wet, SAMPLE_RATE, **settings)
    q = reference_objective.kernel_params(Compressor(**POINT))
    reference = reference_objective.loss_grad_hess(q)[2]
    objective = TorchCompressorObjective(dry, wet, SAMPLE_RATE, device="cpu-torch" if device == "cpu" else device,
                                         batch_chunks=batch, **settings)
    cuda = device.startswith("cuda")
    try:
        compute = _hessian_function(strategy, objective, reference_objective, q)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        base_rss = _rss_mb()
        with _PeakRSS() as watch:
            hessian = compute()
        if cuda:
            torch.cuda.synchronize()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:
            peak = watch.peak - base_rss
        error = float(np.max(np.abs(hessian - reference)) / np.max(np.abs(reference)))
        if not error <= VERIFY_RTOL:
            return row(peak=peak, error=error, status="wrong")
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            compute()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        return row(float(np.median(times)) * 1e3, peak, error)
    except (RuntimeError, MemoryError) as failure:  # out of memory, unsupported op
        return row(status=f"failed: {str(failure).splitlines()[0][:120]}")


def default_devices() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` when torch sees a GPU."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def hessian_table(*, batch: int = 16, seconds: float = 12.0, devices: Sequence[str] = ("cpu",),
                  strategies: Sequence[str] = STRATEGIES, repeats: int = 3, threads: int = 1,
                  csv_path: str | Path | None = None, plot_path: str | Path | None = None,
                  timeout_seconds: float = 1800.0) -> list[HessianMeasurement]:
    """Every strategy on every device, one subprocess each; writes CSV/PNG when paths are given."""
    for s in strategies:
        if s not in STRATEGIES:
            raise ParameterError(f"unknown Hessian strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    if batch < 1 or not seconds > 0:
        raise ParameterError(f"need batch >= 1 and seconds > 0, got {batch} and {seconds}")
    rows = []
    for device in devices:
        for strategy in strategies:
            arguments = json.dumps([strategy, device, batch, seconds, repeats, threads])
            try:
                done = subprocess.run([sys.executable, "-m", "dynamatch.bench.hessian", arguments], capture_output=True,
                                      text=True, timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                rows.append(HessianMeasurement(strategy, device, batch, seconds, math.nan, math.nan, math.nan,
                                               f"failed: over {timeout_seconds:.0f} s"))
                continue
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:120]
                if done.returncode < 0 or done.returncode == 137:
                    why = f"killed (signal {-done.returncode}; out of memory?)"
                rows.append(HessianMeasurement(strategy, device, batch, seconds, math.nan, math.nan, math.nan,
                                               f"failed: {why}"))
                continue
            rows.append(HessianMeasurement(**json.loads(lines[-1])))
    if csv_path is not None:
        write_rows_csv(rows, csv_path)
    if plot_path is not None:
        plot_table(rows, plot_path)
    return rows



def plot_table(rows: Sequence[HessianMeasurement], path: str | Path) -> Path:
    """Two bar charts (time, peak memory), log scale, one bar group per strategy, one colour per device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    devices = list(dict.fromkeys(r.device for r in rows))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(len(devices), 1)
    for d, device in enumerate(devices):
        by = {r.strategy: r for r in rows if r.device == device}
        for ax, field in zip(axes, ("ms", "peak_mb")):
            values = [getattr(by[s], field) if s in by and by[s].status == "ok" else np.nan for s in strategies]
            ax.bar(np.arange(len(strategies)) + d * width, values, width, label=device)
    first = rows[0] if rows else None
    for ax, label in zip(axes, ("ms per Hessian", "peak memory (MB)")):
        ax.set_xticks(np.arange(len(strategies)) + 0.4 - width / 2, strategies, rotation=35, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, axis="y", which="both", linewidth=0.3)
        ax.legend(fontsize=8)
    if first:
        figure.suptitle(f"5x5 Hessian of the pre-filtered ESR, batch {first.batch} x {first.seconds:g} s")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


if __name__ == "__main__":  # worker: one strategy, one JSON line
    strategy_, device_, batch_, seconds_, repeats_, threads_ = json.loads(sys.argv[1])
    print(json.dumps(asdict(measure(strategy_, device_, batch_, seconds_, repeats_, threads_))))
