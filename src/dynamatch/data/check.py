r"""The capture report: what a dry/wet recording looks like before a model is fitted to it.

:func:`check_capture` returns a :class:`CaptureReport`, one :class:`CheckLine` per check, each
``pass``, ``warn`` or ``fail``:

=============  ==========================================================================================
check          what is measured (and when it warns / fails)
=============  ==========================================================================================
length         dry and wet durations (warn: they differ by more than 10 ms)
latency        lag of the wet behind the dry, sub-sample (:func:`estimate_alignment`); fail when the
               two do not correlate (peak correlation < 0.3: not the same take), warn when the wet
               *leads* the dry (swapped files or a cut start)
polarity       sign of the correlation peak (warn when inverted; the fit corrects it)
level          peak and RMS of both, in dBFS (fail: wet silent; warn: wet peak below −40 dBFS)
drift          clock drift: the lag measured on :data:`DRIFT_WINDOWS` windows across the take, a
               straight line through them, :math:`\text{lag}(t) = a + b\,t`; ``b`` in ppm and the
               lag change over the take in samples (warn ≥ 0.05, fail ≥ 0.25 samples: two clocks;
               record with the interface's one clock, or resample)
clipping       samples in flat runs at full scale (:func:`clipped_fraction`) in either file (fail above
               0.1 %, warn on any), and peaks at full scale
noise          noise floor = RMS of the wet where the dry is silent (frames more than 80 dB below the
               dry's loudest frame, away from signal); SNR = wet RMS on active frames − noise floor
               (warn < 60 dB, fail < 40 dB; warn when the dry has no silence to measure it on)
stimulus       whether the dry is a standard capture stimulus, recognised by the SHA-256 of its samples
               as float32 (:data:`STANDARD_STIMULI`, versioned); warn when it is not
calibration    the interface's level reference: ``reference_dbu`` = the dBu level of 0 dBFS at the output
               that plays the dry, ``input_reference_dbu`` = at the input that records the wet (defaults
               to ``reference_dbu``); gives the dry's and wet's peaks in dBu.  A compressor's behaviour
               depends on absolute level, so a model is only right at the level it was captured at:
               warn when no reference is stated
=============  ==========================================================================================

``report.passed`` is true when no line fails.  ``report.to_dict()`` is the JSON form.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..documents import CAPTURE_CHECK
from ..errors import AudioError, DynamatchError
from .alignment import estimate_alignment
from .audio import CLIP_FRACTION, SignalStatistics, signal_statistics

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUSES = (PASS, WARN, FAIL)

MIN_CORRELATION = 0.3
LENGTH_TOLERANCE_SECONDS = 0.01
QUIET_WET_PEAK_DBFS = -40.0
DRIFT_WINDOWS = 16
DRIFT_WINDOW_SECONDS = 2.0  # each window this long at most
DRIFT_SEARCH_SAMPLES = 12  # each window searched this far around the predicted lag
DRIFT_WARN_SAMPLES = 0.05  # lag change over the take
DRIFT_FAIL_SAMPLES = 0.25
DRIFT_MIN_CORRELATION = 0.5  # windows correlating less than this are left out of the drift line
FRAME_SECONDS = 0.01
SILENT_BELOW_PEAK_DB = 80.0  # a dry frame this far below the dry's loudest frame is "silent"
GUARD_SECONDS = 0.05  # frames this close to signal are neither silent nor active (tails, latency)
SNR_WARN_DB = 60.0
SNR_FAIL_DB = 40.0
FLOOR_DB = -200.0

# version -> how it is made (dynamatch.data.stimulus.capture_stimulus) and the SHA-256 of its samples as
# little-endian float32 (what `dynamatch stimulus` writes).  A new stimulus gets a new version; old ones stay.
STANDARD_STIMULI: dict[str, dict[str, Any]] = {
    "v1-44100": {"version": 1, "sample_rate": 44100, "duration_seconds": 60.0, "seed": 0,
                 "sha256": "39139e4caae2794ae3d8d821ec4f71e7539474ca71251272966960eff599a796"},
    "v1-48000": {"version": 1, "sample_rate": 48000, "duration_seconds": 60.0, "seed": 0,
                 "sha256": "bf643101f288a607f09c77443605a982e30ed64cc103af77471bcd7379b85f06"},
}


class CaptureCheckError(DynamatchError, ValueError):
    """A capture whose report has failing lines (``fit`` refuses it unless told to ignore the checks)."""


@dataclass(frozen=True)
class CheckLine:
    """One line of the report: a check, its verdict, a one-line reading and the measured values."""

    name: str
    status: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message, "values": _jsonable(self.values)}


@dataclass(frozen=True)
class CaptureReport:
    """Every check of one dry/wet pair; ``calibration`` is what a model file records as provenance."""

    lines: tuple[CheckLine, ...]
    sample_rate: int
    dry_name: str = "dry"
    wet_name: str = "wet"
    #: the whole-take alignment the latency line measured (``fit`` applies it instead of measuring again)
    alignment: Any = field(default=None, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return all(line.status != FAIL for line in self.lines)

    @property
    def failures(self) -> list[CheckLine]:
        return [line for line in self.lines if line.status == FAIL]

    def line(self, name: str) -> CheckLine:
        for line in self.lines:
            if line.name == name:
                return line
        raise KeyError(name)

    @property
    def calibration(self) -> dict[str, Any]:
        return dict(self.line("calibration").values)

    def to_dict(self) -> dict[str, Any]:
        return {"format": CAPTURE_CHECK.format, "format_version": CAPTURE_CHECK.version, "dry": self.dry_name,
                "wet": self.wet_name, "sample_rate": self.sample_rate, "passed": self.passed,
                "checks": [line.to_dict() for line in self.lines]}

    def raise_on_failure(self, hint: str = "use --ignore-checks to fit anyway") -> None:
        if not self.passed:
            detail = "; ".join(f"{line.name}: {line.message}" for line in self.failures)
            raise CaptureCheckError(f"{self.wet_name}: capture check failed ({detail}); {hint}")


def stimulus_hash(dry: np.ndarray, block_samples: int = 1 << 20) -> str:
    """SHA-256 of the samples as little-endian float32 (the standard stimulus's identity), block by block:
    float32 audio is hashed in place, anything else converted one block at a time (no full-length copy)."""
    x = np.asarray(dry).reshape(-1)
    digest = hashlib.sha256()
    for start in range(0, x.size, block_samples):
        block = x[start:start + block_samples]
        if block.dtype != np.dtype("<f4"):
            block = block.astype(np.float64).astype("<f4")  # as before: through float64, then rounded
        digest.update(memoryview(np.ascontiguousarray(block)).cast("B"))
    return digest.hexdigest()


def recognise_stimulus(dry: np.ndarray, digest: str | None = None) -> str | None:
    """The :data:`STANDARD_STIMULI` key whose hash matches ``dry`` (``digest``: its :func:`stimulus_hash`,
    when already computed), or None."""
    digest = stimulus_hash(dry) if digest is None else digest
    for key, entry in STANDARD_STIMULI.items():
        if entry["sha256"] == digest:
            return key
    return None


def check_capture(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: int,
    *,
    reference_dbu: float | None = None,
    input_reference_dbu: float | None = None,
    dry_name: str = "dry",
    wet_name: str = "wet",
    statistics: tuple[SignalStatistics, SignalStatistics] | None = None,
) -> CaptureReport:
    """Run every check on a mono dry/wet pair at one sample rate (lengths may differ a little).

    ``statistics``: the :func:`~dynamatch.data.audio.signal_statistics` of ``dry`` and ``wet`` (1-D, as
    given) when the caller has them already (not computed again)."""
    mono_given = np.ndim(dry) == 1 and np.ndim(wet) == 1
    dry, wet = _mono(dry, dry_name), _mono(wet, wet_name)
    # the stimulus line's SHA-256 (hashlib runs without the GIL) in a thread beside the other checks
    digest = _background_hash(dry)
    lines = [_length_line(dry, wet, sample_rate)]
    length = min(dry.size, wet.size)
    dry_cut, wet_cut = dry[:length], wet[:length]
    # one compiled pass per signal gives level, clipping and calibration (float64 sums, no copies)
    if statistics is not None and mono_given and dry.size == wet.size:
        dry_stats, wet_stats = statistics
    else:
        dry_stats, wet_stats = signal_statistics(dry_cut), signal_statistics(wet_cut)
    dry_full = dry_stats if dry.size == length else signal_statistics(dry)
    wet_full = wet_stats if wet.size == length else signal_statistics(wet)
    level = _level_line(dry_stats, wet_stats)
    alignment = None
    if level.status != FAIL and dry_stats.rms > 0:
        try:
            alignment = estimate_alignment(dry_cut, wet_cut, sample_rate)
        except AudioError:
            alignment = None
    lines += _latency_lines(alignment, sample_rate)
    lines.append(level)
    lines.append(_drift_line(dry_cut, wet_cut, sample_rate, alignment))
    lines.append(_clipping_line(dry_full, wet_full))
    lines.append(_noise_line(dry_cut, wet_cut, sample_rate, alignment))
    lines.append(_stimulus_line(dry, digest()))
    lines.append(_calibration_line(dry_stats, wet_stats, reference_dbu, input_reference_dbu))
    return CaptureReport(tuple(lines), int(sample_rate), dry_name, wet_name, alignment=alignment)


def check_files(dry_path, wet_path, **kwargs) -> CaptureReport:
    """:func:`check_capture` on two files (mono mixdown; the wet resampled to the dry's rate if needed)."""
    from .audio import read_audio

    dry, rate = read_audio(dry_path, mono=True)
    wet, _ = read_audio(wet_path, mono=True, sample_rate=rate)
    return check_capture(dry, wet, rate, dry_name=str(dry_path), wet_name=str(wet_path), **kwargs)


# -- the checks -----------------------------------------------------------------------------------


def _length_line(dry: np.ndarray, wet: np.ndarray, sample_rate: float) -> CheckLine:
    difference = (wet.size - dry.size) / sample_rate
    values = {"dry_seconds": dry.size / sample_rate, "wet_seconds": wet.size / sample_rate,
              "difference_seconds": difference}
    text = f"dry {dry.size / sample_rate:.3f} s, wet {wet.size / sample_rate:.3f} s"
    if abs(difference) > LENGTH_TOLERANCE_SECONDS:
        return CheckLine("length", WARN, f"{text}: {difference * 1e3:+.0f} ms apart; the longer is trimmed", values)
    return CheckLine("length", PASS, text, values)


def _latency_lines(alignment, sample_rate: float) -> list[CheckLine]:
    if alignment is None:
        message = "cannot measure: no usable signal in both files"
        return [CheckLine("latency", FAIL, message), CheckLine("polarity", FAIL, message)]
    values = {"lag_samples": alignment.lag_samples, "lag_ms": 1e3 * alignment.lag_samples / sample_rate,
              "correlation": alignment.correlation}
    text = f"{alignment.lag_samples:+.2f} samples ({values['lag_ms']:+.3f} ms), correlation {alignment.correlation:.2f}"
    if alignment.correlation < MIN_CORRELATION:
        latency = CheckLine("latency", FAIL, f"{text}: the wet is not the dry through a device (not the same take?)",
                            values)
    elif alignment.lag_samples < -0.5:
        latency = CheckLine("latency", WARN, f"{text}: the wet leads the dry (files swapped, or the start cut?)", values)
    else:
        latency = CheckLine("latency", PASS, text, values)
    if alignment.polarity < 0:
        polarity = CheckLine("polarity", WARN, "inverted: the wet is upside down (corrected when fitting)",
                             {"polarity": -1})
    else:
        polarity = CheckLine("polarity", PASS, "normal", {"polarity": 1})
    return [latency, polarity]


def _level_line(dry: SignalStatistics, wet: SignalStatistics) -> CheckLine:
    values = {"dry_peak_dbfs": _db(dry.peak), "dry_rms_dbfs": _db(dry.rms),
              "wet_peak_dbfs": _db(wet.peak), "wet_rms_dbfs": _db(wet.rms)}
    values["wet_minus_dry_rms_db"] = values["wet_rms_dbfs"] - values["dry_rms_dbfs"]
    text = (f"dry peak {values['dry_peak_dbfs']:.1f} / RMS {values['dry_rms_dbfs']:.1f} dBFS, "
            f"wet peak {values['wet_peak_dbfs']:.1f} / RMS {values['wet_rms_dbfs']:.1f} dBFS")
    if dry.non_finite or wet.non_finite:
        return CheckLine("level", FAIL, "NaN or infinite samples: re-render or re-export", values)
    if values["dry_rms_dbfs"] < -90.0 or values["wet_rms_dbfs"] < -90.0:
        which = "dry" if values["dry_rms_dbfs"] < -90.0 else "wet"
        return CheckLine("level", FAIL, f"{text}: the {which} is silent (check the routing)", values)
    if values["wet_peak_dbfs"] < QUIET_WET_PEAK_DBFS:
        return CheckLine("level", WARN, f"{text}: the wet is very quiet; record with more gain", values)
    return CheckLine("level", PASS, text, values)


def _window_lags(dry: np.ndarray, wet: np.ndarray, sample_rate: float, lag: float) -> tuple[np.ndarray, np.ndarray]:
    """Lag on :data:`DRIFT_WINDOWS` short windows spread over the take: (window centres in samples, lags).

    Each window is searched only ±:data:`DRIFT_SEARCH_SAMPLES` around the lag predicted from the windows
    before it (a line through them; the whole-take lag for the first), so periodic content (the stimulus's
    1 kHz tone repeats every 44 samples) cannot make a window lock onto the wrong cycle.  Windows that
    correlate less than :data:`DRIFT_MIN_CORRELATION` (silence, gated noise) are left out.
    """
    size = min(dry.size // DRIFT_WINDOWS, int(DRIFT_WINDOW_SECONDS * sample_rate))
    starts = np.linspace(0, dry.size - size, DRIFT_WINDOWS).astype(int)
    centres: list[float] = []
    lags: list[float] = []
    for start in starts:
        centre = start + size / 2
        if len(centres) >= 2:
            slope, intercept = np.polyfit(centres, lags, 1)
            predicted = intercept + slope * centre
        else:
            predicted = lags[-1] if lags else lag
        shift = int(round(predicted))
        if start + shift < 0 or start + shift + size > wet.size:
            continue
        d, w = dry[start : start + size], wet[start + shift : start + shift + size]
        if _rms(d) == 0.0 or _rms(w) == 0.0:
            continue
        try:
            estimate = estimate_alignment(d, w, sample_rate, max_lag_seconds=DRIFT_SEARCH_SAMPLES / sample_rate)
        except AudioError:
            continue
        if estimate.correlation >= DRIFT_MIN_CORRELATION and abs(estimate.lag_samples) < DRIFT_SEARCH_SAMPLES - 1:
            centres.append(centre)
            lags.append(shift + estimate.lag_samples)
    return np.asarray(centres), np.asarray(lags)


def _drift_line(dry: np.ndarray, wet: np.ndarray, sample_rate: float, alignment) -> CheckLine:
    if alignment is None or alignment.correlation < MIN_CORRELATION:
        return CheckLine("drift", FAIL, "cannot measure without a usable alignment")
    centres, lags = _window_lags(dry, wet, sample_rate, alignment.lag_samples)
    if centres.size < 3:
        return CheckLine("drift", WARN, f"cannot measure: only {centres.size} windows correlate well enough",
                         {"windows": int(centres.size)})
    slope, intercept = np.polyfit(centres, lags, 1)  # lag(t) = intercept + slope * t (t in samples)
    residual = lags - (intercept + slope * centres)
    over_take = float(slope * dry.size)
    values = {"drift_ppm": float(slope * 1e6), "drift_samples_over_take": over_take, "windows": int(centres.size),
              "window_lags_samples": lags.tolist(), "residual_rms_samples": float(np.sqrt(np.mean(residual**2)))}
    text = f"{slope * 1e6:+.2f} ppm: the lag moves {over_take:+.3f} samples over the take ({centres.size} windows)"
    if abs(over_take) >= DRIFT_FAIL_SAMPLES:
        return CheckLine("drift", FAIL, f"{text}; two clocks? record with one clock (or resample)", values)
    if abs(over_take) >= DRIFT_WARN_SAMPLES:
        return CheckLine("drift", WARN, text, values)
    return CheckLine("drift", PASS, text, values)


def _clipping_line(dry: SignalStatistics, wet: SignalStatistics) -> CheckLine:
    values = {"dry_clipped_fraction": dry.clipped_fraction, "wet_clipped_fraction": wet.clipped_fraction,
              "dry_full_scale_samples": dry.full_scale_samples, "wet_full_scale_samples": wet.full_scale_samples}
    worst = max(values["dry_clipped_fraction"], values["wet_clipped_fraction"])
    text = (f"clipped runs: dry {100 * values['dry_clipped_fraction']:.3f} %, "
            f"wet {100 * values['wet_clipped_fraction']:.3f} %")
    if worst > CLIP_FRACTION:
        return CheckLine("clipping", FAIL, f"{text}: record again with less gain into the converter", values)
    if worst > 0:
        return CheckLine("clipping", WARN, f"{text}: some flat tops at full scale", values)
    if values["dry_full_scale_samples"] or values["wet_full_scale_samples"]:
        return CheckLine("clipping", WARN, "no clipped runs, but peaks reach full scale: leave headroom", values)
    return CheckLine("clipping", PASS, "none", values)


def _noise_line(dry: np.ndarray, wet: np.ndarray, sample_rate: float, alignment) -> CheckLine:
    frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
    lag = 0 if alignment is None else max(0, int(round(alignment.lag_samples)))
    count = (min(dry.size, wet.size - lag)) // frame
    if count < 3:
        return CheckLine("noise", WARN, "too short to measure the noise floor")
    from ..kernels.signal_checks import frame_energies

    dry_power = frame_energies(np.ascontiguousarray(dry), 0, frame, count) / frame
    wet_power = frame_energies(np.ascontiguousarray(wet), lag, frame, count) / frame
    dry_db = 10.0 * np.log10(np.maximum(dry_power, 1e-30))
    quiet = dry_db < dry_db.max() - SILENT_BELOW_PEAK_DB
    guard = max(1, int(math.ceil(GUARD_SECONDS * sample_rate / frame)))
    near_signal = np.convolve((~quiet).astype(float), np.ones(2 * guard + 1), mode="same") > 0
    silent, active = quiet & ~near_signal, ~quiet
    if silent.sum() < 3:
        return CheckLine("noise", WARN, "the dry has no silence to measure the noise floor on (add a few 100 ms)")
    floor_db = _db(math.sqrt(float(np.mean(wet_power[silent]))))
    signal_db = _db(math.sqrt(float(np.mean(wet_power[active]))))
    snr_db = signal_db - floor_db
    values = {"noise_floor_dbfs": floor_db, "signal_rms_dbfs": signal_db, "snr_db": snr_db,
              "silent_seconds": float(silent.sum() * frame / sample_rate)}
    floor_text = "digital silence" if floor_db <= FLOOR_DB else f"{floor_db:.1f} dBFS"
    text = f"noise floor {floor_text}, SNR {snr_db:.1f} dB"
    if snr_db < SNR_FAIL_DB:
        return CheckLine("noise", FAIL, f"{text}: too noisy to model (hum, gain staging?)", values)
    if snr_db < SNR_WARN_DB:
        return CheckLine("noise", WARN, text, values)
    return CheckLine("noise", PASS, text, values)


#: Dry signals at least this long are hashed in a thread beside the other checks (shorter ones take < 1 ms).
BACKGROUND_HASH_SAMPLES = 1 << 20


def _background_hash(dry: np.ndarray):
    """A callable returning :func:`stimulus_hash` of ``dry``: computed in a thread started now for long
    signals (hashlib and numpy's casts release the GIL, so it overlaps the alignment and noise checks on a
    second core), directly when called for short ones.  An error of the hash is raised by the callable."""
    if dry.size < BACKGROUND_HASH_SAMPLES:
        return lambda: stimulus_hash(dry)
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["digest"] = stimulus_hash(dry)
        except BaseException as error:  # re-raised by the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="dynamatch-stimulus-hash", daemon=True)
    thread.start()

    def result() -> str:
        thread.join()
        if "error" in outcome:
            raise outcome.pop("error")
        return outcome["digest"]

    return result


def _stimulus_line(dry: np.ndarray, digest: str | None = None) -> CheckLine:
    if digest is None:
        digest = stimulus_hash(dry)  # once: the identity of a standard stimulus, the provenance of any other
    key = recognise_stimulus(dry, digest)
    if key is None:
        return CheckLine("stimulus", WARN, "not a standard stimulus (fine if it exercises attack, release and level)",
                         {"standard": None, "sha256": digest})
    entry = STANDARD_STIMULI[key]
    return CheckLine("stimulus", PASS, f"standard stimulus {key} (version {entry['version']})",
                     {"standard": key, "version": entry["version"], "sha256": entry["sha256"]})


def _calibration_line(dry: SignalStatistics, wet: SignalStatistics, reference_dbu: float | None,
                      input_reference_dbu: float | None) -> CheckLine:
    for name, value in (("reference_dbu", reference_dbu), ("input_reference_dbu", input_reference_dbu)):
        if value is not None and not math.isfinite(value):
            raise AudioError(f"{name} must be a finite number of dBu, got {value}")
    if reference_dbu is None and input_reference_dbu is None:
        return CheckLine("calibration", WARN,
                         "no level reference: state --reference-dbu (dBu at 0 dBFS) so the model is used at the "
                         "level it was captured at", {"reference_dbu": None, "input_reference_dbu": None})
    output_ref = reference_dbu if reference_dbu is not None else input_reference_dbu
    input_ref = input_reference_dbu if input_reference_dbu is not None else reference_dbu
    dry_peak_dbu = _db(dry.peak) + output_ref
    wet_peak_dbu = _db(wet.peak) + input_ref
    values = {"reference_dbu": output_ref, "input_reference_dbu": input_ref, "dry_peak_dbu": dry_peak_dbu,
              "wet_peak_dbu": wet_peak_dbu}
    return CheckLine("calibration", PASS,
                     f"0 dBFS = {output_ref:+.2f} dBu out, {input_ref:+.2f} dBu in: dry peak {dry_peak_dbu:+.1f} dBu, "
                     f"wet peak {wet_peak_dbu:+.1f} dBu", values)


# -- helpers --------------------------------------------------------------------------------------


def _mono(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0, dtype=np.float64)
    if x.ndim != 1 or x.size < 16:
        raise AudioError(f"{name}: expected mono audio of at least 16 samples, got shape {np.shape(x)}")
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _db(amplitude: float) -> float:
    return float(20.0 * math.log10(amplitude)) if amplitude > 10.0 ** (FLOOR_DB / 20.0) else FLOOR_DB


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
