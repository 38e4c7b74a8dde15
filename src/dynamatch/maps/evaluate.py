"""Score maps and models on a dataset: the 4A-2A paper's protocol, and a held-out protocol it lacks.

* :func:`score_map` — predict every selected pair with the map at its (mode, peak reduction) and score it.
* :func:`paper_protocol` — fit every setting (the paper's "GT" column), build maps from the knots
  40, 50, …, 100 only, and score linear and spline interpolation at the held-out settings 45, …, 95;
  written as CSV in the shape of the paper's ``comp.csv`` / ``limit.csv``.
* :func:`held_out_protocol` — fit on the first part of each file, score on the rest (the paper
  fits and scores on the same audio).

Every function takes ``executor`` (:func:`dynamatch.parallel.executor`: serial, or a Dask cluster): the
pairs (and settings) are scored side by side there and the protocols' fits run on it through
:func:`~dynamatch.maps.fit_map.fit_map`; rows come back in the serial order with the same values.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..data.datasets import PairDataset
from ..metrics import score
from ..models.compressor import Compressor
from ..models.parameters import MODES
from .fit_map import DEFAULT_CHAIN, SettingFit, fit_map, load_setting_audio
from .parameter_map import ParameterMap

FAST_METRICS = ("esr", "delta_ldr_db", "mae")
PAPER_METRICS = ("esr", "delta_ldr_db")
PAPER_COLUMNS = ("threshold_db", "ratio", "attack_ms", "release_ms", "makeup_db")

logger = logging.getLogger(__name__)


def score_compressor(
    compressor: Compressor, dry: np.ndarray, wet: np.ndarray, sample_rate: float,
    metrics: Sequence[str] = FAST_METRICS,
) -> dict[str, float]:
    """Metrics of ``compressor``'s prediction of ``wet`` from ``dry``."""
    return score(compressor.process(dry, sample_rate), wet, sample_rate, metrics=tuple(metrics))


def score_map(
    model: ParameterMap | Compressor,
    dataset: PairDataset,
    *,
    label: str = "model",
    split: str | None = None,
    session: str | None = None,
    modes: Iterable[str] | None = None,
    peak_reductions: Iterable[float] | None = None,
    start_seconds: float = 0.0,
    duration_seconds: float | None = None,
    metrics: Sequence[str] = FAST_METRICS,
    on_pair: Callable[[int, int], None] | None = None,
    executor: Any = None,
) -> list[dict[str, Any]]:
    """One row per pair: model, mode, peak_reduction, pair name, metrics (pairs filtered by ``split``,
    ``session``, ``modes`` and ``peak_reductions``; scored side by side on ``executor``)."""
    pairs = dataset.pairs(split=split, mode=list(modes) if modes else None, session=session,
                          peak_reduction=list(peak_reductions) if peak_reductions is not None else None)
    tasks = []
    for pair in pairs:
        compressor = model if isinstance(model, Compressor) else model.compressor(pair.peak_reduction, pair.mode)
        tasks.append((_score_pair, dataset, pair, compressor, label, start_seconds, duration_seconds, tuple(metrics)))
    rows = []
    for index, row in enumerate(_run_in_order(executor, tasks)):
        rows.append(row)
        if on_pair:
            on_pair(index + 1, len(pairs))
    return rows


def _score_pair(dataset, pair, compressor, label, start_seconds, duration_seconds, metrics) -> dict[str, Any]:
    """One pair read and scored (a task: it reads its own audio where it runs)."""
    dry, wet = dataset.read(pair, start_seconds=start_seconds, duration_seconds=duration_seconds)
    row = {"model": label, "mode": pair.mode, "peak_reduction": pair.peak_reduction, "split": pair.split,
           "pair": pair.name}
    row.update(score_compressor(compressor, dry, wet, dataset.sample_rate, metrics))
    return row


