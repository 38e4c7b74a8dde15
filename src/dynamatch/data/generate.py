"""Render synthetic datasets: the exact SignalTrain v1.1 layout, or a manifest-layout capture set.

Both generators are idempotent: a file that already exists with the expected sample rate, one channel,
32-bit float samples and the expected length is kept; anything else is (re)rendered and written
atomically, so an interrupted run leaves no half-written file under its final name.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import DatasetError, LengthMismatchError, NonFiniteAudioError, ParameterError
from ..models.opto import OptoLevellingAmplifier
from .audio import write_audio
from .datasets import MANIFEST_NAME, MODES
from .signaltrain import (
    DATASET_FOLDER,
    INPUT_PATTERN,
    SAMPLE_RATE,
    SPLIT_FOLDERS,
    TARGET_PATTERN,
    input_file_name,
    target_file_name,
)
from .stimulus import capture_stimulus, programme_like

FIRST_ID = 138  # the first 3c session ID of SignalTrain v1.1
GENERATED_MARKER = ".dynamatch-generated"  # marks a dataset folder the generator owns

Device = Callable[[np.ndarray, int, str, float], np.ndarray]
Progress = Callable[[int, int, str], None]


def opto_device(x: np.ndarray, sample_rate: int, mode: str, peak_reduction: float) -> np.ndarray:
    """The :class:`OptoLevellingAmplifier` as a device callable ``f(x, sample_rate, mode, peak_reduction)``."""
    return OptoLevellingAmplifier(peak_reduction=peak_reduction, mode=mode).process(x, sample_rate)


def _is_complete(path: Path, sample_rate: int, length_samples: int) -> bool:
    """True when ``path`` is a mono 32-bit float file at ``sample_rate`` with ``length_samples`` frames."""
    if not path.is_file():
        return False
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError):
        return False
    return (
        info.samplerate == sample_rate
        and info.channels == 1
        and info.frames == length_samples
        and info.subtype == "FLOAT"
    )


def _render(device: Device, x: np.ndarray, sample_rate: int, mode: str, peak_reduction: float, path: Path):
    """Run the device and check what it returned (same length as ``x``, finite)."""
    y = np.asarray(device(x, sample_rate, mode, peak_reduction), dtype=np.float64)
    if y.shape != x.shape:
        raise LengthMismatchError(f"{path}: the device returned shape {y.shape} for {x.shape}; it must keep the length")
    if not np.all(np.isfinite(y)):
        raise NonFiniteAudioError(f"{path}: the device returned NaN or infinite samples at {mode} {peak_reduction:g}")
    return y


def _check_settings(modes: Iterable[str], peak_reductions: Iterable[float]) -> tuple[list[str], list[int]]:
    modes = list(modes)
    prs = [float(p) for p in peak_reductions]
    if not modes or not prs:
        raise ParameterError("at least one mode and one peak reduction are needed")
    bad_modes = [m for m in modes if m not in MODES]
    if bad_modes:
        raise ParameterError(f"unknown mode(s) {bad_modes}; choose from {', '.join(MODES)}")
    bad_prs = [p for p in prs if not (0 <= p <= 100 and p == int(p))]
    if bad_prs:
        raise ParameterError(f"SignalTrain file names hold whole peak reductions 0–100, got {bad_prs}")
    return modes, [int(p) for p in prs]


def generate_signaltrain_like(
    root,
    *,
    duration_seconds: float = 60.0,
    peak_reductions: Iterable[float] = range(40, 101, 5),
    modes: Iterable[str] = MODES,
    splits: Mapping[str, Iterable[tuple[str, float]]] | None = None,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
    device: Device = opto_device,
    progress: Progress | None = None,
) -> Path:
    """Write ``root/SignalTrain_LA2A_Dataset_1.1`` in the exact v1.1 layout; return that folder.

    One pair per setting, IDs from 138 up, 3c session names
    (``input_<ID>_.wav``, ``target_<ID>_LA2A_3c__<0|1>__<PR>.wav``), float32 mono WAV.
    ``splits`` maps ``"train"``/``"val"``/``"test"`` to ``(mode, peak_reduction)`` settings; by default
    Train holds every setting of ``modes`` × ``peak_reductions``, Val the middle peak reduction in the
    first mode and Test the middle one in the last mode.  Every Train input is the same ``capture_stimulus``
    (``seed``), so that differences between settings come from the knob alone (SignalTrain's inputs differ
    per file); Val/Test inputs are ``programme_like`` (seed + ID), audio the fits never saw; targets are
    ``device`` renders (the opto model by default).  ``progress(done, total, name)`` is called after each pair.

    The folder is marked with ``.dynamatch-generated``; a non-empty folder without the mark (a real
    download, say) is refused.  Pair files of an earlier run that this run does not list are deleted;
    complete files are kept, so a different ``seed`` or ``device`` needs a new root.
    """
    if sample_rate != SAMPLE_RATE:
        raise ParameterError(
            f"the SignalTrain layout is {SAMPLE_RATE} Hz only, got {sample_rate}; use generate_capture_set instead"
        )
    if duration_seconds <= 0:
        raise ParameterError(f"duration_seconds must be > 0, got {duration_seconds}")
    modes, prs = _check_settings(modes, peak_reductions)
    if splits is None:
        middle = sorted(prs)[len(prs) // 2]
        splits = {
            "train": [(m, p) for m in modes for p in prs],
            "val": [(modes[0], middle)],
            "test": [(modes[-1], middle)],
        }
    unknown = [s for s in splits if s not in SPLIT_FOLDERS]
    if unknown:
        raise ParameterError(f"unknown split(s) {unknown}; choose from {', '.join(SPLIT_FOLDERS)}")
    jobs = []
    for split in SPLIT_FOLDERS:
        if split in splits:
            split_settings = list(splits[split])
            split_modes, split_prs = _check_settings([m for m, _ in split_settings], [p for _, p in split_settings])
            jobs += [(split, m, p) for m, p in zip(split_modes, split_prs)]
    dataset = Path(root) / DATASET_FOLDER
    _claim(dataset)
    written: set[Path] = set()
    length_samples = int(round(duration_seconds * sample_rate))
    train_stimulus = None  # the same for every train pair: generated once
    for done, (split, mode, pr) in enumerate(jobs, start=1):
        pair_id = FIRST_ID + done - 1
        folder = dataset / SPLIT_FOLDERS[split]
        folder.mkdir(parents=True, exist_ok=True)
        input_path = folder / input_file_name(pair_id)
        target_path = folder / target_file_name(pair_id, "3c", mode, pr)
        complete = [_is_complete(p, sample_rate, length_samples) for p in (input_path, target_path)]
        if not all(complete):
            if split == "train":
                if train_stimulus is None:
                    train_stimulus = capture_stimulus(sample_rate, duration_seconds=duration_seconds, seed=seed)
                x = train_stimulus
            else:
                x = programme_like(sample_rate, duration_seconds, seed + pair_id)
            x = np.asarray(x, dtype=np.float64)[:length_samples]
            if x.shape != (length_samples,):
                raise LengthMismatchError(
                    f"{input_path}: the stimulus has {x.size} samples, expected {length_samples} mono samples"
                )
            if not complete[0]:
                write_audio(input_path, x.astype(np.float32), sample_rate, subtype="FLOAT")
            # render from the float32 samples actually stored, so the pair is consistent on disk
            y = _render(device, x.astype(np.float32).astype(np.float64), sample_rate, mode, pr, target_path)
            write_audio(target_path, y.astype(np.float32), sample_rate, subtype="FLOAT")
        written |= {input_path, target_path}
        if progress is not None:
            progress(done, len(jobs), target_path.name)
    _remove_stale(dataset, written)
    return dataset


def _claim(dataset: Path) -> None:
    """Create ``dataset`` with the generator's marker; refuse a non-empty folder that lacks it (e.g. real data)."""
    marker = dataset / GENERATED_MARKER
    if dataset.is_dir() and not marker.is_file() and any(dataset.iterdir()):
        raise DatasetError(
            f"{dataset}: exists and was not written by dynamatch (no {GENERATED_MARKER}); choose an empty root"
        )
    dataset.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        marker.write_text("written by dynamatch.data.generate.generate_signaltrain_like; stale pairs are removed\n")


