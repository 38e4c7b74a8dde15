"""Audio I/O, signal checks and pair loading (dynamatch.data.audio)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from skips import SHARED, require_shared
import soundfile as sf

from dynamatch.data import AudioPair, check_signal, clipped_fraction, load_pair, read_audio, write_audio
from dynamatch.errors import (
    AudioFileError,
    ClippedAudioError,
    LengthMismatchError,
    NonFiniteAudioError,
    SampleRateMismatchError,
    SilentAudioError,
)

LA2A = SHARED / "la2a"
RATE = 8000


def _tone(seconds: float = 0.5, rate: int = RATE, frequency_hz: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency_hz * np.arange(int(seconds * rate)) / rate)


# -- read / write -----------------------------------------------------------------------------------


def test_float_round_trip_is_exact_and_mono_averages_channels(tmp_path):
    stereo = np.stack([_tone(), _tone(frequency_hz=300.0, amplitude=0.25)])
    write_audio(tmp_path / "a.wav", stereo, RATE)
    back, rate = read_audio(tmp_path / "a.wav", mono=False)
    assert rate == RATE and back.dtype == np.float64 and back.shape == stereo.shape
    np.testing.assert_array_equal(back, stereo.astype(np.float32))  # FLOAT subtype is float32
    mono, _ = read_audio(tmp_path / "a.wav")
    np.testing.assert_allclose(mono, stereo.astype(np.float32).astype(float).mean(axis=0), atol=1e-12)


def test_pcm16_round_trip_within_one_quantisation_step(tmp_path):
    x = _tone()
    write_audio(tmp_path / "a.flac", x, RATE, subtype="PCM_16")
    back, _ = read_audio(tmp_path / "a.flac")
    assert np.max(np.abs(back - x)) <= 1.0 / 32768


def test_partial_read_returns_the_slice_and_reads_only_that_many_frames(tmp_path, monkeypatch):
    x = np.arange(RATE * 2) / (RATE * 4.0)
    write_audio(tmp_path / "ramp.wav", x, RATE, subtype="DOUBLE")
    requested = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    part, _ = read_audio(tmp_path / "ramp.wav", start_seconds=0.5, duration_seconds=0.25)
    np.testing.assert_array_equal(part, x[RATE // 2 : RATE // 2 + RATE // 4])
    assert requested == [RATE // 4]


def test_resampling_on_read_keeps_the_waveform_and_logs(tmp_path, caplog):
    write_audio(tmp_path / "a.wav", _tone(1.0, 48000, 1000.0), 48000, subtype="DOUBLE")
    with caplog.at_level(logging.INFO, logger="dynamatch.data.audio"):
        y, rate = read_audio(tmp_path / "a.wav", sample_rate=44100)
    assert rate == 44100 and abs(y.size - 44100) <= 1
    assert any("48000" in r.message and "44100" in r.message for r in caplog.records)
    reference = _tone(1.0, 44100, 1000.0)
    middle = slice(2000, 40000)
    assert np.max(np.abs(y[middle] - reference[middle])) < 1e-3
    write_audio(tmp_path / "b.wav", np.stack([_tone(1.0, 48000, 1000.0), -_tone(1.0, 48000, 1000.0)]), 48000)
    stereo, _ = read_audio(tmp_path / "b.wav", sample_rate=44100, mono=False)
    assert stereo.shape[0] == 2 and abs(stereo.shape[1] - 44100) <= 1
    assert np.max(np.abs(stereo[0, middle] - reference[middle])) < 1e-3
    np.testing.assert_allclose(stereo[1], -stereo[0], atol=1e-12)


def test_reads_mp3(tmp_path):
    require_shared(LA2A, "real LA-2A clips")
    x, rate = read_audio(LA2A / "pr80_mp3" / "clip0_input.mp3", duration_seconds=1.0)
    assert rate == 44100 and x.shape == (44100,) and np.all(np.isfinite(x)) and np.max(np.abs(x)) > 0.01


def test_missing_corrupt_and_empty_files_give_one_line_errors(tmp_path):
    with pytest.raises(AudioFileError, match="not found") as missing:
        read_audio(tmp_path / "nope.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(200)))
    with pytest.raises(AudioFileError, match="cannot be read") as bad:
        read_audio(corrupt)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), RATE)
    with pytest.raises(AudioFileError, match="no audio") as nothing:
        read_audio(empty)
    for error, path in ((missing, "nope.wav"), (bad, corrupt), (nothing, empty)):
        message = str(error.value)
        assert str(path) in message and "\n" not in message
        assert isinstance(error.value, OSError) and isinstance(error.value, ValueError)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "out.wav"
    write_audio(target, _tone(), RATE)
    write_audio(target, 0.5 * _tone(), RATE)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    np.testing.assert_allclose(read_audio(target)[0], 0.5 * _tone(), atol=1e-7)
    with pytest.raises(AudioFileError, match="cannot write"):
        write_audio(target, _tone(), RATE, subtype="NOT_A_SUBTYPE")
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # the old file survives, no temporary left
    np.testing.assert_allclose(read_audio(target)[0], 0.5 * _tone(), atol=1e-7)


def test_write_refuses_values_that_pcm_would_clip_and_non_finite_audio(tmp_path):
    with pytest.raises(ClippedAudioError, match="FLOAT"):
        write_audio(tmp_path / "a.wav", 3 * _tone(), RATE, subtype="PCM_16")
    write_audio(tmp_path / "b.wav", 3 * _tone(), RATE)  # float files keep overs
    assert np.max(read_audio(tmp_path / "b.wav")[0]) == pytest.approx(1.5, abs=1e-3)
    with pytest.raises(NonFiniteAudioError):
        write_audio(tmp_path / "c.wav", np.array([0.0, np.nan, 0.1]), RATE)


# -- check_signal -------------------------------------------------------------------------------------


def _naive_clipped_fraction(x: np.ndarray) -> float:
    """Slow reference: walk each channel, measure runs of identical samples at |x| >= 0.9999."""
    x = np.atleast_2d(x)
    count = 0
    for channel in x:
        i = 0
        while i < channel.size:
            j = i
            while j + 1 < channel.size and channel[j + 1] == channel[i]:
                j += 1
            if abs(channel[i]) >= 0.9999 and j - i + 1 >= 4:
                count += j - i + 1
            i = j + 1
    return count / x.size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clipped_fraction_matches_naive_reference(seed):
    rng = np.random.default_rng(seed)
    x = np.clip(rng.uniform(-1.6, 1.6, size=(2, 400)).round(1), -1.0, 1.0)  # many flat runs, some short
    assert clipped_fraction(x) == pytest.approx(_naive_clipped_fraction(x))


def test_check_signal_reports_non_finite_count_and_first_position():
    x = _tone()
    x[[1000, 1200, 3000]] = [np.nan, np.inf, -np.inf]
    with pytest.raises(NonFiniteAudioError, match=r"take\.wav: 3 non-finite.*sample 1000 \(0\.125 s\)"):
        check_signal(x, "take.wav", RATE)


def test_check_signal_silence_threshold_is_minus_90_dbfs():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(RATE)
    noise /= np.sqrt(np.mean(noise**2))
    with pytest.raises(SilentAudioError, match="all zero"):
        check_signal(np.zeros(100), "z.wav")
    with pytest.raises(SilentAudioError, match=r"-95\.0 dBFS"):
        check_signal(noise * 10 ** (-95 / 20), "quiet.wav")
    check_signal(noise * 10 ** (-85 / 20), "soft.wav")


def test_check_signal_refuses_clipped_takes_but_not_overs_or_clean_peaks(tmp_path):
    clipped = np.clip(4.0 * _tone(), -1.0, 1.0)
    with pytest.raises(ClippedAudioError, match="clipped.wav"):
        check_signal(clipped, "clipped.wav")
    # an int16 file clips at +32767/32768 and -1: still recognised once read back
    write_audio(tmp_path / "int16.wav", clipped, RATE, subtype="PCM_16")
    with pytest.raises(ClippedAudioError):
        check_signal(read_audio(tmp_path / "int16.wav")[0], "int16.wav")
    check_signal(3.0 * _tone(), "float_overs.wav")  # > 1 but no flat tops: float headroom, not clipping
    check_signal(_tone(amplitude=1.0), "full_scale_sine.wav")
    brief = _tone(4.0)
    brief[100:104] = 1.0  # one 4-sample over in 32 000 samples (0.0125 %) is tolerated
    check_signal(brief, "brief.wav")


# -- load_pair ------------------------------------------------------------------------------------------


def test_load_pair_resamples_the_wet_to_the_dry_rate_or_refuses(tmp_path):
    write_audio(tmp_path / "dry.wav", _tone(1.0, 44100, 500.0), 44100)
    write_audio(tmp_path / "wet.wav", 0.5 * _tone(1.0, 48000, 500.0), 48000)
    pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")
    assert isinstance(pair, AudioPair) and pair.sample_rate == 44100
    assert pair.dry.shape == pair.wet.shape and abs(pair.dry.size - 44100) <= 1
    np.testing.assert_allclose(pair.wet[2000:40000], 0.5 * pair.dry[2000:40000], atol=1e-3)
    with pytest.raises(SampleRateMismatchError, match=r"dry\.wav is 44100 Hz but .*wet\.wav is 48000 Hz"):
        load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav", resample=False)


def test_load_pair_trims_small_length_differences_and_refuses_large_ones(tmp_path, caplog):
    write_audio(tmp_path / "dry.wav", _tone(4.0), RATE)
    write_audio(tmp_path / "wet.wav", _tone(4.0)[:-100], RATE)
    with caplog.at_level(logging.WARNING, logger="dynamatch.data.audio"):
        pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")
    assert pair.dry.size == pair.wet.size == 4 * RATE - 100
    assert any("trimming" in r.message for r in caplog.records)
    write_audio(tmp_path / "short.wav", _tone(2.0), RATE)
    with pytest.raises(LengthMismatchError, match=r"32000 samples .* 16000"):
        load_pair(tmp_path / "dry.wav", tmp_path / "short.wav")


def test_load_pair_checks_both_signals(tmp_path):
    write_audio(tmp_path / "dry.wav", _tone(), RATE)
    write_audio(tmp_path / "wet.wav", np.zeros(RATE // 2), RATE)
    with pytest.raises(SilentAudioError, match="wet.wav"):
        load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")


def test_load_pair_reads_the_real_la2a_excerpts():
    folder = LA2A / "signaltrain_excerpts"
    require_shared(folder, "real LA-2A clips")
    pair = load_pair(folder / "sample1_input.wav", folder / "sample1_target.wav")
    assert pair.sample_rate == 44100 and pair.dry.shape == pair.wet.shape == (16 * 44100,)
    assert pair.duration_seconds == pytest.approx(16.0)
    assert pair.dry_name.endswith("sample1_input.wav")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_statistics_match_numpy(dtype):
    from dynamatch.data.audio import clipped_fraction, signal_statistics
    from dynamatch.kernels.signal_checks import BLOCK_SAMPLES

    rng = np.random.default_rng(5)
    x = 0.3 * rng.standard_normal((2, 3 * BLOCK_SAMPLES + 123))
    for start, length in ((10, 3), (500, 4), (BLOCK_SAMPLES - 2, 9), (2 * BLOCK_SAMPLES - 5, 5), (x.shape[1] - 6, 6)):
        x[0, start:start + length] = 1.0  # flat tops, some across the kernel's block edges
    x[1, BLOCK_SAMPLES + 7: BLOCK_SAMPLES + 20] = -1.0
    x[1, 4 * 1000] = np.nan
    x[0, 70_000] = np.inf
    x = x.astype(dtype)
    stats = signal_statistics(x)
    finite = x[np.isfinite(x)].astype(float)
    assert stats.non_finite == 2 and stats.first_non_finite == 4000 and stats.samples == x.shape[1]
    assert stats.mean == pytest.approx(finite.mean(), rel=1e-9)
    assert stats.rms == pytest.approx(np.sqrt(np.mean(finite**2)), rel=1e-9)
    clean = np.nan_to_num(x, nan=0.0, posinf=0.0)
    assert stats.clipped_fraction == clipped_fraction(clean) == pytest.approx((4 + 9 + 5 + 6 + 13) / x.size)


@pytest.mark.parametrize("threshold", [0, 1 << 40])
def test_load_pair_reads_the_same_side_by_side_and_one_after_the_other(tmp_path, monkeypatch, threshold):
    """Large files are read in two threads (``PARALLEL_READ_BYTES``): the same arrays, bit for bit."""
    import dynamatch.data.audio as audio

    rng = np.random.default_rng(3)
    dry, wet = (rng.standard_normal(RATE).astype(np.float32) * 0.3 for _ in range(2))
    sf.write(tmp_path / "dry.wav", dry, RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", wet, RATE, subtype="FLOAT")
    monkeypatch.setattr(audio, "PARALLEL_READ_BYTES", threshold)
    pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav", dtype="float32")
    assert pair.dry.view(np.uint32).tolist() == dry.view(np.uint32).tolist()
    assert pair.wet.view(np.uint32).tolist() == wet.view(np.uint32).tolist()


def test_load_pair_side_by_side_reports_the_dry_first(tmp_path, monkeypatch):
    import dynamatch.data.audio as audio

    monkeypatch.setattr(audio, "PARALLEL_READ_BYTES", 0)
    (tmp_path / "dry.wav").write_bytes(b"not audio at all" * 64)
    (tmp_path / "wet.wav").write_bytes(b"neither is this" * 64)
    with pytest.raises(AudioFileError, match="dry.wav"):
        load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")
    sf.write(tmp_path / "dry.wav", _tone(), RATE)
    with pytest.raises(AudioFileError, match="wet.wav"):
        load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")
