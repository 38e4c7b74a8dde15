"""Fit a family member to a dry/wet pair: validate, align, start, optimise; or choose the member.

This is the one pipeline every entry point uses (CLI, map fitting, Python API)::

    from dynamatch.fitting import fit_files
    capture = fit_files("dry.wav", "wet.wav", model="opto")
    print(capture.result)              # parameters in real units, ESR, iterations

Starting points.  A member with a ``parent`` (:mod:`dynamatch.models.family`) is fitted after its
parent: the parent's optimum, with the new parameters at their neutral values and at each of their
listed ``starts``, gives the candidate starts; the best few by loss (one per group of equal loss:
starts that tie are one basin, :func:`distinct_starts`) are optimised and the best result
kept.  For a nested member the neutral start reproduces the parent, so the fit never ends worse than
the parent on the audio it was fitted to.  A member without a parent starts from the 4A-2A paper's
initial point with RMS-matched make-up.

Long signals (> :data:`COARSE_MIN_SECONDS`, or ``coarse=True``) are fitted coarse-to-fine: the starts
are optimised on evenly spaced 12 s excerpts covering 1/8 of the audio (the far-from-optimum iterations
are the same work on less audio), and only the best is refined on all of it.  Several starts are ranked and
optimised on a quarter of those excerpts (:data:`SCREEN_FRACTION`), an attempt being abandoned once its
loss less twice its Newton decrement is above the best finished attempt's; the best is then optimised on
all the excerpts before the whole signal.

``model="auto"`` (:func:`select_model`) fits candidates on the first part of the audio, scores them on the
held-back rest and keeps the best, preferring fewer parameters unless a bigger member wins clearly.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from .data.alignment import Alignment, align_pair
from .data.audio import AudioPair, check_signal, load_pair
from .errors import AudioError, NoCompressionError, ParameterError
from .models.compressor import Compressor
from .models.family import MODELS, model_spec
from .optimize import Bounds, FitResult, minimize
from .optimize.objective import CompressorObjective
from .timing import StageTimes, maybe

#: The 4A-2A paper's initial point; make-up is then set so that RMS levels match.
DEFAULT_START = Compressor(threshold_db=-36.0, ratio=4.0, attack_ms=1.0, release_ms=200.0, makeup_db=0.0)
#: Stop when the Newton decrement (the ESR decrease the quadratic model still predicts) is below this
#: fraction of the ESR: further iterations would change the ESR in its seventh digit.
DECREMENT_TOLERANCE = 1e-6
COARSE_DECREMENT_TOLERANCE = 1e-4
#: Signals longer than this get a coarse first pass on evenly spaced excerpts.
COARSE_MIN_SECONDS = 240.0
COARSE_FRACTION = 0.125
COARSE_EXCERPT_SECONDS = 12.0
#: The candidate starts are ranked on a quarter of the excerpts (3 of the 12 of a 20-min signal): the loss
#: of a start tells its basin apart on 36 s as on 144 s (the same three picked for opto), at a quarter of the cost.
SCREEN_FRACTION = COARSE_FRACTION / 4
#: The coarse pass's stall test: 3 iterations that each lower the loss by <= this x loss end it (the
#: whole-signal pass, which uses the optimiser's own tolerance, refines what is left).
COARSE_LOSS_TOLERANCE = 1e-7
#: An attempt (after the first) is abandoned once its loss, less this many times its Newton decrement (the
#: decrease the quadratic model still predicts), is above the best finished attempt's loss.
DROP_DECREMENT_FACTOR = 2.0
#: How many of the candidate starts of a member with a parent are optimised.
STARTS = 3
#: Candidate starts whose losses agree to this (relative) are one basin: only one of them is optimised.
EQUAL_LOSS_TOLERANCE = 1e-12
AUTO = "auto"
#: A pair must hold at least the warm-up plus this much audio.
MIN_FIT_SECONDS = 1.0
#: A wet whose gain-matched residual against the dry is below this ESR is not compressed.
NO_COMPRESSION_ESR = 1e-7
#: Members ``model="auto"`` chooses among, by default.
AUTO_CANDIDATES: tuple[str, ...] = (
    "ff5", "ff5-knee", "ff5-rms", "feedback", "ff5-slow", "opto", "level", "gain-db", "ff5-hp", "feedback-hp",
    "ff5-slow-hp", "opto-hp",
)
HOLDOUT_FRACTION = 0.3
#: A fit whose pre-filtered ESR stays above this explains almost nothing of the wet signal.
UNEXPLAINED_ESR = 0.5

logger = logging.getLogger(__name__)
#: A member with more parameters is chosen only when its held-out ESR is this much lower (relative).
PARSIMONY_MARGIN = 0.05


@dataclass(frozen=True)
class SelectionRow:
    """One candidate of a model selection: fitted on the first part, scored on the held-back rest."""

    model: str
    parameters: int
    fit_esr: float
    held_out_esr: float
    held_out_delta_ldr_db: float
    fit_seconds: float
    compressor: Compressor

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "parameters": self.parameters, "fit_esr": self.fit_esr,
                "held_out_esr": self.held_out_esr, "held_out_delta_ldr_db": self.held_out_delta_ldr_db,
                "fit_seconds": round(self.fit_seconds, 3), "values": self.compressor.to_dict()}


@dataclass(frozen=True)
class ModelSelection:
    """The outcome of ``model="auto"``: every candidate's row, the choice and why."""

    rows: tuple[SelectionRow, ...]
    chosen: str
    holdout_fraction: float
    parsimony_margin: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "reason": self.reason, "holdout_fraction": self.holdout_fraction,
                "parsimony_margin": self.parsimony_margin, "candidates": [r.to_dict() for r in self.rows]}


