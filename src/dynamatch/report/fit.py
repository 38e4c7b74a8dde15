"""The outputs of one capture fit, shared by ``dynamatch fit`` and the Python API.

* :func:`builtin_capture` — the built-in default job: the capture stimulus through the virtual opto
  levelling amplifier (what ``dynamatch fit`` with no files and ``scripts/demo.sh`` run);
* :func:`fit_statistics` — the ``fit`` table of the model file (the fit report document), with the
  optimiser's history (:func:`compact_history`: loss per iteration, which ``dynamatch report`` plots);
* :func:`save_fit` — model file (versioned JSON), text summary beside it;
* :func:`plot_capture_fit` — the PNG of levels, error and gain curves (first 30 s).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN_SAMPLE_RATE = 44100
BUILTIN_SECONDS = 60.0
BUILTIN_PEAK_REDUCTION = 65.0
PLOT_SECONDS = 30.0
MAX_HISTORY = 400  # iterates kept in the model file (evenly spaced, first and last always kept)
HISTORY_FIELDS = ("iteration", "loss", "gradient_norm", "step_size", "elapsed_seconds")


@dataclass(frozen=True)
class BuiltinCapture:
    """The built-in default capture: the pair, where it came from, and the device's own gain reduction."""

    pair: Any  # dynamatch.data.audio.AudioPair
    source: dict[str, str]
    reference_gain_reduction_db: np.ndarray
    description: str


def builtin_capture(sample_rate: int = BUILTIN_SAMPLE_RATE) -> BuiltinCapture:
    """The 60-s capture stimulus (seed 0) processed by the virtual opto levelling amplifier (PR 65, compress)."""
    from ..data.audio import AudioPair
    from ..data.stimulus import capture_stimulus
    from ..models.opto import OptoLevellingAmplifier

    device = OptoLevellingAmplifier(peak_reduction=BUILTIN_PEAK_REDUCTION, mode="compress")
    x = capture_stimulus(sample_rate, duration_seconds=BUILTIN_SECONDS, seed=0)
    y = device.process(x, sample_rate)
    return BuiltinCapture(
        pair=AudioPair(x, y, sample_rate, "stimulus", "virtual opto levelling amplifier"),
        source={"dry": f"capture_stimulus(seed=0, {BUILTIN_SECONDS:.0f} s)", "wet": repr(device)},
        reference_gain_reduction_db=device.gain_reduction_db(x, sample_rate),
        description=f"{len(x) / sample_rate:.0f} s capture stimulus → {device}",
    )


def _compact_number(value: float) -> float | None:
    value = float(value)
    return float(f"{value:.6g}") if np.isfinite(value) else None


def compact_history(history, max_records: int = MAX_HISTORY) -> dict[str, list]:
    """The optimiser's iterates as columns (``iteration``, ``loss``, ``gradient_norm``, ``step_size``,
    ``elapsed_seconds``; 6 significant digits, None for non-finite), at most ``max_records`` of them."""
    records = list(history)
    if len(records) > max_records:
        keep = np.unique(np.round(np.linspace(0, len(records) - 1, max_records)).astype(int))
        records = [records[i] for i in keep]
    return {name: [int(r.iteration) if name == "iteration" else _compact_number(getattr(r, name)) for r in records]
            for name in HISTORY_FIELDS}


def fit_statistics(capture, *, method: str, elapsed_seconds: float, fit_seconds: float) -> dict[str, Any]:
    """The ``fit`` entry of the model file for a :class:`~dynamatch.fitting.CaptureFit`."""
    result, aligned, alignment = capture.result, capture.pair, capture.alignment
    return {
        "model": result.params.model, "method": method, "esr": float(result.loss), "iterations": int(result.nit),
        "success": bool(result.success), "message": result.message, "elapsed_seconds": round(elapsed_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "duration_seconds": len(aligned.dry) / aligned.sample_rate,
        "alignment": None if alignment is None else {
            "lag_samples": alignment.lag_samples, "polarity": alignment.polarity, "correlation": alignment.correlation},
        "selection": None if capture.selection is None else capture.selection.to_dict(),
        "history": compact_history(result.history),
        **({"warning": capture.warning} if getattr(capture, "warning", None) else {}),
    }


def fit_provenance(source: dict[str, str], report=None) -> dict[str, Any]:
    """The ``provenance`` entry: the audio's source, the dynamatch version and the capture check's verdicts."""
    from .. import __version__

    provenance: dict[str, Any] = {"source": source, "dynamatch": __version__}
    if report is not None:
        provenance["calibration"] = report.calibration
        provenance["capture_check"] = {line.name: line.status for line in report.lines}
    return provenance


def summary_path(output: str | os.PathLike) -> Path:
    return Path(output).with_suffix(".summary.txt")


def save_fit(output: str | os.PathLike, capture, statistics: dict[str, Any], provenance: dict[str, Any]) -> Path:
    """Write the model file and its text summary (``<output>.summary.txt``); returns the model file."""
    from ..models.model_file import save_compressor

    path = save_compressor(output, capture.result.params, sample_rate=capture.pair.sample_rate, fit=statistics,
                           provenance=provenance)
    shown = capture.result
    if "fit_seconds" in statistics:  # one fit time: the summary's is the model file's (the whole fit stage)
        shown = replace(shown, elapsed_seconds=statistics["fit_seconds"])
    brief = {k: v for k, v in statistics.items() if k != "history"}  # the history is in the model file
    summary_path(output).write_text(str(shown) + "\n\n" + json.dumps(brief, indent=2) + "\n")
    return path


def plot_excerpt(capture):
    """``capture`` holding only the audio :func:`plot_capture_fit` draws (copies of the first
    :data:`PLOT_SECONDS` of the aligned pair), so that the full-length signals can be freed before the plot
    (the 20-min command's peak RSS was matplotlib on top of them)."""
    pair = capture.pair
    n = int(PLOT_SECONDS * pair.sample_rate)
    if pair.dry.shape[-1] <= n and pair.wet.shape[-1] <= n:  # all of it is drawn
        return capture
    return replace(capture, pair=replace(pair, dry=pair.dry[:n].copy(), wet=pair.wet[:n].copy()))


def plot_capture_fit(output: str | os.PathLike, capture, *, reference_gain_reduction_db=None,
                     title: str = "") -> Path:
    """``<output>.png``: the first :data:`PLOT_SECONDS` of the aligned pair, the fit's prediction and gain."""
    from .plots import plot_fit

    result, aligned = capture.result, capture.pair
    shown = aligned.dry[: int(PLOT_SECONDS * aligned.sample_rate)]
    prediction = result.params.process(shown, aligned.sample_rate)
    gain = result.params.gain(shown, aligned.sample_rate)
    return plot_fit(Path(output).with_suffix(".png"), shown, aligned.wet[: shown.size], prediction, aligned.sample_rate,
                    max_seconds=PLOT_SECONDS, model_gain=gain, reference_gain_reduction_db=reference_gain_reduction_db,
                    title=title)
