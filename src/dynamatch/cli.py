"""The ``dynamatch`` command line.

Every user error is printed as one line (``error: ...``) with exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import DynamatchError
from .models.parameters import MODES
from .timing import PROCESS_STARTED, StageTimes

console = Console(stderr=True, highlight=False)
DEFAULT_SAMPLE_RATE = 44100
PLOT_SECONDS = 30.0


def _handle_errors(command):
    """Turn DynamatchError (and a missing optional dependency) into one line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except (DynamatchError, ImportError) as error:
            if debug:
                raise
            message = str(error)
            if isinstance(error, ModuleNotFoundError):
                message = f"{error}; install the optional extras: pip install 'dynamatch[nn]'"
            console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
            sys.exit(2)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/] (completed work was saved; run the same command to resume)")
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.option("--format", "table_format", type=click.Choice(["auto", "table", "plain", "csv", "json"]), default="auto",
              show_default=True, envvar="DYNAMATCH_FORMAT",
              help="Tables: rich on a terminal and plain text elsewhere (auto), or csv/json on stdout.")
@click.version_option(package_name="dynamatch")
def main(debug: bool, table_format: str) -> None:
    """Capture dynamic range compressors as fast, interpretable real-time models."""
    _show_library_warnings()


def print_table(table: Table) -> None:
    """Print a table per ``--format``: rich on a terminal, else plain/CSV/JSON text on stdout (never truncated)."""
    from .report.tables import render, rich_table_cells

    ctx = click.get_current_context(silent=True)
    fmt = ctx.find_root().params.get("table_format", "auto") if ctx is not None else "auto"
    if fmt == "auto":
        fmt = "table" if console.is_terminal else "plain"
    if fmt == "table":
        console.print(table)
        return
    click.echo(render(*rich_table_cells(table), fmt), nl=False)


class _ConsoleWarnings(logging.Handler):
    """The library's warnings (dynamatch.* loggers) as one ``warning:`` line each on the console."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"[yellow]warning:[/] {escape(record.getMessage())}", soft_wrap=True)


def _show_library_warnings() -> None:
    logger = logging.getLogger("dynamatch")
    if not any(isinstance(h, _ConsoleWarnings) for h in logger.handlers):
        handler = _ConsoleWarnings(logging.WARNING)
        logger.addHandler(handler)


# -- capture check --------------------------------------------------------------------------------


def _capture_check_options(command):
    """--reference-dbu, --input-reference-dbu and --ignore-checks, shared by `check` and `fit`."""
    command = click.option("--ignore-checks", is_flag=True,
                           help="Go on when a capture check fails (see `dynamatch check`).")(command)
    command = click.option("--input-reference-dbu", type=float, default=None,
                           help="dBu at 0 dBFS of the input that recorded WET (default: --reference-dbu).")(command)
    return click.option("--reference-dbu", type=float, default=None,
                        help="dBu at 0 dBFS of the output that played DRY (the interface's level reference); "
                             "recorded in the model file.")(command)


def check_table(report) -> Table:
    colours = {"pass": "green", "warn": "yellow", "fail": "bold red"}
    table = Table(title=f"capture check: {escape(report.wet_name)}", header_style="bold")
    for column in ("check", "status", "reading"):
        table.add_column(column)
    for line in report.lines:
        table.add_row(line.name, f"[{colours[line.status]}]{line.status}[/]", escape(line.message))
    return table


def _run_capture_check(pair, reference_dbu, input_reference_dbu, ignore_checks, verbose=False, warmup_seconds=1.0):
    """:func:`dynamatch.fitting.check_capture_for_fit`, printed: the table with ``--verbose``, warnings as one line."""
    from .fitting import check_capture_for_fit

    report = check_capture_for_fit(pair, reference_dbu=reference_dbu, input_reference_dbu=input_reference_dbu,
                                   ignore_checks=ignore_checks, warmup_seconds=warmup_seconds)
    if verbose:
        print_table(check_table(report))
    flagged = [f"{line.name} {line.status}: {line.message}" for line in report.lines if line.status != "pass"]
    if flagged:
        click.echo("warning: capture check: " + "; ".join(flagged)
                   + ("; going on (--ignore-checks)" if not report.passed else ""), err=True)
    return report


@main.command("check")
@click.argument("dry", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("wet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here ('-' for stdout).")
@click.option("--reference-dbu", type=float, default=None, help="dBu at 0 dBFS of the output that played DRY.")
@click.option("--input-reference-dbu", type=float, default=None,
              help="dBu at 0 dBFS of the input that recorded WET (default: --reference-dbu).")
@_handle_errors
def check_command(dry, wet, json_path, reference_dbu, input_reference_dbu):
    """Capture report of DRY → WET before fitting: latency, polarity, level, drift, clipping, noise, stimulus,
    calibration; pass/warn/fail per line.  Exit status 1 when a line fails."""
    from .data.check import check_files

    report = check_files(dry, wet, reference_dbu=reference_dbu, input_reference_dbu=input_reference_dbu)
    print_table(check_table(report))
    if json_path is not None:
        if str(json_path) == "-":
            click.echo(json.dumps(report.to_dict(), indent=2))
        else:
            from .documents import write_json

            write_json(json_path, report.to_dict())
    verdict = "[green]passed[/]" if report.passed else "[bold red]failed[/]"
    console.print(f"capture check {verdict}")
    if not report.passed:
        sys.exit(1)


# -- fit ------------------------------------------------------------------------------------------


def parameter_table(compressor, title: str | None = None) -> Table:
    table = Table(title=title or f"fitted parameters ({compressor.model})", show_header=True, header_style="bold")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for p in compressor.spec.parameters:
        table.add_row(p.name, f"{compressor.to_dict()[p.name]:.4g} {p.unit}".rstrip())
    return table


def selection_table(selection) -> Table:
    """The candidates of ``--model auto``: held-out ESR and ΔLDR, parameters, fit time; the choice marked."""
    table = Table(title=f"model selection (held-out: last {selection.holdout_fraction:.0%} of the audio)",
                  header_style="bold")
    for column in ("model", "parameters", "fit ESR", "held-out ESR", "held-out ΔLDR dB", "fit s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in selection.rows:
        mark = " ←" if row.model == selection.chosen else ""
        table.add_row(row.model + mark, str(row.parameters), f"{row.fit_esr:.4g}", f"{row.held_out_esr:.4g}",
                      f"{row.held_out_delta_ldr_db:+.3f}", f"{row.fit_seconds:.1f}")
    return table


def progress_printer():
    """Optimiser callback printing one line per iteration: loss (= pre-filtered ESR), gradient, step, time."""
    console.print(f"{'iter':>4}  {'ESR':>11}  {'|grad|':>9}  {'step':>7}  {'time s':>7}")

    def callback(intermediate) -> None:
        if not intermediate.history:
            return
        record = intermediate.history[-1]
        console.print(
            f"{record.iteration:>4}  {record.loss:>11.6g}  {record.gradient_norm:>9.3g}  "
            f"{record.step_size:>7.3g}  {record.elapsed_seconds:>7.2f}"
        )

    return callback


def _parallel_options(command):
    """``--workers N`` (a local Dask cluster) and ``--scheduler tcp://host:port`` (an existing one)."""
    command = click.option("--scheduler", default=None,
                           help="Run on the Dask cluster at tcp://host:port (needs dynamatch[dask]).")(command)
    return click.option("--workers", type=int, default=None,
                        help="Run independent fits on a local Dask cluster of N workers (needs dynamatch[dask]).")(command)


