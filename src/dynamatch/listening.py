"""MUSHRA-style listening tests: a webMUSHRA kit from an evaluation, and the papers' statistics on the ratings.

* :func:`build_kit` — from an ``evaluate`` output folder (the pairs it scored) and the models to compare,
  cut per-excerpt trials from the dataset: the device's output is the reference (webMUSHRA adds it again as
  the hidden reference, rated as ``reference``), each model's rendering of the dry excerpt is a condition,
  optionally a 3.5 kHz low-pass anchor (ITU-R BS.1534) and the dry input; every stimulus is loudness-matched
  (ITU-R BS.1770 integrated loudness, pyloudnorm) and written as 16-bit WAV with a webMUSHRA YAML config.
* :func:`analyse_ratings` — per-condition medians and quartiles, the Kruskal–Wallis H test and Conover's
  post-hoc test with adjusted p-values (Holm by default), as in the micro-TCN and S4 compressor papers.

Statistics follow W. J. Conover, *Practical Nonparametric Statistics* (3rd ed., 1999), §5.2: with ranks R
of all N ratings (ties averaged), group rank sums R_i over n_i ratings and
S² = (ΣR² − N(N+1)²/4)/(N−1), the statistic is H = (ΣR_i²/n_i − N(N+1)²/4)/S² (Kruskal–Wallis with the tie
correction), χ² with k−1 degrees of freedom; groups i and j differ when
|R_i/n_i − R_j/n_j| / sqrt(S² (N−1−H)/(N−k) (1/n_i + 1/n_j)) exceeds Student's t with N−k degrees of freedom.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import DynamatchError, ReportError

KIT_FORMAT = "dynamatch.listening_kit"
ANALYSIS_FORMAT = "dynamatch.listening_analysis"
DEFAULT_LOUDNESS_LUFS = -23.0
PEAK_CEILING_DB = -1.0
FADE_MS = 20.0
ANCHOR_HZ = 3500.0
ADJUSTMENTS = ("holm", "bonferroni", "none")


# -- statistics -----------------------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1…N of ``values``, ties given the mean of the ranks they span."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    sorted_values = values[order]
    start = 0
    while start < values.size:
        stop = start
        while stop + 1 < values.size and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop + 1]] = 0.5 * (start + stop) + 1.0
        start = stop + 1
    return ranks


@dataclass(frozen=True)
class KruskalWallis:
    """Kruskal–Wallis H (tie-corrected), its degrees of freedom and χ² p-value; S² and N for the post-hoc test."""

    h: float
    df: int
    p: float
    n: int
    s2: float
    mean_ranks: tuple[float, ...]
    sizes: tuple[int, ...]


def kruskal_wallis(groups: Sequence[Sequence[float]]) -> KruskalWallis:
    """Kruskal–Wallis test of ``groups`` (at least two, each non-empty); ReportError when all values tie."""
    from scipy.stats import chi2

    arrays = [np.asarray(g, dtype=float).ravel() for g in groups]
    if len(arrays) < 2 or any(a.size == 0 for a in arrays):
        raise ReportError("the Kruskal–Wallis test needs at least two conditions, each with ratings")
    values = np.concatenate(arrays)
    n = values.size
    ranks = average_ranks(values)
    bounds = np.cumsum([0] + [a.size for a in arrays])
    rank_sums = np.array([ranks[bounds[i]:bounds[i + 1]].sum() for i in range(len(arrays))])
    sizes = np.array([a.size for a in arrays], dtype=float)
    s2 = (np.sum(ranks ** 2) - n * (n + 1) ** 2 / 4.0) / (n - 1)
    if not s2 > 0:
        raise ReportError("every rating is the same: there is nothing to test")
    h = float((np.sum(rank_sums ** 2 / sizes) - n * (n + 1) ** 2 / 4.0) / s2)
    df = len(arrays) - 1
    return KruskalWallis(h=h, df=df, p=float(chi2.sf(h, df)), n=int(n), s2=float(s2),
                         mean_ranks=tuple(float(v) for v in rank_sums / sizes), sizes=tuple(int(v) for v in sizes))


def adjust_p(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Family-wise adjusted p-values: Holm's step-down, Bonferroni, or none."""
    p = np.asarray(p_values, dtype=float)
    if method == "none" or p.size == 0:
        return p.copy()
    m = p.size
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    if method != "holm":
        raise ReportError(f"p-value adjustment must be one of {', '.join(ADJUSTMENTS)}, got {method!r}")
    order = np.argsort(p, kind="mergesort")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out


