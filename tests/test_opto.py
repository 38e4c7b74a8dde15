"""The simulated optical levelling amplifier, measured like a bench unit with 1 kHz tone bursts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynamatch.errors import AudioError, NonFiniteAudioError, ParameterError
from dynamatch.models import opto
from dynamatch.models.opto import OptoLevellingAmplifier

SAMPLE_RATE = 44100


def tone(level_db: float, seconds: float, sample_rate: float, start_seconds: float = 0.0) -> np.ndarray:
    """1 kHz sine of peak level ``level_db`` dBFS, phase-continuous from ``start_seconds``."""
    t = start_seconds + np.arange(int(round(seconds * sample_rate))) / sample_rate
    return 10.0 ** (level_db / 20.0) * np.sin(2.0 * np.pi * 1000.0 * t)


def level_db(y: np.ndarray, sample_rate: float) -> float:
    """Peak-equivalent level (dBFS) of a steady sine from the RMS of its last 100 ms."""
    tail = y[-int(0.1 * sample_rate):]
    return 20.0 * math.log10(math.sqrt(2.0 * np.mean(tail**2)))


def device_gain_reduction(device: OptoLevellingAmplifier, x: np.ndarray, sample_rate: float) -> np.ndarray:
    return device.gain_reduction_db(x, sample_rate)


def naive_gain_reduction(device: OptoLevellingAmplifier, x: np.ndarray, sample_rate: float) -> np.ndarray:
    """The gain reduction (dB) of :func:`naive_gain`: the documented equations, written out per sample."""
    return -20.0 * np.log10(naive_gain(device, x[None, :], sample_rate))


def attack_time_ms(sample_rate: float, fraction: float = 0.8, mode: str = "compress",
                   measure=device_gain_reduction) -> float:
    """Time for the gain reduction to reach ``fraction`` of its settled value after a
    −40 → −6 dBFS step (PR 70)."""
    x = np.concatenate([tone(-40, 1.0, sample_rate), tone(-6, 1.0, sample_rate, 1.0)])
    gr = measure(OptoLevellingAmplifier(70, mode), x, sample_rate)
    step = int(round(sample_rate))
    before = gr[step - 1]
    settled = gr[-int(0.1 * sample_rate):].mean()
    reached = np.flatnonzero(gr[step:] - before >= fraction * (settled - before))
    return 1000.0 * reached[0] / sample_rate


def recovery_times_seconds(burst_seconds: float, burst_db: float, sample_rate: float = SAMPLE_RATE,
                           measure=device_gain_reduction):
    """(time to 50 %, time to 90 %) recovery of the gain reduction after a burst (PR 70) stops."""
    x = np.concatenate([tone(burst_db, burst_seconds, sample_rate), np.zeros(int(20 * sample_rate))])
    gr = measure(OptoLevellingAmplifier(70), x, sample_rate)
    stop = int(round(burst_seconds * sample_rate))
    held = gr[stop - int(0.05 * sample_rate):stop].mean()
    recovered = 1.0 - gr[stop:] / held
    t50 = np.flatnonzero(recovered >= 0.5)[0] / sample_rate
    t90 = np.flatnonzero(recovered >= 0.9)[0] / sample_rate
    return t50, t90


# -- an independent, naive implementation of the documented equations -------------------------
def naive_gain(device: OptoLevellingAmplifier, x2d: np.ndarray, sample_rate: float) -> np.ndarray:
    def alpha(time_ms):  # 10-90 % time -> one-pole coefficient
        return 1.0 - math.exp(-2.2 / (time_ms / 1000.0 * sample_rate))

    p = {"compress": 2, "limit": 10}[device.mode]
    k = 10.0 ** ((-20.0 + 0.6 * device.peak_reduction) / 20.0)
    afterglow = 1.0 - alpha(opto.PANEL_DECAY_MS)
    a_fast, a_fast_rel = alpha(opto.ATTACK_MS * (1 + p)), alpha(opto.FAST_RELEASE_MS)
    a_slow, w = alpha(opto.SLOW_ATTACK_MS), opto.FAST_FRACTION
    a_charge, a_discharge = alpha(opto.MEMORY_CHARGE_MS), alpha(opto.MEMORY_DISCHARGE_MS)
    light = fast = slow = memory = 0.0
    g, out = 1.0, []
    for n in range(x2d.shape[1]):
        light = max(k * max(abs(v) for v in x2d[:, n]) * g, light * afterglow)
        target = min(20.0 * math.log10(1.0 + light**p), 300.0)
        if (1 - w) * target > slow:
            slow += a_slow * ((1 - w) * target - slow)
        else:
            short_ms, long_ms = opto.SLOW_RELEASE_SHORT_MS, opto.SLOW_RELEASE_LONG_MS
            slow += alpha(short_ms + memory * (long_ms - short_ms)) * ((1 - w) * target - slow)
        fast_target = max(target - slow, 0.0)
        fast += (a_fast if fast_target > fast else a_fast_rel) * (fast_target - fast)
        hardness = target / (target + opto.HARDNESS_DB)
        memory += (a_charge if hardness > memory else a_discharge) * (hardness - memory)
        g = 10.0 ** (-(fast + slow) / 20.0)
        out.append(g)
    return np.array(out)


@pytest.mark.parametrize("mode", ["compress", "limit"])
def test_kernel_matches_naive_equations(mode):
    rng = np.random.default_rng(1)
    n = 3000
    envelope = np.where(np.arange(n) < 2000, 0.8, 0.01)
    x = rng.standard_normal((2, n)) * envelope
    device = OptoLevellingAmplifier(85, mode)
    gain = device.stream(16000, channels=2).gain(x)
    np.testing.assert_allclose(gain, naive_gain(device, x, 16000), rtol=1e-9)
    assert gain.min() < 0.5  # the test drove the cell hard


# -- LA-2A traits -----------------------------------------------------------------------------
def test_attack_reaches_80_percent_in_about_10_ms():
    """Documented: ≈ 10 ms attack (limit mode is faster: its cell exponent is higher)."""
    assert 6.0 <= attack_time_ms(SAMPLE_RATE) <= 12.0
    assert 3.0 <= attack_time_ms(SAMPLE_RATE, mode="limit") < attack_time_ms(SAMPLE_RATE)


def test_two_stage_release_fast_half_then_slow_programme_dependent_tail():
    """Documented: half the reduction back in ≈ 60 ms, the rest over 1–15 s by how long and hard it was driven."""
    t50, _ = recovery_times_seconds(1.0, -6)
    assert 0.050 <= t50 <= 0.080
    t50_light, t90_light = recovery_times_seconds(0.2, -20)
    t50_hard, t90_hard = recovery_times_seconds(10.0, -6)
    assert 0.040 <= t50_light <= 0.080 and 0.040 <= t50_hard <= 0.080
    assert 1.0 <= t90_light <= 2.5 and 8.0 <= t90_hard <= 15.0


def test_step_response_figures_match_the_naive_equations():
    """The figures above measured on the naive per-sample equations (independent of the numba kernel), at 8 kHz
    to keep the pure-Python loop short: the same to within a sample."""
    rate = 8000
    sample_ms = 1000.0 / rate
    assert attack_time_ms(rate) == pytest.approx(attack_time_ms(rate, measure=naive_gain_reduction), abs=sample_ms)
    for burst_seconds, burst_db in ((0.2, -20), (10.0, -6)):
        device = recovery_times_seconds(burst_seconds, burst_db, rate)
        naive = recovery_times_seconds(burst_seconds, burst_db, rate, measure=naive_gain_reduction)
        np.testing.assert_allclose(device, naive, atol=1.0 / rate)


def test_release_depends_on_burst_length_unlike_a_fixed_one_pole():
    """Same level, same gain reduction held, different history: a one-pole release would recover
    identically; the cell's memory makes the 90 % recovery much longer after the long burst."""
    _, t90_short = recovery_times_seconds(1.0, -6)
    _, t90_long = recovery_times_seconds(10.0, -6)
    assert t90_long > 1.5 * t90_short