def _device_option(command):
    """``--device cuda|cpu-torch``: the torch parallel-scan objective (any member) instead of the numba kernels."""
    return click.option("--device", "objective_device", type=click.Choice(["cuda", "cpu-torch"]), default=None,
                        help="Evaluate the objective with the torch parallel-scan backend on this device "
                             "(any family member; default: numba on the CPU).")(command)


@main.command()
@click.argument("dry", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("wet", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("model.json"),
              show_default=True, help="Model file to write (a summary .txt and a .png plot go beside it).")
@click.option("--model", default="ff5", show_default=True,
              help="Family member to fit (see `dynamatch models`), or 'auto' to choose by held-out ESR.")
@click.option("--candidates", default=None,
              help="--model auto: comma-separated members to choose among (default: a standard set).")
@click.option("--method", type=click.Choice(["newton", "lm", "adam"]), default="newton", show_default=True)
@click.option("--max-iterations", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--no-align", is_flag=True, help="Skip latency/polarity alignment.")
@click.option("--warm-start", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from a previously fitted model file.")
@click.option("--sample-rate", type=float, default=None, help="Resample both files to this rate (Hz).")
@click.option("--chunk-seconds", type=click.FloatRange(min=0, min_open=True), default=12.0, show_default=True)
@click.option("--warmup-seconds", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--plot/--no-plot", default=True, show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Print the wall time of each stage (imports, read, checks, …).")
@_device_option
@_capture_check_options
@_parallel_options
@_handle_errors
def fit(dry, wet, output, model, candidates, method, max_iterations, no_align, warm_start, sample_rate,
        chunk_seconds, warmup_seconds, plot, verbose, objective_device, reference_dbu, input_reference_dbu,
        ignore_checks, workers, scheduler):
    """Fit a grey-box compressor (default: the 5-parameter 4A-2A model) to DRY → WET.

    With no files, runs the built-in default: a generated stimulus processed by the built-in virtual opto
    levelling amplifier (peak reduction 65, compress), fitted, with model, summary and plot written.
    """
    times = StageTimes()
    with times.stage("imports"):
        from .data.audio import AudioPair
        from .fitting import AUTO, AUTO_CANDIDATES, fit_pair
        from .models.family import model_spec
        from .models.model_file import check_writable, load_compressor
    times.add("imports", time.perf_counter() - PROCESS_STARTED - times.total())  # since dynamatch was imported
    check_writable(output)
    if warmup_seconds >= chunk_seconds:
        raise click.BadParameter(f"{warmup_seconds:g} s is not shorter than --chunk-seconds {chunk_seconds:g} s",
                                 param_hint="--warmup-seconds")
    if model != AUTO:
        model_spec(model)
        if workers is not None or scheduler is not None:
            raise click.UsageError("--workers/--scheduler run the candidates of --model auto side by side; "
                                   "a single member fits in this process (drop them, or give --model auto)")
    candidate_list = tuple(c.strip() for c in candidates.split(",") if c.strip()) if candidates else AUTO_CANDIDATES
    for name in candidate_list:
        model_spec(name)

    if (dry is None) != (wet is None):
        raise click.UsageError("give both DRY and WET, or neither for the built-in default")
    reference_gr_db = None
    if dry is None:
        from .report.fit import builtin_capture

        builtin = builtin_capture(DEFAULT_SAMPLE_RATE)
        console.print(f"built-in default: {builtin.description}")
        pair, source, reference_gr_db = builtin.pair, builtin.source, builtin.reference_gain_reduction_db
        del builtin
    else:
        from .data.audio import load_pair

        with times.stage("read"):
            # checked by the capture check next (one pass over each signal for both); long files are read
            # side by side, and the checks' kernels loaded meanwhile
            pair = load_pair(dry, wet, sample_rate=sample_rate, resample=sample_rate is not None, dtype="float32",
                             check=False, background=_load_long_capture_kernels)
        source = {"dry": str(dry), "wet": str(wet)}
        _print_resampling((dry, wet), pair.sample_rate)
    with times.stage("checks"):
        report = _run_capture_check(pair, reference_dbu, input_reference_dbu, ignore_checks, verbose, warmup_seconds)
    initial = load_compressor(warm_start) if warm_start else None
    started = time.perf_counter()
    from .parallel import SerialExecutor, executor

    with executor(workers, scheduler) as pool:  # --model auto fits its candidates there
        capture = fit_pair(  # aligned in the read arrays: one full-length copy of each signal
            pair, overwrite_input=True, align=not no_align, model=model, candidates=candidate_list, method=method,
            initial=initial, max_iterations=max_iterations, chunk_seconds=chunk_seconds, warmup_seconds=warmup_seconds,
            callback=progress_printer(), on_stage=lambda text: console.print(f"[dim]— {escape(text)}[/]"), times=times,
            report=report, executor=None if isinstance(pool, SerialExecutor) else pool,
            **({"device": objective_device} if objective_device else {}),
        )
    elapsed = time.perf_counter() - started
    _print_alignment(capture)
    save_started = time.perf_counter()
    from .report.fit import fit_provenance, fit_statistics, plot_capture_fit, plot_excerpt, save_fit

    result = capture.result
    if capture.selection is not None:
        print_table(selection_table(capture.selection))
    print_table(parameter_table(result.params))
    fit_stats = fit_statistics(capture, method=method, elapsed_seconds=elapsed, fit_seconds=times.seconds["fit"])
    save_fit(output, capture, fit_stats, fit_provenance(source, report))
    status = "[green]converged[/]" if result.success else f"[yellow]{result.message}[/]"
    console.print(f"{status}: ESR {result.loss:.5g} after {result.nit} iterations in {times.seconds['fit']:.1f} s → {output}")
    if result.status.name == "MAX_ITERATIONS":
        click.echo(f"warning: stopped at max_iterations = {max_iterations} before converging; rerun with a larger "
                   f"--max-iterations (or --warm-start {output}){'' if method == 'newton' else ' or --method newton'}",
                   err=True)
    times.add("save", time.perf_counter() - save_started)
    if plot:
        with times.stage("plot"):
            capture = plot_excerpt(capture)  # the full-length signals go before matplotlib comes
            del pair
            png = plot_capture_fit(output, capture, reference_gain_reduction_db=reference_gr_db,
                                   title=f"{source['wet']}: ESR {result.loss:.4g}")
        console.print(f"plot → {png}")
    if verbose:
        console.print("stage times (wall):\n" + "\n".join(times.lines()))
    _skip_the_exit_collection()


def _skip_the_exit_collection() -> None:
    """Leave every object alive now out of the garbage collections of the interpreter's shutdown
    (``gc.freeze``): once the command's files are written and closed, those collections only walk numba's,
    scipy's and matplotlib's objects before the process ends (0.2-0.3 s of the 30-s command).  The shutdown
    itself still runs (atexit handlers, flushed streams, modules cleared); only cyclic garbage is left to the
    operating system."""
    import gc

    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()


def _load_long_capture_kernels() -> None:
    """``load_long_capture_kernels`` and the alignment's ``scipy.fft``, loaded by ``load_pair`` in a reading
    thread of long files; a failure is left to the checks, which load (or compile) them again and report it."""
    try:
        from .kernels.signal_checks import load_long_capture_kernels

        load_long_capture_kernels()
        import scipy.fft  # noqa: F401
    except Exception:
        logging.getLogger(__name__).debug("preloading the kernels failed", exc_info=True)


def _print_resampling(paths, sample_rate: int) -> None:
    """One line per file read at another rate than ``sample_rate`` (load_pair resampled it)."""
    import soundfile

    for path in paths:
        rate = soundfile.info(str(path)).samplerate
        if rate != sample_rate:
            console.print(f"{escape(str(path))}: resampled from {rate} Hz to {sample_rate} Hz (soxr VHQ, --sample-rate)",
                          soft_wrap=True)


def _print_alignment(capture) -> None:
    """One line saying which latency and polarity correction was applied before the fit, if any."""
    alignment, pair = capture.alignment, capture.pair
    if alignment is None or (abs(alignment.lag_samples) < 0.01 and alignment.polarity > 0):
        return
    lag, ms = alignment.lag_samples, 1e3 * alignment.lag_seconds(pair.sample_rate)
    fixes = [f"{'lags' if lag >= 0 else 'leads'} by {abs(lag):.2f} samples ({abs(ms):.3f} ms)"]
    if alignment.polarity < 0:
        fixes.append("is inverted")
    console.print(f"aligned: {escape(pair.wet_name)} {' and '.join(fixes)} against {escape(pair.dry_name)}; "
                  "corrected before fitting (--no-align skips this)", soft_wrap=True)


@main.command("models")
@_handle_errors
def models_command():
    """List the grey-box family: every member, its parent and its parameters (real units, bounds)."""
    from .models.family import MODELS

    table = Table(title="grey-box model family", header_style="bold")
    for column in ("model", "parent", "parameters", "what it is"):
        table.add_column(column)
    for spec in MODELS.values():
        parent = "" if spec.parent is None else spec.parent + (" (nested)" if spec.nested else "")
        table.add_row(spec.name, parent, ", ".join(spec.parameter_names), spec.summary)
    print_table(table)


@main.command()
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration-seconds", type=float, default=60.0, show_default=True)
@click.option("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_handle_errors
def stimulus(output, duration_seconds, sample_rate, seed):
    """Write the capture stimulus: play it through the device, record the output, then `fit` the pair."""
    from .data.audio import write_audio
    from .data.stimulus import capture_stimulus, stimulus_segments

    x = capture_stimulus(sample_rate, duration_seconds=duration_seconds, seed=seed)
    write_audio(output, x, sample_rate, subtype="FLOAT")
    for segment in stimulus_segments(sample_rate, duration_seconds):
        console.print(f"  {segment.start_seconds:7.2f} s  {segment.duration_seconds:6.2f} s  {segment.name}")
    console.print(f"stimulus → {output} ({duration_seconds:g} s at {sample_rate} Hz, 32-bit float)")


# -- process --------------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--preset", metavar="NAME", default=None,
              help="Use a preset (la2a, or one installed by fit-map --install-preset) instead of a model file.")
@click.option("--peak-reduction", type=click.FloatRange(0, 100), default=50.0, show_default=True,
              help="Knob value for maps and presets.")
@click.option("--mode", type=click.Choice(MODES), default="compress", show_default=True)
@click.option("--interpolation", type=click.Choice(["linear", "spline"]), default=None,
              help="Override the map's interpolation.")
@click.option("--knob", "knob_text", default=None,
              help="NAME=VALUE: the control of a map of a captured plugin (e.g. threshold_db=-25).")
@_handle_errors
def process(paths, preset, peak_reduction, mode, interpolation, knob_text):
    """Process IN → OUT with MODEL (a fitted compressor or a map): ``process MODEL IN OUT`` or
    ``process --preset la2a --peak-reduction 65 --mode limit IN OUT``."""
    from .data.audio import read_audio, write_audio
    from .model_loading import load_processor

    expected = 2 if preset is not None else 3
    if len(paths) != expected:
        raise click.UsageError("usage: process MODEL IN OUT  |  process --preset la2a IN OUT")
    source = f"preset:{preset}" if preset is not None else paths[0]
    in_path, out_path = paths[-2], paths[-1]
    knob = None
    if knob_text is not None:
        knob, _, value = knob_text.partition("=")
        try:
            peak_reduction = float(value)
        except ValueError:
            raise click.BadParameter(f"{knob_text!r}: write NAME=VALUE, e.g. threshold_db=-25", param_hint="--knob")
        knob = knob.strip()
    from .model_loading import resolve_model_source

    resolved = resolve_model_source(source)
    if not resolved.is_map:
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("peak_reduction", "mode", "interpolation")
                 if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
        if given and knob is None:
            click.echo(f"warning: {resolved.given} is a single fitted compressor: {', '.join(given)} "
                       "only apply to maps and presets; ignored", err=True)
    compressor = load_processor(resolved, peak_reduction=peak_reduction, mode=mode, interpolation=interpolation,
                                knob=knob)
    audio, sample_rate = read_audio(in_path, mono=False)
    output = compressor.process(audio, sample_rate)
    write_audio(out_path, output, sample_rate)
    console.print(f"{in_path} → {out_path} with {compressor}")


# -- datasets and maps ----------------------------------------------------------------------------


def _chain(text: str) -> list[float]:
    """'100:40:5' → 100, 95, …, 40; or a comma list '100,90,80' (:func:`dynamatch.parsing.parse_chain`)."""
    from .parsing import parse_chain

    return parse_chain(text)


def _modes(text: str) -> list[str]:
    from .parsing import parse_modes

    return parse_modes(text)


def _map_progress(total_label: str):
    """A rich progress display: one overall bar over settings (shown once a setting is fitted: a finished map
    draws no "0/?" bar), one line for the current fit.  ``progress.fitted_any`` says whether anything was fitted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=False)
    progress.fitted_any = False
    state = {"label": "", "task": None}

    def overall(total):
        if state["task"] is None:
            state["task"] = progress.add_task(total_label, total=total)
            progress.fitted_any = True
        return state["task"]

    def on_start(mode, pr, index, total):
        state["label"] = f"{mode} PR {pr:g}"
        progress.update(overall(total), total=total, completed=index, description=f"{total_label}: {state['label']}")

    def callback(intermediate):
        if intermediate.history and state["task"] is not None:
            r = intermediate.history[-1]
            progress.update(state["task"], description=f"{total_label}: {state['label']} iter {r.iteration} ESR {r.loss:.5g}")

    def on_setting(fit, index, total):
        progress.update(overall(total), total=total, completed=index + 1)
        progress.console.print(f"  {fit.mode:>8} PR {fit.peak_reduction:>5g}: ESR {fit.esr:.5g} ({fit.iterations} it, "
                               f"{fit.elapsed_seconds:.1f} s)  {fit.compressor}")

    return progress, on_start, callback, on_setting


@main.command("generate-dataset")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--duration-seconds", type=float, default=60.0, show_default=True)
@click.option("--chain", "chain_text", default="40:100:5", show_default=True, help="Peak reductions (start:stop:step or list).")
@click.option("--modes", "modes_text", default="compress,limit", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_handle_errors
def generate_dataset(root, duration_seconds, chain_text, modes_text, seed):
    """Write a small SignalTrain-layout dataset rendered by the built-in virtual opto levelling amplifier."""
    from .data.generate import generate_signaltrain_like

    path = generate_signaltrain_like(root, duration_seconds=duration_seconds, peak_reductions=_chain(chain_text),
                                     modes=tuple(_modes(modes_text)), seed=seed)
    console.print(f"dataset → {path}")


@main.command("fit-map")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("map.json"), show_default=True)
@click.option("--modes", "modes_text", default="compress,limit", show_default=True)
@click.option("--chain", "chain_text", default="100:40:5", show_default=True,
              help="Fit order (each setting warm-starts from the previous): start:stop:step or a list.")
@click.option("--split", default="train", show_default=True, help="train, val, test or all.")
@click.option("--session", default=None, help="SignalTrain session (2c or 3c); default all.")
@click.option("--model", default="ff5", show_default=True, help="Family member fitted at every setting.")
@click.option("--method", type=click.Choice(["newton", "lm", "adam"]), default="newton", show_default=True)
@click.option("--interpolation", type=click.Choice(["linear", "spline"]), default="linear", show_default=True)
@click.option("--max-seconds", type=float, default=None, help="Use at most this much audio of each file.")
@click.option("--plot/--no-plot", default=True, show_default=True)
@click.option("--install-preset", "preset_name", default=None,
              help="Also install the map as this preset name (a fit of the real SignalTrain set installs as 'la2a').")
@_device_option
@_parallel_options
@_handle_errors
def fit_map_command(dataset, output, modes_text, chain_text, split, session, model, method, interpolation, max_seconds,
                    plot, preset_name, objective_device, workers, scheduler):
    """Fit a knob → parameter map over DATASET (SignalTrain layout or a capture set); resumable.

    A fit of the real SignalTrain LA2A set (both modes) replaces the shipped 'la2a' preset for
    ``dynamatch process --preset la2a`` and ``export plugin --preset la2a``.
    """
    from .data.datasets import open_dataset
    from .maps.fit_map import fit_map, preset_to_install
    from .maps.parameter_map import install_preset

    ds = open_dataset(dataset)
    from .parallel import SerialExecutor, executor

    chain = _chain(chain_text)
    if getattr(ds, "knob", "peak_reduction") != "peak_reduction" and \
            click.get_current_context().get_parameter_source("chain_text") == click.core.ParameterSource.DEFAULT:
        chain = sorted({pr for _, pr in ds.settings()})  # a captured plugin's knob: every captured value
    progress, on_start, callback, on_setting = _map_progress("fit-map")
    with executor(workers, scheduler) as pool, progress:
        distributed = not isinstance(pool, SerialExecutor)
        parameter_map = fit_map(ds, output, modes=_modes(modes_text), chain=chain,
                                split=None if split == "all" else split, session=session, model=model, method=method,
                                interpolation=interpolation, max_seconds=max_seconds, on_start=on_start,
                                callback=None if distributed else callback, on_setting=on_setting,
                                device=objective_device, executor=pool if distributed else None)
    if not progress.fitted_any:
        console.print(f"{output}: every setting asked for is already fitted; nothing to fit", soft_wrap=True)
    console.print(f"map → {output}")
    preset_name = preset_to_install(ds, parameter_map, preset_name)
    if preset_name:
        console.print(f"installed as preset '{preset_name}' → {install_preset(parameter_map, preset_name)}")
    if plot:
        from .report.plots import plot_map

        png = plot_map(parameter_map, output.with_suffix(".png"))
        console.print(f"plot → {png}")


# -- capture a plugin -----------------------------------------------------------------------------


def _add_capture_command(group) -> None:
    @group.command("capture")
    @click.argument("plugin", type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Capture set folder to write (manifest.csv + audio); resumes an interrupted capture.")
    @click.option("--param", "params", multiple=True, help="NAME=V1,V2,… (repeat; one parameter may vary: the knob).")
    @click.option("--mode-param", default=None, help="Parameter that is the mode switch: first value compress, second limit.")
    @click.option("--list", "list_only", is_flag=True, help="List the plugin's parameters and exit.")
    @click.option("--duration-seconds", type=float, default=60.0, show_default=True, help="Stimulus length.")
    @click.option("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @_handle_errors
    def capture(plugin, output, params, mode_param, list_only, duration_seconds, sample_rate, seed):
        """Render the capture stimulus through PLUGIN (a VST3) over a grid of settings into a capture set for
        `fit-map`: ``capture ZamComp.vst3 -o set/ --param threshold_db=-30,-20,-10 --param ratio=4``."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from .data.capture import capture_plugin, parse_grid
        from .data.plugins import open_plugin

        host = open_plugin(plugin)
        if list_only:
            table = Table(title=f"parameters of {escape(str(plugin))}", header_style="bold")
            for column in ("key", "name", "min", "max", "value", "unit"):
                table.add_column(column, justify="right" if column in ("min", "max", "value") else "left")
            for p in host.parameters():
                table.add_row(p.key, escape(p.name), f"{p.min_value:g}", f"{p.max_value:g}", f"{p.value:g}", escape(p.unit))
            Console(highlight=False).print(table)
            return
        if output is None:
            raise click.UsageError("give -o SET/ (or --list)")
        grid = parse_grid(params)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console)
        task = progress.add_task("capture", total=None)

        def on_render(index, total, setting, skipped):
            text = ", ".join(f"{k}={v:g}" for k, v in setting.items())
            progress.update(task, total=total, completed=index + 1,
                            description=f"capture: {text}" + (" (on disk)" if skipped else ""))

        with progress:
            dataset = capture_plugin(host, output, grid, mode_param=mode_param, sample_rate=sample_rate,
                                     duration_seconds=duration_seconds, seed=seed, on_render=on_render)
        console.print(f"capture set → {output} ({len(dataset)} settings, knob {dataset.knob}); "
                      f"next: dynamatch fit-map {output} --modes {','.join(sorted({m for m, _ in dataset.settings()}))}")


_add_capture_command(main)


def _baseline_options(command):
    """``evaluate --baseline PLUGIN``: score a third-party plugin beside (or instead of) ``--model``."""

    @click.option("--baseline", "baseline_plugin", default=None,
                  help="Also score this plugin (VST3 path or LV2 URI) at each pair's setting (protocol score).")
    @click.option("--baseline-map", "baseline_map", multiple=True,
                  help="peak_reduction=PARAM[@K:V,…], mode=PARAM@compress:V,limit:V or PARAM=VALUE (repeat).")
    @click.option("--input-gain-db", type=float, default=None, help="Gain before the plugin (default: calibrated per mode).")
    @click.option("--output-gain-db", type=float, default=None, help="Gain after the plugin (default: calibrated per mode).")
    @click.option("--baseline-latency-samples", "latency_samples", type=int, default=None,
                  help="The plugin's latency to compensate (default: measured per mode).")
    @click.option("--calibration-seconds", type=float, default=30.0, show_default=True,
                  help="Audio of each pair used to calibrate the gains.")
    @functools.wraps(command)
    def wrapper(*args, baseline_plugin, baseline_map, input_gain_db, output_gain_db, latency_samples, calibration_seconds,
                **kwargs):
        if baseline_plugin is None:
            if baseline_map or input_gain_db is not None or output_gain_db is not None or latency_samples is not None:
                raise click.UsageError("--baseline-map, --input/output-gain-db and --baseline-latency-samples "
                                       "need --baseline PLUGIN")
            return command(*args, **kwargs)
        _evaluate_baseline(baseline_plugin, baseline_map, input_gain_db, output_gain_db, latency_samples,
                           calibration_seconds, **kwargs)

    return wrapper


@_handle_errors
def _evaluate_baseline(plugin, map_specs, input_gain_db, output_gain_db, latency_samples, calibration_seconds, *,
                       dataset, output_dir,
                       model_source, protocol, split, modes_text, max_seconds, metrics_text, **_):
    from .data.datasets import open_dataset
    from .maps.baseline import evaluate_baseline, parse_baseline_map

    if protocol != "score":
        raise click.UsageError("--baseline works with --protocol score")
    mapping = parse_baseline_map(map_specs)
    ds = open_dataset(dataset)
    modes = _modes(modes_text)
    metrics = tuple(m.strip() for m in metrics_text.split(",") if m.strip())
    explicit = click.get_current_context().get_parameter_source("model_source") == click.core.ParameterSource.COMMANDLINE
    model_rows = (_score_any(model_source, ds, split=split, modes=modes, duration_seconds=max_seconds, metrics=metrics)
                  if explicit else [])
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console)
    task = progress.add_task(f"baseline {plugin}: calibrating", total=None)

    def on_mode(mode, g):
        progress.console.print(f"  {mode:>8}: input {g.input_gain_db:+.2f} dB{'' if g.input_fitted else ' (given)'}, "
                               f"output {g.output_gain_db:+.2f} dB{'' if g.output_fitted else ' (given)'}, latency "
                               f"{g.latency_samples} samples, calibration ESR {g.calibration_esr:.4g}")

    def on_pair(done, total):
        progress.update(task, total=total, completed=done, description=f"baseline {plugin}: scoring")

    with progress:
        rows, written = evaluate_baseline(plugin, ds, output_dir, mapping, model_rows=model_rows, input_gain_db=input_gain_db,
                                          output_gain_db=output_gain_db, latency_samples=latency_samples, split=split,
                                          modes=modes, duration_seconds=max_seconds,
                                          calibration_seconds=calibration_seconds, metrics=metrics, on_mode=on_mode,
                                          on_pair=on_pair)
    table = Table(show_header=True, header_style="bold")
    columns = ("model", "mode", "peak_reduction", "pair", *metrics)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{row[c]:.5g}" if isinstance(row[c], float) else escape(str(row[c])) for c in columns))
    print_table(table)
    for name, path in written.items():
        console.print(f"{name} → {path}")


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("evaluation"), show_default=True)
@click.option("--model", "model_source", default="preset:la2a", show_default=True,
              help="Map/model file, run folder, preset (la2a or an installed one) or a trained neural model "
                   "(protocol 'score').")