def _remove_stale(dataset: Path, keep: set[Path]) -> None:
    """Delete pair files an earlier run left that this run did not write (other settings or splits)."""
    for folder in SPLIT_FOLDERS.values():
        for path in sorted((dataset / folder).glob("*.wav")):
            is_pair_file = INPUT_PATTERN.match(path.name) or TARGET_PATTERN.match(path.name)
            if is_pair_file and path not in keep:
                path.unlink()


def generate_capture_set(
    root,
    device: Device,
    settings: Iterable[tuple[str, float]],
    *,
    duration_seconds: float = 60.0,
    sample_rate: int = 44100,
    seed: int = 0,
    stimulus: np.ndarray | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write a manifest-layout capture set in ``root``: one ``input.wav``, one target per setting; return ``root``.

    The input is ``stimulus`` when given, else ``capture_stimulus(sample_rate, duration_seconds, seed)``;
    each ``(mode, peak_reduction)`` in ``settings`` is rendered by ``device(x, sample_rate, mode, peak_reduction)``
    to ``targets/<mode>_<peak_reduction>.wav`` and listed in ``manifest.csv`` (input, target, mode, peak_reduction).
    """
    settings = [(str(m), float(p)) for m, p in settings]
    if not settings:
        raise ParameterError("settings is empty; give at least one (mode, peak_reduction)")
    bad_modes = [m for m, _ in settings if m not in MODES]
    if bad_modes:
        raise ParameterError(f"unknown mode(s) {bad_modes}; choose from {', '.join(MODES)}")
    if len(set(settings)) != len(settings):
        raise ParameterError("settings lists a (mode, peak_reduction) twice; list each once")
    root = Path(root)
    (root / "targets").mkdir(parents=True, exist_ok=True)
    if stimulus is None:
        if duration_seconds <= 0:
            raise ParameterError(f"duration_seconds must be > 0, got {duration_seconds}")
        x = np.asarray(capture_stimulus(sample_rate, duration_seconds=duration_seconds, seed=seed), dtype=np.float64)
    else:
        x = np.asarray(stimulus, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ParameterError(f"the stimulus must be a non-empty mono array, got shape {x.shape}")
    x = x.astype(np.float32).astype(np.float64)  # what the file will hold
    input_path = root / "input.wav"
    if not _is_complete(input_path, sample_rate, x.size):
        write_audio(input_path, x.astype(np.float32), sample_rate, subtype="FLOAT")
    rows = []
    for done, (mode, pr) in enumerate(settings, start=1):
        target_path = root / "targets" / f"{mode}_{pr:g}.wav"
        if not _is_complete(target_path, sample_rate, x.size):
            y = _render(device, x, sample_rate, mode, pr, target_path)
            write_audio(target_path, y.astype(np.float32), sample_rate, subtype="FLOAT")
        rows.append(
            {"input": input_path.name, "target": f"targets/{target_path.name}", "mode": mode, "peak_reduction": f"{pr:g}"}
        )
        if progress is not None:
            progress(done, len(settings), target_path.name)
    _write_manifest(root / MANIFEST_NAME, rows)
    return root


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the manifest CSV atomically (temporary file in the same folder, then rename)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["input", "target", "mode", "peak_reduction"])
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
