"""The ``dynamatch`` command line.

Every user error is printed as one line (``error: ...``) with exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from .errors import DynamatchError

console = Console(stderr=True, highlight=False)
DEFAULT_SAMPLE_RATE = 44100


def _handle_errors(command):
    """Turn DynamatchError (and a missing optional dependency) into one line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        try:
            return command(*args, **kwargs)
        except (DynamatchError, ModuleNotFoundError) as error:
            if debug:
                raise
            message = str(error)
            if isinstance(error, ModuleNotFoundError):
                message = f"{error}; install the optional extras: pip install 'dynamatch[nn]'"
            console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
            sys.exit(2)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/] (completed work was saved; run the same command to resume)")
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(package_name="dynamatch")
def main(debug: bool) -> None:
    """Capture dynamic range compressors as fast, interpretable real-time models."""


# -- fit ------------------------------------------------------------------------------------------


def parameter_table(compressor, title: str = "fitted parameters") -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    units = {"threshold_db": "dB", "ratio": ": 1", "attack_ms": "ms", "release_ms": "ms", "makeup_db": "dB"}
    for name, value in compressor.to_dict().items():
        table.add_row(name, f"{value:.4g} {units[name]}")
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


@main.command()
@click.argument("dry", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("wet", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("model.json"),
              show_default=True, help="Model file to write (a summary .txt and a .png plot go beside it).")
@click.option("--method", type=click.Choice(["newton", "lm", "adam"]), default="newton", show_default=True)
@click.option("--max-iterations", type=int, default=50, show_default=True)
@click.option("--no-align", is_flag=True, help="Skip latency/polarity alignment.")
@click.option("--warm-start", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from a previously fitted model file.")
@click.option("--sample-rate", type=float, default=None, help="Resample both files to this rate (Hz).")
@click.option("--chunk-seconds", type=float, default=12.0, show_default=True)
@click.option("--warmup-seconds", type=float, default=1.0, show_default=True)
@click.option("--plot/--no-plot", default=True, show_default=True)
@_handle_errors
def fit(dry, wet, output, method, max_iterations, no_align, warm_start, sample_rate, chunk_seconds,
        warmup_seconds, plot):
    """Fit the 5-parameter 4A-2A compressor to DRY → WET.

    With no files, runs the built-in default: a generated stimulus processed by the built-in virtual opto
    levelling amplifier (peak reduction 65, compress), fitted, with model, summary and plot written.
    """
    from .data.audio import AudioPair
    from .fitting import fit_pair
    from .models.model_file import load_compressor, save_compressor

    if (dry is None) != (wet is None):
        raise click.UsageError("give both DRY and WET, or neither for the built-in default")
    reference_gr_db = None
    if dry is None:
        from .data.stimulus import capture_stimulus
        from .models.opto import OptoLevellingAmplifier

        device = OptoLevellingAmplifier(peak_reduction=65.0, mode="compress")
        x = capture_stimulus(DEFAULT_SAMPLE_RATE, duration_seconds=60.0, seed=0)
        console.print(f"built-in default: {len(x) / DEFAULT_SAMPLE_RATE:.0f} s capture stimulus → {device}")
        y = device.process(x, DEFAULT_SAMPLE_RATE)
        reference_gr_db = device.gain_reduction_db(x, DEFAULT_SAMPLE_RATE)
        pair = AudioPair(x, y, DEFAULT_SAMPLE_RATE, "stimulus", "virtual opto levelling amplifier")
        source = {"dry": "capture_stimulus(seed=0, 60 s)", "wet": repr(device)}
    else:
        from .data.audio import load_pair

        pair = load_pair(dry, wet, sample_rate=sample_rate)
        source = {"dry": str(dry), "wet": str(wet)}
    initial = load_compressor(warm_start) if warm_start else None
    started = time.perf_counter()
    capture = fit_pair(
        pair, align=not no_align, method=method, initial=initial, max_iterations=max_iterations,
        chunk_seconds=chunk_seconds, warmup_seconds=warmup_seconds, callback=progress_printer(),
    )
    elapsed = time.perf_counter() - started
    result, aligned = capture.result, capture.pair
    console.print(parameter_table(result.params))
    alignment = capture.alignment
    fit_stats = {
        "method": method, "esr": float(result.loss), "iterations": int(result.nit), "success": bool(result.success),
        "message": result.message, "elapsed_seconds": round(elapsed, 3), "duration_seconds": len(aligned.dry) / aligned.sample_rate,
        "alignment": None if alignment is None else {
            "lag_samples": alignment.lag_samples, "polarity": alignment.polarity, "correlation": alignment.correlation},
    }
    save_compressor(output, result.params, sample_rate=aligned.sample_rate, fit=fit_stats,
                    provenance={"source": source, "dynamatch": _version()})
    summary = output.with_suffix(".summary.txt")
    summary.write_text(str(result) + "\n\n" + json.dumps(fit_stats, indent=2) + "\n")
    status = "[green]converged[/]" if result.success else f"[yellow]{result.message}[/]"
    console.print(f"{status}: ESR {result.loss:.5g} after {result.nit} iterations in {elapsed:.1f} s → {output}")
    if plot:
        from .report.plots import plot_fit

        prediction = result.params.process(aligned.dry, aligned.sample_rate)
        gain = result.params.gain(aligned.dry, aligned.sample_rate)
        png = plot_fit(output.with_suffix(".png"), aligned.dry, aligned.wet, prediction, aligned.sample_rate,
                       model_gain=gain, reference_gain_reduction_db=reference_gr_db,
                       title=f"{source['wet']}: ESR {result.loss:.4g}")
        console.print(f"plot → {png}")


# -- process --------------------------------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--preset", type=click.Choice(["la2a"]), help="Use a built-in map instead of a model file.")
@click.option("--peak-reduction", type=click.FloatRange(0, 100), default=50.0, show_default=True,
              help="Knob value for maps and presets.")
@click.option("--mode", type=click.Choice(["compress", "limit"]), default="compress", show_default=True)
@click.option("--interpolation", type=click.Choice(["linear", "spline"]), default=None,
              help="Override the map's interpolation.")
@_handle_errors
def process(paths, preset, peak_reduction, mode, interpolation):
    """Process IN → OUT with MODEL (a fitted compressor or a map): ``process MODEL IN OUT`` or
    ``process --preset la2a --peak-reduction 65 --mode limit IN OUT``."""
    from .data.audio import read_audio, write_audio
    from .model_loading import load_processor

    expected = 2 if preset else 3
    if len(paths) != expected:
        raise click.UsageError("usage: process MODEL IN OUT  |  process --preset la2a IN OUT")
    source = f"preset:{preset}" if preset else paths[0]
    in_path, out_path = paths[-2], paths[-1]
    compressor = load_processor(source, peak_reduction=peak_reduction, mode=mode, interpolation=interpolation)
    audio, sample_rate = read_audio(in_path, mono=False)
    output = compressor.process(audio, sample_rate)
    write_audio(out_path, output, sample_rate)
    console.print(f"{in_path} → {out_path} with {compressor}")


# -- warmup ---------------------------------------------------------------------------------------


@main.command()
@_handle_errors
def warmup():
    """Compile and cache every numba kernel now (otherwise the first call of each pays seconds)."""
    started = time.perf_counter()
    from .fitting import fit_arrays

    rng = np.random.default_rng(0)
    x = rng.standard_normal(DEFAULT_SAMPLE_RATE) * 0.3
    from .models.compressor import Compressor

    y = Compressor(-20, 3, 5, 100, 0).process(x, DEFAULT_SAMPLE_RATE)
    fit_arrays(x, y, DEFAULT_SAMPLE_RATE, max_iterations=2)
    console.print(f"kernels compiled and cached in {time.perf_counter() - started:.1f} s")


def _version() -> str:
    from . import __version__

    return __version__


if __name__ == "__main__":
    main()
