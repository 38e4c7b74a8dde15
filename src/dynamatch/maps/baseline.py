"""Score a third-party compressor plugin as a baseline on a dataset, like the 4A-2A paper's plugin columns.

The paper rendered SignalTrain through commercial LA-2A emulations (UAD, Waves CLA-2A, Cakewalk CA-2A)
at each pair's setting, with a fixed input gain before and output gain after the plugin, and scored
them with the same metrics as its model.  :func:`score_plugin_baseline` does that for any plugin that
:func:`dynamatch.data.plugins.open_plugin` hosts (a VST3 through pedalboard, an LV2 through liblilv):

* a :class:`BaselineMapping` says which plugin parameters follow the pair's setting
  (``peak_reduction=Peak Reduction``, optionally through a piecewise-linear table), which one is the
  mode switch, and which are fixed (:func:`parse_baseline_map` reads the ``--baseline-map`` syntax);
* the prediction of a pair is ``10^(G_out/20) · plugin(10^(G_in/20) · x)`` rendered from a reset state,
  advanced by the plugin's latency (measured per mode against the targets unless given; hosts compensate
  it, and a lagging baseline would be scored unfairly);
* gains not given are calibrated per mode (:func:`calibrate_gains`): the output gain in closed form (the
  least-squares scale of the pre-filtered signals), the input gain by a coarse grid and a bounded
  scalar search on the pre-filtered ESR summed over the mode's pairs;
* the rows are those of :func:`dynamatch.maps.evaluate.score_map` (model, mode, peak_reduction, pair,
  metrics) plus the gains used, so baselines and fitted models share one CSV and one plot.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..data.datasets import PairDataset, PairInfo
from ..data.alignment import _shift
from ..errors import AudioError, DatasetError, ParameterError
from ..kernels.prefilter import prefilter
from ..metrics import score
from ..models.parameters import MODES
from .evaluate import FAST_METRICS, write_rows
KNOB_NAMES = ("peak_reduction", "knob")
GAIN_SEARCH_DB = (-24.0, 24.0)
GAIN_GRID_STEP_DB = 2.0
CALIBRATION_SECONDS = 30.0
MAX_LATENCY_SECONDS = 0.1


@dataclass(frozen=True)
class BaselineMapping:
    """How a pair's (mode, knob value) becomes plugin settings.

    ``knob_param`` follows the pair's knob value, through the table ``knob_points`` ((knob, value), …,
    interpolated linearly, held outside) or unchanged when the table is empty; ``mode_param`` takes
    ``mode_values[mode]``; ``fixed`` parameters keep one value.
    """

    knob_param: str | None = None
    knob_points: tuple[tuple[float, float], ...] = ()
    mode_param: str | None = None
    mode_values: Mapping[str, float] = field(default_factory=dict)
    fixed: Mapping[str, float] = field(default_factory=dict)

    def settings(self, mode: str, knob_value: float) -> dict[str, float]:
        """Plugin settings (parameter name → value in the parameter's units) for one pair."""
        out = dict(self.fixed)
        if self.knob_param is not None:
            if self.knob_points:
                knots, values = zip(*self.knob_points)
                out[self.knob_param] = float(np.interp(float(knob_value), knots, values))
            else:
                out[self.knob_param] = float(knob_value)
        if self.mode_param is not None:
            if mode not in self.mode_values:
                raise ParameterError(f"--baseline-map mode={self.mode_param}@…: no value for mode {mode!r}; "
                                     f"give mode={self.mode_param}@compress:V,limit:V")
            out[self.mode_param] = float(self.mode_values[mode])
        return out

    def describe(self) -> str:
        """The mapping in the ``--baseline-map`` syntax (for logs and result files)."""
        parts = []
        if self.knob_param is not None:
            table = ",".join(f"{k:g}:{v:g}" for k, v in self.knob_points)
            parts.append(f"peak_reduction={self.knob_param}" + (f"@{table}" if table else ""))
        if self.mode_param is not None:
            parts.append(f"mode={self.mode_param}@" + ",".join(f"{m}:{v:g}" for m, v in self.mode_values.items()))
        parts += [f"{k}={v:g}" for k, v in self.fixed.items()]
        return "; ".join(parts)


def parse_baseline_map(specs: Iterable[str]) -> BaselineMapping:
    """Read ``--baseline-map`` values (repeatable):

    * ``peak_reduction=PARAM`` — PARAM takes the pair's knob value (``knob=PARAM`` is the same);
    * ``peak_reduction=PARAM@K1:V1,K2:V2,…`` — through a piecewise-linear table (knob K → value V);
    * ``mode=PARAM@compress:V1,limit:V2`` — PARAM is the mode switch;
    * ``PARAM=VALUE`` — PARAM fixed at a number.
    """
    knob_param, knob_points, mode_param, mode_values, fixed = None, (), None, {}, {}
    for spec in specs:
        left, sep, right = (s.strip() for s in str(spec).partition("="))
        if not sep or not left or not right:
            raise ParameterError(f"--baseline-map {spec!r}: write peak_reduction=PARAM[@K:V,…], "
                                 "mode=PARAM@compress:V,limit:V or PARAM=VALUE")
        name, _, table = (s.strip() for s in right.partition("@"))
        if left.lower() in KNOB_NAMES:
            points = _table(spec, table, float)
            if len(points) == 1:
                raise ParameterError(f"--baseline-map {spec!r}: a knob table needs at least two K:V points")
            knob_param, knob_points = name, tuple(sorted(points))
            if len({k for k, _ in knob_points}) != len(knob_points):
                raise ParameterError(f"--baseline-map {spec!r}: the knob values K must be distinct")
        elif left.lower() == "mode":
            values = dict(_table(spec, table, str))
            unknown = sorted(set(values) - set(MODES))
            if not values or unknown:
                raise ParameterError(f"--baseline-map {spec!r}: write mode={name or 'PARAM'}@compress:V1,limit:V2")
            mode_param, mode_values = name, values
        else:
            try:
                fixed[left] = float(right)
            except ValueError:
                raise ParameterError(f"--baseline-map {spec!r}: {left} is neither peak_reduction nor mode, so "
                                     f"give it a number ({left}=4)") from None
    return BaselineMapping(knob_param, knob_points, mode_param, mode_values, fixed)


def _table(spec: str, text: str, key_type) -> list[tuple[Any, float]]:
    points = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = (s.strip() for s in item.partition(":"))
        try:
            points.append((key_type(key), float(value)))
        except ValueError:
            sep = ""
        if not sep:
            raise ParameterError(f"--baseline-map {spec!r}: {item!r} is not KEY:VALUE")
    return points


@dataclass(frozen=True)
class ModeGains:
    """The gains around the plugin for one mode, whether each was fitted, the plugin latency compensated
    (samples; measured unless given) and the calibration ESR."""

    input_gain_db: float
    output_gain_db: float
    input_fitted: bool
    output_fitted: bool
    calibration_esr: float | None = None
    latency_samples: int = 0


class PluginBaseline:
    """A hosted plugin with its mapping: ``render(x, sample_rate, mode, knob_value, in_db, out_db)``."""

    def __init__(self, plugin, mapping: BaselineMapping) -> None:
        from ..data.plugins import HostedPlugin, open_plugin

        self.host = plugin if isinstance(plugin, HostedPlugin) else open_plugin(plugin)
        self.mapping = mapping
        for name in [mapping.knob_param, mapping.mode_param, *mapping.fixed]:
            if name is not None:
                self.host.resolve(name)  # unknown names fail here, before any audio is read
        if mapping.knob_param is None and mapping.mode_param is None:
            raise ParameterError(f"{self.host.path}: --baseline-map names no parameter that follows the pair's setting; "
                                 "give e.g. --baseline-map 'peak_reduction=Peak Reduction'")
        self.name = getattr(self.host, "name", str(self.host.path))

    def dry_render(self, x: np.ndarray, sample_rate: float, mode: str, knob_value: float,
                   input_gain_db: float = 0.0, latency_samples: int = 0) -> np.ndarray:
        """The plugin's output at the pair's setting for input ``x`` scaled by ``input_gain_db`` (no output
        gain), advanced by ``latency_samples`` (zeros at the end)."""
        self.host.apply(self.mapping.settings(mode, knob_value))
        y = self.host.render(np.asarray(x, dtype=np.float64) * 10.0 ** (input_gain_db / 20.0), sample_rate)
        if not np.all(np.isfinite(y)):
            raise DatasetError(f"{self.host.path}: non-finite output at {mode} {knob_value:g}; check the plugin")
        if latency_samples:
            y = _shift(y, -int(latency_samples))
        return y

    def render(self, x: np.ndarray, sample_rate: float, mode: str, knob_value: float,
               input_gain_db: float = 0.0, output_gain_db: float = 0.0, latency_samples: int = 0) -> np.ndarray:
        """``10^(out/20) · plugin(10^(in/20) · x)`` at the pair's setting, from a reset state, advanced by
        ``latency_samples``."""
        return (self.dry_render(x, sample_rate, mode, knob_value, input_gain_db, latency_samples)
                * 10.0 ** (output_gain_db / 20.0))

    def measure_latency(self, x: np.ndarray, target: np.ndarray, sample_rate: float, mode: str,
                        knob_value: float, max_latency_seconds: float = MAX_LATENCY_SECONDS) -> int:
        """Whole samples by which the plugin's output (at 0 dB input gain) lags ``target`` (negative: leads)."""
        from ..data.alignment import estimate_alignment

        y = self.dry_render(x, sample_rate, mode, knob_value)
        try:
            alignment = estimate_alignment(y, target, sample_rate, max_lag_seconds=max_latency_seconds)
        except AudioError as error:
            raise DatasetError(f"{self.host.path}: cannot measure the plugin's latency at {mode} {knob_value:g} "
                               f"({error}); give --baseline-latency-samples") from None
        return int(round(-alignment.lag_samples))


def calibrate_gains(
    baseline: PluginBaseline,
    dataset: PairDataset,
    pairs: Sequence[PairInfo],
    *,
    input_gain_db: float | None = None,
    output_gain_db: float | None = None,
    latency_samples: int | None = None,
    calibration_seconds: float | None = CALIBRATION_SECONDS,
    search_db: tuple[float, float] = GAIN_SEARCH_DB,
    on_mode: Callable[[str, ModeGains], None] | None = None,
) -> dict[str, ModeGains]:
    """One (input, output) gain per mode minimising the pre-filtered ESR summed over that mode's ``pairs``.

    A gain given is held; the output gain is the least-squares scale of the pre-filtered plugin output
    onto the pre-filtered target (exact for each input gain); the input gain is searched on a
    ``GAIN_GRID_STEP_DB`` grid over ``search_db`` and refined by a bounded Brent search around the best
    grid point.  Each pair contributes its first ``calibration_seconds`` (all of it for None).  The plugin's
    latency is ``latency_samples`` or, when None, measured per mode on its first pair (the lag of the
    plugin's output behind the target, whole samples, at most ``MAX_LATENCY_SECONDS``) and compensated.
    ``on_mode(mode, gains)`` is called as each mode is done.
    """
    from scipy.optimize import minimize_scalar

    if calibration_seconds is not None and calibration_seconds <= 0:
        raise ParameterError(f"calibration seconds must be > 0, got {calibration_seconds}")
    out: dict[str, ModeGains] = {}
    for mode in sorted({p.mode for p in pairs}):
        audio = []
        for pair in (p for p in pairs if p.mode == mode):
            duration = None if calibration_seconds is None else min(calibration_seconds, pair.duration_seconds)
            x, y = dataset.read(pair, duration_seconds=duration)
            audio.append((pair, x, prefilter(np.asarray(y, dtype=np.float64))))
        energy = sum(float(np.dot(t, t)) for _, _, t in audio)
        if energy == 0.0:
            raise DatasetError(f"{dataset.root}: the {mode} targets are silent; the gains cannot be calibrated")
        if latency_samples is None:  # on the pre-filtered target: the lag is the same
            first, x0, t0 = audio[0]
            latency = baseline.measure_latency(x0, t0, dataset.sample_rate, mode, first.peak_reduction)
        else:
            latency = int(latency_samples)

        def loss(in_db: float) -> tuple[float, float]:
            """(ESR, output gain dB) at input gain ``in_db``: Σ(t − s·p)² = Σt² − 2s·Σpt + s²·Σp², so no
            rendered signal is kept (rows are scored exactly later; this is for the search)."""
            cross = power = 0.0
            for pair, x, t in audio:
                p = prefilter(baseline.dry_render(x, dataset.sample_rate, mode, pair.peak_reduction, in_db, latency))
                cross += float(np.dot(p, t))
                power += float(np.dot(p, p))
            if output_gain_db is not None:
                scale = 10.0 ** (output_gain_db / 20.0)
            else:
                scale = cross / power if power > 0 and cross > 0 else 1e-6
            return max(0.0, 1.0 - (2.0 * scale * cross - scale * scale * power) / energy), 20.0 * math.log10(scale)

        if input_gain_db is not None:
            esr_value, out_db = loss(float(input_gain_db))
            out[mode] = ModeGains(float(input_gain_db), out_db, False, output_gain_db is None, esr_value, latency)
            if on_mode:
                on_mode(mode, out[mode])
            continue
        low, high = search_db
        grid = np.arange(low, high + 1e-9, GAIN_GRID_STEP_DB)
        values = [loss(float(g))[0] for g in grid]
        best = int(np.argmin(values))
        bracket = (float(grid[max(best - 1, 0)]), float(grid[min(best + 1, grid.size - 1)]))
        refined = minimize_scalar(lambda g: loss(g)[0], bounds=bracket, method="bounded", options={"xatol": 1e-3})
        in_db = float(refined.x) if refined.fun <= values[best] else float(grid[best])
        esr_value, out_db = loss(in_db)
        out[mode] = ModeGains(in_db, out_db, True, output_gain_db is None, esr_value, latency)
        if on_mode:
            on_mode(mode, out[mode])
    return out


def score_plugin_baseline(
    plugin,
    dataset: PairDataset,
    mapping: BaselineMapping,
    *,
    input_gain_db: float | None = None,
    output_gain_db: float | None = None,
    latency_samples: int | None = None,
    label: str | None = None,
    split: str | None = None,
    modes: Iterable[str] | None = None,
    duration_seconds: float | None = None,
    calibration_seconds: float | None = CALIBRATION_SECONDS,
    metrics: Sequence[str] = FAST_METRICS,
    on_mode: Callable[[str, ModeGains], None] | None = None,
    on_pair: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, ModeGains]]:
    """Render every selected pair through ``plugin`` at its setting and score it.

    Returns the rows (as :func:`~dynamatch.maps.evaluate.score_map`, plus ``input_gain_db``,
    ``output_gain_db`` and ``latency_samples``) and the gains per mode (calibrated on the same pairs where
    not given).
    """
    baseline = plugin if isinstance(plugin, PluginBaseline) else PluginBaseline(plugin, mapping)
    pairs = dataset.pairs(split=split, mode=list(modes) if modes else None)
    if not pairs:
        raise DatasetError(f"{dataset.root}: no pairs match the selection (split {split!r}, modes {modes}); "
                           "widen --split/--modes")
    gains = calibrate_gains(baseline, dataset, pairs, input_gain_db=input_gain_db, output_gain_db=output_gain_db,
                            latency_samples=latency_samples, calibration_seconds=calibration_seconds, on_mode=on_mode)
    label = label or baseline.name
    rows = []
    for index, pair in enumerate(pairs):
        x, y = dataset.read(pair, duration_seconds=duration_seconds)
        g = gains[pair.mode]
        prediction = baseline.render(x, dataset.sample_rate, pair.mode, pair.peak_reduction,
                                     g.input_gain_db, g.output_gain_db, g.latency_samples)
        row: dict[str, Any] = {"model": label, "mode": pair.mode, "peak_reduction": pair.peak_reduction,
                                "split": pair.split, "pair": pair.name}
        row.update(score(prediction, y, dataset.sample_rate, metrics=tuple(metrics)))
        row.update({"input_gain_db": g.input_gain_db, "output_gain_db": g.output_gain_db,
                    "latency_samples": g.latency_samples})
        rows.append(row)
        if on_pair:
            on_pair(index + 1, len(pairs))
    return rows, gains


