"""PNG figures for fits, maps and evaluations (matplotlib with the Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..units import gain_to_db


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def envelope_db(x: np.ndarray, sample_rate: float, window_ms: float = 10.0, step: int = 1) -> np.ndarray:
    """Short-term RMS level in dB (moving average of x² over ``window_ms``), at every ``step``-th sample
    (the same values as ``envelope_db(x, ...)[::step]``, computed only there)."""
    n = max(1, int(round(window_ms * 1e-3 * sample_rate)))
    squares = np.asarray(x, dtype=float) ** 2
    running = np.concatenate(([0.0], np.cumsum(squares)))
    # np.convolve(squares, ones(n)/n, "same"): sample i averages squares[i + (n-1)//2 - n + 1 … i + (n-1)//2]
    index = np.arange(0, squares.size, max(1, int(step)))
    last = np.minimum(index + (n - 1) // 2, squares.size - 1)
    first = np.maximum(index + (n - 1) // 2 - n + 1, 0)
    power = (running[last + 1] - running[first]) / n
    return 10.0 * np.log10(np.maximum(power, 1e-20))


PLOT_STEP_SECONDS = 0.002
#: The apparent gain (wet level − dry level) is drawn only where the dry is within this many dB of its loudest.
APPARENT_GAIN_RANGE_DB = 60.0


def _min_max(x: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block minimum and maximum of ``x`` in blocks of ``step`` samples (the last block may be short)."""
    blocks = -(-x.size // step)
    padded = np.pad(x, (0, blocks * step - x.size), mode="edge").reshape(blocks, step)
    return padded.min(axis=1), padded.max(axis=1)


def plot_fit(
    path: str | os.PathLike,
    dry: np.ndarray,
    wet: np.ndarray,
    prediction: np.ndarray,
    sample_rate: float,
    *,
    model_gain: np.ndarray | None = None,
    reference_gain_reduction_db: np.ndarray | None = None,
    title: str = "",
    max_seconds: float = 30.0,
) -> Path:
    """Target vs prediction levels, their error, and gain-reduction curves over time."""
    plt = _pyplot()
    n = min(len(dry), len(wet), len(prediction), int(max_seconds * sample_rate))
    step = max(1, int(PLOT_STEP_SECONDS * sample_rate))  # envelopes (>= 10 ms) drawn every 2 ms
    t = np.arange(0, n, step) / sample_rate

    def envelope(x, window_ms: float = 10.0):
        return np.asarray(envelope_db(np.asarray(x[:n], dtype=np.float64), sample_rate, window_ms, step))

    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    axes[0].plot(t, envelope(dry), lw=0.7, color="0.6", label="dry (input)")
    axes[0].plot(t, envelope(wet), lw=0.9, label="target (device)")
    axes[0].plot(t, envelope(prediction), lw=0.9, ls="--", label="prediction (model)")
    axes[0].set_ylabel("level (dB, 10 ms RMS)")
    axes[0].set_ylim(bottom=-80)
    axes[0].legend(loc="lower right", fontsize=8)
    for signal, options in ((wet[:n], {"label": "target"}),
                            (wet[:n] - prediction[:n], {"color": "C3", "label": "target − prediction"})):
        low, high = _min_max(np.asarray(signal, dtype=np.float64), step)
        axes[1].fill_between(t[: low.size], low, high, lw=0.0, alpha=0.8, **options)
    axes[1].set_ylabel("amplitude (min/max per 2 ms)")
    axes[1].legend(loc="lower right", fontsize=8)
    if reference_gain_reduction_db is not None:
        axes[2].plot(t, -np.asarray(reference_gain_reduction_db[:n:step]), lw=0.9, label="device gain (−gain reduction)")
    else:
        dry_level = envelope(dry, 20.0)
        apparent = envelope(wet, 20.0) - dry_level
        # where the dry is silent the ratio of two noise floors is no gain: leave a gap, not a −60…−100 dB plunge
        apparent[dry_level < np.max(dry_level, initial=-np.inf) - APPARENT_GAIN_RANGE_DB] = np.nan
        axes[2].plot(t, apparent, lw=0.6, color="0.5", label="apparent gain (target/dry, 20 ms)")
    if model_gain is not None:
        axes[2].plot(t, gain_to_db(np.asarray(model_gain[:n:step])), lw=0.9, ls="--", label="model gain (before make-up)")
    axes[2].set_ylabel("gain (dB)")
    axes[2].set_xlabel("time (s)")
    axes[2].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_parameter_curves(
    path: str | os.PathLike,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    knots: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    *,
    names: Sequence[str] = ("threshold_db", "ratio", "attack_ms", "release_ms", "makeup_db"),
    title: str = "",
) -> Path:
    """Parameters against peak reduction: ``curves[label] = (peak_reduction, params (n, len(names)))``."""
    plt = _pyplot()
    columns = min(len(names), 5)
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.4 * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for index, name in enumerate(names):
        ax = axes[index]
        for label, (pr, values) in curves.items():
            ax.plot(pr, np.asarray(values)[:, index], label=label)
        for label, (pr, values) in (knots or {}).items():
            ax.plot(pr, np.asarray(values)[:, index], "o", ms=3, label=f"{label} (fits)")
        ax.set_title(name)
        ax.set_xlabel("peak reduction")
        if name.endswith("_ms"):
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    if title:
        fig.suptitle(title, y=1.04)
    return _save(fig, path)


def plot_map(parameter_map, path: str | os.PathLike) -> Path:
    """Every parameter of a :class:`~dynamatch.maps.ParameterMap` against the knob, per mode, with its knots."""
    curves, knots = {}, {}
    for mode in parameter_map.modes:
        points = parameter_map.knots(mode)
        grid = np.linspace(points[0], points[-1], 200)
        curves[f"{mode} ({parameter_map.interpolation})"] = (grid, parameter_map.parameters(grid, mode))
        knots[mode] = (points, parameter_map.parameters(points, mode))
    return plot_parameter_curves(path, curves, knots, names=parameter_map.parameter_names,
                                 title=f"{parameter_map.model} parameters vs peak reduction")


def plot_scores(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, object]],
    *,
    metrics: Sequence[str] = ("esr", "delta_ldr_db"),
    group_by: str = "model",
    title: str = "",
) -> Path:
    """A metric per peak-reduction setting, one line per model and mode (the 4A-2A paper's figures), and per
    split when the rows come from several (Train, Val and Test pairs are not one curve)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 3.6), squeeze=False)
    key = lambda r: (str(r[group_by]), str(r.get("mode", "")), str(r.get("split", "") or ""))  # noqa: E731
    groups = sorted({key(r) for r in rows})
    several_splits = len({split for _, _, split in groups}) > 1
    for ax, metric in zip(axes[0], metrics):
        for group in groups:
            sel = sorted(
                (float(r["peak_reduction"]), float(r[metric]))
                for r in rows
                if key(r) == group and r.get(metric) not in (None, "")
            )
            if sel:
                x, y = zip(*sel)
                model, mode, split = group
                label = f"{model} {mode}".strip() + (f" ({split or 'no split'})" if several_splits else "")
                ax.plot(x, y, marker="o", ms=3, label=label)
        ax.set_xlabel("peak reduction")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
