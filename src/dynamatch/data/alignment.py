r"""Latency and polarity alignment of a dry/wet pair, to a fraction of a sample.

A compressor changes the *envelope*, not the waveform's timing, so the lag is found on the
waveforms themselves, both band-passed by the same filter, 100 Hz … 0.4·sample_rate (removing DC
and the low frequencies where gain modulation lives, and the anti-alias transition band near
Nyquist; the same filter on both leaves the lag unchanged):

1. integer lag: the peak of :math:`|r[k]|`, :math:`r[k] = \sum_n w[n+k]\,d[n]`, over
   :math:`|k| \le` ``max_lag_seconds``, computed by FFT; polarity is the sign of the peak;
2. fractional lag: a parabola through the peak and its neighbours gives a first guess, which is
   then refined by maximising the *band-limited* cross-correlation
   :math:`r(\tau) = \tfrac1N \sum_f c_f \operatorname{Re}\{W_f D_f^* e^{2\pi i f\tau/N}\}`
   over :math:`\tau` (exact DFT interpolation of the correlation).  Maximising :math:`|r(\tau)|` is
   the least-squares fit :math:`\min_{a,\tau} \sum (w - a\,d(\cdot-\tau))^2` with an all-pass
   fractional delay, so the estimate is the LS fractional delay.

``lag_samples`` > 0 means the wet lags the dry.  :func:`apply_alignment` delays the *dry* by the
fractional part (the device's nonlinear output is never filtered) and trims both to their overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import AudioError, ParameterError, UnrelatedAudioError
from .audio import AudioPair

HIGHPASS_HZ = 100.0  # pre-filter: 4th-order Butterworth band-pass on both signals, from here ...
LOWPASS_FRACTION = 0.4  # ... to this fraction of the sample rate (converters' and resamplers' anti-alias
# transition bands near Nyquist alias differently for every fractional shift and would bias the lag)
ANALYSIS_SECONDS = 10.0  # the lag is estimated on the loudest window of this length (was 60 s: 6x the FFT work)
FRACTIONAL_DELAY_TAPS = 64  # Kaiser-windowed sinc fractional-delay filter: length ...
FRACTIONAL_DELAY_KAISER_BETA = 10.0  # ... and window shape (see fractional_delay_taps)
FRACTIONAL_DELAY_MAX_SAMPLES = 1024
ALIGNMENT_FFT_WORKERS = 2  # the dry's and the wet's spectra side by side


@dataclass(frozen=True)
class Alignment:
    """How the wet relates to the dry: ``wet[n] ≈ polarity · G · dry[n − lag_samples]``."""

    lag_samples: float  # positive: the wet lags (arrives after) the dry
    polarity: int  # +1, or -1 when the wet is inverted
    correlation: float  # peak normalised cross-correlation of the pre-filtered signals, 0…1

    def lag_seconds(self, sample_rate: float) -> float:
        return self.lag_samples / sample_rate


def estimate_alignment(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: float,
    *,
    max_lag_seconds: float = 1.0,
    max_analysis_seconds: float = ANALYSIS_SECONDS,
) -> Alignment:
    """Estimate the lag (in samples, sub-sample accurate) and polarity of ``wet`` against ``dry``.

    Signals are (samples,) or (channels, samples) (channels are averaged).  Long signals are
    analysed on the loudest ``max_analysis_seconds`` window of the dry (same window in both).
    """
    if not (max_lag_seconds > 0 and max_analysis_seconds > 0):
        raise ParameterError("max_lag_seconds and max_analysis_seconds must be > 0")
    d, w = _mono(dry, "dry"), _mono(wet, "wet")
    length = min(d.size, w.size)
    d, w = _analysis_window(d[:length], w[:length], int(round(max_analysis_seconds * sample_rate)))
    d, w = np.asarray(d, dtype=np.float64), np.asarray(w, dtype=np.float64)  # only the window, in float64
    from scipy import fft

    n_fft = fft.next_fast_len(2 * d.size - 1, real=True)
    frequency_hz = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    band = _band_magnitude(frequency_hz, min(HIGHPASS_HZ, 0.1 * sample_rate), LOWPASS_FRACTION * sample_rate)
    # both transforms in one call, one per thread (each row is the same 1-D transform as alone)
    spectra = fft.rfft(np.stack((d, w)), n_fft, axis=-1, workers=ALIGNMENT_FFT_WORKERS)
    spectrum_d, spectrum_w = spectra[0] * band, spectra[1] * band
    del spectra
    weights = np.full(spectrum_d.size, 2.0)  # one-sided spectrum: count the bins 0 < f < N/2 twice
    weights[0] = 1.0
    if n_fft % 2 == 0:
        weights[-1] = 1.0
    # Parseval: the energies of the band-passed signals
    from ..kernels.signal_checks import dot

    norm = math.sqrt(dot(weights, np.abs(spectrum_d) ** 2) * dot(weights, np.abs(spectrum_w) ** 2)) / n_fft
    if norm == 0.0:
        raise AudioError("cannot align: the dry or the wet signal has no energy in the 100 Hz…0.4·sample_rate band: check the files")
    cross = spectrum_w * np.conj(spectrum_d)
    r = fft.irfft(cross, n_fft)  # r[k] = sum_n w[n + k] d[n]; negative k at n_fft + k

    max_lag = max(1, min(int(round(max_lag_seconds * sample_rate)), d.size - 2))
    lags = np.arange(-max_lag, max_lag + 1)
    values = r[lags % n_fft]
    peak = int(np.argmax(np.abs(values)))
    polarity = 1 if values[peak] >= 0 else -1
    guess = float(lags[peak]) + _parabolic_offset(np.abs(values), peak)

    weighted = weights * cross / n_fft
    weighted = _Spectrum(np.ascontiguousarray(weighted.real), np.ascontiguousarray(weighted.imag), 2.0 * np.pi / n_fft)
    lag = _refine_peak(weighted, polarity, guess, float(lags[peak]))
    correlation = polarity * _interpolated_correlation(weighted, lag)[0] / norm
    return Alignment(lag_samples=lag, polarity=polarity, correlation=float(correlation))


def fractional_delay_taps(fraction: float, length: int = FRACTIONAL_DELAY_TAPS,
                          beta: float = FRACTIONAL_DELAY_KAISER_BETA) -> np.ndarray:
    r"""Kaiser-windowed sinc taps ``g(j) = sinc(j − f)·w(j − f)``, ``j = −(L/2 − 1) … L/2``, that delay by
    ``f`` (0 ≤ f < 1): :math:`y[n] = \sum_j g(j)\,x[n − j] \approx x(n − f)`.  Normalised to unit DC gain.
    With L = 64 and β = 10 the error is below −90 dB up to 0.4·sample_rate (Kaiser's formula
    N ≈ (A − 8)/(2.285·2π·Δf) with a transition Δf = 0.1 from 0.4 to 0.5 cycles/sample)."""
    half = length // 2
    j = np.arange(-(half - 1), half + 1, dtype=np.float64)
    t = j - fraction
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, None))) / np.i0(beta)
    taps = np.sinc(t) * window
    return taps / taps.sum()


def fractional_delay(x: np.ndarray, delay_samples: float, *, overwrite: bool = False) -> np.ndarray:
    r"""Delay ``x`` (along its last axis) by a real number of samples: ``y[n] = x(n - delay)``.

    The whole part is a shift; the fraction is a 64-tap Kaiser-windowed sinc
    (:func:`fractional_delay_taps`), applied by one compiled parallel pass with float64 sums, so the
    cost is linear in the length (no FFT over the whole signal).  The signal is zero outside its span;
    the output has the input's length and dtype (float32 stays float32).  ``overwrite=True`` delays a
    contiguous float ``x`` with ``0 <= delay_samples < 1`` in place (the same values; no second copy held)
    and returns it.
    """
    from ..kernels.signal_checks import fir_same

    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if abs(delay_samples) > FRACTIONAL_DELAY_MAX_SAMPLES:
        raise ParameterError(f"fractional_delay is for small delays, got {delay_samples} samples")
    whole = math.floor(delay_samples)
    fraction = delay_samples - whole
    if fraction == 0.0:
        return _shift(x, whole)
    taps = fractional_delay_taps(fraction)
    centre = FRACTIONAL_DELAY_TAPS // 2 - 1  # tap index of j = 0
    if overwrite and whole == 0 and x.flags.c_contiguous and x.flags.writeable:
        from ..kernels.signal_checks import fir_same_in_place

        for channel in x.reshape(-1, x.shape[-1]):
            fir_same_in_place(channel, taps, centre)
        return x
    # h[k] = g(k - centre) and fir_same computes out[n] = sum_k h[k] x[n + centre - k] = sum_j g(j) x[n - j]
    flat = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    out = np.empty_like(flat)
    for channel in range(flat.shape[0]):
        fir_same(flat[channel], taps, centre, out[channel])
    return _shift(out.reshape(x.shape), whole) if whole else out.reshape(x.shape)


def _float_array(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def _shift(x: np.ndarray, samples: int) -> np.ndarray:
    """``x`` delayed by a whole number of samples (zeros shifted in), same length."""
    out = np.zeros_like(x)
    if samples >= 0:
        out[..., samples:] = x[..., : x.shape[-1] - samples]
    else:
        out[..., :samples] = x[..., -samples:]
    return out


def apply_alignment(dry: np.ndarray, wet: np.ndarray, alignment: Alignment, *,
                    overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Line ``dry`` and ``wet`` up: returns ``(dry_aligned, wet_aligned)`` of equal length.

    With ``lag = m + f`` (``m`` = floor, ``0 <= f < 1``) the dry is delayed by ``f`` with
    :func:`fractional_delay` and both are trimmed to the overlap for the integer shift ``m``; the
    wet's polarity is flipped when ``alignment.polarity`` is −1.  Shapes (samples,) or (channels, samples).
    ``overwrite=True``: the delay and the flip are done in the given arrays (the results are views of them),
    so no full-length copy is made; the caller must not need the unaligned signals afterwards.
    """
    dry, wet = _float_array(dry), _float_array(wet)
    whole = math.floor(alignment.lag_samples)
    fraction = alignment.lag_samples - whole
    delayed = fractional_delay(dry, fraction, overwrite=overwrite) if fraction > 0 else dry
    if whole >= 0:
        wet = wet[..., whole:]
    else:
        delayed = delayed[..., -whole:]
    length = min(delayed.shape[-1], wet.shape[-1])
    if length <= 0:
        raise AudioError(f"a lag of {alignment.lag_samples:.1f} samples leaves no overlap between dry and wet")
    wet = wet[..., :length]  # a view
    if alignment.polarity == -1:
        wet = np.negative(wet, out=wet) if overwrite and wet.flags.writeable else -wet
    return np.ascontiguousarray(delayed[..., :length]), np.ascontiguousarray(wet)