@pytest.mark.parametrize("mode", ["compress", "limit"])
def test_more_peak_reduction_gives_more_gain_reduction(mode):
    x = tone(-6, 1.0, SAMPLE_RATE)
    reduction = [-6.0 - level_db(OptoLevellingAmplifier(pr, mode).process(x, SAMPLE_RATE), SAMPLE_RATE)
                 for pr in (20, 40, 60, 80, 100)]
    assert np.all(np.diff(reduction) > 0.0)
    assert reduction[-1] - reduction[0] > 15.0


def test_limit_mode_has_a_higher_ratio_than_compress():
    def ratio(mode):  # inverse slope of the static curve well above the knee (PR 70)
        device = OptoLevellingAmplifier(70, mode)
        out_db = [level_db(device.process(tone(level, 1.0, SAMPLE_RATE), SAMPLE_RATE), SAMPLE_RATE)
                  for level in (-12.0, 0.0)]
        return 12.0 / (out_db[1] - out_db[0])

    compress, limit = ratio("compress"), ratio("limit")
    assert 2.0 <= compress <= 4.0
    assert limit >= 6.0 and limit > 2.0 * compress


def test_knob_at_zero_barely_touches_a_loud_tone():
    gr = OptoLevellingAmplifier(0).gain_reduction_db(tone(-6, 1.0, SAMPLE_RATE), SAMPLE_RATE)
    assert gr.max() < 0.5


