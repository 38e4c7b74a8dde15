"""One self-contained HTML report of dynamatch runs (``dynamatch report RUN... -o report.html``).

A *run* is a folder or a file written by the existing commands: a fitted model (``model.json`` with its
``.png`` and the dry/wet files it names), a parameter map (``map.json``), an evaluation folder
(``scores.csv``, the paper protocol's ``comp.csv``/``limit.csv``/``scores.csv``, ``held_out.csv``),
benchmarks (``hessian.csv``, ``rtf.csv``), a listening-test kit (``kit.json``: A/B players of its excerpts) or analysis
(``analysis.json``), or the 4A-2A paper's
published ``scores.csv`` (``Method,Mode,Peak Value,ESR,LDR``).  The page has inline CSS, plots as inline SVG,
the runs' PNGs and short audio excerpts as base64 ``data:`` URIs, and no script and no network access.

Numbers in tables are printed with :func:`fmt` (4 significant digits), so a test can find them in the DOM.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import DynamatchError, ReportError
from ..models.parameters import MODES

SCORE_METRICS = ("esr", "delta_ldr_db", "mae", "stft", "delta_lufs")
METRIC_LABELS = {"esr": "ESR", "delta_ldr_db": "ΔLDR (dB)", "mae": "MAE", "stft": "STFT", "delta_lufs": "|ΔLUFS| (LU)"}
SIGNALTRAIN_3C = re.compile(r"^\d{3}_3c_(compress|limit)_")
MAX_CSV_BYTES = 50_000_000


def fmt(value: Any) -> str:
    """A cell: floats with 4 significant digits (``0.001784``, ``-14.07``), ints as ints, None as empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v != 0 and v == round(v) and abs(v) < 1e6:
            return f"{v:g}"
        return f"{v:.4g}"
    return str(value)


# -- reading runs ---------------------------------------------------------------------------------


@dataclass
class Table:
    """A titled table of cells (already formatted or formatted with :func:`fmt`)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    highlight_min: bool = False  # bold the smallest number per row (comparisons)


@dataclass
class Run:
    """What was found in one RUN argument."""

    label: str
    path: Path
    fits: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    maps: list[tuple[Path, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)  # unified rows: series, mode, peak_reduction, pair, metrics
    score_files: list[Path] = field(default_factory=list)
    paper_tables: list[tuple[Path, list[dict[str, Any]]]] = field(default_factory=list)
    hessian: list[tuple[Path, list[dict[str, Any]]]] = field(default_factory=list)
    rtf: list[tuple[Path, list[dict[str, Any]]]] = field(default_factory=list)
    listening: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    kits: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    evaluations: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    neural: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.fits or self.maps or self.scores or self.paper_tables or self.hessian or self.rtf
                    or self.listening or self.kits or self.neural)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; ReportError for an unreadable or non-text file."""
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise ReportError(f"{path}: {path.stat().st_size / 1e6:.0f} MB is too large for a results table")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text CSV file (undecodable bytes); regenerate it") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read ({error.strerror or error})") from None
    if "\x00" in text:
        raise ReportError(f"{path}: not a text CSV file (NUL bytes); regenerate it")
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise ReportError(f"{path}: malformed CSV ({error}); regenerate it") from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise ReportError(f"{path}: empty CSV file; regenerate it")
    return [c.strip() for c in lines[0]], lines[1:]


def _records(path: Path, header: list[str], rows: list[list[str]], numeric: Iterable[str],
             required: Iterable[str]) -> list[dict[str, Any]]:
    """Rows as dicts; the ``numeric`` columns parsed as floats (empty → None); a bad cell is one-line ReportError."""
    missing = [c for c in required if c not in header]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)}; regenerate it")
    numeric = set(numeric)
    out = []
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ReportError(f"{path}: line {number} has {len(row)} fields, the header {len(header)}; the file is corrupt")
        record: dict[str, Any] = {}
        for name, cell in zip(header, row):
            cell = cell.strip()
            if name in numeric:
                if cell == "":
                    record[name] = None
                    continue
                try:
                    record[name] = float(cell)
                except ValueError:
                    raise ReportError(f"{path}: line {number}: {name} is not a number ({cell!r}); the file is corrupt") from None
            else:
                record[name] = cell
        out.append(record)
    return out


def _score_rows(path: Path, records: list[dict[str, Any]], series_column: str | None, run_label: str,
                series_prefix: str = "") -> list[dict[str, Any]]:
    rows = []
    for r in records:
        name = str(r.get(series_column, "")) if series_column else ""
        series = (series_prefix + name).strip() or run_label
        row = {"series": series, "mode": str(r["mode"]), "peak_reduction": r["peak_reduction"],
               "pair": str(r.get("pair", "")), "source": str(path)}
        for metric in SCORE_METRICS:
            if metric in r:
                row[metric] = r[metric]
        rows.append(row)
    return rows


