"""Latency/polarity alignment (dynamatch.data.alignment).

Known fractional delays are made independently of the code under test: the signals are built at
10× the rate, shifted by a whole number of high-rate samples, and decimated by 10 (the same
anti-alias filter on both), so a shift of 373 high-rate samples is a lag of exactly 37.3 samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skips import SHARED, require_shared
from scipy import signal

from dynamatch import Compressor
from dynamatch.data import (
    Alignment,
    AudioPair,
    align_pair,
    apply_alignment,
    estimate_alignment,
    fractional_delay,
    load_pair,
    programme_like,
)
from dynamatch.errors import UnrelatedAudioError

LA2A = SHARED / "la2a"
RATE = 44100
OVERSAMPLING = 10


@pytest.fixture(scope="module")
def oversampled():
    """A programme-like signal at 10× the rate and its compressed version (the device)."""
    high_rate = RATE * OVERSAMPLING
    dry = programme_like(high_rate, 2.0, seed=3)
    wet = Compressor(threshold_db=-30.0, ratio=6.0, attack_ms=2.0, release_ms=80.0, makeup_db=3.0).process(dry, high_rate)
    return dry, wet


def _delayed_pair(dry_high, wet_high, lag_samples: float) -> tuple[np.ndarray, np.ndarray]:
    """Decimated (dry, wet) where the wet lags the dry by ``lag_samples`` (a multiple of 0.1)."""
    shift = int(round(lag_samples * OVERSAMPLING))
    pad = np.zeros(abs(shift))
    if shift >= 0:
        wet_high = np.concatenate((pad, wet_high))[: wet_high.size]
    else:
        dry_high = np.concatenate((pad, dry_high))[: dry_high.size]
    return signal.resample_poly(dry_high, 1, OVERSAMPLING), signal.resample_poly(wet_high, 1, OVERSAMPLING)


@pytest.mark.parametrize("lag_samples", [37.3, -0.8, 0.0, 0.5, -123.6])
def test_known_delay_through_a_compressor_is_recovered_within_005_samples(oversampled, lag_samples):
    dry, wet = _delayed_pair(*oversampled, lag_samples)
    alignment = estimate_alignment(dry, wet, RATE)
    assert alignment.lag_samples == pytest.approx(lag_samples, abs=0.05)
    assert alignment.polarity == 1 and 0.8 < alignment.correlation <= 1.0


def test_long_signals_are_analysed_on_their_loudest_window(oversampled):
    dry, wet = _delayed_pair(*oversampled, -3.7)
    alignment = estimate_alignment(dry, wet, RATE, max_analysis_seconds=0.5)
    assert alignment.lag_samples == pytest.approx(-3.7, abs=0.05)


def test_polarity_flip_is_detected_without_moving_the_lag(oversampled):
    dry, wet = _delayed_pair(*oversampled, 12.7)
    straight, flipped = estimate_alignment(dry, wet, RATE), estimate_alignment(dry, -wet, RATE)
    assert flipped.polarity == -1 and straight.polarity == 1
    assert flipped.lag_samples == pytest.approx(straight.lag_samples, abs=1e-6)
    assert flipped.correlation == pytest.approx(straight.correlation, rel=1e-9)


def test_apply_alignment_lines_up_a_linear_device_to_the_noise_floor(oversampled):
    dry_high, _ = oversampled
    dry, wet = _delayed_pair(dry_high, -0.5 * dry_high, 5.3)  # device: inverted, −6 dB, 5.3 samples late
    alignment = estimate_alignment(dry, wet, RATE)
    assert alignment.polarity == -1
    dry_aligned, wet_aligned = apply_alignment(dry, wet, alignment)
    assert dry_aligned.shape == wet_aligned.shape == (dry.size - 5,)  # floor(5.3) samples of overlap lost
    inner = slice(200, -200)  # away from the edges (decimation filter start-up and zero extension)
    # the decimator's transition band above 0.4·sample_rate aliases differently for every
    # fractional shift, so the residual is measured below it
    band = signal.butter(8, 0.4 * RATE, "lowpass", fs=RATE, output="sos")

    def residual(pair):
        d, w = (signal.sosfiltfilt(band, x)[inner] for x in pair)
        return np.sum((w - 0.5 * d) ** 2) / np.sum(w**2)

    assert residual((dry_aligned, wet_aligned)) < 1e-6
    assert residual(apply_alignment(dry, wet, Alignment(5.0, -1, 1.0))) > 1e-3  # integer-only is far worse


def test_apply_alignment_handles_channels_and_negative_lags():
    x = np.random.default_rng(0).standard_normal((2, 1000))
    dry_aligned, wet_aligned = apply_alignment(x, x, Alignment(-3.0, 1, 1.0))
    assert dry_aligned.shape == wet_aligned.shape == (2, 997)
    np.testing.assert_array_equal(dry_aligned, x[:, 3:])  # wet leads by 3: drop the dry's first 3 samples
    np.testing.assert_array_equal(wet_aligned, x[:, :997])


def test_fractional_delay_matches_an_analytic_sine():
    n = np.arange(4000)
    frequency = 0.0731  # cycles per sample
    delayed = fractional_delay(np.sin(2 * np.pi * frequency * n), 0.37)
    expected = np.sin(2 * np.pi * frequency * (n - 0.37))
    assert np.max(np.abs(delayed[500:-500] - expected[500:-500])) < 2e-3  # edges see a zero-extended sine
    x = np.random.default_rng(1).standard_normal(300)
    np.testing.assert_allclose(fractional_delay(x, 2.0)[2:], x[:-2], atol=1e-12)
    np.testing.assert_allclose(fractional_delay(x, 2.0)[:2], 0.0, atol=1e-12)


@pytest.mark.parametrize("samples", [40, 65_536, 65_600, 3 * 65_536 + 77, (1 << 22) + 1000])
def test_alignment_in_place_gives_the_copying_path_bit_for_bit(samples):
    """``overwrite=True`` (the CLI's path: no second full-length copy) against the copying path: the same
    values exactly, at block edges (65 536-sample blocks, halos), on the parallel and serial drivers; the
    results are views of the given arrays; a polarity flip is done in place too."""
    rng = np.random.default_rng(samples)
    for dtype in (np.float32, np.float64):
        dry, wet = (rng.standard_normal(samples).astype(dtype) for _ in range(2))
        alignment = Alignment(lag_samples=2.37, polarity=-1, correlation=0.9)
        expected = apply_alignment(dry, wet, alignment)
        got = apply_alignment(dry, wet, alignment, overwrite=True)
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)
        assert np.shares_memory(got[0], dry) and np.shares_memory(got[1], wet)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_fractional_delay_filter_matches_an_exactly_delayed_band_limited_signal(fraction):
    """References: (1) white noise at 10x the rate, shifted by whole high-rate samples and decimated, is
    a band-limited signal delayed by exactly a multiple of 0.1 samples (its own decimation filter limits
    the agreement to ~1e-6 ESR below 0.4·sample_rate); (2) the ideal delay, an FFT phase shift of the
    zero-padded signal, which the short filter must match far more closely in that band."""
    rng = np.random.default_rng(4)
    high = rng.standard_normal(40_000 * OVERSAMPLING)
    shift = int(round(fraction * OVERSAMPLING))
    reference = signal.resample_poly(np.concatenate((np.zeros(shift), high))[: high.size], 1, OVERSAMPLING)
    x = signal.resample_poly(high, 1, OVERSAMPLING)
    band = signal.butter(8, 0.4 * RATE, "lowpass", fs=RATE, output="sos")  # the filter's design band
    inner = slice(500, -500)
    n_fft = x.size + 4096
    phase = np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) * fraction / n_fft)
    phase[-1] = np.cos(np.pi * fraction)
    ideal = np.fft.irfft(np.fft.rfft(x, n_fft) * phase, n_fft)[: x.size]

    def in_band_esr(a, b):
        a, b = (signal.sosfiltfilt(band, v.astype(float))[inner] for v in (a, b))
        return np.sum((a - b) ** 2) / np.sum(b**2)

    for dtype, tolerance in ((np.float64, 1e-9), (np.float32, 1e-7)):
        delayed = fractional_delay(x.astype(dtype), fraction)
        assert delayed.dtype == dtype and delayed.shape == x.shape
        assert in_band_esr(delayed, ideal) < tolerance
        assert in_band_esr(delayed, reference) < 1.5 * in_band_esr(ideal, reference) + tolerance < 3e-6
    whole_and_fraction = fractional_delay(x, 3 + fraction)
    np.testing.assert_allclose(whole_and_fraction[3:], fractional_delay(x, fraction)[:-3], atol=1e-12)


def test_unrelated_recordings_are_refused():
    rng = np.random.default_rng(5)
    pair = AudioPair(rng.standard_normal(RATE), rng.standard_normal(RATE), RATE, "dry.wav", "other.wav")
    with pytest.raises(UnrelatedAudioError, match=r"dry\.wav and other\.wav do not look like the same recording"):
        align_pair(pair)


def test_align_pair_returns_aligned_pair(oversampled):
    dry, wet = _delayed_pair(*oversampled, 2.4)
    aligned, alignment = align_pair(AudioPair(dry, wet, RATE, "d", "w"))
    assert alignment.lag_samples == pytest.approx(2.4, abs=0.05)
    assert aligned.dry.shape == aligned.wet.shape == (dry.size - 2,) and aligned.sample_rate == RATE


def _block_gain_residual(dry: np.ndarray, wet: np.ndarray, block_samples: int = 512) -> float:
    """Residual energy ratio of the best per-block gain fit wet ≈ g_b · dry (a compressor's gain is
    nearly constant over 12 ms), on 30 Hz high-passed signals."""
    sos = signal.butter(2, 30.0, "highpass", fs=RATE, output="sos")
    d, w = signal.sosfilt(sos, dry), signal.sosfilt(sos, wet)
    n = d.size // block_samples * block_samples
    d, w = d[:n].reshape(-1, block_samples), w[:n].reshape(-1, block_samples)
    gain = np.sum(d * w, axis=1) / np.maximum(np.sum(d * d, axis=1), 1e-30)
    return float(np.sum((w - gain[:, None] * d) ** 2) / np.sum(w**2))


@pytest.mark.parametrize("index", [1, 2, 3, 4, 5])
def test_real_la2a_target_leads_by_a_fraction_of_a_sample_and_alignment_helps(index):
    folder = LA2A / "signaltrain_excerpts"
    require_shared(folder, "real LA-2A clips")
    pair = load_pair(folder / f"sample{index}_input.wav", folder / f"sample{index}_target.wav")
    aligned, alignment = align_pair(pair)
    assert -1.0 < alignment.lag_samples < -0.6  # the target leads by ~0.8 samples (CONTEXT §4)
    assert alignment.polarity == 1 and alignment.correlation > 0.95
    fractional = _block_gain_residual(aligned.dry, aligned.wet)
    whole = round(alignment.lag_samples)
    integer_only = _block_gain_residual(*apply_alignment(pair.dry, pair.wet, Alignment(whole, 1, 1.0)))
    unaligned = _block_gain_residual(pair.dry, pair.wet)
    assert fractional < integer_only < unaligned