@dataclass(frozen=True)
class PairwiseTest:
    """Conover's test of one pair of conditions."""

    a: str
    b: str
    mean_rank_difference: float
    t: float
    df: int
    p: float
    p_adjusted: float
    significant: bool


def conover(groups: Mapping[str, Sequence[float]], *, adjust: str = "holm", alpha: float = 0.05,
            kruskal: KruskalWallis | None = None) -> list[PairwiseTest]:
    """Conover's post-hoc test of every pair of ``groups`` after Kruskal–Wallis, p adjusted over all pairs."""
    from scipy.stats import t as student_t

    names = list(groups)
    kw = kruskal or kruskal_wallis([groups[n] for n in names])
    k, n = len(names), kw.n
    df = n - k
    if df <= 0:
        raise ReportError(f"{n} ratings of {k} conditions leave no degrees of freedom for the post-hoc test")
    scale = kw.s2 * max(n - 1 - kw.h, 0.0) / df
    raw = []
    for i in range(k):
        for j in range(i + 1, k):
            difference = kw.mean_ranks[i] - kw.mean_ranks[j]
            denominator = math.sqrt(scale * (1.0 / kw.sizes[i] + 1.0 / kw.sizes[j]))
            t = abs(difference) / denominator if denominator > 0 else (math.inf if difference else 0.0)
            raw.append((names[i], names[j], difference, t, float(2.0 * student_t.sf(t, df))))
    adjusted = adjust_p([r[4] for r in raw], adjust)
    return [PairwiseTest(a, b, float(d), float(t), int(df), p, float(q), bool(q < alpha))
            for (a, b, d, t, p), q in zip(raw, adjusted)]


# -- ratings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    """One rating (0–100) of one condition in one trial by one listener."""

    condition: str
    score: float
    trial: str = ""
    listener: str = ""


