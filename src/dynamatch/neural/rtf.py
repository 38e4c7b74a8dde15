"""Real-time factor of block-based processing, as measured in the micro-TCN and S4 DRC papers.

For each frame size ``F`` a fresh streaming processor is fed consecutive frames of a test signal;
``RTF = audio duration / wall time`` (> 1 means faster than real time).  :func:`rtf_table` does this
for every model preset (untrained weights: speed does not depend on their values) and for the
grey-box compressor, and can write a CSV and a log–log plot.  Wall-clock figures depend on the
machine and its load; never use them as pass/fail tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.compressor import Compressor
from ..report.rows import write_rows_csv

FRAME_SIZES: tuple[int, ...] = tuple(2**k for k in range(5, 17))  # 32 … 65 536
COMPRESSOR_NAME = "4a2a"


@dataclass(frozen=True)
class RTFMeasurement:
    """One model at one frame size."""

    name: str
    frame_samples: int
    frames: int
    audio_seconds: float
    wall_seconds: float
    rtf: float
    threads: int


def benchmark_signal(samples: int, seed: int = 0) -> np.ndarray:
    """Noise bursts with a slow level envelope, ≈ −18 dBFS RMS, float32 (content does not affect speed)."""
    rng = np.random.default_rng(seed)
    envelope = 0.5 + 0.45 * np.sin(2 * np.pi * np.arange(samples) / 22050.0)
    return (0.125 * envelope * rng.standard_normal(samples)).astype(np.float32)


def measure_rtf(
    processor_factory: Callable[[], object],
    *,
    name: str = "",
    sample_rate: int = 44100,
    frame_sizes: Iterable[int] = FRAME_SIZES,
    duration_seconds: float = 2.0,
    threads: int = 2,
    repeats: int = 1,
) -> list[RTFMeasurement]:
    """RTF of ``processor_factory().process(frame)`` for each frame size.

    Each frame size gets a fresh processor, one untimed warm-up frame, then
    ``max(1, duration_seconds·sample_rate // F)`` timed consecutive frames; with ``repeats > 1``
    the whole pass is repeated (fresh processor each time) and the fastest pass is kept, which
    filters out time stolen by other processes on a shared machine.
    """
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = []
        for frame in frame_sizes:
            frames = max(1, int(duration_seconds * sample_rate) // frame)
            signal = benchmark_signal(frame * (frames + 1))
            wall_seconds = math.inf
            for _ in range(max(1, repeats)):
                processor = processor_factory()
                processor.process(signal[:frame])
                start = time.perf_counter()
                for i in range(1, frames + 1):
                    processor.process(signal[i * frame : (i + 1) * frame])
                wall_seconds = min(wall_seconds, time.perf_counter() - start)
            audio_seconds = frames * frame / sample_rate
            rows.append(RTFMeasurement(name, frame, frames, audio_seconds, wall_seconds, audio_seconds / wall_seconds, threads))
        return rows
    finally:
        torch.set_num_threads(previous_threads)


def rtf_table(
    models: Sequence[str] | None = None,
    *,
    compressor: Compressor | None = None,
    sample_rate: int = 44100,
    frame_sizes: Iterable[int] = FRAME_SIZES,
    duration_seconds: float = 2.0,
    threads: int = 2,
    repeats: int = 1,
    csv_path: str | Path | None = None,
    plot_path: str | Path | None = None,
) -> list[RTFMeasurement]:
    """RTF of every preset in ``models`` (default: all) and of ``compressor`` (default
    ``Compressor()``, streamed with numba) at each frame size; optionally write CSV and PNG."""
    from .registry import MODEL_PRESETS, build_model
    from .streaming import StreamingProcessor

    frame_sizes = tuple(frame_sizes)
    compressor = compressor if compressor is not None else Compressor()
    rows = measure_rtf(
        lambda: compressor.stream(sample_rate),
        name=COMPRESSOR_NAME,
        sample_rate=sample_rate,
        frame_sizes=frame_sizes,
        duration_seconds=duration_seconds,
        threads=threads,
        repeats=repeats,
    )
    for name in models if models is not None else MODEL_PRESETS:
        model = build_model(name).eval()
        rows += measure_rtf(
            lambda: StreamingProcessor(model, (0.0, 0.5)),
            name=name,
            sample_rate=sample_rate,
            frame_sizes=frame_sizes,
            duration_seconds=duration_seconds,
            threads=threads,
            repeats=repeats,
        )
    if csv_path is not None:
        write_rows_csv(rows, csv_path)
    if plot_path is not None:
        plot_rtf(rows, plot_path)
    return rows



def plot_rtf(rows: Sequence[RTFMeasurement], path: str | Path) -> Path:
    """RTF against frame size, log–log, one line per model, with the real-time line at 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(row.name for row in rows):
        mine = [row for row in rows if row.name == name]
        axes.plot([r.frame_samples for r in mine], [r.rtf for r in mine], marker="o", markersize=3, label=name)
    axes.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("frame size (samples)")
    axes.set_ylabel("real-time factor")
    axes.set_title(f"Streaming real-time factor, {rows[0].threads} thread(s)" if rows else "Streaming real-time factor")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
