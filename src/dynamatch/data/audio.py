"""Audio files in and out, signal sanity checks, and dry/wet pair loading.

Everything returned is float64 (or float32 where asked: ``dtype="float32"``), time on the last axis: ``(samples,)`` mono or ``(channels, samples)``.
Errors are one line that names the file and says what to do (see :mod:`dynamatch.errors`).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf
import soxr

from ..errors import (
    AudioError,
    AudioFileError,
    ClippedAudioError,
    LengthMismatchError,
    NonFiniteAudioError,
    ParameterError,
    SampleRateMismatchError,
    SilentAudioError,
)

log = logging.getLogger(__name__)

SILENCE_DBFS = -90.0  # RMS below this is "silent"
CLIP_LEVEL = 0.9999  # |x| at or above this is full scale (int16 positive full scale is 32767/32768 = 0.99997)
CLIP_RUN_SAMPLES = 4  # a clipped run: at least this many consecutive identical full-scale samples
CLIP_FRACTION = 1e-3  # refuse a signal when more than this fraction of its samples sit in clipped runs
TRIM_FRACTION = 0.005  # dry/wet length differences up to 0.5 % of the longer ...
TRIM_SECONDS = 1.0  # ... or up to 1 s (whichever is larger) are trimmed with a warning
DC_WARN_LEVEL = 0.01  # |mean| at or above this (-40 dBFS) gets a warning
PCM_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32")


@dataclass(frozen=True, eq=False)
class AudioPair:
    """A dry (input) and wet (device output) recording at one sample rate, equal lengths."""

    dry: np.ndarray
    wet: np.ndarray
    sample_rate: int
    dry_name: str
    wet_name: str

    @property
    def duration_seconds(self) -> float:
        return self.dry.shape[-1] / self.sample_rate


def read_audio(
    path: str | os.PathLike,
    *,
    sample_rate: float | None = None,
    mono: bool = True,
    start_seconds: float = 0.0,
    duration_seconds: float | None = None,
    dtype: str = "float64",
) -> tuple[np.ndarray, int]:
    """Read WAV/FLAC/OGG/MP3 (anything libsndfile reads) as float64.

    Returns ``(audio, sample_rate)`` with ``audio`` of shape (samples,) when ``mono`` (channels
    averaged) else (channels, samples).  ``start_seconds``/``duration_seconds`` select a section
    without reading the rest of the file (a section past the end stops at the end).  ``dtype="float32"``
    holds 32-bit float and PCM files exactly at half the memory (resampling still computes in float64).  When ``sample_rate`` is given and differs from the
    file's, the audio is resampled with soxr (very high quality).
    """
    path = Path(path)
    target_rate = None if sample_rate is None else _integer_rate(sample_rate)
    if start_seconds < 0 or not math.isfinite(start_seconds):
        raise ParameterError(f"start_seconds must be >= 0, got {start_seconds}")
    if duration_seconds is not None and not (duration_seconds > 0 and math.isfinite(duration_seconds)):
        raise ParameterError(f"duration_seconds must be > 0 (or None for the rest of the file), got {duration_seconds}")
    if not path.exists():
        raise AudioFileError(f"{path}: file not found: check the path")
    if not path.is_file():
        raise AudioFileError(f"{path}: not a file: give the path of an audio file")
    try:
        with sf.SoundFile(path) as f:
            file_rate, frames = int(f.samplerate), f.frames
            if frames == 0:
                raise AudioFileError(f"{path}: the file holds no audio (0 samples): re-export the recording")
            start = int(round(start_seconds * file_rate))
            if start >= frames:
                raise AudioError(
                    f"{path}: start_seconds={start_seconds} is past the end ({frames / file_rate:.3f} s): pick an earlier start"
                )
            count = -1 if duration_seconds is None else int(round(duration_seconds * file_rate))
            if start:
                f.seek(start)
            if dtype not in ("float32", "float64"):
                raise ParameterError(f"dtype must be float32 or float64, got {dtype!r}")
            data = f.read(frames=count, dtype=dtype, always_2d=f.channels > 1)
            if data.ndim == 1:
                data = data[:, None]
    except (sf.SoundFileError, RuntimeError) as error:  # LibsndfileError derives from SoundFileError
        reason = str(getattr(error, "error_string", error)).replace("\n", " ").strip().rstrip(".")
        raise AudioFileError(
            f"{path}: cannot be read as audio ({reason}): check the file is complete, or convert it to WAV/FLAC"
        ) from error
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: the file holds no audio in the requested section: check start/duration")
    if data.shape[1] == 1:
        audio = data[:, 0] if mono else data.T  # (samples, 1) of a contiguous 1-D read: views, no copy
    else:
        audio = data.mean(axis=1, dtype=np.float64).astype(dtype, copy=False) if mono else np.ascontiguousarray(data.T)
    if target_rate is not None and target_rate != file_rate:
        log.info("resampling %s from %d Hz to %d Hz (soxr VHQ)", path, file_rate, target_rate)
        return resample_audio(audio, file_rate, target_rate).astype(dtype, copy=False), target_rate
    return audio, file_rate


def resample_audio(audio: np.ndarray, sample_rate: float, target_sample_rate: float) -> np.ndarray:
    """Resample along the last axis with soxr (very high quality); shape (samples,) or (channels, samples)."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise AudioError(f"expected audio of shape (samples,) or (channels, samples), got {x.shape}")
    if sample_rate == target_sample_rate:
        return x.copy()
    y = soxr.resample(np.ascontiguousarray(x.T), float(sample_rate), float(target_sample_rate), quality="VHQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float64).T)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, subtype: str = "FLOAT") -> None:
    """Write (samples,) or (channels, samples) audio atomically.

    The data goes to a temporary file in the same directory, which then replaces ``path`` with
    ``os.replace``: readers never see a half-written file.  The format follows the extension.
    """
    path = Path(path)
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] == 0:
        raise AudioError(f"{path}: expected audio of shape (samples,) or (channels, samples), got {x.shape}")
    check_finite(x, str(path))
    if subtype.upper() in PCM_SUBTYPES and np.max(np.abs(x)) > 1.0:
        raise ClippedAudioError(
            f"{path}: peak {np.max(np.abs(x)):.3f} exceeds full scale for {subtype}: scale the audio down or write subtype FLOAT"
        )
    if not path.parent.is_dir():
        raise AudioFileError(f"{path}: folder {path.parent} does not exist: create it first")
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(descriptor)
    try:
        sf.write(temporary, x.T, _integer_rate(sample_rate), subtype=subtype)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError) as error:
        Path(temporary).unlink(missing_ok=True)
        reason = str(error).replace("\n", " ").strip()
        raise AudioFileError(f"{path}: cannot write audio ({reason}): check the extension, subtype and folder") from error


