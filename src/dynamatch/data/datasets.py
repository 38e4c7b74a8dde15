"""The common interface of paired (input, target) datasets: listing, filtering and windowed reading.

Two layouts are supported, detected by :func:`open_dataset`:

* SignalTrain LA2A v1.1 (:class:`~dynamatch.data.signaltrain.SignalTrainDataset`):
  ``{Train,Val,Test}/input_<ID>_.wav`` paired with ``target_<ID>_LA2A_<2c|3c>__<switch>__<PR>.wav``;
* a capture set (:class:`~dynamatch.data.captureset.CaptureSetDataset`): a folder with ``manifest.csv``.

Listing never reads audio (only headers, via ``soundfile.info``); :meth:`PairDataset.read` reads the
requested window only, and returns the input and target trimmed to their common length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import DatasetError, ParameterError
from ..models.parameters import MODES  # noqa: F401  (re-exported: the one definition of the modes)

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test", "")
MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class PairInfo:
    """One input/target recording pair and the knob settings it was recorded at."""

    input_path: Path
    target_path: Path
    mode: str  # "compress" | "limit"
    peak_reduction: float  # knob value (0..100 on an LA-2A)
    split: str  # "train" | "val" | "test" | "" (no split)
    session: str  # "2c" | "3c" for SignalTrain, "" otherwise
    name: str  # short unique id, e.g. "138_3c_limit_65"
    duration_seconds: float  # of the common (input, target) length
    length_samples: int  # common length: min(input frames, target frames)


@dataclass(frozen=True)
class AudioHeader:
    """What ``soundfile.info`` says about a file, read without decoding audio."""

    sample_rate: int
    channels: int
    length_samples: int


def audio_header(path: Path) -> AudioHeader:
    """Header of an audio file; :class:`DatasetError` naming the file when it cannot be opened."""
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as error:
        raise DatasetError(f"{path}: cannot read the audio header ({error}); re-download or re-render it") from None
    return AudioHeader(int(info.samplerate), int(info.channels), int(info.frames))


def _matches(value, wanted) -> bool:
    """True when ``wanted`` is None, equals ``value``, or (an iterable that is not a string) contains it."""
    if wanted is None:
        return True
    if isinstance(wanted, str) or not isinstance(wanted, Iterable):
        wanted = (wanted,)
    if isinstance(value, str):
        return value in {w.lower() for w in wanted if isinstance(w, str)}
    return any(float(value) == float(w) for w in wanted)


class PairDataset:
    """A list of :class:`PairInfo` at one sample rate, with filtering and windowed, length-safe reading.

    Subclasses find the pairs (from file names or a manifest) and pass them to this constructor.
    """

    def __init__(self, root: Path, sample_rate: int, pairs: Iterable[PairInfo]) -> None:
        self.root = Path(root)
        self.sample_rate = int(sample_rate)
        self._pairs: tuple[PairInfo, ...] = tuple(sorted(pairs, key=lambda p: (SPLITS.index(p.split), p.name)))
        self._trim_logged: set[str] = set()

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}: {len(self._pairs)} pairs at {self.sample_rate} Hz)"

    def pairs(self, *, split=None, mode=None, peak_reduction=None, session=None) -> list[PairInfo]:
        """Pairs whose fields match every filter given; each filter is a value or an iterable of values.

        Strings compare case-insensitively (``split="Train"`` works); peak reductions compare as floats.
        """
        return [
            p
            for p in self._pairs
            if _matches(p.split, split)
            and _matches(p.mode, mode)
            and _matches(p.peak_reduction, peak_reduction)
            and _matches(p.session, session)
        ]

    def settings(self, mode=None) -> list[tuple[str, float]]:
        """Sorted distinct ``(mode, peak_reduction)`` settings, optionally for some modes only."""
        return sorted({(p.mode, p.peak_reduction) for p in self._pairs if _matches(p.mode, mode)})

    def read(self, pair: PairInfo, *, start_seconds: float = 0.0, duration_seconds: float | None = None):
        """Read ``(input, target)`` as float64 mono arrays of equal length.

        The window ``[start_seconds, start_seconds + duration_seconds)`` is read from both files (seeking,
        never decoding the rest) and clipped to the pair's common length; files whose lengths differ
        (SignalTrain v1.1 IDs 147–150 and 152) are trimmed at the end, which is logged once per pair.
        """
        start_samples = int(round(float(start_seconds) * self.sample_rate))
        if start_samples < 0 or start_samples >= pair.length_samples:
            raise ParameterError(
                f"{pair.input_path}: start_seconds={start_seconds} is outside the pair "
                f"(0 to {pair.duration_seconds:.3f} s); choose a start inside it"
            )
        available = pair.length_samples - start_samples
        if duration_seconds is None:
            frames = available
        else:
            if duration_seconds <= 0:
                raise ParameterError(f"{pair.input_path}: duration_seconds must be > 0, got {duration_seconds}")
            frames = min(available, int(round(float(duration_seconds) * self.sample_rate)))
        x, input_length = self._read_mono(pair.input_path, start_samples, frames)
        y, target_length = self._read_mono(pair.target_path, start_samples, frames)
        if input_length != target_length and pair.name not in self._trim_logged:
            self._trim_logged.add(pair.name)
            logger.info(
                "%s: input has %d samples, target %d; using the common %d",
                pair.name, input_length, target_length, pair.length_samples,
            )
        return x, y

    def _read_mono(self, path: Path, start_samples: int, frames: int) -> tuple[np.ndarray, int]:
        """Read ``frames`` samples from ``start_samples``; returns the samples and the file's length."""
        try:
            with sf.SoundFile(str(path)) as f:
                if f.channels != 1 or f.samplerate != self.sample_rate:
                    raise DatasetError(
                        f"{path}: expected mono at {self.sample_rate} Hz, found {f.channels} channels at "
                        f"{f.samplerate} Hz; convert the file"
                    )
                f.seek(start_samples)
                data = f.read(frames, dtype="float64", always_2d=True)
                length = f.frames
        except (sf.SoundFileError, RuntimeError, OSError) as error:
            raise DatasetError(f"{path}: cannot read audio ({error}); check the file") from None
        if data.shape[0] != frames:
            raise DatasetError(f"{path}: ended after {data.shape[0]} of {frames} samples; it changed since listing")
        return data[:, 0], length


def open_dataset(path) -> PairDataset:
    """Open a dataset, detecting its layout: SignalTrain (Train/Val/Test folders) or a capture set (manifest.csv)."""
    from .captureset import CaptureSetDataset
    from .signaltrain import SignalTrainDataset, find_signaltrain_root

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: not found; give a SignalTrain folder or a capture set with {MANIFEST_NAME}")
    if path.is_file() and path.name == MANIFEST_NAME:
        return CaptureSetDataset(path.parent)
    if (path / MANIFEST_NAME).is_file():
        return CaptureSetDataset(path)
    if path.is_dir() and find_signaltrain_root(path) is not None:
        return SignalTrainDataset(path)
    raise DatasetError(
        f"{path}: not a dataset; expected a SignalTrain folder (Train/Val/Test with input_<ID>_.wav and "
        f"target_<ID>_LA2A_*.wav files) or a capture set (a folder with {MANIFEST_NAME})"
    )