@pytest.mark.parametrize("sample_rate", [48000, 96000])
def test_times_are_sample_rate_independent(sample_rate):
    assert attack_time_ms(sample_rate) == pytest.approx(attack_time_ms(SAMPLE_RATE), rel=0.05)
    t50, t90 = recovery_times_seconds(1.0, -6, sample_rate)
    t50_ref, t90_ref = recovery_times_seconds(1.0, -6)
    assert t50 == pytest.approx(t50_ref, rel=0.05)
    assert t90 == pytest.approx(t90_ref, rel=0.05)


# -- streaming, linking, robustness -----------------------------------------------------------
def test_stream_is_bit_identical_for_any_block_size():
    rng = np.random.default_rng(2)
    x = np.concatenate([tone(-3, 0.3, SAMPLE_RATE), tone(-30, 0.2, SAMPLE_RATE)])
    x = np.stack([x, 0.5 * x + 0.01 * rng.standard_normal(x.size)])
    device = OptoLevellingAmplifier(90, "limit", output_gain_db=3.0)
    whole = device.process(x, SAMPLE_RATE)
    stream = device.stream(SAMPLE_RATE, channels=2)
    edges = np.cumsum(rng.integers(1, 700, size=x.shape[1]))
    edges = np.concatenate([[0], edges[edges < x.shape[1]], [x.shape[1]]])
    blocks = [stream.process(x[:, a:b]) for a, b in zip(edges[:-1], edges[1:])]
    assert np.array_equal(np.concatenate(blocks, axis=1), whole)
    stream.reset()
    assert np.array_equal(stream.process(x), whole)


def test_stereo_uses_one_gain_from_the_louder_channel():
    left = tone(-4, 0.3, SAMPLE_RATE)
    right = 0.25 * np.roll(left, 11)
    x = np.stack([left, right])
    device = OptoLevellingAmplifier(75)
    y = device.process(x, SAMPLE_RATE)
    mono_gain = device.stream(SAMPLE_RATE).gain(np.max(np.abs(x), axis=0))
    np.testing.assert_array_equal(y, x * mono_gain)


def test_output_gain_scales_after_the_cell():
    x = tone(-6, 0.3, SAMPLE_RATE)
    y0 = OptoLevellingAmplifier(60).process(x, SAMPLE_RATE)
    y6 = OptoLevellingAmplifier(60, output_gain_db=6.0).process(x, SAMPLE_RATE)
    np.testing.assert_allclose(y6, y0 * 10 ** (6.0 / 20.0), rtol=1e-12)


@pytest.mark.parametrize("peak", [0.0, 1e-300, 1.0, 1e150, 1e300])
def test_gain_stays_in_unit_interval(peak):
    x = peak * np.sign(np.sin(np.linspace(0.0, 40.0, 4000)))
    for mode in ("compress", "limit"):
        gain = OptoLevellingAmplifier(100, mode).stream(SAMPLE_RATE).gain(x)
        assert np.all(np.isfinite(gain)) and np.all(gain > 0.0) and np.all(gain <= 1.0)
    if peak == 0.0:
        assert np.all(gain == 1.0)


def test_rejects_bad_settings_and_audio():
    with pytest.raises(ParameterError):
        OptoLevellingAmplifier(peak_reduction=101)
    with pytest.raises(ParameterError):
        OptoLevellingAmplifier(mode="squash")
    with pytest.raises(ParameterError):
        OptoLevellingAmplifier(output_gain_db=float("inf"))
    with pytest.raises(ParameterError):
        OptoLevellingAmplifier().stream(0)
    with pytest.raises(NonFiniteAudioError):
        OptoLevellingAmplifier().process(np.array([0.1, np.nan]), SAMPLE_RATE)
    with pytest.raises(AudioError):
        OptoLevellingAmplifier().stream(SAMPLE_RATE, channels=2).process(np.zeros((3, 10)))