def check_finite(audio: np.ndarray, name: str, sample_rate: float | None = None) -> None:
    """Raise :class:`NonFiniteAudioError` if ``audio`` holds NaN or infinity (says how many and where first)."""
    x = np.asarray(audio)
    bad = ~np.isfinite(x)
    if bad.any():
        bad_in_time = bad.reshape(-1, x.shape[-1]).any(axis=0) if x.ndim > 1 else bad
        first = int(np.argmax(bad_in_time))
        where = f"sample {first}" + (f" ({first / sample_rate:.3f} s)" if sample_rate else "")
        raise NonFiniteAudioError(
            f"{name}: {int(bad.sum())} non-finite samples (NaN/inf), first at {where}: re-render or re-export the audio"
        )


def clipped_fraction(audio: np.ndarray) -> float:
    """Fraction of samples that sit in clipped runs: at least :data:`CLIP_RUN_SAMPLES` consecutive,
    identical samples with ``|x| >= CLIP_LEVEL`` (a flat top at full scale), per channel."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    total = 0
    for channel in x:
        flat = np.zeros(channel.size, dtype=bool)
        flat[1:] = (channel[1:] == channel[:-1]) & (np.abs(channel[1:]) >= CLIP_LEVEL)
        # a run of k identical full-scale samples gives k - 1 consecutive True values in `flat`
        edges = np.diff(np.concatenate(([0], flat.view(np.int8), [0])))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = stops - starts + 1
        total += int(lengths[lengths >= CLIP_RUN_SAMPLES].sum())
    return total / x.size


@dataclass(frozen=True)
class SignalStatistics:
    """What :func:`check_signal` needs, from one compiled pass (float64 sums over float32/64 audio)."""

    samples: int
    non_finite: int
    first_non_finite: int  # sample index along time (-1: none)
    mean: float  # of the finite samples
    rms: float  # of the finite samples
    clipped_fraction: float  # as :func:`clipped_fraction`
    peak: float = 0.0  # max |x| of the finite samples
    full_scale_samples: int = 0  # samples with |x| >= CLIP_LEVEL


def signal_statistics(audio: np.ndarray) -> SignalStatistics:
    """Non-finite count, mean, RMS and clipped fraction of (samples,) or (channels, samples) audio in one
    parallel numba pass per channel (:func:`dynamatch.kernels.signal_checks.signal_statistics`)."""
    from ..kernels.signal_checks import signal_statistics as kernel

    x = np.asarray(audio)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    channels = np.atleast_2d(x)
    if channels.size == 0:
        return SignalStatistics(0, 0, -1, 0.0, 0.0, 0.0)
    bad = clipped = full_scale = 0
    first = -1
    total = squares = peak = 0.0
    for channel in channels:
        b, f, s, q, c, p, fs = kernel(np.ascontiguousarray(channel), CLIP_LEVEL, CLIP_RUN_SAMPLES)
        bad, total, squares, clipped = bad + int(b), total + float(s), squares + float(q), clipped + int(c)
        peak, full_scale = max(peak, float(p)), full_scale + int(fs)
        if f >= 0:
            first = int(f) if first < 0 else min(first, int(f))
    finite = channels.size - bad
    return SignalStatistics(
        samples=int(channels.shape[-1]), non_finite=bad, first_non_finite=first,
        mean=total / finite if finite else 0.0, rms=math.sqrt(squares / finite) if finite else 0.0,
        clipped_fraction=clipped / channels.size, peak=peak, full_scale_samples=full_scale,
    )


def check_signal(audio: np.ndarray, name: str, sample_rate: float | None = None) -> SignalStatistics:
    """Refuse audio that cannot be used to fit a model, with one line naming ``name`` and the fix.

    - :class:`NonFiniteAudioError`: any NaN/inf sample.
    - :class:`SilentAudioError`: all zero, or RMS below :data:`SILENCE_DBFS` (−90 dBFS).
    - :class:`ClippedAudioError`: more than :data:`CLIP_FRACTION` (0.1 %) of the samples sit in
      flat runs of ≥ :data:`CLIP_RUN_SAMPLES` (4) identical samples at ``|x| >= 0.9999`` — the
      signature of a converter or file format that hit full scale.  An isolated full-scale
      sample, or float audio that exceeds 1.0 without flat tops, is not clipping.

    Returns the :class:`SignalStatistics` it checked (one compiled pass).
    """
    stats = signal_statistics(audio)
    if stats.samples == 0:
        raise SilentAudioError(f"{name}: no samples: check the file or the selected section")
    if stats.non_finite:
        where = f"sample {stats.first_non_finite}" + (
            f" ({stats.first_non_finite / sample_rate:.3f} s)" if sample_rate else "")
        raise NonFiniteAudioError(
            f"{name}: {stats.non_finite} non-finite samples (NaN/inf), first at {where}: re-render or re-export the audio"
        )
    rms = stats.rms
    if rms == 0.0 or 20.0 * math.log10(rms) < SILENCE_DBFS:
        level = "all zero" if rms == 0.0 else f"RMS {20.0 * math.log10(rms):.1f} dBFS"
        raise SilentAudioError(
            f"{name}: silent ({level}, below {SILENCE_DBFS:.0f} dBFS): check the recording level and routing"
        )
    fraction = stats.clipped_fraction
    if fraction > CLIP_FRACTION:
        raise ClippedAudioError(
            f"{name}: {100 * fraction:.2f} % of samples sit in flat runs at full scale (clipped): "
            "record again with less gain into the converter"
        )
    return stats


def warn_dc_offset(audio: np.ndarray, name: str, stats: SignalStatistics | None = None) -> float:
    """Log a warning when the mean of ``audio`` is at least :data:`DC_WARN_LEVEL` of full scale (a
    converter or DAW offset: the level detector sees it as signal); returns the offset.  ``stats``: the
    audio's :func:`signal_statistics` when already computed."""
    offset = (stats if stats is not None else signal_statistics(audio)).mean
    if abs(offset) >= DC_WARN_LEVEL:
        log.warning("%s: large DC offset %+.3f (%.0f dBFS): the level detector sees it as signal; "
                    "high-pass the recording or check the converter", name, offset, 20.0 * math.log10(abs(offset)))
    return offset