@click.option("--protocol", type=click.Choice(["score", "paper", "held-out"]), default="score", show_default=True,
              help="score: score MODEL; paper: fit 100→40, interpolate held-out settings 45…95; "
                   "held-out: fit on the first --fit-seconds of each file, score on the rest.")
@click.option("--split", default=None, help="train, val or test (default: all for score, train otherwise).")
@click.option("--session", default=None)
@click.option("--modes", "modes_text", default="compress,limit", show_default=True)
@click.option("--max-seconds", type=float, default=None, help="Use at most this much audio of each file.")
@click.option("--fit-seconds", type=float, default=None, help="held-out protocol: seconds of each file used for fitting.")
@click.option("--fit-model", default="ff5", show_default=True,
              help="paper and held-out protocols: the family member fitted at each setting.")
@click.option("--metrics", "metrics_text", default="esr,delta_ldr_db,mae", show_default=True,
              help="Any of esr, delta_ldr_db, mae, stft, delta_lufs.")
@_baseline_options
@_parallel_options
@_handle_errors
def evaluate(dataset, output_dir, model_source, protocol, split, session, modes_text, max_seconds, fit_seconds, fit_model,
             metrics_text, workers, scheduler):
    """Score a model on DATASET and write CSV tables and PNG plots to OUTPUT_DIR."""
    from .data.datasets import open_dataset
    from .evaluation import evaluate_dataset
    from .model_loading import resolve_model_source

    if protocol == "score":
        model_source = resolve_model_source(model_source)  # an unknown name fails before the dataset is read
    ds = open_dataset(dataset)
    modes = _modes(modes_text)
    metrics = tuple(m.strip() for m in metrics_text.split(",") if m.strip())
    progress, on_start, callback, on_setting = _map_progress(protocol)
    from .parallel import SerialExecutor, executor

    with executor(workers, scheduler) as pool, progress if protocol != "score" else contextlib.nullcontext():
        evaluation = evaluate_dataset(ds, output_dir, protocol=protocol, model=model_source, split=split,
                                      session=session, modes=modes, max_seconds=max_seconds, fit_seconds=fit_seconds,
                                      fit_model=fit_model, metrics=metrics, on_setting=on_setting,
                                      executor=None if isinstance(pool, SerialExecutor) else pool)
    if protocol == "score":
        _print_rows(evaluation.rows, metrics)
    for name, path in evaluation.files.items():
        console.print(f"{name} → {path}")