def _score_setting(dataset, pairs, max_seconds, compressors: Mapping[str, Compressor],
                   metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Scores of several compressors on one setting's audio, read once (a task)."""
    dry, wet = load_setting_audio(dataset, pairs, max_seconds)
    return {label: score_compressor(c, dry, wet, dataset.sample_rate, metrics) for label, c in compressors.items()}


def _run_in_order(executor: Any, tasks: Sequence[tuple]) -> Iterable[Any]:
    """Each task's result, in task order: in this process, or all submitted at once to ``executor``."""
    if executor is None:
        for fn, *args in tasks:
            yield fn(*args)
        return
    futures = [executor.submit(fn, *args) for fn, *args in tasks]
    for future in futures:
        yield future.result()


def paper_protocol(
    dataset: PairDataset,
    output_dir: str | os.PathLike,
    *,
    modes: Sequence[str] = MODES,
    split: str | None = "train",
    session: str | None = None,
    max_seconds: float | None = None,
    model: str = "ff5",
    method: str = "newton",
    metrics: Sequence[str] = PAPER_METRICS,
    on_setting: Callable[[SettingFit, int, int], None] | None = None,
    executor: Any = None,
) -> dict[str, Path]:
    """Fit all settings 100→40, then score interpolation from the even knots at the odd settings.

    Writes ``map.json`` (all settings), ``comp.csv`` / ``limit.csv`` (the paper's shape) and
    ``scores.csv`` (``metrics``, default ESR and ΔLDR, per method, mode and setting) into ``output_dir``;
    the paper-shaped tables always hold the ESR.
    """
    output_dir = Path(output_dir)
    full = fit_map(dataset, output_dir / "map.json", modes=modes, chain=DEFAULT_CHAIN, split=split,
                   session=session, model=model, method=method, max_seconds=max_seconds, on_setting=on_setting,
                   executor=executor)
    written = {"map": output_dir / "map.json"}
    metrics = tuple(metrics)
    scored = tuple(dict.fromkeys(("esr", *metrics)))  # the paper's tables need the ESR whatever is asked
    score_rows: list[dict[str, Any]] = []
    for mode in modes:
        if mode not in full.modes:
            continue
        knots = full.knots(mode)
        even = np.array([pr for pr in knots if round(pr) % 10 == 0])
        if len(even) == len(knots):
            logger.warning(f"paper protocol, {mode}: no held-out setting between the knots 40, 50, …, 100 was fitted "
                           f"(settings {', '.join(f'{pr:g}' for pr in knots)}): the linear and spline columns stay "
                           "empty; fit the settings 45, 55, …, 95 too (generate-dataset --chain 40:100:5)")
        table = {name: full.modes[mode][name] for name in ("peak_reduction",) + full.parameter_names}
        sub = {c: np.array([v for pr, v in zip(knots, table[c]) if pr in even]) for c in table}
        sparse = {kind: ParameterMap({mode: sub}, kind, model=full.model) for kind in ("linear", "spline")}
        fit_esr = {s["peak_reduction"]: s["esr"] for s in full.fit_statistics.get(mode, [])}
        tasks = []
        for pr in knots:
            pairs = dataset.pairs(split=split, mode=mode, peak_reduction=float(pr), session=session)
            compressors = {"fit": full.compressor(pr, mode)}
            if pr not in even:
                compressors.update({kind: m.compressor(pr, mode) for kind, m in sparse.items()})
            tasks.append((_score_setting, dataset, pairs, max_seconds, compressors, scored))
        lines = []
        for pr, scores in zip(knots, _run_in_order(executor, tasks)):
            row: dict[str, Any] = {"peak_reduction": pr, "fit_esr": fit_esr.get(pr)}
            score_rows.append({"method": "fit", "mode": mode, "peak_reduction": pr,
                               **{k: scores["fit"][k] for k in metrics}})
            for kind in sparse:
                if kind in scores:
                    row[f"{kind}_esr"] = scores[kind]["esr"]
                    score_rows.append({"method": f"{kind} interpolation", "mode": mode, "peak_reduction": pr,
                                       **{k: scores[kind][k] for k in metrics}})
            row.update(full.compressor(pr, mode).to_dict())
            lines.append(row)
        name = "comp.csv" if mode == "compress" else f"{mode}.csv"
        written[mode] = write_paper_csv(output_dir / name, lines)
    written["scores"] = write_rows(output_dir / "scores.csv", score_rows)
    return written


def held_out_protocol(
    dataset: PairDataset,
    output_dir: str | os.PathLike,
    *,
    fit_seconds: float,
    score_seconds: float | None = None,
    modes: Sequence[str] = MODES,
    split: str | None = "train",
    session: str | None = None,
    model: str = "ff5",
    method: str = "newton",
    metrics: Sequence[str] = FAST_METRICS,
    on_setting: Callable[[SettingFit, int, int], None] | None = None,
    executor: Any = None,
) -> dict[str, Path]:
    """Fit each setting on its first ``fit_seconds``; score on the audio after it (in-sample too)."""
    output_dir = Path(output_dir)
    fitted = fit_map(dataset, output_dir / "map.json", modes=modes, split=split, session=session,
                     model=model, method=method, max_seconds=fit_seconds, on_setting=on_setting,
                     executor=executor)
    rows = []
    for part, start, duration in (("in-sample", 0.0, fit_seconds), ("held-out", fit_seconds, score_seconds)):
        for row in score_map(fitted, dataset, label="fit", split=split, session=session, modes=modes, start_seconds=start,
                             duration_seconds=duration, metrics=metrics, executor=executor):
            rows.append({"part": part, **row})
    return {"map": output_dir / "map.json", "scores": write_rows(output_dir / "held_out.csv", rows)}


def write_rows(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write dict rows as CSV (columns in first-seen order), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def write_paper_csv(path: Path, lines: Sequence[Mapping[str, Any]]) -> Path:
    """The two-line header layout of the 4A-2A paper's comp.csv / limit.csv; a model with parameters beyond
    the paper's five gets them as further columns, named as in dynamatch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fmt = lambda v: "" if v is None else repr(float(v))  # noqa: E731
    reserved = {"peak_reduction", "fit_esr", "linear_esr", "spline_esr", *PAPER_COLUMNS}
    extra = [k for k in (lines[0] if lines else {}) if k not in reserved]
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Peak Reduction", "ESR", "", "", "Threshold (dB)", "Ratio", "Attack (ms)", "Release (ms)",
                         " Make-up Gain (dB)", *extra])
        writer.writerow(["", "GT", "Linear Interpolation", "Spline Interpolation", "", "", "", "", ""] + [""] * len(extra))
        for line in lines:
            writer.writerow([f"{line['peak_reduction']:g}", fmt(line.get("fit_esr")), fmt(line.get("linear_esr")),
                             fmt(line.get("spline_esr"))] + [fmt(line[c]) for c in (*PAPER_COLUMNS, *extra)])
    os.replace(tmp, path)
    return path