def _file_channels(path: Path) -> int | None:
    try:
        return int(sf.info(str(path)).channels)
    except Exception:  # unreadable: read_audio reports it with the reason
        return None


def load_pair(
    dry_path: str | os.PathLike,
    wet_path: str | os.PathLike,
    *,
    sample_rate: float | None = None,
    resample: bool = True,
    mono: bool = True,
    dtype: str = "float64",
    check: bool = True,
    background: Callable[[], None] | None = None,
) -> AudioPair:
    """Load a dry/wet recording pair at one sample rate and one length, checked with :func:`check_signal`
    (``check=False``: not checked here, for a caller that checks next, as
    :func:`dynamatch.fitting.check_capture_for_fit` does: one pass over each signal instead of two).

    The common rate is ``sample_rate`` if given, else the dry file's.  A file at another rate is
    resampled (soxr VHQ) when ``resample`` else refused with :class:`SampleRateMismatchError`.
    Lengths that differ by at most max(0.5 % of the longer, 1 s) are trimmed to the shorter with a
    warning; larger differences raise :class:`LengthMismatchError`.

    Large files (:data:`PARALLEL_READ_BYTES` together) are read side by side; ``background`` is then called in
    the wet's reading thread once the wet is read, while the dry is still being read (``dynamatch fit`` loads
    its first kernels there); it is not called for smaller files.
    """
    dry_path, wet_path = Path(dry_path), Path(wet_path)
    dry_channels, wet_channels = _file_channels(dry_path), _file_channels(wet_path)
    if dry_channels and wet_channels and dry_channels != wet_channels:
        raise AudioError(
            f"{dry_path} has {dry_channels} channels but {wet_path} has {wet_channels}: record dry and wet "
            "with the same channel count (or mix both to mono first)"
        )
    (dry, dry_rate), (wet, wet_rate) = _read_both(dry_path, wet_path, background, mono=mono, dtype=dtype)
    rate = dry_rate if sample_rate is None else _integer_rate(sample_rate)
    if not resample and (dry_rate != rate or wet_rate != rate):
        raise SampleRateMismatchError(
            f"{dry_path} is {dry_rate} Hz but {wet_path} is {wet_rate} Hz (wanted {rate} Hz): "
            "export both at one rate, or resample both (CLI: --sample-rate HZ)"
        )
    if dry_rate != rate:
        log.info("resampling %s from %d Hz to %d Hz (soxr VHQ)", dry_path, dry_rate, rate)
        dry = resample_audio(dry, dry_rate, rate).astype(dtype, copy=False)
    if wet_rate != rate:
        log.info("resampling %s from %d Hz to %d Hz (soxr VHQ)", wet_path, wet_rate, rate)
        wet = resample_audio(wet, wet_rate, rate).astype(dtype, copy=False)
    if dry.ndim != wet.ndim or dry.shape[:-1] != wet.shape[:-1]:
        raise AudioError(
            f"{dry_path} has {_channel_count(dry)} channels but {wet_path} has {_channel_count(wet)}: "
            "use files with the same channel count or load them as mono"
        )
    dry_samples, wet_samples = dry.shape[-1], wet.shape[-1]
    if dry_samples != wet_samples:
        difference = abs(dry_samples - wet_samples)
        if difference > max(TRIM_FRACTION * max(dry_samples, wet_samples), TRIM_SECONDS * rate):
            raise LengthMismatchError(
                f"{dry_path} has {dry_samples} samples but {wet_path} has {wet_samples} at {rate} Hz "
                f"({difference / rate:.3f} s apart): check that they are the same take"
            )
        log.warning(
            "%s and %s differ by %d samples (%.3f s): trimming both to the shorter",
            dry_path, wet_path, difference, difference / rate,
        )
        length = min(dry_samples, wet_samples)
        dry, wet = dry[..., :length], wet[..., :length]
    if check:
        stats = [check_signal(dry, str(dry_path), rate), check_signal(wet, str(wet_path), rate)]
        for audio, path, audio_stats in ((dry, dry_path, stats[0]), (wet, wet_path, stats[1])):
            warn_dc_offset(audio, str(path), audio_stats)
    return AudioPair(np.ascontiguousarray(dry), np.ascontiguousarray(wet), rate, str(dry_path), str(wet_path))