def _score_any(model_source, ds, *, split, session=None, modes, duration_seconds, metrics):
    """Score a grey-box model (file/preset) or a trained neural model on a dataset
    (:func:`dynamatch.evaluation.score_source`)."""
    from .evaluation import score_source

    return score_source(model_source, ds, split=split, session=session, modes=modes,
                        duration_seconds=duration_seconds, metrics=metrics)


def _print_rows(rows, metrics) -> None:
    table = Table(show_header=True, header_style="bold")
    for column in ("mode", "peak_reduction", "pair", *metrics):
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{row[c]:.5g}" if isinstance(row[c], float) else str(row[c])
                        for c in ("mode", "peak_reduction", "pair", *metrics)))
    print_table(table)


# -- neural models ------------------------------------------------------------------------------


def _print_training(result) -> None:
    final = result.metadata.get("final_train_loss", float("nan"))
    console.print(f"{result.model_path}: {result.steps} steps, final training loss {final:.4g} (mean since the last "
                  f"validation), best validation loss {result.best_val_loss:.4g}", soft_wrap=True)


@main.command("train")
@click.argument("model")
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: checkpoints, model.json (+ safetensors); rerun the same command to resume.")
@click.option("--loss", type=click.Choice(["mae+stft", "esr"]), default="mae+stft", show_default=True)
@click.option("--max-epochs", type=float, default=None, help="Epochs (the papers: 60).")
@click.option("--max-steps", type=int, default=None, help="Optimiser steps (overrides --max-epochs).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--learning-rate", type=float, default=1e-3, show_default=True)
@click.option("--chunk-samples", type=int, default=65536, show_default=True)
@click.option("--data-fraction", type=float, default=1.0, show_default=True, help="Use this fraction of each file (paper: 0.01, 0.1).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--precision", default="32-true", show_default=True, help="Lightning precision, e.g. bf16-mixed on GPU.")
@click.option("--accelerator", default="auto", show_default=True)
@click.option("--restart", is_flag=True, help="Ignore checkpoints in OUTPUT_DIR and start over.")
@_handle_errors
def train_command(model, dataset, output_dir, loss, max_epochs, max_steps, batch_size, learning_rate, chunk_samples,
                  data_fraction, seed, precision, accelerator, restart):
    """Train neural MODEL (tcn-300-c, tcn-324-n, lstm-32, s4-c32-f4, …) on DATASET."""
    from .neural.train import train

    if max_steps is None and max_epochs is None:
        max_epochs = 60.0
    result = train(model, dataset, output_dir, loss=loss, max_epochs=max_epochs, max_steps=max_steps,
                   batch_size=batch_size, learning_rate=learning_rate, chunk_samples=chunk_samples,
                   data_fraction=data_fraction, seed=seed, precision=precision, accelerator=accelerator,
                   resume=not restart)
    _print_training(result)