def evaluate_baseline(
    plugin,
    dataset: PairDataset,
    output_dir: str | os.PathLike,
    mapping: BaselineMapping,
    *,
    model_rows: Sequence[Mapping[str, Any]] = (),
    input_gain_db: float | None = None,
    output_gain_db: float | None = None,
    latency_samples: int | None = None,
    split: str | None = None,
    modes: Iterable[str] | None = None,
    duration_seconds: float | None = None,
    calibration_seconds: float | None = CALIBRATION_SECONDS,
    metrics: Sequence[str] = FAST_METRICS,
    on_mode: Callable[[str, ModeGains], None] | None = None,
    on_pair: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Score ``plugin`` and write ``scores.csv`` (``model_rows`` first, then the baseline's), ``scores.png``
    (ESR and ΔLDR per setting, one line per model and mode) and ``baseline.json`` (plugin, mapping, gains).
    ``on_mode`` and ``on_pair`` report progress (see :func:`score_plugin_baseline`)."""
    from ..report.plots import plot_scores

    baseline = PluginBaseline(plugin, mapping)
    baseline_rows, gains = score_plugin_baseline(
        baseline, dataset, mapping, input_gain_db=input_gain_db, output_gain_db=output_gain_db,
        latency_samples=latency_samples, split=split,
        modes=modes, duration_seconds=duration_seconds, calibration_seconds=calibration_seconds, metrics=metrics,
        on_mode=on_mode, on_pair=on_pair)
    rows = [dict(r) for r in model_rows] + baseline_rows
    output_dir = Path(output_dir)
    written = {"scores": write_rows(output_dir / "scores.csv", rows)}
    shown = [m for m in ("esr", "delta_ldr_db") if m in metrics] or list(metrics[:1])
    written["plot"] = plot_scores(output_dir / "scores.png", rows, metrics=shown)
    document = {
        "format": "dynamatch.baseline", "format_version": 1, "plugin": str(baseline.host.path), "name": baseline.name,
        "mapping": mapping.describe(), "dataset": str(dataset.root), "calibration_seconds": calibration_seconds,
        "gains": {mode: asdict(g) for mode, g in gains.items()},
    }
    path = output_dir / "baseline.json"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)
    written["baseline"] = path
    return rows, written
