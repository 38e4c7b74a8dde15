"""The 4A-2A compressor render against independent references (torchcomp and a plain-Python loop)."""

import numpy as np
import pytest
from skips import require_module

from dynamatch import Compressor
from dynamatch.errors import AudioError, ParameterError
from dynamatch.units import coefficient_to_ms, ms_to_coefficient

SAMPLE_RATE = 44100


def bursts(seconds=1.0, seed=0, channels=None):
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    shape = (n,) if channels is None else (channels, n)
    env = np.repeat(rng.uniform(0.003, 1.0, 20), -(-n // 20))[:n]
    return rng.standard_normal(shape) * env * 0.5


def python_loop(x, c: Compressor, sample_rate):
    """Direct transcription of the 4A-2A equations, one sample at a time."""
    aa, ar = ms_to_coefficient(c.attack_ms, sample_rate), ms_to_coefficient(c.release_ms, sample_rate)
    g, out = 1.0, np.empty_like(x)
    for n, v in enumerate(x):
        level = 20 * np.log10(max(abs(v), 1e-10))
        target = 10 ** (min(0.0, (c.threshold_db - level) * (1 - 1 / c.ratio)) / 20)
        alpha = aa if target < g else ar
        g = alpha * target + (1 - alpha) * g
        out[n] = v * g * 10 ** (c.makeup_db / 20)
    return out


def test_matches_plain_python_loop():
    x = bursts(0.2)
    c = Compressor(-18, 5, 2, 80, 3)
    np.testing.assert_allclose(c.process(x, SAMPLE_RATE), python_loop(x, c, SAMPLE_RATE), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sample_rate", [44100, 48000, 96000])
def test_matches_torchcomp(sample_rate):
    torch = require_module("torch")
    torchcomp = require_module("torchcomp")
    x = bursts(1.0, seed=1)
    c = Compressor(-24, 4, 5, 150, 2)
    t = lambda v: torch.tensor([float(v)], dtype=torch.float64)  # noqa: E731
    xt = torch.from_numpy(x)[None]
    gain = torchcomp.compexp_gain(
        xt.abs().clamp_min(1e-10), t(c.threshold_db), t(c.ratio), t(-1000.0), t(0.5),
        torchcomp.ms2coef(t(c.attack_ms), sample_rate), torchcomp.ms2coef(t(c.release_ms), sample_rate),
    )
    reference = (xt * gain * 10 ** (c.makeup_db / 20)).numpy()[0]
    np.testing.assert_allclose(c.process(x, sample_rate), reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block_sizes", [[1], [32], [511], [4096], [1, 7, 300, 2048, 5]])
def test_streaming_is_bit_identical_for_any_block_size(block_sizes):
    x = bursts(0.5, seed=2, channels=2)
    c = Compressor(-20, 6, 1, 60, 0)
    whole = c.process(x, SAMPLE_RATE)
    stream = c.stream(SAMPLE_RATE, channels=2)
    blocks, start, i = [], 0, 0
    while start < x.shape[1]:
        size = block_sizes[i % len(block_sizes)]
        blocks.append(stream.process(x[:, start:start + size]))
        start += size
        i += 1
    assert np.array_equal(np.concatenate(blocks, axis=1), whole)


def test_stereo_link_uses_one_gain_from_the_louder_channel():
    x = bursts(0.3, seed=3, channels=2)
    x[1] *= 0.01
    c = Compressor(-30, 8, 1, 50, 0)
    y = c.process(x, SAMPLE_RATE)
    gain = c.gain(x, SAMPLE_RATE)
    np.testing.assert_allclose(y, x * gain)
    # detection on max(|L|, |R|): a mono signal made of that maximum gets the same gain
    np.testing.assert_allclose(gain, c.gain(np.max(np.abs(x), axis=0), SAMPLE_RATE))


def test_batch_equals_items():
    x = np.stack([bursts(0.2, seed=s, channels=1) for s in range(3)])
    c = Compressor(-20, 3, 3, 100, 1)
    y = c.process(x, SAMPLE_RATE)
    for item_in, item_out in zip(x, y):
        np.testing.assert_array_equal(item_out, c.process(item_in, SAMPLE_RATE))


def test_time_constant_definition_is_the_10_to_90_percent_rise():
    # step response of the one-pole: 10 % -> 90 % takes attack_ms
    alpha = ms_to_coefficient(10.0, SAMPLE_RATE)
    n = np.arange(5000)
    response = 1 - (1 - alpha) ** (n + 1)
    rise_samples = np.argmax(response >= 0.9) - np.argmax(response >= 0.1)
    assert abs(rise_samples / SAMPLE_RATE * 1000 - 10.0) < 0.05
    assert np.isclose(coefficient_to_ms(alpha, SAMPLE_RATE), 10.0)


def test_validation():
    with pytest.raises(ParameterError, match="ratio"):
        Compressor(ratio=0.5)
    with pytest.raises(ParameterError, match="attack_ms"):
        Compressor(attack_ms=0)
    with pytest.raises(ParameterError, match="finite"):
        Compressor(threshold_db=float("nan"))
    with pytest.raises(ParameterError, match="sample_rate"):
        Compressor().process(np.zeros(10), 0)
    with pytest.raises(AudioError, match="shape"):
        Compressor().stream(SAMPLE_RATE, channels=2).process(np.zeros(10))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_process_refuses_non_finite_input_like_the_opto_device(value):
    """Compressor.process accepted NaN input while the opto model rejected it."""
    from dynamatch.errors import NonFiniteAudioError

    x = np.full(1000, 0.1)
    x[500] = value
    with pytest.raises(NonFiniteAudioError, match="NaN or infinite"):
        Compressor().process(x, 44100)
    with pytest.raises(NonFiniteAudioError):
        Compressor().stream(44100).process(x)