@main.command("train-hybrid")
@click.argument("map_source")
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--max-epochs", type=float, default=None)
@click.option("--max-steps", type=int, default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Chunks per step (default 16).")
@click.option("--chunk-samples", type=click.IntRange(min=1), default=None,
              help="Samples per training chunk (default 8 truncated-backpropagation windows).")
@click.option("--seed", type=int, default=0, show_default=True)
@_handle_errors
def train_hybrid_command(map_source, dataset, output_dir, max_epochs, max_steps, batch_size, chunk_samples, seed):
    """Train the 4A-2A-G GRU stage after MAP_SOURCE's compressor (a map file or a preset such as la2a)."""
    from .model_loading import load_parameter_map

    parameter_map = load_parameter_map(map_source)
    from .neural.hybrid import train_hybrid

    if max_steps is None and max_epochs is None:
        max_epochs = 60.0
    sizes = {k: v for k, v in (("batch_size", batch_size), ("chunk_samples", chunk_samples)) if v is not None}
    result = train_hybrid(parameter_map, dataset, output_dir, max_epochs=max_epochs, max_steps=max_steps, seed=seed,
                          **sizes)
    _print_training(result)


@main.group()
def bench() -> None:
    """Measure speed (real-time factors)."""


@bench.command("hessian")
@click.option("--batch", type=int, default=16, show_default=True, help="Chunks in the batch (the paper: 16).")
@click.option("--seconds", type=float, default=12.0, show_default=True, help="Seconds per chunk (the paper: 12).")
@click.option("--device", "devices_text", default="auto", show_default=True,
              help="cpu, cuda, or comma-separated; auto = cpu plus cuda when a GPU is present.")
@click.option("--strategies", default=None, help="Comma-separated subset (default: all).")
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("hessian"),
              show_default=True)