def read_ratings(path: str | os.PathLike) -> list[Rating]:
    """Ratings from webMUSHRA's ``mushra.csv`` (trial_id, rating_stimulus, rating_score, …) or a plain CSV with
    ``condition`` and ``rating`` (optional ``trial``, ``listener``); ReportError naming the line for bad input."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such ratings file; give webMUSHRA's mushra.csv or a condition,rating CSV")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text CSV file (undecodable bytes)") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror or error})") from None
    if "\x00" in text:
        raise ReportError(f"{path}: not a text CSV file (NUL bytes)")
    try:
        lines = [line for line in csv.reader(io.StringIO(text)) if any(c.strip() for c in line)]
    except csv.Error as error:
        raise ReportError(f"{path}: malformed CSV ({error})") from None
    if len(lines) < 2:
        raise ReportError(f"{path}: no ratings (a header and at least one row are needed)")
    header = [c.strip().lower() for c in lines[0]]
    if {"rating_stimulus", "rating_score"} <= set(header):
        columns = {"condition": "rating_stimulus", "score": "rating_score", "trial": "trial_id"}
        listener_column = next((c for c in ("session_uuid", "participant", "email", "name") if c in header), None)
        columns["listener"] = listener_column or ""
    elif {"condition", "rating"} <= set(header):
        columns = {"condition": "condition", "score": "rating", "trial": "trial", "listener": "listener"}
    else:
        raise ReportError(f"{path}: unknown ratings layout (columns {', '.join(header[:8])}); expected webMUSHRA's "
                          "trial_id,rating_stimulus,rating_score or condition,rating")
    index = {c: i for i, c in enumerate(header)}
    ratings = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise ReportError(f"{path}: line {number} has {len(line)} fields, the header {len(header)}; the file is corrupt")
        cell = {key: (line[index[col]].strip() if col in index else "") for key, col in columns.items()}
        try:
            value = float(cell["score"])
        except ValueError:
            raise ReportError(f"{path}: line {number}: rating {cell['score']!r} is not a number") from None
        if not (math.isfinite(value) and 0.0 <= value <= 100.0):
            raise ReportError(f"{path}: line {number}: rating {value:g} is outside 0–100")
        if not cell["condition"]:
            raise ReportError(f"{path}: line {number}: no condition name")
        ratings.append(Rating(cell["condition"], value, cell["trial"], cell["listener"]))
    return ratings


@dataclass(frozen=True)
class ConditionSummary:
    condition: str
    n: int
    median: float
    q1: float
    q3: float
    mean: float
    mean_rank: float


@dataclass(frozen=True)
class Analysis:
    """The statistics of a listening test."""

    conditions: tuple[ConditionSummary, ...]
    kruskal_wallis: KruskalWallis
    conover: tuple[PairwiseTest, ...]
    adjust: str
    alpha: float
    listeners: int
    trials: int
    source: str = ""
    excluded_listeners: tuple[str, ...] = ()
    trial_medians: tuple[tuple[str, str, float], ...] = ()  # (trial, condition, median)

    def to_document(self) -> dict[str, Any]:
        kw = self.kruskal_wallis
        return {
            "format": ANALYSIS_FORMAT, "format_version": 1, "source": self.source,
            "listeners": self.listeners, "trials": self.trials, "adjust": self.adjust, "alpha": self.alpha,
            "conditions": [asdict(c) for c in self.conditions],
            "kruskal_wallis": {"h": kw.h, "df": kw.df, "p": kw.p, "n": kw.n},
            "conover": [asdict(p) for p in self.conover],
            "excluded_listeners": list(self.excluded_listeners),
            "trial_medians": [{"trial": t, "condition": c, "median": m} for t, c, m in self.trial_medians],
        }


def screen_listeners(ratings: Sequence[Rating], *, reference: str = "reference", threshold: float = 90.0,
                     share: float = 0.15) -> list[str]:
    """ITU-R BS.1534-3 post-screening: listeners who rated the hidden reference below ``threshold`` in more than
    ``share`` of their trials."""
    if not all(r.listener for r in ratings):
        raise ReportError("post-screening needs a listener for every rating (webMUSHRA's session_uuid or a listener column)")
    excluded = []
    for listener in dict.fromkeys(r.listener for r in ratings):
        scores = [r.score for r in ratings if r.listener == listener and r.condition == reference]
        if not scores:
            raise ReportError(f"listener {listener!r} never rated the hidden reference {reference!r}; cannot screen")
        if np.mean(np.asarray(scores) < threshold) > share:
            excluded.append(listener)
    return excluded


def analyse_ratings(ratings: Sequence[Rating], *, adjust: str = "holm", alpha: float = 0.05,
                    source: str = "", screen: bool = False) -> Analysis:
    """Medians per condition, Kruskal–Wallis over conditions (all trials pooled, as the papers), Conover post-hoc.

    ``screen``: first drop the listeners BS.1534-3 post-screening rejects (see :func:`screen_listeners`)."""
    if adjust not in ADJUSTMENTS:
        raise ReportError(f"p-value adjustment must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
    excluded = screen_listeners(ratings) if screen else []
    if excluded:
        ratings = [r for r in ratings if r.listener not in set(excluded)]
        if not ratings:
            raise ReportError(f"{source or 'ratings'}: post-screening excluded every listener")
    groups: dict[str, list[float]] = {}
    for r in ratings:
        groups.setdefault(r.condition, []).append(r.score)
    if len(groups) < 2:
        raise ReportError(f"{source or 'ratings'}: {len(groups)} condition(s); at least two are needed to compare")
    kw = kruskal_wallis(list(groups.values()))
    pairs = conover(groups, adjust=adjust, alpha=alpha, kruskal=kw)
    summaries = []
    for (name, values), mean_rank in zip(groups.items(), kw.mean_ranks):
        v = np.asarray(values)
        q1, median, q3 = np.percentile(v, [25, 50, 75])
        summaries.append(ConditionSummary(name, int(v.size), float(median), float(q1), float(q3), float(v.mean()),
                                          float(mean_rank)))
    summaries.sort(key=lambda s: -s.median)
    by_trial: dict[tuple[str, str], list[float]] = {}
    for r in ratings:
        if r.trial:
            by_trial.setdefault((r.trial, r.condition), []).append(r.score)
    return Analysis(tuple(summaries), kw, tuple(pairs), adjust, alpha,
                    listeners=len({r.listener for r in ratings if r.listener}) or 0,
                    trials=len({r.trial for r in ratings if r.trial}) or 0, source=source,
                    excluded_listeners=tuple(excluded),
                    trial_medians=tuple((t, c, float(np.median(v))) for (t, c), v in by_trial.items()))


def plot_ratings(analysis: Analysis, ratings: Sequence[Rating], path: str | os.PathLike) -> Path:
    """Box plot of the ratings per condition (median line, quartile box, 1.5 IQR whiskers), best first."""
    from .report.plots import _pyplot, _save

    plt = _pyplot()
    names = [c.condition for c in analysis.conditions]
    data = [[r.score for r in ratings if r.condition == n] for n in names]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(names) + 1.5), 3.8))
    ax.boxplot(data, showfliers=True, medianprops={"color": "C3", "linewidth": 2})
    ax.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right")
    ax.set_ylim(-2, 102)
    ax.set_ylabel("rating (0–100)")
    ax.grid(axis="y", alpha=0.3)
    kw = analysis.kruskal_wallis
    ax.set_title(f"Kruskal–Wallis H = {kw.h:.3g}, p = {kw.p:.3g} (n = {kw.n})", fontsize=9)
    return _save(fig, path)


def write_analysis(analysis: Analysis, ratings: Sequence[Rating], output_dir: str | os.PathLike) -> dict[str, Path]:
    """``analysis.json``, ``conover.csv`` and ``ratings.png`` in ``output_dir`` (each written atomically)."""
    from .maps.evaluate import write_rows
    from .models.model_file import write_json_atomic

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return {
        "analysis": write_json_atomic(output_dir / "analysis.json", analysis.to_document()),
        "conover": write_rows(output_dir / "conover.csv", [asdict(p) for p in analysis.conover]),
        "conditions": write_rows(output_dir / "conditions.csv", [asdict(c) for c in analysis.conditions]),
        "plot": plot_ratings(analysis, ratings, output_dir / "ratings.png"),
    }


# -- the kit --------------------------------------------------------------------------------------


@dataclass
class KitModel:
    """A model to put in the test: a map (evaluated at each pair's setting), one fixed compressor, or a trained
    neural model (``neural``; ``hybrid_map``: the map a 4A-2A-G GRU stage runs after)."""

    label: str
    source: str
    map: Any = None
    compressor: Any = None
    neural: Any = None
    hybrid_map: Any = None

    def at(self, mode: str, peak_reduction: float):
        """The grey-box compressor at a setting (None for a neural model)."""
        if self.neural is not None:
            return None
        return self.compressor if self.map is None else self.map.compressor(peak_reduction, mode)

    def process(self, x: np.ndarray, sample_rate: int, mode: str, peak_reduction: float) -> np.ndarray:
        """The model's output for dry ``x`` at a setting."""
        if self.neural is not None:
            from .neural.evaluate import render

            return render(self.neural, self.hybrid_map, mode, peak_reduction, np.asarray(x, dtype=np.float64),
                          sample_rate).astype(np.float64)
        return self.at(mode, peak_reduction).process(x, sample_rate)

    def gain_reduction_db(self, x: np.ndarray, sample_rate: int, mode: str, peak_reduction: float) -> np.ndarray | None:
        """Gain reduction (dB, positive = quieter, before make-up) of a grey-box model; None for a neural one."""
        compressor = self.at(mode, peak_reduction)
        if compressor is None:
            return None
        return -20.0 * np.log10(np.maximum(compressor.gain(x, sample_rate), 1e-12))


def _clean_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "model"


def open_model(spec: str) -> KitModel:
    """``LABEL=SOURCE`` or ``SOURCE``: a parameter map, a fitted model file or ``preset:NAME``."""
    from .maps.parameter_map import MAP_FORMAT, ParameterMap
    from .models.model_file import load_compressor

    label, _, source = spec.partition("=") if "=" in spec and not spec.startswith("preset:") else ("", "", spec)
    if source.startswith("preset:"):
        name = source.split(":", 1)[1]
        try:
            return KitModel(_clean_label(label or name), source, map=ParameterMap.preset(name))
        except DynamatchError as error:
            raise ReportError(str(error)) from None
    path = Path(source)
    if not path.is_file():
        raise ReportError(f"{path}: no such model file; give a map.json, a model.json or preset:la2a")
    try:
        kind = json.loads(path.read_text()).get("format")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise ReportError(f"{path}: not a readable JSON model file") from None
    label = _clean_label(label or (path.stem if path.stem not in ("model", "map") else path.parent.name or path.stem))
    try:
        if kind == MAP_FORMAT:
            return KitModel(label, source, map=ParameterMap.load(path))
        if isinstance(kind, str) and "neural" in kind:
            return _neural_model(label, source, path)
        return KitModel(label, source, compressor=load_compressor(path))
    except ReportError:
        raise
    except DynamatchError as error:
        raise ReportError(str(error)) from None


def _neural_model(label: str, source: str, path: Path) -> KitModel:
    """A trained neural model file (needs the optional ``[nn]`` extra, else one line saying so)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ReportError(f"{path}: a neural model needs PyTorch: pip install 'dynamatch[nn]'") from None
    from .neural.evaluate import hybrid_map
    from .neural.registry import load_model

    return KitModel(label, source, neural=load_model(path).eval(), hybrid_map=hybrid_map(path))


def _evaluation_pairs(eval_dir: Path) -> list[dict[str, Any]]:
    """(pair, mode, peak_reduction) of every pair an evaluate folder scored (scores.csv or held_out.csv)."""
    if not eval_dir.exists():
        raise ReportError(f"{eval_dir}: not found; give the output folder of `dynamatch evaluate`")
    if not eval_dir.is_dir():
        raise ReportError(f"{eval_dir}: not a folder; give the output folder of `dynamatch evaluate`")
    for name in ("scores.csv", "held_out.csv"):
        path = eval_dir / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            rows = list(csv.DictReader(io.StringIO(text)))
        except (UnicodeDecodeError, csv.Error, OSError) as error:
            raise ReportError(f"{path}: not a readable CSV ({error})") from None
        if rows and "pair" in rows[0] and "mode" in rows[0]:
            out, seen = [], set()
            for number, row in enumerate(rows, start=2):
                try:
                    setting = float(row["peak_reduction"])
                except (TypeError, ValueError, KeyError):
                    raise ReportError(f"{path}: line {number}: peak_reduction {row.get('peak_reduction')!r} "
                                      "is not a number; the file is corrupt") from None
                if row["pair"] and row["pair"] not in seen:
                    seen.add(row["pair"])
                    out.append({"pair": row["pair"], "mode": row["mode"], "peak_reduction": setting})
            if out:
                return out
    raise ReportError(f"{eval_dir}: no scores.csv or held_out.csv with a pair column; unknown layout "
                      "(give the output folder of `dynamatch evaluate --protocol score|held-out`)")


def _held_out_start(eval_dir: Path) -> float:
    """Seconds of each file a held-out evaluation fitted on (excerpts come after them); 0 for other layouts."""
    if not (eval_dir / "held_out.csv").is_file() or (eval_dir / "scores.csv").is_file():
        return 0.0
    try:
        provenance = json.loads((eval_dir / "map.json").read_text()).get("provenance") or {}
        return float(provenance.get("max_seconds") or 0.0)
    except (OSError, ValueError, AttributeError, TypeError):
        return 0.0


def _evaluation_record(eval_dir: Path) -> dict[str, Any]:
    """``evaluation.json`` of an evaluate folder (dataset and models scored); empty when absent or unreadable."""
    try:
        document = json.loads((eval_dir / "evaluation.json").read_text())
    except (OSError, ValueError):
        return {}
    from .documents import EVALUATION

    return document if isinstance(document, dict) and EVALUATION.accepts(document.get("format")) else {}


def _recorded_dataset(record: Mapping[str, Any]) -> Path | None:
    value = record.get("dataset")
    return Path(value) if value and Path(value).exists() else None


def _dataset_from_maps(eval_dir: Path) -> Path | None:
    map_path = eval_dir / "map.json"
    if not map_path.is_file():
        return None
    try:
        provenance = json.loads(map_path.read_text()).get("provenance") or {}
    except (OSError, ValueError, AttributeError):
        return None
    for key in ("root", "dataset"):
        value = provenance.get(key)
        if value:
            for candidate in (Path(value), eval_dir / value, eval_dir.parent / value):
                if candidate.exists():
                    return candidate
    return None


def _fade(x: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(FADE_MS * 1e-3 * sample_rate), x.size // 4)
    if n < 2:
        return x
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def lowpass_anchor(x: np.ndarray, sample_rate: int, cutoff_hz: float = ANCHOR_HZ) -> np.ndarray:
    """The BS.1534 low anchor: ``x`` low-passed at 3.5 kHz (8th-order Butterworth, zero phase)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(8, cutoff_hz, btype="low", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, x)


def integrated_loudness(x: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness in LUFS (pyloudnorm)."""
    try:
        import pyloudnorm
    except ImportError:
        raise ReportError("loudness matching needs pyloudnorm: pip install 'dynamatch[listening]'") from None
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(x, dtype=np.float64)))


def _excerpt_starts(dry: np.ndarray, sample_rate: int, seconds: float, count: int, skip_seconds: float) -> list[int]:
    """Starts of ``count`` non-overlapping windows with the highest dry RMS (the most drive, the most compression)."""
    n = int(round(seconds * sample_rate))
    hop = max(1, n // 4)
    first = min(int(skip_seconds * sample_rate), max(dry.size - n, 0))
    starts = np.arange(first, dry.size - n + 1, hop)
    if starts.size == 0:
        return []
    power = np.concatenate(([0.0], np.cumsum(dry.astype(np.float64) ** 2)))
    energy = power[starts + n] - power[starts]
    chosen: list[int] = []
    for index in np.argsort(-energy, kind="mergesort"):
        start = int(starts[index])
        if all(abs(start - c) >= n for c in chosen):
            chosen.append(start)
        if len(chosen) == count:
            break
    return sorted(chosen)


def _previous_kit_files(output_dir: Path) -> set[str]:
    """Audio files listed by an earlier kit written to ``output_dir`` (only a folder with our kit.json)."""
    try:
        if json.loads((output_dir / "kit.json").read_text()).get("format") != KIT_FORMAT:
            return set()
        with open(output_dir / "stimuli.csv", newline="") as handle:
            files = {row["file"] for row in csv.DictReader(handle) if row.get("file")}
    except (OSError, ValueError, KeyError, AttributeError, csv.Error):
        return set()
    return {f for f in files if f.startswith("configs/resources/audio/") and f.endswith(".wav") and ".." not in f}


@dataclass
class Kit:
    """What :func:`build_kit` wrote."""

    root: Path
    config: Path
    trials: list[dict[str, Any]] = field(default_factory=list)
    loudness_lufs: float = DEFAULT_LOUDNESS_LUFS
    conditions: list[str] = field(default_factory=list)


def _write_pcm16(path: Path, x: np.ndarray, sample_rate: int) -> None:
    from .data.audio import write_audio

    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, x, sample_rate, subtype="PCM_16")


def _atomic_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def build_kit(
    eval_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    models: Sequence[str] = (),
    dataset: str | os.PathLike | None = None,
    excerpt_seconds: float = 8.0,
    excerpts_per_pair: int = 1,
    max_trials: int = 12,
    loudness_lufs: float = DEFAULT_LOUDNESS_LUFS,
    anchor: bool = True,
    include_dry: bool = False,
    warmup_seconds: float = 2.0,
    test_id: str = "dynamatch",
) -> Kit:
    """Write a webMUSHRA kit for the pairs an evaluation scored (see the module docstring); returns what it wrote.

    ``models``: ``LABEL=SOURCE`` or ``SOURCE`` (map, model file, ``preset:NAME``); default the evaluation
    folder's ``map.json``.  ``dataset``: default the map's recorded dataset.  Models render from
    ``warmup_seconds`` before each excerpt, so their state is settled when it starts; after a held-out
    evaluation the excerpts come from the held-out part only.  All stimuli are matched
    to ``loudness_lufs``; when that would push a stimulus above −1 dBFS peak, the whole kit is matched lower.
    """
    try:
        import yaml
    except ImportError:
        raise ReportError("the webMUSHRA config needs PyYAML: pip install 'dynamatch[listening]'") from None

    from .data.datasets import open_dataset

    eval_dir, output_dir = Path(eval_dir), Path(output_dir)
    if excerpt_seconds < 1.0:
        raise ReportError(f"excerpts must be at least 1 s long (integrated loudness needs it), got {excerpt_seconds:g}")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", test_id):
        raise ReportError(f"test id {test_id!r}: use letters, digits, - and _")
    pairs = _evaluation_pairs(eval_dir)
    record = _evaluation_record(eval_dir)
    kit_models = [open_model(m) for m in models]
    if not kit_models and record.get("models"):  # the models the evaluation scored
        kit_models = [open_model(f"{_clean_label(str(m.get('label') or 'model'))}={m['source']}")
                      for m in record["models"] if isinstance(m, dict) and m.get("source")]
    if not kit_models:
        if (eval_dir / "map.json").is_file():
            kit_models = [open_model(f"fit={eval_dir / 'map.json'}")]
        else:
            raise ReportError(f"{eval_dir}: no map.json here; name the models to compare with --model MAP|MODEL|preset:NAME")
    labels = [m.label for m in kit_models]
    reserved = {"reference", "anchor35", "anchor70", "dry"}
    if len(set(labels)) != len(labels) or reserved & set(labels):
        raise ReportError(f"model labels must be distinct and not {', '.join(sorted(reserved))}: got {', '.join(labels)}; "
                          "name them with --model LABEL=SOURCE")
    dataset_path = Path(dataset) if dataset is not None else (_recorded_dataset(record) or _dataset_from_maps(eval_dir))
    if dataset_path is None:
        raise ReportError(f"{eval_dir}: the dataset it scored is not recorded here; give it with --dataset DATA")
    try:
        ds = open_dataset(dataset_path)
    except DynamatchError as error:
        raise ReportError(str(error)) from None
    by_name = {p.name: p for p in ds.pairs()}
    missing = [p["pair"] for p in pairs if p["pair"] not in by_name]
    if missing:
        raise ReportError(f"{dataset_path}: has no pair {missing[0]!r} of the evaluation {eval_dir}; give the dataset "
                          "it scored with --dataset")
    if len(pairs) * excerpts_per_pair > max_trials:  # spread the trials over the settings
        keep = np.unique(np.round(np.linspace(0, len(pairs) - 1, max(1, max_trials // excerpts_per_pair))).astype(int))
        pairs = [sorted(pairs, key=lambda p: (p["mode"], p["peak_reduction"], p["pair"]))[i] for i in keep]
    rate = ds.sample_rate
    held_out_start = _held_out_start(eval_dir)  # a held-out evaluation: listen to audio the fit never saw
    audio_root = Path("configs") / "resources" / "audio" / test_id
    stimuli: list[dict[str, Any]] = []  # rendered, faded, not yet level-matched
    for pair_row in pairs:
        info = by_name[pair_row["pair"]]
        search = min(info.duration_seconds, held_out_start + warmup_seconds + 600.0)  # never decode 20-min files whole
        dry_all, _ = ds.read(info, duration_seconds=search)
        starts = _excerpt_starts(dry_all, rate, excerpt_seconds, excerpts_per_pair,
                                 skip_seconds=max(warmup_seconds, held_out_start))
        if not starts:
            raise ReportError(f"{info.input_path}: {info.duration_seconds:.1f} s is shorter than one "
                              f"{excerpt_seconds:g}-s excerpt; choose a shorter --excerpt-seconds")
        n = int(round(excerpt_seconds * rate))
        for start in starts:
            lead = min(start, int(warmup_seconds * rate))
            dry, wet = ds.read(info, start_seconds=(start - lead) / rate, duration_seconds=(lead + n) / rate)
            trial_id = f"trial{len({s['trial_id'] for s in stimuli}) + 1:02d}"
            signals = {"reference": wet[lead:lead + n]}
            for model in kit_models:
                signals[model.label] = model.process(dry, rate, info.mode, info.peak_reduction)[lead:lead + n]
            if anchor:
                signals["anchor35"] = lowpass_anchor(wet, rate)[lead:lead + n]
            if include_dry:
                signals["dry"] = dry[lead:lead + n]
            for condition, x in signals.items():
                x = _fade(np.asarray(x, dtype=np.float64), rate)
                lufs = integrated_loudness(x, rate)
                if not math.isfinite(lufs):
                    raise ReportError(f"{info.name} at {start / rate:.1f} s: the {condition} excerpt is silent; "
                                      "choose other pairs or a longer --excerpt-seconds")
                stimuli.append({"trial_id": trial_id, "pair": info.name, "mode": info.mode,
                                "peak_reduction": info.peak_reduction, "start_seconds": start / rate,
                                "duration_seconds": n / rate, "condition": condition, "audio": x,
                                "source_lufs": lufs})
    # one loudness for the whole kit, lowered if a stimulus would peak above the ceiling
    ceiling = 10.0 ** (PEAK_CEILING_DB / 20.0)
    target = float(loudness_lufs)
    for s in stimuli:
        peak = float(np.max(np.abs(s["audio"])))
        allowed = s["source_lufs"] + 20.0 * math.log10(ceiling / peak) if peak > 0 else target
        target = min(target, allowed)
    previous = _previous_kit_files(output_dir)
    trials: list[dict[str, Any]] = []
    for s in stimuli:
        gain_db = target - s["source_lufs"]
        relative = audio_root / s["trial_id"] / f"{s['condition']}.wav"
        _write_pcm16(output_dir / relative, s.pop("audio") * 10.0 ** (gain_db / 20.0), rate)
        trials.append({**s, "file": relative.as_posix(), "gain_db": gain_db, "loudness_lufs": target})
    pages: list[Any] = [{
        "type": "generic", "id": "welcome", "name": "Welcome",
        "content": ("You will hear a reference (the original device) and several versions of the same excerpt. "
                    "Rate how close each one sounds to the reference, from 0 (bad) to 100 (identical). One of them "
                    "is the reference itself. All excerpts are matched in loudness."),
    }]
    trial_pages = []
    for trial_id in dict.fromkeys(t["trial_id"] for t in trials):
        rows = [t for t in trials if t["trial_id"] == trial_id]
        first = rows[0]
        trial_pages.append({
            "type": "mushra", "id": trial_id,
            "name": f"{first['mode']} {first['peak_reduction']:g}",
            "content": "Rate the similarity of each condition to the reference.",
            "showWaveform": True, "enableLooping": True, "randomize": True, "showConditionNames": False,
            "reference": next(t["file"] for t in rows if t["condition"] == "reference"),
            "createAnchor35": False, "createAnchor70": False,
            "stimuli": {t["condition"]: t["file"] for t in rows if t["condition"] != "reference"},
        })
    pages.append(["random", *trial_pages])
    pages.append({"type": "finish", "name": "Thank you", "content": "Thank you for taking part.",
                  "showResults": False, "writeResults": True})
    config = {"testname": f"dynamatch: {', '.join(labels)} vs the device", "testId": test_id, "bufferSize": 2048,
              "stopOnErrors": True, "showButtonPreviousPage": True, "remoteService": "service/write.php", "pages": pages}
    config_path = _atomic_text(output_dir / "configs" / f"{test_id}.yaml",
                               "# webMUSHRA configuration written by `dynamatch listening-test`; copy configs/ into the\n"
                               "# webMUSHRA folder and open ?config=" + f"{test_id}.yaml\n"
                               + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    from .maps.evaluate import write_rows
    from .models.model_file import write_json_atomic

    write_rows(output_dir / "stimuli.csv", trials)
    for stale in previous - {t["file"] for t in trials}:  # files of an earlier kit in this folder that this one dropped
        (output_dir / stale).unlink(missing_ok=True)
    conditions = list(dict.fromkeys(t["condition"] for t in trials))
    write_json_atomic(output_dir / "kit.json", {
        "format": KIT_FORMAT, "format_version": 1, "evaluation": str(eval_dir), "dataset": str(dataset_path),
        "test_id": test_id, "config": config_path.relative_to(output_dir).as_posix(), "loudness_lufs": target,
        "requested_loudness_lufs": float(loudness_lufs), "sample_rate": rate, "excerpt_seconds": excerpt_seconds,
        "models": [{"label": m.label, "source": m.source} for m in kit_models], "conditions": conditions,
        "hidden_reference": "webMUSHRA rates the reference again as condition 'reference'",
        "anchor": f"{ANCHOR_HZ:g} Hz low-pass of the reference" if anchor else None,
    })
    return Kit(output_dir, config_path, trials, target, conditions)
