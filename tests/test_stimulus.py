"""The capture stimulus and the programme-like test signal (dynamatch.data.stimulus)."""

from __future__ import annotations

import numpy as np
import pytest

from dynamatch.data import Segment, capture_stimulus, programme_like, stimulus_segments
from dynamatch.errors import ParameterError

RATE = 16000
DURATION_SECONDS = 30.0
CEILING = 10 ** (-0.3 / 20)
CONTENT = ("tone_steps", "noise_bursts", "drum_hits", "level_sweep", "programme")


@pytest.fixture(scope="module")
def stimulus():
    return capture_stimulus(RATE, duration_seconds=DURATION_SECONDS, seed=0)


def _part(x: np.ndarray, segment: Segment) -> np.ndarray:
    start = int(round(segment.start_seconds * RATE))
    return x[start : start + int(round(segment.duration_seconds * RATE))]


def _window_peaks_db(x: np.ndarray, window_seconds: float = 0.05) -> np.ndarray:
    w = int(window_seconds * RATE)
    n = x.size // w
    return 20 * np.log10(np.maximum(np.abs(x[: n * w]).reshape(n, w).max(axis=1), 1e-12))


def test_deterministic_for_a_seed_and_different_across_seeds(stimulus):
    np.testing.assert_array_equal(stimulus, capture_stimulus(RATE, duration_seconds=DURATION_SECONDS, seed=0))
    other = capture_stimulus(RATE, duration_seconds=DURATION_SECONDS, seed=1)
    assert other.shape == stimulus.shape and not np.array_equal(other, stimulus)


def test_finite_mono_float_and_never_above_the_ceiling(stimulus):
    assert stimulus.dtype == np.float64 and stimulus.shape == (int(DURATION_SECONDS * RATE),)
    assert np.all(np.isfinite(stimulus))
    assert np.max(np.abs(stimulus)) <= CEILING + 1e-12
    assert np.max(np.abs(stimulus)) > 10 ** (-0.5 / 20)  # and it does reach full scale


def test_segment_table_tiles_the_duration_with_silences_between_all_content():
    segments = stimulus_segments(RATE, DURATION_SECONDS)
    assert [s.name for s in segments[1::2]] == list(CONTENT)
    assert all(s.name == "silence" for s in segments[0::2]) and len(segments) == 2 * len(CONTENT) + 1
    ends = [s.start_seconds + s.duration_seconds for s in segments]
    np.testing.assert_allclose([s.start_seconds for s in segments[1:]], ends[:-1], atol=1e-12)
    assert segments[0].start_seconds == 0.0 and ends[-1] == pytest.approx(DURATION_SECONDS)
    longer = stimulus_segments(RATE, 2 * DURATION_SECONDS)
    content, longer_content = (sum(s.duration_seconds for s in t if s.name != "silence") for t in (segments, longer))
    assert longer_content == pytest.approx(content + DURATION_SECONDS)  # content grows, silences stay 0.5 s
    with pytest.raises(ParameterError):
        stimulus_segments(RATE, 5.0)


def test_silence_gaps_are_digital_silence_and_content_is_not(stimulus):
    for segment in stimulus_segments(RATE, DURATION_SECONDS):
        part = _part(stimulus, segment)
        if segment.name == "silence":
            assert segment.duration_seconds >= 0.5 and np.all(part == 0.0)
        else:
            assert np.sqrt(np.mean(part**2)) > 10 ** (-50 / 20), segment.name


def test_levels_cover_minus_40_to_0_dbfs(stimulus):
    """Every 5 dB band from −40 to 0 dBFS holds windows of the tone steps and of the sweep."""
    segments = {s.name: s for s in stimulus_segments(RATE, DURATION_SECONDS)}
    for name in ("level_sweep", "tone_steps"):  # a 50-ms window of the sweep spans ~1.3 dB
        peaks_db = _window_peaks_db(_part(stimulus, segments[name]))
        assert peaks_db.min() == pytest.approx(-40.0, abs=1.5) and peaks_db.max() == pytest.approx(-0.3, abs=0.05)
    sweep_db = _window_peaks_db(_part(stimulus, segments["level_sweep"]))
    counts, _ = np.histogram(sweep_db, bins=np.arange(-40.0, 0.1, 5.0))
    assert np.all(counts > 0)
    steps_db = _window_peaks_db(_part(stimulus, segments["tone_steps"]))
    for level_db in (-30.0, -20.0, -12.0, -6.0, -3.0, 0.0):  # documented burst levels
        assert np.any(np.abs(steps_db - (level_db - 0.3)) < 0.1), level_db


def test_tone_steps_have_abrupt_attacks_and_releases(stimulus):
    """Steps of ≥ 10 dB between neighbouring 10-ms windows, upward and downward."""
    segments = {s.name: s for s in stimulus_segments(RATE, DURATION_SECONDS)}
    steps = np.diff(_window_peaks_db(_part(stimulus, segments["tone_steps"]), 0.01))
    assert np.sum(steps > 10.0) >= 3 and np.sum(steps < -10.0) >= 3


def test_noise_and_drum_segments_span_crest_factors(stimulus):
    """Per-window crest factor (peak/RMS) over loud 50-ms windows differs between saturated and
    gated bursts, and drum hits are transient (high crest over the segment)."""
    segments = {s.name: s for s in stimulus_segments(RATE, DURATION_SECONDS)}
    noise = _part(stimulus, segments["noise_bursts"])
    w = int(0.05 * RATE)
    blocks = noise[: noise.size // w * w].reshape(-1, w)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    loud = rms > 10 ** (-35 / 20)
    crest_db = 20 * np.log10(np.abs(blocks[loud]).max(axis=1) / rms[loud])
    assert crest_db.max() - crest_db.min() > 6.0
    drums = _part(stimulus, segments["drum_hits"])
    assert 20 * np.log10(np.max(np.abs(drums)) / np.sqrt(np.mean(drums**2))) > 15.0


def test_programme_like_is_deterministic_music_like_and_peaks_at_minus_1_dbfs():
    x = programme_like(RATE, 6.0, seed=4)
    np.testing.assert_array_equal(x, programme_like(RATE, 6.0, seed=4))
    assert not np.array_equal(x, programme_like(RATE, 6.0, seed=5))
    assert x.shape == (6 * RATE,) and np.all(np.isfinite(x))
    assert 20 * np.log10(np.max(np.abs(x))) == pytest.approx(-1.0, abs=1e-9)
    short_rms_db = 10 * np.log10(np.mean(x[: x.size // 800 * 800].reshape(-1, 800) ** 2, axis=1))  # 50 ms
    assert np.percentile(short_rms_db, 95) - np.percentile(short_rms_db, 5) > 6.0  # has dynamics
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    frequency_hz = np.fft.rfftfreq(x.size, 1 / RATE)
    for low, high in ((40, 200), (200, 2000), (2000, 7000)):  # bass, mids and highs all present
        band = spectrum[(frequency_hz >= low) & (frequency_hz < high)].sum() / spectrum.sum()
        assert band > 1e-3, (low, high)