@_handle_errors
def bench_hessian(batch, seconds, devices_text, strategies, repeats, threads, output_dir):
    """The 4A-2A Hessian-strategy table: time and peak memory per strategy, each verified first (CSV + PNG)."""
    from .bench.hessian import PAPER_RTX3060, STRATEGIES, default_devices, hessian_table

    devices = default_devices() if devices_text == "auto" else [d.strip() for d in devices_text.split(",") if d.strip()]
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = hessian_table(batch=batch, seconds=seconds, devices=devices, repeats=repeats, threads=threads,
                         strategies=[s.strip() for s in strategies.split(",")] if strategies else STRATEGIES,
                         csv_path=output_dir / "hessian.csv", plot_path=output_dir / "hessian.png")
    table = Table(title=f"5x5 Hessian, batch {batch} x {seconds:g} s, {threads} thread(s)", header_style="bold")
    for name in ("strategy", "device", "ms", "peak MB", "rel. error", "status", "paper RTX 3060"):
        table.add_column(name, justify="left" if name in ("strategy", "device", "status") else "right", no_wrap=True)
    for r in rows:
        paper = PAPER_RTX3060.get(r.strategy)
        table.add_row(r.strategy, r.device, f"{r.ms:.4g}", f"{r.peak_mb:.4g}", f"{r.relative_error:.1e}",
                      escape(r.status), f"{paper[1]} ms / {paper[0]} MB" if paper else "")
    print_table(table)
    console.print(f"table → {output_dir / 'hessian.csv'}, plot → {output_dir / 'hessian.png'}")