@dataclass(frozen=True)
class CaptureFit:
    """A fit of a recorded pair: the optimiser's result, the alignment applied, the aligned audio and,
    for ``model="auto"``, the model selection."""

    result: FitResult
    alignment: Alignment | None
    pair: AudioPair
    selection: ModelSelection | None = None
    warning: str | None = None  # e.g. a fit that explains almost nothing (see UNEXPLAINED_ESR)

    @property
    def compressor(self) -> Compressor:
        return self.result.params


def coarse_excerpts(
    dry: np.ndarray, wet: np.ndarray, sample_rate: float, fraction: float = COARSE_FRACTION,
    excerpt_seconds: float = COARSE_EXCERPT_SECONDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced excerpts covering ``fraction`` of the signal, concatenated (dry, wet)."""
    length = int(round(excerpt_seconds * sample_rate))
    count = max(1, int(round(fraction * dry.size / length)))
    starts = np.linspace(0, dry.size - length, count).astype(np.int64)
    return (np.concatenate([dry[a:a + length] for a in starts]), np.concatenate([wet[a:a + length] for a in starts]))


def extension_starts(base: Compressor, known: Sequence[str]) -> list[Compressor]:
    """``base`` with every parameter not in ``known`` at its neutral value (or default) and at each of its
    listed starts: the product of those choices."""
    choices = []
    for p in base.spec.parameters:
        if p.name in known:
            continue
        first = p.neutral if p.neutral is not None else p.default
        choices.append([(p.name, v) for v in dict.fromkeys((first, *p.starts))])
    return [base.with_params(**dict(combo)) for combo in itertools.product(*choices)]


def distinct_starts(candidates: Sequence[Compressor], loss: Callable[[Compressor], float], count: int,
                    tolerance: float = EQUAL_LOSS_TOLERANCE) -> list[Compressor]:
    """The ``count`` lowest-loss candidates, one per group of equal loss (|f_a - f_b| <= tolerance·|f_a|).

    Starts that tie differ only in parameters the loss does not see there (``opto`` at slow share 0:
    the slow stage's times do nothing), so they are one basin; optimising several copies wastes attempts."""
    scored = sorted(((loss(c), k) for k, c in enumerate(candidates)), key=lambda pair: pair[0])
    kept: list[tuple[float, int]] = []
    for f, k in scored:
        if not kept or not abs(f - kept[-1][0]) <= tolerance * abs(kept[-1][0]):
            kept.append((f, k))
        if len(kept) == count:
            break
    return [candidates[k] for _, k in kept]


class _Fitter:
    """One dry/wet pair, fitted by any member; objectives share the signals, fits are cached per member."""

    def __init__(self, dry, wet, sample_rate, *, method, bounds, chunk_seconds, warmup_seconds, max_iterations,
                 coarse, starts, callback, on_stage, options, device=None) -> None:
        self.sample_rate = float(sample_rate)
        self.method, self.bounds, self.max_iterations = method, bounds, max_iterations
        self.starts, self.callback, self.on_stage = starts, callback, on_stage
        self.options = dict(options)
        if method != "adam":
            self.options.setdefault("decrement_tolerance", DECREMENT_TOLERANCE)
        settings = {"chunk_seconds": chunk_seconds, "warmup_seconds": warmup_seconds}
        if device is not None:  # the torch parallel-scan backend, batched over chunks on ``device``
            from .optimize.torch_backend import TorchCompressorObjective

            settings["device"] = device
            make_objective = TorchCompressorObjective
        else:
            make_objective = CompressorObjective
        self.full = make_objective(dry, wet, sample_rate, **settings)
        if coarse is None:
            coarse = np.size(dry) > COARSE_MIN_SECONDS * sample_rate
        self.coarse = self.screen = None
        if coarse:
            excerpt_dry, excerpt_wet = coarse_excerpts(np.asarray(dry), np.asarray(wet), sample_rate)
            self.coarse = make_objective(excerpt_dry, excerpt_wet, sample_rate, **settings)
            screen_dry, screen_wet = coarse_excerpts(np.asarray(dry), np.asarray(wet), sample_rate, SCREEN_FRACTION)
            if screen_dry.size < excerpt_dry.size:
                self.screen = make_objective(screen_dry, screen_wet, sample_rate, **settings)
        self.results: dict[str, FitResult] = {}

    def _stage(self, text: str) -> None:
        if self.on_stage is not None:
            self.on_stage(text)

    def _minimize(self, objective, start: Compressor, *, coarse_pass: bool, beat: float | None = None) -> FitResult:
        """One pass from ``start``; with ``beat`` (the best loss of the attempts so far) the pass is abandoned
        (CALLBACK_STOP) once its loss less DROP_DECREMENT_FACTOR x its decrement is above ``beat``."""
        options = dict(self.options)
        if coarse_pass and self.method != "adam":
            options["decrement_tolerance"] = max(options["decrement_tolerance"], COARSE_DECREMENT_TOLERANCE)
            options["loss_tolerance"] = max(options.get("loss_tolerance", 0.0), COARSE_LOSS_TOLERANCE)
        callback = self.callback
        if beat is not None and self.method != "adam":
            callback = _dropping(callback, beat)
        return minimize(objective, start, method=self.method, bounds=self.bounds,
                        max_iterations=self.max_iterations, callback=callback, **options)

    def default_start(self, model: str) -> Compressor:
        start = DEFAULT_START.as_model(model)
        return start.with_params(makeup_db=self.full.with_model(model).matched_makeup_db(start))

    def fit(self, model: str, initial: Compressor | None = None) -> FitResult:
        """The fit of ``model`` (from ``initial``, or from its parent's fit, or the default start)."""
        if initial is None and model in self.results:
            return self.results[model]
        started = time.perf_counter()
        spec = model_spec(model)
        parent_start = None
        if initial is not None and initial.model == model:
            candidates = [initial]
        elif initial is not None:
            candidates = extension_starts(initial.as_model(model), initial.parameter_names)
        elif spec.parent is not None:
            parent = self.fit(spec.parent)
            base = parent.params.as_model(model)
            candidates = extension_starts(base, model_spec(spec.parent).parameter_names)
            parent_start = base if spec.nested else None
        else:
            candidates = [self.default_start(model)]
        result = self._optimise(model, candidates, parent_start)
        result = replace(result, elapsed_seconds=time.perf_counter() - started)
        if initial is None:
            self.results[model] = result
        return result

    def _optimise(self, model: str, candidates: list[Compressor], parent_start: Compressor | None) -> FitResult:
        first = self.coarse if self.coarse is not None else self.full
        objective = first.with_model(model)
        screen = objective if self.screen is None or len(candidates) == 1 else self.screen.with_model(model)
        ranked = distinct_starts(candidates, screen.esr, self.starts)
        on_screen = len(ranked) > 1 and screen is not objective
        attempts = []
        for k, start in enumerate(ranked):
            where = ("screening excerpts" if on_screen else "excerpts") if self.coarse is not None else "the whole signal"
            self._stage(f"{model}: start {k + 1}/{len(ranked)} on {where}" if len(ranked) > 1 else f"{model} on {where}")
            finite = [r.loss for r in attempts if np.isfinite(r.loss) and r.success]
            attempts.append(self._minimize(screen if on_screen else objective, start, coarse_pass=self.coarse is not None,
                                           beat=min(finite) if finite else None))
        best = min(attempts, key=lambda r: r.loss if np.isfinite(r.loss) else np.inf)
        if self.coarse is None:
            return _path_result(best, [], len(ranked))
        screened = None
        if on_screen:
            self._stage(f"{model}: best start on excerpts")
            screened = (best.nit, self.screen._dry.size / self.sample_rate)
            best = _path_result(self._minimize(objective, best.params, coarse_pass=True), [best], 1)
        full = self.full.with_model(model)
        start = best.params
        if parent_start is not None and full.esr(parent_start) < full.esr(start):
            start = parent_start  # nested: never refine from worse than the parent's own optimum
        self._stage(f"{model}: refining on the whole signal")
        fine = self._minimize(full, start, coarse_pass=False)
        return _path_result(fine, [best], len(ranked), excerpt_seconds=self.coarse._dry.size / self.sample_rate,
                            screened=screened)


def _dropping(callback, beat: float):
    """``callback`` that also stops the fit (StopIteration) once its loss less DROP_DECREMENT_FACTOR x the
    Newton decrement (at best what the quadratic model still predicts to gain) is above ``beat``."""
    def check(intermediate: FitResult) -> None:
        if callback is not None:
            callback(intermediate)
        record = intermediate.history[-1]
        if record.loss - DROP_DECREMENT_FACTOR * record.decrement > beat:
            raise StopIteration
    return check


def _path_result(result: FitResult, before: list[FitResult], starts: int, excerpt_seconds: float = 0.0,
                 screened: tuple[int, float] | None = None) -> FitResult:
    """``result`` with the iterations of the passes that led to it counted in ``nit``/``nfev``/``history``."""
    history = []
    for part in (*before, result):
        offset = history[-1].iteration if history else 0
        shift = history[-1].elapsed_seconds if history else 0.0
        for record in part.history[(1 if history else 0):]:
            history.append(replace(record, iteration=record.iteration + offset, elapsed_seconds=record.elapsed_seconds + shift))
    message = result.message
    notes = []
    if starts > 1:
        notes.append(f"best of {starts} starts")
    if before and screened is not None:  # (iterations, seconds) on the screening excerpts, counted in before[0]
        notes.append(f"{screened[0]} iterations on {screened[1]:.0f} s of screening excerpts, "
                     f"{before[0].nit - screened[0]} on {excerpt_seconds:.0f} s of excerpts, then {result.nit} on the whole signal")
    elif before and excerpt_seconds > 0.0:
        notes.append(f"{before[0].nit} iterations on {excerpt_seconds:.0f} s of excerpts, then {result.nit} on the whole signal")
    if notes:
        message = f"{message} ({'; '.join(notes)})"
    return replace(result, nit=len(history) - 1, nfev=result.nfev + sum(r.nfev for r in before),
                   history=tuple(history), message=message)


def fit_arrays(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: float,
    *,
    model: str = "ff5",
    method: str = "newton",
    initial: Compressor | None = None,
    bounds: Bounds | None = Bounds(),
    chunk_seconds: float = 12.0,
    warmup_seconds: float = 1.0,
    max_iterations: int = 50,
    coarse: bool | None = None,
    starts: int = STARTS,
    callback: Callable[[FitResult], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    device: str | None = None,
    **options,
) -> FitResult:
    """Fit family member ``model`` to aligned mono arrays (no validation beyond shapes).

    ``initial`` warm-starts the fit (a compressor of another member is converted, see
    :meth:`Compressor.as_model`); ``bounds`` overrides parameter ranges (None: unbounded);
    ``starts`` is how many candidate starts are optimised; ``coarse`` forces the coarse-to-fine
    path on or off; ``on_stage(text)`` reports each pass; ``device`` (``"cuda"``, ``"cpu-torch"``; every
    member) evaluates the objective with the torch parallel-scan backend, all chunks batched, instead of the
    numba kernels (same Newton iterations); ``options`` go to the optimiser.  For
    ``model="auto"`` use :func:`select_model`.
    """
    if model == AUTO:
        raise ParameterError("fit_arrays fits one member; use select_model(...) for model='auto'")
    model_spec(model)
    if starts < 1:
        raise ParameterError(f"starts must be >= 1, got {starts}")
    fitter = _Fitter(dry, wet, sample_rate, method=method, bounds=bounds, chunk_seconds=chunk_seconds,
                     warmup_seconds=warmup_seconds, max_iterations=max_iterations, coarse=coarse, starts=starts,
                     callback=callback, on_stage=on_stage, options=options, device=device)
    return fitter.fit(model, initial)


def choose(rows: Sequence[SelectionRow], margin: float = PARSIMONY_MARGIN) -> tuple[str, str]:
    """(model, reason): the member with the fewest parameters among those whose held-out ESR is within
    ``margin`` (relative) of the best; ties go to the lower held-out ESR."""
    finite = [r for r in rows if np.isfinite(r.held_out_esr)]
    if not finite:
        raise ParameterError("no candidate model gave a finite held-out ESR; check the recordings")
    best = min(finite, key=lambda r: r.held_out_esr)
    close = [r for r in finite if r.held_out_esr <= best.held_out_esr * (1.0 + margin)]
    chosen = min(close, key=lambda r: (r.parameters, r.held_out_esr))
    if chosen is best:
        reason = f"lowest held-out ESR ({best.held_out_esr:.4g})"
    else:
        reason = (f"held-out ESR {chosen.held_out_esr:.4g} within {margin:.0%} of the best ({best.model}: "
                  f"{best.held_out_esr:.4g}) with fewer parameters ({chosen.parameters} vs {best.parameters})")
    return chosen.model, reason


def select_model(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: float,
    *,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    holdout_fraction: float = HOLDOUT_FRACTION,
    parsimony_margin: float = PARSIMONY_MARGIN,
    initial: Compressor | None = None,
    on_stage: Callable[[str], None] | None = None,
    executor: Any = None,
    **options,
) -> tuple[FitResult, ModelSelection]:
    """Fit every member in ``candidates`` on the first ``1 - holdout_fraction`` of the audio, score each on
    the held-back rest (pre-filtered ESR and ΔLDR of the whole-signal render over the held-back part),
    choose with :func:`choose`, and refit the choice on all of the audio (warm-started).  ``initial``
    (a compressor of any member) warm-starts every candidate.

    ``executor`` (:func:`dynamatch.parallel.executor`, e.g. a Dask cluster): members are fitted side by side,
    each as soon as the parent it starts from is fitted (``ff5`` first, then its extensions in parallel);
    the same fits, bit for bit, as in this process (no per-iteration callback there)."""
    candidates = list(dict.fromkeys(candidates))
    for name in candidates:
        model_spec(name)
    if not 0.05 <= holdout_fraction <= 0.5:
        raise ParameterError(f"holdout_fraction must be between 0.05 and 0.5, got {holdout_fraction}")
    dry = np.asarray(dry)
    wet = np.asarray(wet)
    cut = int(round((1.0 - holdout_fraction) * dry.size))
    if executor is None:
        fitter = _Fitter(dry[:cut], wet[:cut], sample_rate, on_stage=on_stage, **_fitter_options(options))
        rows = []
        for name in candidates:
            started = time.perf_counter()
            result = fitter.fit(name, initial)
            rows.append(_selection_row(name, result, time.perf_counter() - started, dry, wet, sample_rate, cut))
    else:
        rows = _select_on(executor, dry, wet, sample_rate, cut, candidates, initial, on_stage, options)
    chosen, reason = choose(rows, parsimony_margin)
    selection = ModelSelection(tuple(rows), chosen, holdout_fraction, parsimony_margin, reason)
    if on_stage is not None:
        on_stage(f"chose {chosen}: {reason}; refitting on all of the audio")
    part_fit = next(r.compressor for r in rows if r.model == chosen)
    result = fit_arrays(dry, wet, sample_rate, model=chosen, initial=part_fit, on_stage=on_stage, **options)
    return replace(result, message=f"{result.message}; model {chosen} chosen by held-out ESR"), selection


def _selection_row(name, result, elapsed, dry, wet, sample_rate, cut) -> SelectionRow:
    """A candidate's row: its fit on ``dry[:cut]`` scored on the held-back rest of the whole-signal render."""
    from .metrics import delta_ldr_db, esr

    prediction = result.params.process(dry, sample_rate)
    return SelectionRow(
        name, len(result.params.parameter_names), float(result.loss), esr(prediction[cut:], wet[cut:]),
        delta_ldr_db(prediction[cut:], wet[cut:], sample_rate), elapsed, result.params,
    )


def _fit_member(dry, wet, sample_rate, cut, name, fitted, initial, options, score):
    """One member of a model selection, in a task: the fit on ``dry[:cut]`` (from its ancestors' fits in
    ``fitted`` when ``initial`` is None) and, when ``score``, its selection row."""
    fitter = _Fitter(dry[:cut], wet[:cut], sample_rate, on_stage=None, **_fitter_options(options))
    fitter.results.update(fitted)
    started = time.perf_counter()
    result = fitter.fit(name, initial)
    elapsed = time.perf_counter() - started
    return result, (_selection_row(name, result, elapsed, dry, wet, sample_rate, cut) if score else None)


def _lineage(name: str) -> list[str]:
    """The ancestors of family member ``name``, nearest first."""
    out, parent = [], model_spec(name).parent
    while parent is not None:
        out.append(parent)
        parent = model_spec(parent).parent
    return out


def _select_on(executor, dry, wet, sample_rate, cut, candidates, initial, on_stage, options) -> list[SelectionRow]:
    """The candidates' rows, fitted on ``executor`` in dependency order (a member after its ancestors)."""
    options = {k: v for k, v in options.items() if k != "callback"}
    needed = list(candidates)
    if initial is None:  # ancestors that are not candidates are fitted too (as the serial path does)
        for name in candidates:
            needed += [a for a in _lineage(name) if a not in needed]
    shared_dry, shared_wet = executor.share(dry), executor.share(wet)
    fitted: dict[str, FitResult] = {}
    rows: dict[str, SelectionRow] = {}
    pending: dict[Any, str] = {}
    waiting = list(needed)
    while waiting or pending:
        for name in list(waiting):
            ancestors = [] if initial is not None else _lineage(name)
            if all(a in fitted for a in ancestors):
                if on_stage is not None:
                    on_stage(f"{name}: submitted")
                future = executor.submit(_fit_member, shared_dry, shared_wet, sample_rate, cut, name,
                                         {a: fitted[a] for a in ancestors}, initial, options, name in candidates)
                pending[future] = name
                waiting.remove(name)
        for future in executor.wait_first(list(pending)):
            name = pending.pop(future)
            result, row = future.result()
            fitted[name] = result
            if row is not None:
                rows[name] = row
                if on_stage is not None:
                    on_stage(f"{name}: held-out ESR {row.held_out_esr:.4g} ({row.fit_seconds:.1f} s)")
    return [rows[name] for name in candidates]


def _fitter_options(options: dict) -> dict:
    """``fit_arrays`` keyword options split into those of :class:`_Fitter` (with defaults)."""
    options = dict(options)
    names = {"method": "newton", "bounds": Bounds(), "chunk_seconds": 12.0, "warmup_seconds": 1.0,
             "max_iterations": 50, "coarse": None, "starts": STARTS, "callback": None, "device": None}
    picked = {k: options.pop(k, v) for k, v in names.items()}
    picked["options"] = options
    return picked


def check_fit_length(pair: AudioPair, warmup_seconds: float = 1.0) -> None:
    """Refuse a pair too short to fit: at least ``warmup_seconds`` + :data:`MIN_FIT_SECONDS` of audio."""
    needed = float(warmup_seconds) + MIN_FIT_SECONDS
    samples = pair.dry.shape[-1]
    if samples < needed * pair.sample_rate:
        raise AudioError(
            f"{pair.dry_name}: too short ({samples} samples = {samples / pair.sample_rate:.3g} s) to fit a compressor: "
            f"record at least {needed:g} s (the capture stimulus: `dynamatch stimulus`)"
        )


def check_compressed(pair: AudioPair) -> None:
    """Refuse a wet that is the dry times one gain: with the least-squares gain a = <w, d>/<d, d>, the
    residual ESR |w − a·d|² / |w|² below :data:`NO_COMPRESSION_ESR` means the device did nothing."""
    from .kernels.signal_checks import gram

    d = np.asarray(pair.dry).reshape(-1)
    w = np.asarray(pair.wet).reshape(-1)
    dd, ww, dw = gram(d, w)  # one pass, float64 sums, also of float32 audio
    if dd == 0.0 or ww == 0.0:
        return
    residual = max(ww - dw * dw / dd, 0.0) / ww
    if residual < NO_COMPRESSION_ESR:
        gain_db = 20.0 * np.log10(abs(dw / dd))
        raise NoCompressionError(
            f"{pair.wet_name}: is {pair.dry_name} times a constant gain ({gain_db:+.2f} dB, residual ESR {residual:.1e}): "
            "there is no compression to fit; drive the device harder (lower threshold / more peak reduction) and record again"
        )


def check_capture_for_fit(
    pair: AudioPair,
    *,
    reference_dbu: float | None = None,
    input_reference_dbu: float | None = None,
    ignore_checks: bool = False,
    warmup_seconds: float = 1.0,
):
    """The checks of ``dynamatch check`` on a loaded pair, after the input validation's own (more specific)
    one-line errors (:func:`~dynamatch.data.audio.check_signal` and the DC-offset warning: load the pair with
    ``load_pair(..., check=False)``, one pass over each signal serves both); a failing capture raises
    :class:`~dynamatch.errors.CaptureCheckError` unless ``ignore_checks``.  Returns the
    :class:`~dynamatch.data.check.CaptureReport` (its warnings for the caller)."""
    from .data.audio import warn_dc_offset
    from .data.check import check_capture

    check_fit_length(pair, warmup_seconds)
    statistics = (check_signal(pair.dry, pair.dry_name, pair.sample_rate),
                  check_signal(pair.wet, pair.wet_name, pair.sample_rate))
    for audio, name, stats in ((pair.dry, pair.dry_name, statistics[0]), (pair.wet, pair.wet_name, statistics[1])):
        warn_dc_offset(audio, name, stats)
    report = check_capture(pair.dry, pair.wet, pair.sample_rate, reference_dbu=reference_dbu,
                           input_reference_dbu=input_reference_dbu, dry_name=pair.dry_name, wet_name=pair.wet_name,
                           statistics=statistics)
    if not report.passed and not ignore_checks:
        align_pair(pair)  # unrelated files get alignment's one-line error
        report.raise_on_failure()
    return report


def warm_up(sample_rate: int = 44100) -> None:
    """Compile and cache every numba kernel of the fit path (float64 arrays, and the float32 file path with
    one-pass checks and fractional-delay alignment), so that the first real fit does not pay for it."""
    from .data.alignment import fractional_delay

    rng = np.random.default_rng(0)
    x = rng.standard_normal(sample_rate) * 0.3
    y = Compressor(-20, 3, 5, 100, 0).process(x, sample_rate)
    fit_arrays(x, y, sample_rate, max_iterations=2)
    x32 = np.tile(x, 3).astype(np.float32)
    y32 = fractional_delay(Compressor(-20, 3, 5, 100, 0).process(x32, sample_rate), 0.5).astype(np.float32)
    fit_pair(AudioPair(x32, y32, sample_rate, "warmup dry", "warmup wet"), max_iterations=2)
    from .kernels.signal_checks import warm_up as warm_up_signal_checks

    warm_up_signal_checks()  # the capture check's and long files' drivers (serial and parallel), float32 and float64


def fit_pair(
    pair: AudioPair,
    *,
    align: bool = True,
    model: str = "ff5",
    candidates: Sequence[str] = AUTO_CANDIDATES,
    times: StageTimes | None = None,
    report: Any = None,
    executor: Any = None,
    overwrite_input: bool = False,
    **options,
) -> CaptureFit:
    """Validate, align (latency and polarity) and fit an :class:`AudioPair` (``model="auto"`` selects).

    ``times`` (a :class:`~dynamatch.timing.StageTimes`) receives the wall time of checks, alignment, fit;
    ``report``: the pair's :func:`check_capture_for_fit` report, when already made (its signal checks are not
    repeated and its whole-take alignment is applied instead of estimated again); ``executor``: where
    ``model="auto"`` fits its candidates (see :func:`select_model`); ``overwrite_input``: align in ``pair``'s
    own arrays (no second full-length copy; ``pair`` is not usable unaligned afterwards)."""
    if model != AUTO:
        model_spec(model)
    with maybe(times, "checks"):
        if report is None:
            check_signal(pair.dry, pair.dry_name)
            check_signal(pair.wet, pair.wet_name)
        check_fit_length(pair, options.get("warmup_seconds", 1.0))
        if not align:
            check_compressed(pair)  # aligned pairs are checked once, after the alignment
    alignment = None
    if align:
        with maybe(times, "alignment"):
            pair, alignment = align_pair(pair, alignment=None if report is None else report.alignment,
                                         overwrite=overwrite_input)
        with maybe(times, "checks"):
            check_compressed(pair)
    selection = None
    with maybe(times, "fit"):
        if model == AUTO:
            result, selection = select_model(pair.dry, pair.wet, pair.sample_rate, candidates=candidates,
                                             executor=executor, **options)
        else:
            result = fit_arrays(pair.dry, pair.wet, pair.sample_rate, model=model, **options)
    warning = unexplained_warning(result, pair, aligned=align)
    if warning:
        logger.warning(warning)
    return CaptureFit(result=result, alignment=alignment, pair=pair, selection=selection, warning=warning)


def unexplained_warning(result: FitResult, pair: AudioPair, *, aligned: bool) -> str | None:
    """One line when the fit explains almost nothing (ESR > :data:`UNEXPLAINED_ESR`), with the likely fix."""
    if not result.loss > UNEXPLAINED_ESR:
        return None
    fix = ("it was fitted without alignment: drop --no-align (latency or polarity is probably off)" if not aligned
           else "check that the files are the dry input and wet output of the same take")
    return f"{pair.wet_name}: the fit explains almost nothing of it (ESR {result.loss:.3g}); {fix}"


def fit_files(
    dry_path: str | os.PathLike,
    wet_path: str | os.PathLike,
    *,
    sample_rate: float | None = None,
    align: bool = True,
    **options,
) -> CaptureFit:
    """Read, validate, align and fit a dry/wet pair of audio files."""
    pair = load_pair(dry_path, wet_path, sample_rate=sample_rate)
    return fit_pair(pair, align=align, **options)


__all__ = ["AUTO", "AUTO_CANDIDATES", "CaptureFit", "MODELS", "ModelSelection", "SelectionRow", "choose",
           "check_capture_for_fit", "coarse_excerpts", "distinct_starts", "extension_starts", "fit_arrays",
           "fit_files", "fit_pair", "select_model", "warm_up"]
