"""Capturing a plugin over a grid of settings into a capture set that ``fit-map`` reads.

``capture_plugin(plugin, output, grid)`` renders the capture stimulus (:func:`capture_stimulus`)
through the plugin at every combination of ``grid`` (``{"threshold_db": [-30, -20, -10], "ratio": [4]}``)
and writes::

    output/capture.json      what was captured (plugin, stimulus, grid): a rerun must match it
    output/dry/stimulus.wav  the stimulus (32-bit float)
    output/wet/NNNN.wav      one render per setting
    output/manifest.csv      input,target,mode,peak_reduction,split,knob,<every parameter>

A map interpolates over one knob: the one parameter of the grid with more than one value
(``knob`` column; its value goes in ``peak_reduction``, the column the capture-set reader keys on).
``mode_param`` names a parameter of at most two values that is the mode switch instead: its first
value is ``compress``, its second ``limit``.  Every render is written atomically and the manifest
after it, so an interrupted capture resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..documents import CAPTURE_SET, write_json
from ..errors import DatasetError, ParameterError
from .audio import write_audio
from .captureset import CaptureSetDataset
from .datasets import MANIFEST_NAME
from .plugins import HostedPlugin, open_plugin
from .stimulus import capture_stimulus

CAPTURE_FORMAT = CAPTURE_SET.format
CAPTURE_FILE = "capture.json"


def parse_grid(specs: Sequence[str]) -> dict[str, list[float]]:
    """``["threshold_db=-30,-20", "ratio=4"]`` → ``{"threshold_db": [-30.0, -20.0], "ratio": [4.0]}``."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        try:
            numbers = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            numbers = []
        if not sep or not name.strip() or not numbers:
            raise ParameterError(f"--param {spec!r}: write NAME=V1,V2,… (e.g. threshold_db=-30,-20,-10)")
        grid[name.strip()] = numbers
    return grid


def grid_settings(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """Every combination of the grid, the last parameter varying fastest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def capture_plugin(
    plugin: str | Path | HostedPlugin,
    output: str | os.PathLike,
    grid: Mapping[str, Sequence[float]],
    *,
    mode_param: str | None = None,
    sample_rate: int = 44100,
    duration_seconds: float = 60.0,
    seed: int = 0,
    on_render: Callable[[int, int, dict[str, float], bool], None] | None = None,
) -> CaptureSetDataset:
    """Render the stimulus through ``plugin`` at every grid setting into capture set ``output`` (resumable).

    ``on_render(index, total, setting, skipped)`` reports progress (``skipped``: already on disk).
    """
    host = plugin if isinstance(plugin, HostedPlugin) else open_plugin(plugin)
    if not grid:
        raise ParameterError("give at least one --param NAME=V1,V2,…")
    grid = {host.resolve(name).key: [float(v) for v in values] for name, values in grid.items()}
    mode_key = host.resolve(mode_param).key if mode_param else None
    if mode_key is not None and (mode_key not in grid or len(grid[mode_key]) > 2):
        raise ParameterError(f"--mode-param {mode_param}: give it as --param {mode_key}=COMPRESS_VALUE[,LIMIT_VALUE]")
    varying = [name for name, values in grid.items() if len(values) > 1 and name != mode_key]
    if len(varying) > 1:
        raise ParameterError(f"maps interpolate over one knob, but {', '.join(varying)} all vary: "
                             "give every parameter but one a single value")
    knob = varying[0] if varying else next(n for n in grid if n != mode_key) if len(grid) > (mode_key is not None) else None
    if knob is None:
        raise ParameterError("the grid has only the mode parameter; add the knob to capture with --param")

    root = Path(output)
    description = {"format": CAPTURE_FORMAT, "format_version": CAPTURE_SET.version, "plugin": host.path, "grid": grid,
                   "mode_param": mode_key, "knob": knob, "sample_rate": int(sample_rate),
                   "stimulus": {"duration_seconds": float(duration_seconds), "seed": int(seed)}}
    description_path = root / CAPTURE_FILE
    if description_path.is_file():
        previous = json.loads(description_path.read_text())
        if previous != json.loads(json.dumps(description)):
            raise DatasetError(f"{root}: holds another capture ({description_path} differs); "
                               "use a new folder or delete this one")
    root.mkdir(parents=True, exist_ok=True)
    (root / "wet").mkdir(exist_ok=True)
    (root / "dry").mkdir(exist_ok=True)
    write_json(description_path, description)

    x = capture_stimulus(sample_rate, duration_seconds=duration_seconds, seed=seed)
    dry_path = root / "dry" / "stimulus.wav"
    if not dry_path.is_file():
        write_audio(dry_path, x, sample_rate, subtype="FLOAT")
    x = x.astype(np.float32).astype(np.float64)  # what the file holds

    settings = grid_settings(grid)
    rows = []
    for index, setting in enumerate(settings):
        target = root / "wet" / f"{index:04d}.wav"
        skipped = target.is_file()
        if not skipped:
            applied = host.apply(setting)
            y = host.render(x, sample_rate)
            if not np.all(np.isfinite(y)):
                raise DatasetError(f"{host.path}: non-finite output at {setting}; check the plugin")
            write_audio(target, y, sample_rate, subtype="FLOAT")
        else:
            applied = host.apply(setting)  # the snapped values, for the manifest
        mode = "compress" if mode_key is None or setting[mode_key] == grid[mode_key][0] else "limit"
        rows.append({"input": "dry/stimulus.wav", "target": f"wet/{index:04d}.wav", "mode": mode,
                     "peak_reduction": repr(applied[knob]), "split": "train", "knob": knob,
                     **{name: repr(value) for name, value in applied.items()}})
        _write_manifest(root / MANIFEST_NAME, rows, list(grid))
        if on_render:
            on_render(index, len(settings), setting, skipped)
    return CaptureSetDataset(root)


def _write_manifest(path: Path, rows: list[dict[str, str]], parameters: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["input", "target", "mode", "peak_reduction", "split", "knob", *parameters],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text_atomic(path, buffer.getvalue())


def _write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text)
    os.replace(temporary, path)