def align_pair(pair: AudioPair, *, min_correlation: float = 0.3, max_lag_seconds: float = 1.0,
               alignment: Alignment | None = None, overwrite: bool = False) -> tuple[AudioPair, Alignment]:
    """Estimate and apply the alignment of ``pair``; refuse pairs that are not the same recording.

    ``alignment``: one already estimated on this pair with the same settings (the capture check's), applied
    instead of estimating it again; ``overwrite``: align in ``pair``'s own arrays (see
    :func:`apply_alignment`).  Raises :class:`UnrelatedAudioError` when the peak correlation is below
    ``min_correlation``.
    """
    if alignment is None:
        alignment = estimate_alignment(pair.dry, pair.wet, pair.sample_rate, max_lag_seconds=max_lag_seconds)
    if alignment.correlation < min_correlation:
        raise UnrelatedAudioError(
            f"{pair.dry_name} and {pair.wet_name} do not look like the same recording "
            f"(peak correlation {alignment.correlation:.2f} < {min_correlation}): check the files"
        )
    dry, wet = apply_alignment(pair.dry, pair.wet, alignment, overwrite=overwrite)
    return replace(pair, dry=dry, wet=wet), alignment


@dataclass(frozen=True)
class _Spectrum:
    """The weighted cross-spectrum ``X = real + i·imaginary`` at angular frequencies ``n·delta``."""

    real: np.ndarray
    imaginary: np.ndarray
    delta: float