def _add_csv(run: Run, path: Path, strict: bool) -> None:
    """Classify a CSV by its header and add its contents to ``run`` (unknown: error when ``strict``)."""
    header, rows = _read_csv(path)
    columns = set(header)
    metrics = [m for m in SCORE_METRICS if m in columns]
    if header[0] == "Peak Reduction" and "ESR" in columns:  # the paper protocol's comp.csv / limit.csv
        names = ["peak_reduction", "fit_esr", "linear_esr", "spline_esr", "threshold_db", "ratio", "attack_ms",
                 "release_ms", "makeup_db"] + header[9:]
        body = rows[1:] if rows and rows[0][:2] == ["", "GT"] else rows
        records = _records(path, names, [r + [""] * (len(names) - len(r)) if len(r) < len(names) else r for r in body],
                           names, ["peak_reduction"])
        run.paper_tables.append((path, records))
        return
    if {"Method", "Mode", "Peak Value", "ESR"} <= columns:  # the 4A-2A paper's published scores.csv
        records = _records(path, header, rows, ["Mode", "Peak Value", "ESR", "LDR"], ["Method", "Mode", "Peak Value", "ESR"])
        for r in records:
            run.scores.append({"series": f"{r['Method']} (published)", "mode": "limit" if r["Mode"] == 1.0 else "compress",
                               "peak_reduction": r["Peak Value"], "pair": "", "source": str(path), "esr": r["ESR"],
                               "delta_ldr_db": r.get("LDR")})
        run.score_files.append(path)
        return
    if {"mode", "peak_reduction"} <= columns and metrics:
        records = _records(path, header, rows, ["peak_reduction", *metrics], ["mode", "peak_reduction", *metrics])
        if "part" in columns:  # held-out protocol
            for part in dict.fromkeys(r["part"] for r in records):
                sel = [r for r in records if r["part"] == part]
                run.scores += _score_rows(path, sel, None, f"{run.label} {part}")
        elif "method" in columns:  # paper protocol's scores.csv
            run.scores += _score_rows(path, records, "method", run.label, f"{run.label} ")
        else:
            run.scores += _score_rows(path, records, "model" if "model" in columns else None, run.label)
        run.score_files.append(path)
        return
    if {"strategy", "device", "ms", "peak_mb"} <= columns:
        run.hessian.append((path, _records(path, header, rows, ["batch", "seconds", "ms", "peak_mb", "relative_error"],
                                           ["strategy", "device", "ms", "peak_mb"])))
        return
    if {"name", "frame_samples", "rtf"} <= columns:
        run.rtf.append((path, _records(path, header, rows, ["frame_samples", "frames", "audio_seconds", "wall_seconds",
                                                            "rtf", "threads"], ["name", "frame_samples", "rtf"])))
        return
    if strict:
        raise ReportError(f"{path}: unknown CSV layout (columns {', '.join(header[:8])}); expected dynamatch "
                          "scores, paper-protocol, held-out or benchmark tables")
    run.skipped.append(f"{path.name} (unknown columns)")


def _add_json(run: Run, path: Path, strict: bool) -> None:
    from ..maps.parameter_map import MAP_FORMAT, ParameterMap
    from ..models.model_file import COMPRESSOR_FORMAT, compressor_from_document

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        if strict:
            raise ReportError(f"{path}: not a readable JSON file ({error}); regenerate it") from None
        run.skipped.append(f"{path.name} (unreadable JSON)")
        return
    kind = document.get("format") if isinstance(document, dict) else None
    try:
        if kind == COMPRESSOR_FORMAT:
            compressor_from_document(document, path)  # validates
            run.fits.append((path, document))
            return
        if kind == MAP_FORMAT:
            run.maps.append((path, ParameterMap.from_document(document, str(path))))
            return
    except DynamatchError as error:
        raise ReportError(str(error)) from None
    if kind == LISTENING_FORMAT:
        run.listening.append((path, document))
        return
    if kind == KIT_FORMAT:
        run.kits.append((path, document))
        return
    if kind == EVALUATION_FORMAT:
        run.evaluations.append((path, document))
        return
    if isinstance(kind, str) and "neural" in kind:
        run.neural.append((path, document))
        return
    if strict:
        raise ReportError(f"{path}: a {kind!r} JSON file is not a dynamatch result (model, map or analysis)")
    if kind is not None and not str(kind).endswith("progress"):
        run.skipped.append(f"{path.name} ({kind})")


LISTENING_FORMAT = "dynamatch.listening_analysis"
KIT_FORMAT = "dynamatch.listening_kit"
EVALUATION_FORMAT = "dynamatch.evaluation"
MAX_KIT_TRIALS = 4
MAP_TRACE_SECONDS = 10.0  # the built-in capture stimulus (seed 0) the map's gain reduction is traced on
TRACE_POINTS = 1200  # points per plotted trace (block maxima), so the SVG stays small
WARMUP_SECONDS = 2.0  # models render from this long before an excerpt, so their state has settled
MAX_EXCERPT_PAIRS = 2  # scored pairs per evaluation given excerpts (the most compressed of each mode)
AUDIO_BUDGET_BYTES = 12_000_000  # base64 audio on one page; players beyond it are left out with a note
GENERIC_STEMS = ("model", "map", "scores", "held_out", "analysis", "kit", "rtf", "hessian", "evaluation")