@bench.command("rtf")
@click.option("--models", default=None, help="Comma-separated presets (default: all) plus the fitted compressor.")
@click.option("--compressor", "compressor_source", default=None,
              help="Grey-box model to time beside them: model/map file or preset (default: preset la2a at PR 65).")
@click.option("--frames", default="all", show_default=True, help="Comma-separated frame sizes or 'all' (32…65536).")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--duration-seconds", type=float, default=3.0, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("rtf"), show_default=True)
@_handle_errors
def bench_rtf(models, compressor_source, frames, threads, duration_seconds, repeats, output_dir):
    """Real-time factor of every neural model and the fitted compressor, block by block (CSV + PNG)."""
    from .model_loading import load_processor
    from .parsing import parse_frames

    compressor = load_processor(compressor_source or "preset:la2a", peak_reduction=65.0)
    from .neural.rtf import FRAME_SIZES, rtf_table

    frame_sizes = parse_frames(frames, FRAME_SIZES)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = rtf_table([m for m in models.split(",") if m] if models else None, compressor=compressor,
                     frame_sizes=frame_sizes, duration_seconds=duration_seconds, threads=threads, repeats=repeats,
                     csv_path=output_dir / "rtf.csv", plot_path=output_dir / "rtf.png")
    table = Table(title="real-time factor (audio seconds per wall second)", header_style="bold")
    names = list(dict.fromkeys(r.name for r in rows))
    table.add_column("frame")
    for name in names:
        table.add_column(name, justify="right")
    for frame in frame_sizes:
        by_name = {r.name: r for r in rows if r.frame_samples == frame}
        table.add_row(str(frame), *(f"{by_name[n].rtf:.3g}" if n in by_name else "" for n in names))
    print_table(table)
    console.print(f"CSV → {output_dir / 'rtf.csv'}, plot → {output_dir / 'rtf.png'}")


# -- export -------------------------------------------------------------------------------------


@main.group()
def export() -> None:
    """Export models (real-time plugins)."""


@export.command("plugin")
@click.argument("map_path", required=False, metavar="[MAP]")
@click.option("--preset", metavar="NAME", default=None,
              help="Use a preset (la2a, or one installed by fit-map --install-preset) instead of a map file.")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build"),
              show_default=True)
@click.option("--name", default=None,
              help="Plugin name (bundles and URI follow it); default: 'dynamatch LA-2A' for the la2a preset, "
                   "else 'dynamatch <map name>'.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["vst3", "lv2", "clap"]),
              default=("vst3", "lv2", "clap"), show_default=True)
@click.option("--interpolation", type=click.Choice(["linear", "spline"]), default=None, help="Override the map's interpolation.")
@click.option("--expert", is_flag=True, help="Add the five raw compressor parameters.")
@click.option("--gru", "gru_model", default=None, metavar="MODEL",
              help="A trained 4A-2A-G GRU stage (train-hybrid's run folder or its model.json) to run after the "
                   "compressor.")
@click.option("--jobs", type=int, default=2, show_default=True)
@_handle_errors
def export_plugin(map_path, preset, output_dir, name, formats, interpolation, expert, gru_model, jobs):
    """Build VST3/LV2/CLAP plugins (mono and stereo-linked) from MAP (a map file or a preset name)."""
    from . import export as exporting
    from .model_loading import load_parameter_map

    if (map_path is None) == (preset is None):
        raise click.UsageError("give a MAP (file or preset name) or --preset, not both")
    from .export.plugin import default_plugin_name
    from .model_loading import resolve_model_source

    source = resolve_model_source(f"preset:{preset}" if preset is not None else map_path)
    parameter_map = load_parameter_map(source, interpolation)
    if name is None:
        name = default_plugin_name(source.name)
    gru_weights = None
    if gru_model is not None:
        from .errors import ModelFileError
        from .neural.gru import GRUStage, gru_weights_dict

        stage = resolve_model_source(gru_model).neural_model()
        if not isinstance(stage, GRUStage):
            raise ModelFileError(f"{gru_model}: is a {type(stage).__name__}, not a 4A-2A-G GRU stage; give the run "
                                 "folder (or model.json) written by train-hybrid")
        gru_weights = gru_weights_dict(stage)
    console.print(f"building {', '.join(formats)} with DPF → {output_dir}")
    build = exporting.build_plugin(parameter_map, output_dir, name=name, formats=formats, expert_mode=expert,
                         gru_weights=gru_weights, jobs=jobs)
    for (fmt, channels), path in sorted(build.bundles.items()):
        console.print(f"{fmt:5s} {'mono  ' if channels == 1 else 'stereo'} {path}")
    if not build.rebuilt:
        console.print("(up to date, nothing rebuilt)")


@export.command("neural")
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (.onnx or .pt).")
@click.option("--format", "export_format", type=click.Choice(["onnx", "torchscript"]), default=None,
              help="Default: from the extension of --output (.onnx → onnx, .pt → torchscript).")
@click.option("--mode", type=click.Choice(MODES), default="compress", show_default=True,
              help="TorchScript only: the controls are fixed at export.")
@click.option("--peak-reduction", type=click.FloatRange(0, 100), default=50.0, show_default=True)
@_handle_errors
def export_neural(model_path, output, export_format, mode, peak_reduction):
    """Export a trained neural model (its model.json or run folder) to ONNX (inputs audio, cond) or TorchScript
    (controls fixed)."""
    from .model_loading import resolve_model_source
    from .neural.export import export_format_for, export_onnx, export_torchscript

    export_format = export_format_for(output, export_format)
    model = resolve_model_source(model_path).neural_model()
    if export_format == "onnx":
        path = export_onnx(model, output)
    else:
        path = export_torchscript(model, output, (1.0 if mode == "limit" else 0.0, peak_reduction / 100.0))
    console.print(f"{export_format} → {path}")


@export.command("neutone")
@click.argument("model_source", metavar="MODEL")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (model.nm, metadata.json, dynamatch.json).")
@click.option("--sample-rate", type=int, default=None,
              help="Native rate (neural models: must be the training rate; compressors: default any rate).")
@click.option("--name", default=None, help="Model name shown in Neutone (at most 30 characters).")
@click.option("--gru-only", is_flag=True, help="A 4A-2A-G GRU stage alone, without the compressor map before it.")
@click.option("--interpolation", type=click.Choice(["linear", "spline"]), default=None, help="Override the map's interpolation.")
@_handle_errors
def export_neutone_command(model_source, output_dir, sample_rate, name, gru_only, interpolation):
    """Export MODEL (map or compressor file, preset:la2a, neural or GRU model.json) as a Neutone FX model."""
    from .export.neutone import export_neutone

    result = export_neutone(model_source, output_dir, sample_rate=sample_rate, name=name, gru_only=gru_only,
                            interpolation=interpolation)
    knobs = ", ".join(f"{p['name']} {p['min_value']:g}…{p['max_value']:g}" for p in result.parameters)
    console.print(f"neutone ({result.kind}; {knobs}) → {result.model_path}")