#: Files at least this large (bytes, both together) are read side by side (see :func:`_read_both`).
PARALLEL_READ_BYTES = 1 << 24


def _read_both(dry_path: Path, wet_path: Path, background: Callable[[], None] | None = None,
               **options) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
    """``read_audio`` of both files; large ones side by side, the wet in a second thread (libsndfile runs
    without the GIL, and most of a long file's read is the kernel faulting its fresh memory in, which two cores
    share), which then runs ``background``.  The dry's error is raised first, as when read one after the other."""
    try:
        size = dry_path.stat().st_size + wet_path.stat().st_size
    except OSError:  # missing: read_audio says which
        size = 0
    if size < PARALLEL_READ_BYTES:
        return read_audio(dry_path, **options), read_audio(wet_path, **options)
    import threading

    outcome: dict[str, Any] = {}

    def read_wet() -> None:
        try:
            outcome["wet"] = read_audio(wet_path, **options)
        except BaseException as error:  # re-raised in the calling thread, after the dry's
            outcome["error"] = error
            return
        if background is not None:
            background()

    thread = threading.Thread(target=read_wet, name="dynamatch-read", daemon=True)
    thread.start()
    try:
        dry = read_audio(dry_path, **options)
    finally:
        thread.join()
    if "error" in outcome:
        raise outcome.pop("error")
    return dry, outcome["wet"]


def _integer_rate(sample_rate: float) -> int:
    rate = float(sample_rate)
    if not (math.isfinite(rate) and rate > 0 and rate == round(rate)):
        raise ParameterError(f"sample_rate must be a positive whole number of Hz, got {sample_rate}")
    return int(rate)


def _channel_count(audio: np.ndarray) -> int:
    return 1 if audio.ndim == 1 else audio.shape[0]
