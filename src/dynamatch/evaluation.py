"""Evaluate a model or a fitting protocol on a dataset and write tables and plots (``dynamatch evaluate``).

Three protocols (:data:`PROTOCOLS`):

* ``score`` — score any model source (:mod:`dynamatch.model_loading`: preset, map, compressor, neural model)
  on every selected pair → ``scores.csv``, ``scores.png``;

every protocol also writes ``evaluation.json`` (the dataset and the models scored, so ``dynamatch report``
can play and trace excerpts of the scored pairs);
* ``paper`` — the 4A-2A paper's protocol (:func:`dynamatch.maps.evaluate.paper_protocol`);
* ``held-out`` — fit on the first ``fit_seconds`` of each file, score on the rest
  (:func:`dynamatch.maps.evaluate.held_out_protocol`).

Every protocol honours ``split``, ``session``, ``modes``, ``metrics`` and ``max_seconds``.  A neural model is
scored through :mod:`dynamatch.neural` (imported only then).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .data.datasets import PairDataset
from .errors import ParameterError
from .maps import evaluate as ev
from .model_loading import ModelSource, resolve_model_source
from .models.parameters import MODES

PROTOCOLS = ("score", "paper", "held-out")
PLOTTED_METRICS = ("esr", "delta_ldr_db")


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_dataset` wrote: ``files`` by name (scores, map, comp/limit, plots) and the score rows."""

    protocol: str
    rows: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    metrics: tuple[str, ...] = ev.FAST_METRICS


def score_source(
    source: str | os.PathLike | ModelSource,
    dataset: PairDataset,
    *,
    split: str | None = None,
    session: str | None = None,
    modes: Sequence[str] | None = None,
    duration_seconds: float | None = None,
    metrics: Sequence[str] = ev.FAST_METRICS,
    executor: Any = None,
) -> list[dict[str, Any]]:
    """One row per selected pair for any model source: a grey-box map or compressor, or a trained neural model
    (grey-box pairs scored side by side on ``executor``; neural models in this process)."""
    source = resolve_model_source(source)
    if source.kind == "neural":
        from .neural.evaluate import score_neural

        return score_neural(source.path, dataset, split=split, session=session, modes=modes,
                            duration_seconds=duration_seconds, metrics=metrics)
    model = source.parameter_map() if source.is_map else source.compressor()
    return ev.score_map(model, dataset, label=Path(source.given).stem, split=split, session=session, modes=modes,
                        duration_seconds=duration_seconds, metrics=metrics, executor=executor)


def plotted_metrics(metrics: Sequence[str]) -> list[str]:
    """The metrics the scores plot shows: ESR and ΔLDR where asked for, else the first one."""
    return [m for m in PLOTTED_METRICS if m in metrics] or list(metrics[:1])


def evaluate_dataset(
    dataset: PairDataset,
    output_dir: str | os.PathLike,
    *,
    protocol: str = "score",
    model: str | os.PathLike | ModelSource = "preset:la2a",
    split: str | None = None,
    session: str | None = None,
    modes: Sequence[str] = MODES,
    max_seconds: float | None = None,
    fit_seconds: float | None = None,
    fit_model: str = "ff5",
    metrics: Sequence[str] = ev.FAST_METRICS,
    on_setting: Callable | None = None,
    plot: bool = True,
    executor: Any = None,
) -> Evaluation:
    """Run ``protocol`` and write its CSV tables and PNG plots into ``output_dir``.

    ``model`` is scored by the ``score`` protocol; ``fit_model`` is the family member the ``paper`` and
    ``held-out`` protocols fit at every setting; ``split`` defaults to every split for ``score`` and to
    ``train`` for the others; ``on_setting(fit, index, total)`` reports each fitted setting; ``executor``
    (:func:`dynamatch.parallel.executor`): where the fits and scores run (same results as serial)."""
    from .report.plots import plot_map, plot_scores

    if protocol not in PROTOCOLS:
        raise ParameterError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    metrics = tuple(metrics)
    if not metrics:
        raise ParameterError("--metrics: give at least one of esr, delta_ldr_db, mae, stft, delta_lufs")
    output_dir = Path(output_dir)
    if protocol == "score":
        source = resolve_model_source(model)
        rows = score_source(source, dataset, split=split, session=session, modes=modes, duration_seconds=max_seconds,
                            metrics=metrics, executor=executor)
        files = {"scores": ev.write_rows(output_dir / "scores.csv", rows)}
        label = rows[0]["model"] if rows else source.label
        given = str(source.path.resolve()) if source.path is not None else f"preset:{source.name}"
        files["evaluation"] = _write_record(output_dir, protocol, dataset, [{"label": label, "source": given}],
                                            split=split, modes=modes, max_seconds=max_seconds)
        if plot:
            plot_scores(output_dir / "scores.png", rows, metrics=plotted_metrics(metrics))
        return Evaluation(protocol, rows, files, metrics)
    if protocol == "paper":
        written = ev.paper_protocol(dataset, output_dir, modes=modes, split=split or "train", session=session,
                                    model=fit_model, max_seconds=max_seconds, metrics=metrics, on_setting=on_setting, executor=executor)
    else:
        if fit_seconds is None:
            raise ParameterError("--protocol held-out needs --fit-seconds (the seconds of each file to fit on)")
        written = ev.held_out_protocol(dataset, output_dir, fit_seconds=fit_seconds, score_seconds=max_seconds,
                                       model=fit_model, modes=modes, split=split or "train", session=session,
                                       metrics=metrics, on_setting=on_setting, executor=executor)
    with open(written["scores"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    files = dict(written)
    files["evaluation"] = _write_record(output_dir, protocol, dataset,
                                        [{"label": "fit", "source": str(Path(written["map"]).resolve())}],
                                        split=split or "train", modes=modes, max_seconds=max_seconds)
    if plot:
        from .maps import ParameterMap

        plot_map(ParameterMap.load(written["map"]), output_dir / "parameters.png")
        plot_scores(output_dir / "scores.png", rows, metrics=plotted_metrics(metrics),
                    group_by="method" if protocol == "paper" else "part")
    return Evaluation(protocol, rows, files, metrics)


def _write_record(output_dir: Path, protocol: str, dataset: PairDataset, models: list[dict[str, str]], *,
                  split: str | None, modes: Sequence[str], max_seconds: float | None) -> Path:
    """``evaluation.json``: the protocol, the dataset (absolute path) and the models scored (label, source)."""
    from .documents import EVALUATION, write_document

    return write_document(output_dir / "evaluation.json", EVALUATION, {
        "protocol": protocol, "dataset": str(Path(dataset.root).resolve()), "models": models, "split": split,
        "modes": list(modes), "max_seconds": max_seconds})
