r"""Evaluation metrics between a prediction :math:`\hat y` and a target :math:`y` (numpy in, float out).

* :func:`esr` — error-to-signal ratio :math:`\sum(y-\hat y)^2/\sum y^2` on pre-filtered signals
  (the 4A-2A convention; pre-filter :math:`H(z)=(1-z^{-1})/(1-0.995z^{-1})`).
* :func:`ldr_db`, :func:`delta_ldr_db` — loudness dynamic range and its difference (4A-2A paper).
* :func:`mae` — mean absolute error (micro-TCN).
* :func:`stft_distance` — auraloss ``MultiResolutionSTFTLoss`` with its defaults (needs torch + auraloss).
* :func:`delta_lufs` — :math:`|\mathrm{LUFS}(\hat y)-\mathrm{LUFS}(y)|` via pyloudnorm (BS.1770).

torch, auraloss and pyloudnorm are imported only inside the functions that need them
(``pip install 'dynamatch[metrics]'``); ``import dynamatch.metrics`` stays torch-free.
Signals are compared as given: align them first (a one-sample lag changes every metric).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .errors import LengthMismatchError, NonFiniteAudioError, ParameterError, SilentAudioError
from .kernels.prefilter import prefilter as _prefilter

METRIC_NAMES: tuple[str, ...] = ("esr", "delta_ldr_db", "mae", "stft", "delta_lufs")
ENVELOPE_FLOOR = 1e-12  # power floor (-120 dB) that keeps log10 finite in silence


def _pair(prediction, target) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float64 arrays of one shape, finite."""
    p = np.asarray(prediction, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise LengthMismatchError(f"prediction has shape {p.shape} but target {t.shape}; trim or align them first")
    for name, a in (("prediction", p), ("target", t)):
        if not np.all(np.isfinite(a)):
            raise NonFiniteAudioError(f"{name} contains NaN or infinite samples; fix the signal before scoring")
    return p, t


def esr(prediction, target, *, prefilter: bool = True) -> float:
    r"""Error-to-signal ratio :math:`\sum_n (y[n]-\hat y[n])^2 / \sum_n y[n]^2`, pre-filtered by default.

    0 is a perfect match; a silent prediction scores 1.  Both filters start from zero state.
    """
    p, t = _pair(prediction, target)
    if prefilter:
        p, t = _prefilter(p), _prefilter(t)
    energy = float(np.sum(t * t))
    if energy == 0.0:
        raise SilentAudioError("target has no energy (after pre-filtering); ESR is undefined for silence")
    return float(np.sum((t - p) ** 2) / energy)


def _power_envelope(x2: np.ndarray, time_seconds: float, sample_rate: float) -> np.ndarray:
    """One-pole power envelope ``e[n] = a x²[n] + (1-a) e[n-1]``, ``a = 1 - exp(-1/(τ fs))``, ``e[-1] = 0``."""
    a = -np.expm1(-1.0 / (time_seconds * sample_rate))
    from scipy.signal import lfilter

    return lfilter([a], [1.0, a - 1.0], x2, axis=-1)


def ldr_db(
    x, sample_rate: float, *, short_ms: float = 50.0, long_seconds: float = 3.0, prefilter: bool = True
) -> float:
    r"""Loudness dynamic range: RMS over time of :math:`L[n] = 10\log_{10}(e_s[n]/e_l[n])` in dB.

    :math:`e_s, e_l` are one-pole power envelopes of :math:`x^2` with time constants ``short_ms`` and
    ``long_seconds`` (zero initial state; each floored at 1e-12).  Larger = more dynamic (less compressed).
    """
    if short_ms <= 0 or long_seconds <= 0 or sample_rate <= 0:
        raise ParameterError(
            f"short_ms, long_seconds and sample_rate must be > 0, got {short_ms}, {long_seconds}, {sample_rate}"
        )
    u = np.asarray(x, dtype=np.float64)
    if u.size == 0:
        raise SilentAudioError("ldr_db of an empty signal is undefined")
    if not np.all(np.isfinite(u)):
        raise NonFiniteAudioError("signal contains NaN or infinite samples; fix it before scoring")
    if prefilter:
        u = _prefilter(u)
    x2 = u * u
    short = np.maximum(_power_envelope(x2, short_ms / 1000.0, sample_rate), ENVELOPE_FLOOR)
    long = np.maximum(_power_envelope(x2, long_seconds, sample_rate), ENVELOPE_FLOOR)
    level_db = 10.0 * np.log10(short / long)
    return float(np.sqrt(np.mean(level_db * level_db)))


def delta_ldr_db(prediction, target, sample_rate: float, **ldr_options) -> float:
    """``LDR(prediction) - LDR(target)`` in dB; > 0 means the prediction is less compressed than the target."""
    p, t = _pair(prediction, target)
    return ldr_db(p, sample_rate, **ldr_options) - ldr_db(t, sample_rate, **ldr_options)


def mae(prediction, target) -> float:
    """Mean absolute error ``mean(|ŷ - y|)`` (raw signals, no pre-filter)."""
    p, t = _pair(prediction, target)
    return float(np.mean(np.abs(p - t)))


def stft_distance(prediction, target) -> float:
    """auraloss ``MultiResolutionSTFTLoss()``, defaults (FFT 1024/2048/512, spectral convergence + log magnitude).

    Needs torch and auraloss; signals are (samples,), (channels, samples) or (batch, channels, samples)
    and must be longer than 1024 samples (the largest FFT's half, for reflect padding).
    """
    p, t = _pair(prediction, target)
    try:
        import torch
        from auraloss.freq import MultiResolutionSTFTLoss
    except ImportError as error:
        raise ImportError(
            f"stft_distance needs torch and auraloss ({error}); install them with pip install 'dynamatch[metrics]'"
        ) from None
    if p.ndim > 3 or p.shape[-1] <= 1024:
        raise ParameterError(f"stft_distance needs (batch, channels, samples) with > 1024 samples, got shape {p.shape}")
    shape = (1,) * (3 - p.ndim) + p.shape
    with torch.no_grad():
        loss = MultiResolutionSTFTLoss()(
            torch.from_numpy(p.reshape(shape)).float(), torch.from_numpy(t.reshape(shape)).float()
        )
    return float(loss)


def delta_lufs(prediction, target, sample_rate: float) -> float:
    """``|LUFS(ŷ) - LUFS(y)|`` in LU, integrated loudness by pyloudnorm (ITU-R BS.1770-4, gated).

    Needs pyloudnorm and at least 0.4 s of audio; a signal below the -70 LUFS gate raises SilentAudioError.
    """
    p, t = _pair(prediction, target)
    try:
        import pyloudnorm
    except ImportError as error:
        raise ImportError(
            f"delta_lufs needs pyloudnorm ({error}); install it with pip install 'dynamatch[metrics]'"
        ) from None
    if p.ndim > 2:
        raise ParameterError(f"delta_lufs takes (samples,) or (channels, samples), got shape {p.shape}")
    meter = pyloudnorm.Meter(int(sample_rate))
    loudness = []
    for name, a in (("prediction", p), ("target", t)):
        data = a.T if a.ndim == 2 else a  # pyloudnorm wants (samples, channels)
        try:
            value = meter.integrated_loudness(data)
        except ValueError as error:
            raise ParameterError(f"delta_lufs: {name} is too short for BS.1770 ({error}); pass >= 0.4 s") from None
        if not np.isfinite(value):
            raise SilentAudioError(f"delta_lufs: {name} is below the -70 LUFS gate; loudness is undefined")
        loudness.append(value)
    return float(abs(loudness[0] - loudness[1]))


def score(prediction, target, sample_rate: float, metrics: Iterable[str] = METRIC_NAMES) -> dict[str, float]:
    """Several metrics at once, by name (see :data:`METRIC_NAMES`), in the order asked."""
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ParameterError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_NAMES)}")
    p, t = _pair(prediction, target)
    functions = {
        "esr": lambda: esr(p, t),
        "delta_ldr_db": lambda: delta_ldr_db(p, t, sample_rate),
        "mae": lambda: mae(p, t),
        "stft": lambda: stft_distance(p, t),
        "delta_lufs": lambda: delta_lufs(p, t, sample_rate),
    }
    return {name: functions[name]() for name in metrics}