# -- report and listening test (logic in dynamatch.report.html and dynamatch.listening) -------------


def _add_report_commands(group) -> None:
    @group.command("report")
    @click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
                  show_default=True, help="HTML file to write (self-contained: inline CSS, SVG plots, no network).")
    @click.option("--title", default="dynamatch report", show_default=True)
    @click.option("--label", "labels", multiple=True, help="Name of each RUN in order (default: its folder or file name).")
    @click.option("--audio-seconds", type=click.FloatRange(min=0), default=4.0, show_default=True,
                  help="A/B excerpts (dry, target, model) of fitted models whose audio files exist; 0: none.")
    @click.option("--published/--no-published", default=True, show_default=True,
                  help="Add the 4A-2A paper's per-setting ESR beside scores of SignalTrain 3c pairs.")
    @_handle_errors
    def report(runs, output, title, labels, audio_seconds, published):
        """One HTML page summarising RUNS: fits, maps, evaluations (ESR/ΔLDR per setting), benchmarks, comparisons."""
        from .report.html import write_report

        path = write_report(runs, output, title=title, labels=labels, audio_seconds=audio_seconds, published=published)
        console.print(f"report → {path} ({path.stat().st_size / 1e6:.2f} MB)")

    @group.command("listening-test")
    @click.argument("eval_dir", required=False, type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Kit folder to write (default kit/), or with --analyse the folder for the statistics.")
    @click.option("--analyse", "--analyze", "ratings", type=click.Path(path_type=Path), default=None,
                  help="Analyse ratings (webMUSHRA mushra.csv, or condition,rating CSV) instead of writing a kit.")
    @click.option("--model", "models", multiple=True,
                  help="[LABEL=]MAP|MODEL|NEURAL|preset:NAME to compare (repeat; default the models EVAL_DIR scored).")
    @click.option("--dataset", type=click.Path(path_type=Path), default=None,
                  help="The dataset the evaluation scored (default: the one its evaluation.json or map.json records).")
    @click.option("--excerpt-seconds", type=float, default=8.0, show_default=True)
    @click.option("--excerpts-per-pair", type=click.IntRange(min=1), default=1, show_default=True)
    @click.option("--max-trials", type=click.IntRange(min=1), default=12, show_default=True)
    @click.option("--loudness-lufs", type=float, default=-23.0, show_default=True)
    @click.option("--anchor/--no-anchor", default=True, show_default=True, help="Add the 3.5 kHz low-pass anchor.")
    @click.option("--dry/--no-dry", "include_dry", default=False, show_default=True,
                  help="Add the unprocessed input as a condition.")
    @click.option("--test-id", default="dynamatch", show_default=True)
    @click.option("--adjust", type=click.Choice(["holm", "bonferroni", "none"]), default="holm", show_default=True)
    @click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True)
    @click.option("--screen", is_flag=True,
                  help="--analyse: drop listeners who rated the hidden reference below 90 in > 15 % of trials (BS.1534-3).")
    @_handle_errors
    def listening_test(eval_dir, output, ratings, models, dataset, excerpt_seconds, excerpts_per_pair, max_trials,
                       loudness_lufs, anchor, include_dry, test_id, adjust, alpha, screen):
        """Write a webMUSHRA kit from an evaluation (EVAL_DIR), or --analyse its ratings (Kruskal–Wallis, Conover)."""
        from . import listening

        if ratings is not None:
            if eval_dir is not None:
                raise click.UsageError("give EVAL_DIR to build a kit or --analyse RATINGS, not both")
            scores = listening.read_ratings(ratings)
            analysis = listening.analyse_ratings(scores, adjust=adjust, alpha=alpha, source=str(ratings), screen=screen)
            if analysis.excluded_listeners:
                console.print(f"post-screening excluded {len(analysis.excluded_listeners)} listener(s): "
                              f"{escape(', '.join(analysis.excluded_listeners))}")
            table = Table(title=f"ratings: {escape(str(ratings))}", header_style="bold")
            for column in ("condition", "n", "median", "Q1", "Q3", "mean rank"):
                table.add_column(column, justify="left" if column == "condition" else "right")
            for c in analysis.conditions:
                table.add_row(escape(c.condition), str(c.n), f"{c.median:.4g}", f"{c.q1:.4g}", f"{c.q3:.4g}",
                              f"{c.mean_rank:.4g}")
            print_table(table)
            kw = analysis.kruskal_wallis
            console.print(f"Kruskal–Wallis H = {kw.h:.4g}, df = {kw.df}, p = {kw.p:.3g}")
            table = Table(title=f"Conover post-hoc, {adjust}-adjusted", header_style="bold")
            for column in ("a", "b", "t", "p", "p adjusted", "significant"):
                table.add_column(column, justify="left" if column in ("a", "b", "significant") else "right")
            for p in analysis.conover:
                table.add_row(escape(p.a), escape(p.b), f"{p.t:.4g}", f"{p.p:.3g}", f"{p.p_adjusted:.3g}",
                              "yes" if p.significant else "no")
            print_table(table)
            written = listening.write_analysis(analysis, scores, output or ratings.with_name(ratings.stem + "_analysis"))
            console.print(", ".join(f"{name} → {path}" for name, path in written.items()))
            return
        if eval_dir is None:
            raise click.UsageError("give EVAL_DIR (an evaluate output folder) or --analyse RATINGS.csv")
        kit = listening.build_kit(eval_dir, output or Path("kit"), models=models, dataset=dataset,
                                  excerpt_seconds=excerpt_seconds, excerpts_per_pair=excerpts_per_pair,
                                  max_trials=max_trials, loudness_lufs=loudness_lufs, anchor=anchor,
                                  include_dry=include_dry, test_id=test_id)
        trials = len({t["trial_id"] for t in kit.trials})
        console.print(f"kit → {kit.root}: {trials} trials × {len(kit.conditions)} stimuli ({', '.join(kit.conditions)}), "
                      f"{kit.loudness_lufs:.1f} LUFS; webMUSHRA config {kit.config}")


_add_report_commands(main)


# -- warmup ---------------------------------------------------------------------------------------


@main.command()
@_handle_errors
def warmup():
    """Compile and cache every numba kernel now (otherwise the first call of each pays seconds)."""
    started = time.perf_counter()
    from .fitting import warm_up

    warm_up(DEFAULT_SAMPLE_RATE)
    console.print(f"kernels compiled and cached in {time.perf_counter() - started:.1f} s")


def _version() -> str:
    from . import __version__

    return __version__


if __name__ == "__main__":
    main()
