"""Fit a parameter map over a dataset: one Newton fit per knob setting, chained and resumable.

As in the 4A-2A paper, settings are fitted in a chain (default peak reduction 100, 95, …, 40), each
warm-started from its neighbour's result; the first one starts from the default point.  Progress is
saved atomically after every setting in ``<output>.progress.json``: a killed run, restarted with the
same command, continues where it stopped without refitting anything.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..data.datasets import PairDataset, PairInfo
from ..documents import FIT_MAP_PROGRESS, read_document, write_document
from ..errors import DatasetError
from ..fitting import fit_arrays
from ..models.compressor import Compressor
from ..models.parameters import MODES
from ..models.family import model_spec
from .parameter_map import ParameterMap

DEFAULT_CHAIN: tuple[float, ...] = tuple(float(v) for v in range(100, 35, -5))
PROGRESS_FORMAT = FIT_MAP_PROGRESS.format

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingFit:
    """The fit at one (mode, peak reduction) setting."""

    mode: str
    peak_reduction: float
    compressor: Compressor
    esr: float
    iterations: int
    success: bool
    elapsed_seconds: float
    files: tuple[str, ...]
    loss_history: tuple[float, ...] = ()  # ESR per iterate (6 significant digits; ``dynamatch report`` plots it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "peak_reduction": self.peak_reduction, "parameters": self.compressor.to_dict(),
            "esr": self.esr, "iterations": self.iterations, "success": self.success,
            "elapsed_seconds": self.elapsed_seconds, "files": list(self.files), "history": list(self.loss_history),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], model: str = "ff5") -> "SettingFit":
        return cls(d["mode"], float(d["peak_reduction"]), Compressor(model=model, **d["parameters"]), float(d["esr"]),
                   int(d["iterations"]), bool(d["success"]), float(d["elapsed_seconds"]), tuple(d["files"]),
                   tuple(float(v) for v in d.get("history") or ()))


def progress_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".progress.json")


def read_progress(output: str | os.PathLike, settings_key: dict[str, Any]) -> dict[tuple[str, float], SettingFit]:
    """Completed settings of an earlier run with the same settings (else nothing).

    A progress file that cannot be read as one is a :class:`DatasetError` that says to delete it."""
    path = progress_path(output)
    if not path.is_file():
        return {}
    try:
        document = read_document(path, FIT_MAP_PROGRESS, error=DatasetError)
    except DatasetError as error:
        raise DatasetError(f"{error} (delete it to start the map afresh)") from None
    if not same_settings(document.get("settings"), settings_key):
        return {}
    model = settings_key.get("model", "ff5")
    names = set(model_spec(model).parameter_names)
    try:
        fits = []
        for d in document.get("fits", []):
            missing = sorted(names - set(d["parameters"]))
            if missing:
                raise KeyError(f"a fit lacks parameters {missing}")
            fits.append(SettingFit.from_dict(d, model))
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(
            f"{path}: malformed fit-map progress file ({error}); delete it to start the map afresh"
        ) from None
    return {(f.mode, f.peak_reduction): f for f in fits}


def same_settings(saved: Any, current: dict[str, Any]) -> bool:
    """Whether fits saved under ``saved`` settings are valid for ``current`` ones: everything but the modes
    must agree (each mode's chain is fitted on its own, so a run over fewer or other modes reuses them)."""
    if not isinstance(saved, dict):
        return False
    return {k: v for k, v in saved.items() if k != "modes"} == {k: v for k, v in current.items() if k != "modes"}


def write_progress(output: str | os.PathLike, settings_key: dict[str, Any], fits: Iterable[SettingFit]) -> Path:
    """Save the completed settings beside ``output`` (atomically) so that a rerun resumes after them."""
    return write_document(progress_path(output), FIT_MAP_PROGRESS,
                          {"settings": settings_key, "fits": [f.to_dict() for f in fits]})


def load_setting_audio(
    dataset: PairDataset, pairs: Sequence[PairInfo], max_seconds: float | None, start_seconds: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the pairs of one setting (each limited to ``max_seconds`` from ``start_seconds``)."""
    if len(pairs) == 1:
        return dataset.read(pairs[0], start_seconds=start_seconds, duration_seconds=max_seconds)
    dry_parts, wet_parts = [], []
    for pair in pairs:
        dry, wet = dataset.read(pair, start_seconds=start_seconds, duration_seconds=max_seconds)
        dry_parts.append(dry)
        wet_parts.append(wet)
    return np.concatenate(dry_parts), np.concatenate(wet_parts)


def fit_map(
    dataset: PairDataset,
    output: str | os.PathLike,
    *,
    modes: Iterable[str] = MODES,
    chain: Sequence[float] = DEFAULT_CHAIN,
    split: str | None = "train",
    session: str | None = None,
    model: str = "ff5",
    method: str = "newton",
    interpolation: str = "linear",
    max_seconds: float | None = None,
    start_seconds: float = 0.0,
    max_iterations: int = 50,
    on_setting: Callable[[SettingFit, int, int], None] | None = None,
    on_start: Callable[[str, float, int, int], None] | None = None,
    callback: Callable | None = None,
    device: str | None = None,
    executor: Any = None,
) -> ParameterMap:
    """Fit family member ``model`` at every setting in ``chain`` for each mode and write the map to ``output``.

    ``on_start(mode, pr, index, total)``, ``on_setting(fit, index, total)`` and the optimiser
    ``callback(intermediate_result)`` report progress.  ``device`` (``"cuda"``, ``"cpu-torch"``) fits with
    the torch parallel-scan objective (FF-5; see :func:`dynamatch.fitting.fit_arrays`).
    Settings absent from the dataset are skipped (the chain continues from the last fitted one).
    ``executor`` (from :func:`dynamatch.parallel.executor`): the modes' chains run side by side on it,
    each in its own order with the same warm starts, so the map equals the serial one; the progress file
    is written here, after every setting, whichever worker fitted it.
    """
    modes = list(modes)
    settings_key = {
        "root": str(dataset.root), "modes": modes, "chain": [float(v) for v in chain], "split": split,
        "session": session, "method": method, "max_seconds": max_seconds, "start_seconds": start_seconds,
        "model": model,
    }
    done = read_progress(output, settings_key)
    plan: list[tuple[str, float, list[PairInfo]]] = []
    for mode in modes:
        for pr in chain:
            pairs = dataset.pairs(split=split, mode=mode, peak_reduction=float(pr), session=session)
            if pairs:
                plan.append((mode, float(pr), pairs))
    if not plan:
        raise DatasetError(
            f"{dataset.root}: no pairs for modes {modes} at peak reductions {list(chain)} in split {split!r}; "
            "check the dataset and the --split/--session options"
        )
    fits: dict[tuple[str, float], SettingFit] = dict(done)
    fit_options = {"model": model, "method": method, "max_seconds": max_seconds, "start_seconds": start_seconds,
                   "max_iterations": max_iterations, "device": device}

    def record(fit: SettingFit, index: int) -> None:
        fits[(fit.mode, fit.peak_reduction)] = fit
        write_progress(output, settings_key, fits.values())
        if on_setting:
            on_setting(fit, index, len(plan))

    if executor is None:
        previous: dict[str, Compressor] = {}
        for index, (mode, pr, pairs) in enumerate(plan):
            if (mode, pr) in fits:
                previous[mode] = fits[(mode, pr)].compressor
                continue
            if on_start:
                on_start(mode, pr, index, len(plan))
            fit = fit_setting(dataset, mode, pr, pairs, initial=previous.get(mode), callback=callback, **fit_options)
            previous[mode] = fit.compressor
            record(fit, index)
    else:
        _run_chains(executor, dataset, plan, fits, fit_options, record, on_start)
    kept = sorted({mode for mode, _ in fits} - set(modes))
    if kept:
        logger.warning(f"{output}: the map holds the modes {', '.join(modes)} only; the fits of {', '.join(kept)} "
                       f"stay in {progress_path(output).name} (rerun with --modes including them to add them back)")
    parameter_map = map_from_fits([f for f in fits.values() if f.mode in modes], interpolation, dataset.sample_rate,
                                  provenance={"dataset": str(dataset.root), **settings_key}, model=model,
                                  knob=getattr(dataset, "knob", "peak_reduction"))
    parameter_map.save(output)
    return parameter_map


def preset_to_install(dataset: PairDataset, parameter_map: ParameterMap, requested: str | None = None) -> str | None:
    """The preset name a fitted map is installed as: ``requested``, else ``"la2a"`` for a fit of both modes of
    the real SignalTrain set (it replaces the shipped paper map), else None."""
    if requested:
        return requested
    from ..data.generate import GENERATED_MARKER
    from ..data.signaltrain import SignalTrainDataset

    real = isinstance(dataset, SignalTrainDataset) and not (dataset.root / GENERATED_MARKER).exists()
    return "la2a" if real and set(parameter_map.modes) == set(MODES) else None


def fit_setting(
    dataset: PairDataset, mode: str, pr: float, pairs: Sequence[PairInfo], *, model: str, method: str,
    max_seconds: float | None, start_seconds: float, max_iterations: int, initial: Compressor | None,
    callback: Callable | None = None, device: str | None = None,
) -> SettingFit:
    """Read and fit one setting (a task a worker can run: it reads the audio itself)."""
    dry, wet = load_setting_audio(dataset, pairs, max_seconds, start_seconds)
    started = time.perf_counter()
    result = fit_arrays(dry, wet, dataset.sample_rate, model=model, method=method, initial=initial,
                        max_iterations=max_iterations, callback=callback, device=device)
    from ..report.fit import compact_history

    losses = tuple(v for v in compact_history(result.history)["loss"] if v is not None)
    return SettingFit(mode, pr, result.params, float(result.loss), int(result.nit), bool(result.success),
                      time.perf_counter() - started, tuple(p.name for p in pairs), losses)


def _run_chains(executor, dataset, plan, fits, fit_options, record, on_start) -> None:
    """Each mode's chain in order (a setting starts when its warm start is known); modes side by side."""
    chains: dict[str, list[tuple[int, float, list[PairInfo]]]] = {}
    for index, (mode, pr, pairs) in enumerate(plan):
        chains.setdefault(mode, []).append((index, pr, pairs))
    previous: dict[str, Compressor | None] = {mode: None for mode in chains}
    pending: dict[Any, tuple[str, int]] = {}

    def submit_next(mode: str) -> None:
        chain = chains[mode]
        while chain:
            index, pr, pairs = chain.pop(0)
            if (mode, pr) in fits:
                previous[mode] = fits[(mode, pr)].compressor
                continue
            if on_start:
                on_start(mode, pr, index, len(plan))
            future = executor.submit(fit_setting, dataset, mode, pr, pairs, initial=previous[mode], **fit_options)
            pending[future] = (mode, index)
            return

    for mode in chains:
        submit_next(mode)
    while pending:
        for future in executor.wait_first(list(pending)):
            mode, index = pending.pop(future)
            fit = future.result()
            previous[mode] = fit.compressor
            record(fit, index)
            submit_next(mode)


def map_from_fits(
    fits: Sequence[SettingFit], interpolation: str, sample_rate: float | None, provenance: dict[str, Any],
    model: str = "ff5",
    knob: str = "peak_reduction",
) -> ParameterMap:
    """Assemble per-setting fits (all of family member ``model``) into a :class:`ParameterMap`."""
    modes: dict[str, dict[str, list[float]]] = {}
    statistics: dict[str, list[dict[str, Any]]] = {}
    names = model_spec(model).parameter_names
    for fit in sorted(fits, key=lambda f: (f.mode, f.peak_reduction)):
        table = modes.setdefault(fit.mode, {"peak_reduction": [], **{n: [] for n in names}})
        table["peak_reduction"].append(fit.peak_reduction)
        for name, value in fit.compressor.to_dict().items():
            table[name].append(value)
        statistics.setdefault(fit.mode, []).append({
            "peak_reduction": fit.peak_reduction, "esr": fit.esr, "iterations": fit.iterations,
            "success": fit.success, "elapsed_seconds": round(fit.elapsed_seconds, 3), "files": list(fit.files),
            **({"history": list(fit.loss_history)} if fit.loss_history else {}),
        })
    return ParameterMap(modes, interpolation, sample_rate, statistics, provenance, model, knob)
