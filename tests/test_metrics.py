"""Metrics against naive loops, third-party libraries called directly, and known properties."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from skips import require_module

from dynamatch.errors import LengthMismatchError, NonFiniteAudioError, ParameterError, SilentAudioError
from dynamatch.metrics import delta_ldr_db, delta_lufs, esr, ldr_db, mae, score, stft_distance


def naive_prefilter(u):
    """z[n] = u[n] - u[n-1] + 0.995 z[n-1], zero initial state, one sample at a time."""
    out, u_prev, z_prev = [], 0.0, 0.0
    for value in u:
        z_prev = value - u_prev + 0.995 * z_prev
        u_prev = value
        out.append(z_prev)
    return out


def naive_esr(prediction, target, prefilter=True):
    p = naive_prefilter(prediction) if prefilter else list(prediction)
    t = naive_prefilter(target) if prefilter else list(target)
    error = sum((a - b) ** 2 for a, b in zip(t, p))
    return error / sum(b * b for b in t)


def naive_ldr_db(x, sample_rate, short_ms=50.0, long_seconds=3.0, prefilter=True):
    u = naive_prefilter(x) if prefilter else list(x)
    a_short = 1.0 - math.exp(-1.0 / (short_ms / 1000.0 * sample_rate))
    a_long = 1.0 - math.exp(-1.0 / (long_seconds * sample_rate))
    e_short = e_long = 0.0
    total = 0.0
    for value in u:
        e_short = a_short * value * value + (1.0 - a_short) * e_short
        e_long = a_long * value * value + (1.0 - a_long) * e_long
        level_db = 10.0 * math.log10(max(e_short, 1e-12) / max(e_long, 1e-12))
        total += level_db * level_db
    return math.sqrt(total / len(u))


@pytest.fixture
def signals():
    rng = np.random.default_rng(7)
    target = rng.standard_normal(300) * 0.3
    prediction = target + 0.05 * rng.standard_normal(300)
    return prediction, target


def bursts(sample_rate, seconds, depth):
    """Noise whose level alternates every 0.25 s between 1 and ``depth`` (a dynamic signal)."""
    rng = np.random.default_rng(3)
    n = int(sample_rate * seconds)
    level = np.where((np.arange(n) // int(0.25 * sample_rate)) % 2 == 0, 1.0, depth)
    return 0.3 * level * rng.standard_normal(n)


@pytest.mark.parametrize("prefilter", [True, False])
def test_esr_matches_naive_loop(signals, prefilter):
    prediction, target = signals
    assert esr(prediction, target, prefilter=prefilter) == pytest.approx(
        naive_esr(prediction, target, prefilter), rel=1e-12
    )


def test_esr_properties(signals):
    prediction, target = signals
    assert esr(target, target) == 0.0
    assert esr(np.zeros_like(target), target) == pytest.approx(1.0, rel=1e-15)
    # the pre-filter is linear, so a scaled copy has ESR (1 - k)^2
    assert esr(0.5 * target, target) == pytest.approx(0.25, rel=1e-12)
    assert esr(prediction, target, prefilter=True) != pytest.approx(esr(prediction, target, prefilter=False))


def test_esr_errors(signals):
    prediction, target = signals
    with pytest.raises(SilentAudioError):
        esr(prediction, np.zeros_like(target))
    with pytest.raises(LengthMismatchError):
        esr(prediction[:-1], target)
    bad = prediction.copy()
    bad[3] = np.nan
    with pytest.raises(NonFiniteAudioError):
        esr(bad, target)


@pytest.mark.parametrize("prefilter", [True, False])
def test_ldr_matches_naive_loop(prefilter):
    x = bursts(1000, 3.0, 0.1)
    assert ldr_db(x, 1000, prefilter=prefilter) == pytest.approx(naive_ldr_db(x, 1000, prefilter=prefilter), rel=1e-9)
    assert ldr_db(x, 1000, short_ms=20.0, long_seconds=0.5) == pytest.approx(
        naive_ldr_db(x, 1000, short_ms=20.0, long_seconds=0.5), rel=1e-9
    )


def test_delta_ldr_sign_and_properties():
    sample_rate = 4000
    target = bursts(sample_rate, 4.0, 0.1)  # 20 dB level steps
    compressed = bursts(sample_rate, 4.0, 0.5)  # same noise, 6 dB steps: less dynamic
    assert delta_ldr_db(target, target, sample_rate) == 0.0
    # a prediction that is MORE compressed than the target has a lower LDR: delta < 0, and vice versa
    assert delta_ldr_db(compressed, target, sample_rate) < -1.0
    assert delta_ldr_db(target, compressed, sample_rate) == pytest.approx(-delta_ldr_db(compressed, target, sample_rate))
    # LDR is a level ratio: scaling the signal does not change it
    assert ldr_db(4.0 * target, sample_rate) == pytest.approx(ldr_db(target, sample_rate), rel=1e-9)


def test_ldr_rejects_bad_arguments():
    with pytest.raises(ParameterError):
        ldr_db(np.ones(10), 1000, short_ms=0.0)
    with pytest.raises(SilentAudioError):
        ldr_db(np.zeros(0), 1000)


def test_mae(signals):
    prediction, target = signals
    assert mae(prediction, target) == pytest.approx(sum(abs(a - b) for a, b in zip(prediction, target)) / len(target))


def test_delta_lufs_against_pyloudnorm():
    pyloudnorm = require_module("pyloudnorm")
    sample_rate = 44100
    rng = np.random.default_rng(1)
    target = 0.1 * rng.standard_normal(sample_rate)
    prediction = 0.7 * target + 0.01 * rng.standard_normal(sample_rate)
    meter = pyloudnorm.Meter(sample_rate)
    expected = abs(meter.integrated_loudness(prediction) - meter.integrated_loudness(target))
    assert delta_lufs(prediction, target, sample_rate) == pytest.approx(expected, rel=1e-12)
    # a 2x amplitude is +6.02 LU whatever the signal (gating aside)
    assert delta_lufs(2.0 * target, target, sample_rate) == pytest.approx(20 * math.log10(2.0), abs=1e-6)
    with pytest.raises(ParameterError):
        delta_lufs(target[:1000], target[:1000], sample_rate)
    with pytest.raises(SilentAudioError):
        delta_lufs(np.zeros_like(target), target, sample_rate)


def test_stft_distance_against_auraloss():
    torch = require_module("torch")
    auraloss = require_module("auraloss")
    rng = np.random.default_rng(2)
    target = 0.2 * rng.standard_normal(4096)
    prediction = target + 0.05 * rng.standard_normal(4096)
    expected = auraloss.freq.MultiResolutionSTFTLoss()(
        torch.tensor(prediction, dtype=torch.float32)[None, None], torch.tensor(target, dtype=torch.float32)[None, None]
    )
    assert stft_distance(prediction, target) == pytest.approx(float(expected), rel=1e-6)
    assert stft_distance(target, target) == pytest.approx(0.0, abs=1e-6)
    assert stft_distance(prediction, target) > 0.01
    with pytest.raises(ParameterError):
        stft_distance(target[:1000], target[:1000])


def test_score_collects_each_metric():
    require_module("pyloudnorm")
    require_module("auraloss")
    sample_rate = 8000
    target = bursts(sample_rate, 1.0, 0.2)
    prediction = 0.9 * target
    result = score(prediction, target, sample_rate)
    assert list(result) == ["esr", "delta_ldr_db", "mae", "stft", "delta_lufs"]
    assert result["esr"] == pytest.approx(0.01)
    assert result["delta_ldr_db"] == pytest.approx(0.0, abs=1e-9)
    assert result["mae"] == pytest.approx(0.1 * np.mean(np.abs(target)))
    assert result["stft"] == pytest.approx(stft_distance(prediction, target))
    assert result["delta_lufs"] == pytest.approx(-20 * math.log10(0.9), abs=1e-6)
    assert score(prediction, target, sample_rate, metrics=["mae"]) == {"mae": result["mae"]}
    with pytest.raises(ParameterError, match="unknown metric"):
        score(prediction, target, sample_rate, metrics=["esr", "snr"])


def test_import_does_not_pull_torch():
    code = "import sys, dynamatch.metrics; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