def _interpolated_correlation(weighted: _Spectrum, tau: float) -> tuple[float, float, float]:
    """Band-limited correlation r(tau) = Σ Re{X e^{iωτ}} and its first two derivatives (one compiled pass)."""
    from ..kernels.signal_checks import correlation_and_derivatives

    r0, r1, r2 = correlation_and_derivatives(weighted.real, weighted.imaginary, weighted.delta, float(tau))
    return float(r0), float(r1), float(r2)


def _refine_peak(weighted: _Spectrum, polarity: int, guess: float, centre: float) -> float:
    """Maximise polarity * r(tau) near ``centre``: Newton from ``guess``; a bounded scalar search if
    Newton leaves the ±1-sample bracket or meets a non-concave point."""
    tau = guess
    for _ in range(20):
        _, slope, curvature = _interpolated_correlation(weighted, tau)
        if polarity * curvature >= 0:
            break
        step = -slope / curvature
        tau += step
        if abs(tau - centre) > 1.0:
            break
        if abs(step) < 1e-7:
            return tau
    from scipy import optimize

    result = optimize.minimize_scalar(
        lambda t: -polarity * _interpolated_correlation(weighted, t)[0],
        bounds=(centre - 1.0, centre + 1.0),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(result.x)


def _mono(x: np.ndarray, name: str) -> np.ndarray:
    x = _float_array(x)
    if x.ndim == 2:
        x = x.mean(axis=0, dtype=np.float64)
    if x.ndim != 1 or x.size < 4:
        raise AudioError(f"{name}: expected audio of shape (samples,) or (channels, samples), got {np.shape(x)}")
    return x


def _analysis_window(d: np.ndarray, w: np.ndarray, window_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The same window of both signals, where the dry is loudest, when they are longer than the window."""
    if d.size <= window_samples:
        return d, w
    hop = max(1, window_samples // 2)
    starts = np.arange(0, d.size - window_samples + 1, hop)
    # energy of each hop-long block (one compiled pass, float64 sums, no temporary), then of each window
    from ..kernels.signal_checks import dot, frame_energies

    whole = d.size // hop
    block_energy = frame_energies(np.ascontiguousarray(d), 0, hop, whole)
    if whole * hop < d.size:
        block_energy = np.append(block_energy, dot(d[whole * hop:]))
    energy = np.concatenate(([0.0], np.cumsum(block_energy)))
    blocks_per_window = window_samples // hop  # 2, or 1 for a one-sample window
    first_block = starts // hop
    window_energy = energy[np.minimum(first_block + blocks_per_window, block_energy.size)] - energy[first_block]
    start = int(starts[np.argmax(window_energy)])
    return d[start : start + window_samples], w[start : start + window_samples]


def _band_magnitude(frequency_hz: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Zero-phase band-pass magnitude: 4th-order Butterworth high-pass at ``low_hz`` times 4th-order
    Butterworth low-pass at ``high_hz``, :math:`|H| = (1 + (f_l/f)^8)^{-1/2} (1 + (f/f_h)^8)^{-1/2}`."""
    with np.errstate(divide="ignore"):
        highpass = 1.0 / np.sqrt(1.0 + (low_hz / frequency_hz) ** 8)
    return highpass * (1.0 / np.sqrt(1.0 + (frequency_hz / high_hz) ** 8))


def _parabolic_offset(values: np.ndarray, peak: int) -> float:
    """Vertex offset (−0.5…0.5) of the parabola through ``values[peak-1 : peak+2]``."""
    if peak == 0 or peak == values.size - 1:
        return 0.0
    left, centre, right = values[peak - 1], values[peak], values[peak + 1]
    curvature = left - 2.0 * centre + right
    return 0.0 if curvature >= 0 else float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