def read_run(path: str | os.PathLike, label: str | None = None) -> Run:
    """Read one RUN argument (folder or file); ReportError when it is missing or holds no dynamatch results."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: not found; give a run folder or result file (model.json, map.json, scores.csv, …)")
    default = path.name
    if path.is_file():
        default = f"{path.parent.name}/{path.stem}" if path.stem in GENERIC_STEMS and path.parent.name else path.stem
    run = Run(label=label or default or str(path), path=path)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            _add_csv(run, path, strict=True)
        elif path.suffix.lower() == ".json":
            _add_json(run, path, strict=True)
        else:
            raise ReportError(f"{path}: unknown result file type; give a .json model/map/analysis or a .csv table")
        for fit_path, _ in run.fits:
            png = fit_path.with_suffix(".png")
            if png.is_file():
                run.images.append(png)
    else:
        for child in sorted(path.iterdir()):
            if child.name.startswith(".") or not child.is_file():
                continue
            if child.suffix.lower() == ".json" and not child.name.endswith(".progress.json"):
                _add_json(run, child, strict=False)
            elif child.suffix.lower() == ".csv":
                _add_csv(run, child, strict=False)
            elif child.suffix.lower() == ".png":
                run.images.append(child)
    if run.empty:
        raise ReportError(f"{path}: no dynamatch results found (expected model.json, map.json, scores.csv, comp.csv, "
                          "held_out.csv, hessian.csv, rtf.csv, kit.json or analysis.json); unknown layout")
    return run


# -- rendering helpers ----------------------------------------------------------------------------


CSS = """
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d8dde3;--bg:#fff;--accent:#1f5fa8;--zebra:#f5f7fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0;padding:24px 32px;max-width:1280px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid var(--accent);padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}p.meta,.note{color:var(--muted);font-size:12px}
nav{background:var(--zebra);border:1px solid var(--line);padding:8px 14px;margin:12px 0;border-radius:6px}
nav a{color:var(--accent);margin-right:14px;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid var(--line);padding:3px 8px}th{background:#e9eef5;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:var(--zebra)}
td.best{font-weight:700;color:#0b6b2f}figure{margin:8px 0 18px}figcaption{color:var(--muted);font-size:12px}
figure svg,figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px;background:#fff}
.players{display:flex;flex-wrap:wrap;gap:16px}.players div{font-size:12px}
details{margin:6px 0}summary{cursor:pointer;color:var(--accent)}
pre{background:var(--zebra);padding:8px;border:1px solid var(--line);overflow-x:auto;font-size:12px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def render_table(table: Table, table_id: str | None = None) -> str:
    """``<table>`` markup; numeric cells right-aligned, the row minimum bold when ``highlight_min``."""
    out = [f'<table{f" id={chr(34)}{_esc(table_id)}{chr(34)}" if table_id else ""}>']
    if table.title:
        out.append(f"<caption>{_esc(table.title)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in table.columns) + "</tr></thead><tbody>")
    for row in table.rows:
        best = None
        if table.highlight_min:
            values = [v for v in row[1:] if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
            best = min(values, key=abs) if values else None
        cells = []
        for index, value in enumerate(row):
            is_num = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            classes = ["num"] if is_num else []
            if best is not None and index > 0 and is_num and value == best:
                classes.append("best")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{_esc(fmt(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if table.note:
        out.append(f'<p class="note">{_esc(table.note)}</p>')
    return "".join(out)


class _Figures:
    """matplotlib figures as inline SVG (text kept as text; ids unique per figure)."""

    def __init__(self, audio_budget_bytes: int = 0) -> None:
        self.count = 0
        self.audio_bytes_left = audio_budget_bytes  # base64 audio still allowed on the page

    def take_audio(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` of the page's audio budget; False (nothing reserved) when it would overflow."""
        if nbytes > self.audio_bytes_left:
            return False
        self.audio_bytes_left -= nbytes
        return True

    def svg(self, fig) -> str:
        import matplotlib
        import matplotlib.pyplot as plt

        self.count += 1
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"dynamatch-report-{self.count}"}):
            fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        text = buffer.getvalue()
        start = text.find("<svg")
        text = text[start:]
        # ids are global in an HTML page: prefix every id and reference so two figures never share one
        prefix = f"f{self.count}-"
        text = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
        text = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})", text)
        text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}{m.group(1)}"', text)
        return text


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>"


def _image(path: Path, caption: str | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_esc(path.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption or str(path))}</figcaption></figure>")


def _wav_data_uri(audio: np.ndarray, sample_rate: int) -> str:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0), int(sample_rate), format="WAV",
             subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _player(label: str, audio: np.ndarray, sample_rate: int, figures: _Figures | None = None) -> str:
    """An ``<audio>`` player of ``audio`` as a 16-bit WAV data: URI; empty when the page's audio budget is spent."""
    uri = _wav_data_uri(audio, sample_rate)
    if figures is not None and not figures.take_audio(len(uri)):
        return ""
    return (f'<div><div>{_esc(label)}</div><audio controls preload="none" data-label="{_esc(label)}" '
            f'src="{uri}"></audio></div>')


def gain_reduction_trace(gain_reduction_db: np.ndarray, points: int = TRACE_POINTS) -> np.ndarray:
    """Block maxima of a gain-reduction signal (``points`` blocks), so a plotted trace keeps its peaks."""
    x = np.asarray(gain_reduction_db, dtype=float)
    block = max(1, -(-x.size // points))
    padded = np.concatenate([x, np.full(-x.size % block, x[-1] if x.size else 0.0)])
    return padded.reshape(-1, block).max(axis=1)


def _trace_plot(ax, gain_reduction_db: np.ndarray, sample_rate: int, label: str, start_seconds: float = 0.0) -> None:
    trace = gain_reduction_trace(gain_reduction_db)
    block = max(1, -(-gain_reduction_db.size // TRACE_POINTS))
    ax.plot(start_seconds + np.arange(trace.size) * block / sample_rate, trace, lw=1.0, label=label)


# -- sections -------------------------------------------------------------------------------------


def _parameter_rows(model: str, parameters: Mapping[str, float]) -> list[list[Any]]:
    from ..models.family import model_spec

    spec = model_spec(model)
    return [[p.name, float(parameters[p.name]), p.unit.strip(": ") if p.kind == "ratio" else p.unit, p.description]
            for p in spec.parameters]


def _resolve(source: str | None, base: Path) -> Path | None:
    if not source:
        return None
    candidate = Path(source)
    for path in (candidate, base / candidate, base.parent / candidate):
        if path.is_file():
            return path
    return None


def _fit_audio(path: Path, document: dict[str, Any], audio_seconds: float, figures: _Figures) -> str:
    """A/B players: dry, target, and the model's rendering of the dry, over ``audio_seconds``."""
    from ..data.audio import read_audio
    from ..models.model_file import compressor_from_document

    source = (document.get("provenance") or {}).get("source") or {}
    dry_path, wet_path = _resolve(source.get("dry"), path.parent), _resolve(source.get("wet"), path.parent)
    if audio_seconds <= 0 or dry_path is None or wet_path is None:
        return ""
    try:
        dry, rate = read_audio(dry_path, duration_seconds=audio_seconds)
        wet, wet_rate = read_audio(wet_path, duration_seconds=audio_seconds)
    except DynamatchError:
        return ""
    if wet_rate != rate:
        return ""
    n = min(dry.size, wet.size)
    prediction = compressor_from_document(document, path).process(dry[:n], rate)
    return ('<h3>Listen (first {:g} s)</h3><div class="players">'.format(n / rate)
            + _player("dry (input)", dry[:n], rate, figures) + _player("target (device)", wet[:n], rate, figures)
            + _player(f"model ({document.get('model', 'ff5')})", prediction, rate, figures) + "</div>")


def _history_section(path: Path, history: Any, figures: _Figures) -> str:
    """The optimiser's iterates from the model file: ESR and gradient norm per iteration (SVG) and a table."""
    if not isinstance(history, dict) or not isinstance(history.get("loss"), list) or not history["loss"]:
        return '<p class="note">no fit history in this model file (fitted by an older dynamatch)</p>'
    iterations = history.get("iteration") or list(range(len(history["loss"])))
    columns = [c for c in ("loss", "gradient_norm", "step_size", "elapsed_seconds") if isinstance(history.get(c), list)
               and len(history[c]) == len(iterations)]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 2.8))
    points = [(i, v) for i, v in zip(iterations, history["loss"]) if v is not None and v > 0]
    axes[0].plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, lw=1.1, color="C0")
    axes[0].set_yscale("log")
    axes[0].set_title("ESR (pre-filtered) per iteration", fontsize=9)
    if "gradient_norm" in columns:
        points = [(i, v) for i, v in zip(iterations, history["gradient_norm"]) if v is not None and v > 0]
        axes[1].plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, lw=1.1, color="C1")
        axes[1].set_yscale("log")
    axes[1].set_title("gradient norm per iteration", fontsize=9)
    for ax in axes:
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    labels = {"loss": "ESR", "gradient_norm": "gradient norm", "step_size": "step", "elapsed_seconds": "elapsed (s)"}
    rows = [[int(iterations[i])] + [history[c][i] for c in columns] for i in range(len(iterations))]
    table = render_table(Table("fit history", ["iteration"] + [labels[c] for c in columns], rows),
                         f"fit-history-{_slug(str(path))}")
    return (_figure(figures.svg(fig), f"fit history of {path.name}: {len(iterations) - 1} iterations")
            + f"<details><summary>fit history ({len(iterations)} iterates)</summary>{table}</details>")


def _fit_section(path: Path, document: dict[str, Any], audio_seconds: float, figures: _Figures) -> str:
    model = document.get("model", "ff5")
    fit = document.get("fit") or {}
    out = [f"<h3>Fitted model: {_esc(path.name)} ({_esc(model)})</h3>"]
    out.append(render_table(Table("parameters", ["parameter", "value", "unit", "meaning"],
                                  _parameter_rows(model, document["parameters"]))))
    stats = [["ESR (pre-filtered)", fit.get("esr")], ["iterations", fit.get("iterations")],
             ["method", fit.get("method")], ["converged", fit.get("success")], ["message", fit.get("message")],
             ["fit time (s)", fit.get("fit_seconds")], ["audio (s)", fit.get("duration_seconds")],
             ["sample rate (Hz)", document.get("sample_rate")]]
    alignment = fit.get("alignment") or {}
    if alignment:
        stats += [["latency (samples)", alignment.get("lag_samples")], ["polarity", alignment.get("polarity")],
                  ["dry/wet correlation", alignment.get("correlation")]]
    out.append(render_table(Table("fit", ["quantity", "value"], [r for r in stats if r[1] is not None])))
    selection = fit.get("selection")
    if isinstance(selection, dict) and isinstance(selection.get("candidates"), list):
        rows = [[c.get("model"), c.get("held_out_esr"), c.get("held_out_delta_ldr_db"), c.get("fit_seconds")]
                for c in selection["candidates"] if isinstance(c, dict)]
        out.append(render_table(Table(f"model selection (chosen: {selection.get('chosen')})",
                                      ["model", "held-out ESR", "held-out ΔLDR (dB)", "fit time (s)"], rows)))
    checks = (document.get("provenance") or {}).get("capture_check") or {}
    if checks:
        out.append(render_table(Table("capture check", ["check", "status"], [[k, v] for k, v in checks.items()])))
    out.append(_history_section(path, fit.get("history"), figures))
    out.append(_fit_audio(path, document, audio_seconds, figures))
    return "".join(out)


def _map_section(path: Path, parameter_map, figures: _Figures) -> str:
    from ..models.family import model_spec

    spec = model_spec(parameter_map.model)
    knob = parameter_map.knob
    out = [f"<h3>Parameter map: {_esc(path.name)} ({_esc(parameter_map.model)}, {_esc(parameter_map.interpolation)} "
           f"interpolation over {_esc(knob)})</h3>"]
    plt = _pyplot()
    names = parameter_map.parameter_names
    columns = min(len(names), 5)
    rows_n = -(-len(names) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(2.7 * columns, 2.5 * rows_n), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for mode in parameter_map.modes:
        knots = parameter_map.knots(mode)
        grid = np.linspace(knots[0], knots[-1], 200) if knots.size > 1 else knots
        curve = parameter_map.parameters(grid, mode)
        at_knots = parameter_map.parameters(knots, mode)
        for index, p in enumerate(spec.parameters):
            line, = axes[index].plot(grid, curve[:, index], lw=1.2, label=mode)
            axes[index].plot(knots, at_knots[:, index], "o", ms=3, color=line.get_color())
    for index, p in enumerate(spec.parameters):
        axes[index].set_title(f"{p.name} ({p.unit.strip(': ') or '–'})" if p.kind != "ratio" else "ratio (:1)", fontsize=9)
        axes[index].set_xlabel(knob, fontsize=8)
        axes[index].tick_params(labelsize=7)
        if p.kind == "time":
            axes[index].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    out.append(_figure(figures.svg(fig), f"parameters of {path.name} against {knob} (dots: fitted knots)"))
    out.append(_knot_histories(path, parameter_map, figures))
    for mode, table in parameter_map.modes.items():
        fits = {float(s["peak_reduction"]): s for s in parameter_map.fit_statistics.get(mode, [])
                if isinstance(s, dict) and "peak_reduction" in s}
        header = [knob] + [f"{p.name} ({p.unit.strip(': ') if p.kind == 'ratio' else p.unit})".replace(" ()", "")
                           for p in spec.parameters] + ["fit ESR", "iterations", "converged", "fit time (s)"]
        rows = [[float(k)] + [float(table[p.name][i]) for p in spec.parameters]
                + [fits.get(float(k), {}).get(c) for c in ("esr", "iterations", "success", "elapsed_seconds")]
                for i, k in enumerate(table["peak_reduction"])]
        out.append(render_table(Table(f"{mode}: knots", header, rows)))
    return "".join(out)


def _knot_histories(path: Path, parameter_map, figures: _Figures) -> str:
    """ESR per iteration of every knot's fit (maps fitted by a dynamatch that records ``history``)."""
    curves = [(mode, float(s["peak_reduction"]), s["history"]) for mode, entries in parameter_map.fit_statistics.items()
              for s in entries if isinstance(s, dict) and isinstance(s.get("history"), list) and s["history"]]
    if not curves:
        return ""
    plt = _pyplot()
    modes = list(dict.fromkeys(c[0] for c in curves))
    fig, axes = plt.subplots(1, len(modes), figsize=(4.6 * len(modes), 2.6), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for _, knob, losses in (c for c in curves if c[0] == mode):
            points = [(i, v) for i, v in enumerate(losses) if v is not None and v > 0]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=2, lw=1.0,
                    label=f"{parameter_map.knob} {fmt(knob)}")
        ax.set_yscale("log")
        ax.set_title(f"{mode}: fit ESR per iteration", fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _figure(figures.svg(fig), f"fit history of each knot of {path.name} (chained fits: from the previous knot)")


def knob_settings(knots: np.ndarray) -> list[float]:
    """The few settings a map's gain reduction is traced at: its lowest, middle and highest knot."""
    knots = np.sort(np.asarray(knots, dtype=float))
    return list(dict.fromkeys(float(knots[i]) for i in (0, knots.size // 2, knots.size - 1))) if knots.size else []


def _map_traces(path: Path, parameter_map, figures: _Figures) -> str:
    """Gain reduction of the map at a few knob settings on the built-in capture stimulus (SVG and a table)."""
    from ..data.stimulus import capture_stimulus

    rate = int(parameter_map.sample_rate)
    x = capture_stimulus(rate, duration_seconds=MAP_TRACE_SECONDS, seed=0)
    modes = list(parameter_map.modes)
    plt = _pyplot()
    fig, axes = plt.subplots(len(modes), 1, figsize=(9.0, 2.3 * len(modes)), squeeze=False)
    rows = []
    for ax, mode in zip(axes[:, 0], modes):
        for knob in knob_settings(parameter_map.knots(mode)):
            compressor = parameter_map.compressor(knob, mode)
            gain_reduction = -20.0 * np.log10(np.maximum(compressor.gain(x, rate), 1e-12))
            _trace_plot(ax, gain_reduction, rate, f"{parameter_map.knob} {fmt(knob)}")
            rows.append([mode, knob, float(np.mean(gain_reduction)), float(np.max(gain_reduction))])
        ax.set_title(f"{mode}: gain reduction on the capture stimulus", fontsize=9)
        ax.set_ylabel("GR (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)", fontsize=8)
    fig.tight_layout()
    table = render_table(Table("gain reduction on the capture stimulus", ["mode", parameter_map.knob, "mean GR (dB)",
                                                                           "max GR (dB)"], rows,
                               note=f"the first {MAP_TRACE_SECONDS:g} s of the built-in capture stimulus (seed 0) at "
                                    f"{rate} Hz; GR before make-up, positive = quieter"),
                         f"map-gr-{_slug(str(path))}")
    return _figure(figures.svg(fig), f"gain reduction of {path.name} at {len(rows)} knob settings") + table


def _excerpt_pairs(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The scored pairs given excerpts: per mode, the pair at the highest setting (the most compression)."""
    chosen = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sel = [r for r in rows if r["mode"] == mode and r.get("pair")]
        if sel:
            chosen.append(max(sel, key=lambda r: (float(r["peak_reduction"]), r["pair"])))
    return chosen[:MAX_EXCERPT_PAIRS]


def _evaluation_excerpts(run: Run, path: Path, document: dict[str, Any], audio_seconds: float,
                         figures: _Figures) -> str:
    """For an evaluation folder: gain-reduction traces of each model and A/B players (dry, target, each model)
    on a short excerpt (the ``audio_seconds`` of most drive) of a scored pair, when the dataset is reachable."""
    from ..data.datasets import open_dataset
    from ..listening import _excerpt_starts, _held_out_start, open_model

    if audio_seconds <= 0:
        return ""
    dataset_path = _resolve_folder(document.get("dataset"), path.parent)
    if dataset_path is None:
        return (f'<p class="note">{_esc(path.name)}: the dataset {_esc(document.get("dataset"))} is not reachable '
                "here; no excerpts</p>")
    models, problems = [], []
    for entry in document.get("models") or []:
        if not isinstance(entry, dict) or not entry.get("source"):
            continue
        source = str(entry["source"])
        if not source.startswith("preset:") and not Path(source).is_absolute():
            source = str(path.parent / source)
        try:
            model = open_model(source)
            model.label = str(entry.get("label") or model.label)
            models.append(model)
        except DynamatchError as error:
            problems.append(str(error))
    try:
        dataset = open_dataset(dataset_path)
    except DynamatchError as error:
        return f'<p class="note">{_esc(error)}; no excerpts</p>'
    by_name = {p.name: p for p in dataset.pairs()}
    own = [r for r in run.scores if r.get("source", "").startswith(str(path.parent))] or run.scores
    rate = dataset.sample_rate
    skip = max(WARMUP_SECONDS, _held_out_start(path.parent))
    out = [f"<h3>Excerpts of scored pairs ({_esc(path.name)}: {_esc(document.get('protocol'))} protocol on "
           f"{_esc(dataset_path)})</h3>"]
    out += [f'<p class="note">{_esc(p)}</p>' for p in problems]
    table_rows: list[list[Any]] = []
    for row in _excerpt_pairs(own):
        info = by_name.get(row["pair"])
        if info is None:
            out.append(f'<p class="note">{_esc(dataset_path)} has no pair {_esc(row["pair"])}</p>')
            continue
        search, _ = dataset.read(info, duration_seconds=min(info.duration_seconds, skip + 120.0))
        starts = _excerpt_starts(search, rate, audio_seconds, 1, skip_seconds=skip)
        if not starts:
            continue
        start, n = starts[0], int(round(audio_seconds * rate))
        lead = min(start, int(WARMUP_SECONDS * rate))
        dry, wet = dataset.read(info, start_seconds=(start - lead) / rate, duration_seconds=(lead + n) / rate)
        dry_part, wet_part = dry[lead:lead + n], wet[lead:lead + n]
        players = [_player("dry (input)", dry_part, rate, figures), _player("target (device)", wet_part, rate, figures)]
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(9.0, 2.6))
        traced = 0
        for model in models:
            prediction = model.process(dry, rate, info.mode, info.peak_reduction)[lead:lead + n]
            players.append(_player(f"model {model.label}", prediction, rate, figures))
            gain_reduction = model.gain_reduction_db(dry, rate, info.mode, info.peak_reduction)
            if gain_reduction is not None:
                gain_reduction = gain_reduction[lead:lead + n]
                _trace_plot(ax, gain_reduction, rate, model.label, start / rate)
                table_rows.append([model.label, info.mode, float(info.peak_reduction), info.name, start / rate,
                                   float(np.mean(gain_reduction)), float(np.max(gain_reduction))])
                traced += 1
        heading = (f"<p>{_esc(info.name)} ({_esc(info.mode)} {fmt(float(info.peak_reduction))}), "
                   f"{fmt(start / rate)}–{fmt((start + n) / rate)} s</p>")
        if traced:
            ax.set_title(f"{info.name}: gain reduction of each model", fontsize=9)
            ax.set_xlabel("time in the file (s)", fontsize=8)
            ax.set_ylabel("GR (dB)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right")
            fig.tight_layout()
            heading += _figure(figures.svg(fig), f"gain reduction on {info.name} (before make-up)")
        else:
            plt.close(fig)
        shown = [p for p in players if p]
        if len(shown) < len(players):
            heading += f'<p class="note">{len(players) - len(shown)} player(s) left out: the page\'s audio budget is spent</p>'
        out.append(heading + f'<div class="players">{"".join(shown)}</div>')
    if table_rows:
        out.append(render_table(Table("gain reduction on the excerpts", ["model", "mode", "setting", "pair", "start (s)",
                                                                          "mean GR (dB)", "max GR (dB)"], table_rows),
                                f"eval-gr-{_slug(str(path.parent))}"))
    return "".join(out)


def _resolve_folder(source: Any, base: Path) -> Path | None:
    if not source:
        return None
    candidate = Path(str(source))
    for path in (candidate, base / candidate, base.parent / candidate):
        if path.exists():
            return path
    return None


def _mean(values: Iterable[Any]) -> float | None:
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(values)) if values else None


def _mean_over_settings(rows: Sequence[Mapping[str, Any]], metric: str, absolute: bool = False) -> float | None:
    """Mean over settings of the per-setting mean (pairs at one setting averaged first), as the paper's means."""
    per_setting: dict[float, list[float]] = {}
    for r in rows:
        if r.get(metric) is not None:
            per_setting.setdefault(float(r["peak_reduction"]), []).append(abs(r[metric]) if absolute else r[metric])
    return _mean(_mean(v) for v in per_setting.values()) if per_setting else None


def _settings_table(rows: Sequence[Mapping[str, Any]], metric: str, mode: str, series: Sequence[str]) -> Table:
    """Per setting (knob value) of one mode: the metric of each series (mean over its pairs at that setting)."""
    knobs = sorted({float(r["peak_reduction"]) for r in rows if r["mode"] == mode})
    body = []
    for knob in knobs:
        line: list[Any] = [knob]
        for s in series:
            values = [r.get(metric) for r in rows if r["series"] == s and r["mode"] == mode
                      and float(r["peak_reduction"]) == knob]
            line.append(_mean(values))
        body.append(line)
    return Table(f"{mode}: {METRIC_LABELS.get(metric, metric)} per setting", ["setting"] + list(series), body,
                 highlight_min=len(series) > 1)


def _scores_plot(rows: Sequence[Mapping[str, Any]], series: Sequence[str], modes: Sequence[str], figures: _Figures) -> str:
    plt = _pyplot()
    metrics = [m for m in ("esr", "delta_ldr_db") if any(r.get(m) is not None for r in rows)]
    if not metrics:
        return ""
    fig, axes = plt.subplots(len(metrics), len(modes), figsize=(5.2 * len(modes), 3.0 * len(metrics)), squeeze=False)
    for column, mode in enumerate(modes):
        for line, metric in enumerate(metrics):
            ax = axes[line][column]
            for s in series:
                points = {}
                for r in rows:
                    if r["series"] == s and r["mode"] == mode and r.get(metric) is not None:
                        points.setdefault(float(r["peak_reduction"]), []).append(float(r[metric]))
                if points:
                    x = sorted(points)
                    ax.plot(x, [np.mean(points[k]) for k in x], marker="o", ms=3, lw=1.1, label=s)
            ax.set_title(f"{mode}: {METRIC_LABELS[metric]}", fontsize=9)
            ax.set_xlabel("setting", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if metric == "esr":
                ax.set_yscale("log")
            if metric == "delta_ldr_db":
                ax.axhline(0.0, color="0.5", lw=0.6)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return _figure(figures.svg(fig), "ESR and ΔLDR per setting (the 4A-2A paper's Figures 6/7); ΔLDR > 0: less compressed")


def _published_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The 4A-2A paper's per-setting fit ESR (shipped la2a preset) for the settings of SignalTrain 3c pairs."""
    from ..maps.parameter_map import ParameterMap

    if not any(SIGNALTRAIN_3C.match(str(r.get("pair", ""))) for r in rows):
        return []
    statistics = ParameterMap.preset("la2a").fit_statistics
    shipped = ParameterMap.preset("la2a").provenance.get("citation") is not None
    if not shipped:
        return []  # a user map installed as la2a: not the paper's table
    out = []
    wanted = {(r["mode"], float(r["peak_reduction"])) for r in rows}
    for mode, entries in statistics.items():
        for entry in entries:
            if (mode, float(entry["peak_reduction"])) in wanted and entry.get("esr") is not None:
                out.append({"series": "4A-2A paper (published)", "mode": mode, "peak_reduction": float(entry["peak_reduction"]),
                            "pair": "", "esr": float(entry["esr"])})
    return out


def _comparison_section(rows: Sequence[Mapping[str, Any]], figures: _Figures, note: str = "") -> str:
    series = list(dict.fromkeys(r["series"] for r in rows))
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    modes += sorted({r["mode"] for r in rows} - set(modes))
    out = []
    summary = []
    for s in series:
        for mode in modes:
            sel = [r for r in rows if r["series"] == s and r["mode"] == mode]
            if not sel:
                continue
            summary.append([s, mode, len({float(r["peak_reduction"]) for r in sel}), _mean_over_settings(sel, "esr"),
                            _mean_over_settings(sel, "delta_ldr_db", absolute=True), _mean_over_settings(sel, "mae")])
    out.append(render_table(Table("summary (mean over settings)", ["model", "mode", "settings", "mean ESR",
                                                                    "mean |ΔLDR| (dB)", "mean MAE"], summary,
                                  note=note), "summary-table"))
    out.append(_scores_plot(rows, series, modes, figures))
    for metric in ("esr", "delta_ldr_db"):
        if not any(r.get(metric) is not None for r in rows):
            continue
        for mode in modes:
            present = [s for s in series if any(r["series"] == s and r["mode"] == mode and r.get(metric) is not None
                                                for r in rows)]
            if present:
                table = _settings_table(rows, metric, mode, present)
                if metric == "delta_ldr_db":
                    table.note = "closest to 0 in bold"
                out.append(render_table(table, f"{metric}-{_slug(mode)}"))
    return "".join(out)


def _scores_detail(rows: Sequence[Mapping[str, Any]]) -> str:
    metrics = [m for m in SCORE_METRICS if any(r.get(m) is not None for r in rows)]
    body = [[r["series"], r["mode"], float(r["peak_reduction"]), r["pair"]] + [r.get(m) for m in metrics] for r in rows]
    table = Table("every scored pair", ["model", "mode", "setting", "pair"] + [METRIC_LABELS[m] for m in metrics], body)
    return f"<details><summary>every scored pair ({len(rows)} rows)</summary>{render_table(table)}</details>"


def _paper_table(path: Path, records: list[dict[str, Any]]) -> str:
    columns = list(records[0]) if records else []
    labels = {"peak_reduction": "peak reduction", "fit_esr": "ESR fit (GT)", "linear_esr": "ESR linear",
              "spline_esr": "ESR spline", "threshold_db": "threshold (dB)", "ratio": "ratio (:1)",
              "attack_ms": "attack (ms)", "release_ms": "release (ms)", "makeup_db": "make-up (dB)"}
    return render_table(Table(f"{path.name}: the paper's table layout", [labels.get(c, c) for c in columns],
                              [[r[c] for c in columns] for r in records]))


def _hessian_section(path: Path, records: list[dict[str, Any]]) -> str:
    from ..bench.hessian import PAPER_RTX3060

    rows = []
    for r in records:
        paper = PAPER_RTX3060.get(r["strategy"])
        rows.append([r["strategy"], r["device"], r.get("ms"), r.get("peak_mb"), r.get("relative_error"), r.get("status", ""),
                     paper[1] if paper else None, paper[0] if paper else None])
    return render_table(Table(f"{path.name}: 5×5 Hessian strategies", ["strategy", "device", "ms", "peak MB",
                                                                      "rel. error", "status", "paper RTX 3060 ms",
                                                                      "paper MB"], rows))


def _rtf_section(path: Path, records: list[dict[str, Any]], figures: _Figures) -> str:
    names = list(dict.fromkeys(r["name"] for r in records))
    frames = sorted({int(r["frame_samples"]) for r in records})
    rows = [[frame] + [next((r["rtf"] for r in records if r["name"] == n and int(r["frame_samples"]) == frame), None)
                       for n in names] for frame in frames]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for n in names:
        sel = sorted((int(r["frame_samples"]), r["rtf"]) for r in records if r["name"] == n)
        ax.plot([s[0] for s in sel], [s[1] for s in sel], marker="o", ms=3, label=n)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axhline(1.0, color="0.4", lw=0.7, ls="--")
    ax.set_xlabel("frame (samples)")
    ax.set_ylabel("real-time factor")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return (render_table(Table(f"{path.name}: real-time factor (audio seconds per wall second)", ["frame"] + names, rows))
            + _figure(figures.svg(fig), "real-time factor against frame size (dashed: real time)"))


def _listening_section(path: Path, document: dict[str, Any]) -> str:
    conditions = document.get("conditions") or []
    rows = [[c.get("condition"), c.get("n"), c.get("median"), c.get("q1"), c.get("q3"), c.get("mean_rank")]
            for c in conditions if isinstance(c, dict)]
    kw = document.get("kruskal_wallis") or {}
    excluded = [str(e) for e in document.get("excluded_listeners") or []]
    pairs = [[p.get("a"), p.get("b"), p.get("t"), p.get("p"), p.get("p_adjusted"), p.get("significant")]
             for p in document.get("conover") or [] if isinstance(p, dict)]
    return (render_table(Table(f"{path.name}: ratings per condition", ["condition", "n", "median", "Q1", "Q3", "mean rank"],
                               rows, note=f"Kruskal–Wallis H = {fmt(kw.get('h'))}, df = {fmt(kw.get('df'))}, "
                                          f"p = {fmt(kw.get('p'))}; {document.get('listeners', 0)} listener(s)"
                                          + (f", excluded by post-screening: {', '.join(excluded)}" if excluded else "")))
            + render_table(Table(f"Conover post-hoc ({document.get('adjust', 'holm')}-adjusted)",
                                 ["a", "b", "t", "p", "p adjusted", f"p adj < {document.get('alpha', 0.05)}"], pairs)))


def _kit_section(path: Path, document: dict[str, Any], audio_seconds: float, figures: _Figures) -> str:
    """A/B players of a listening kit's first trials: the device (reference), each model, anchor, dry."""
    stimuli_path = path.parent / "stimuli.csv"
    if not stimuli_path.is_file():
        return f'<p class="note">{_esc(path)}: no stimuli.csv beside it</p>'
    header, rows = _read_csv(stimuli_path)
    records = _records(stimuli_path, header, rows, ["peak_reduction", "start_seconds", "gain_db", "loudness_lufs"],
                       ["trial_id", "condition", "file", "pair", "mode", "peak_reduction"])
    trials = list(dict.fromkeys(r["trial_id"] for r in records))
    out = [f"<h3>Listening kit {_esc(path.parent.name)}: {len(trials)} trials at {fmt(document.get('loudness_lufs'))} LUFS"
           f" (conditions: {_esc(', '.join(document.get('conditions') or []))})</h3>"]
    if audio_seconds <= 0:
        return "".join(out)
    import soundfile as sf

    for trial in trials[:MAX_KIT_TRIALS]:
        sel = [r for r in records if r["trial_id"] == trial]
        first = sel[0]
        players = []
        for r in sel:
            audio_path = path.parent / r["file"]
            if not audio_path.is_file():
                continue
            x, rate = sf.read(str(audio_path), frames=int(audio_seconds * sf.info(str(audio_path)).samplerate),
                              dtype="float64")
            label = {"reference": "target (device)", "dry": "dry (input)", "anchor35": "anchor (3.5 kHz low-pass)"}
            players.append(_player(label.get(r["condition"], f"model {r['condition']}"), x, rate, figures))
        out.append(f"<p>{_esc(trial)}: {_esc(first['pair'])} ({_esc(first['mode'])} {fmt(first['peak_reduction'])}), "
                   f"from {fmt(first.get('start_seconds'))} s</p><div class=\"players\">{''.join(players)}</div>")
    if len(trials) > MAX_KIT_TRIALS:
        out.append(f'<p class="note">first {MAX_KIT_TRIALS} of {len(trials)} trials shown</p>')
    return "".join(out)


def _comparison_of_parameters(runs: Sequence[Run]) -> str:
    fits = [(run.label, path, doc) for run in runs for path, doc in run.fits]
    if len(fits) < 2:
        return ""
    names = list(dict.fromkeys(n for _, _, doc in fits for n in doc["parameters"]))
    rows = [[n] + [doc["parameters"].get(n) for _, _, doc in fits] for n in names]
    rows.append(["ESR (fit)"] + [(doc.get("fit") or {}).get("esr") for _, _, doc in fits])
    return render_table(Table("fitted parameters side by side", ["parameter"] + [f"{label}: {p.name}" for label, p, _ in fits],
                              rows), "parameter-comparison")


# -- the page -------------------------------------------------------------------------------------


def build_report(
    runs: Sequence[str | os.PathLike],
    *,
    title: str = "dynamatch report",
    labels: Sequence[str] | None = None,
    audio_seconds: float = 4.0,
    published: bool = True,
) -> str:
    """The HTML text of a report on ``runs`` (folders or files); ReportError for a missing or unknown run.

    ``published``: add the 4A-2A paper's per-setting fit ESR to the comparison when the scored pairs are
    SignalTrain 3c pairs (comparable only on the real dataset).  ``audio_seconds``: length of the A/B
    excerpts of a fitted model (0: none).
    """
    from .. import __version__

    if not runs:
        raise ReportError("give at least one run folder or result file")
    labels = list(labels or [])
    read = []
    for index, path in enumerate(runs):
        read.append(read_run(path, labels[index] if index < len(labels) else None))
    seen: dict[str, int] = {}
    for run in read:  # distinct labels, so series of different runs never merge
        if run.label in seen:
            seen[run.label] += 1
            run.label = f"{run.label} ({seen[run.label]})"
        else:
            seen[run.label] = 1
    figures = _Figures(AUDIO_BUDGET_BYTES)
    all_scores: list[dict[str, Any]] = []
    for run in read:
        for row in run.scores:
            row = dict(row)
            if len(read) > 1 and not row["series"].startswith(run.label) and "(published)" not in row["series"]:
                row["series"] = f"{run.label}: {row['series']}"
            all_scores.append(row)
    nav, body = [], []
    if all_scores:
        note = ""
        if published and not any("(published)" in r["series"] for r in all_scores):
            paper = _published_rows(all_scores)
            if paper:
                note = ("'4A-2A paper (published)': the paper's in-sample fit ESR on the real SignalTrain 3c files; "
                        "comparable only when these runs scored that dataset.")
                all_scores = all_scores + paper
        series = list(dict.fromkeys(r["series"] for r in all_scores))
        heading = "Comparison" if len(series) > 1 else "Scores"
        nav.append(f'<a href="#comparison">{heading}</a>')
        body.append(f'<section id="comparison"><h2>{heading}: ESR and ΔLDR per setting</h2>'
                    + _comparison_section(all_scores, figures, note) + "</section>")
    parameters = _comparison_of_parameters(read)
    if parameters:
        nav.append('<a href="#parameters">Parameters</a>')
        body.append(f'<section id="parameters"><h2>Fitted parameters</h2>{parameters}</section>')
    for index, run in enumerate(read):
        anchor = f"run-{index + 1}-{_slug(run.label)}"
        nav.append(f'<a href="#{anchor}">{_esc(run.label)}</a>')
        part = [f'<section id="{anchor}"><h2>Run: {_esc(run.label)}</h2><p class="meta">{_esc(run.path)}</p>']
        for path, document in run.fits:
            part.append(_fit_section(path, document, audio_seconds, figures))
        for path, parameter_map in run.maps:
            part.append(_map_section(path, parameter_map, figures))
            part.append(_map_traces(path, parameter_map, figures))
        if run.scores:
            part.append(f"<h3>Scores ({', '.join(_esc(p.name) for p in run.score_files)})</h3>")
            own = list(dict.fromkeys(r["series"] for r in run.scores))
            modes = list(dict.fromkeys(r["mode"] for r in run.scores))
            part.append(_scores_plot(run.scores, own, modes, figures) if len(read) > 1 else "")
            part.append(_scores_detail(run.scores))
        for path, records in run.paper_tables:
            part.append(_paper_table(path, records))
        for path, records in run.hessian:
            part.append(_hessian_section(path, records))
        for path, records in run.rtf:
            part.append(_rtf_section(path, records, figures))
        for path, document in run.listening:
            part.append(_listening_section(path, document))
        for path, document in run.kits:
            part.append(_kit_section(path, document, audio_seconds, figures))
        for path, document in run.evaluations:
            part.append(_evaluation_excerpts(run, path, document, audio_seconds, figures))
        for path, document in run.neural:
            config = document.get("config") or {}
            part.append(render_table(Table(f"neural model {path.name}", ["setting", "value"],
                                           [[k, json.dumps(v) if isinstance(v, (dict, list)) else v]
                                            for k, v in config.items()])))
        shown_fit_pngs = {p.with_suffix(".png") for p, _ in run.fits}
        for image in run.images:
            caption = f"{image.name} (from the run{'; levels, error and gain reduction over time' if image in shown_fit_pngs else ''})"
            part.append(f"<details{' open' if image in shown_fit_pngs else ''}><summary>{_esc(image.name)}</summary>"
                        f"{_image(image, caption)}</details>")
        if run.skipped:
            part.append(f'<p class="note">not shown: {_esc(", ".join(run.skipped))}</p>')
        part.append("</section>")
        body.append("".join(part))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; media-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1><p class=\"meta\">dynamatch {_esc(__version__)} · {stamp} · "
            f"{len(read)} run(s): {_esc(', '.join(str(r.path) for r in read))}</p>"
            f"<nav>{''.join(nav)}</nav>{''.join(body)}</body></html>\n")


def write_report(runs: Sequence[str | os.PathLike], output: str | os.PathLike, **options: Any) -> Path:
    """Build the report of ``runs`` and write it to ``output`` atomically; returns the path."""
    from ..models.model_file import check_writable

    output = check_writable(output)
    text = build_report(runs, **options)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output
