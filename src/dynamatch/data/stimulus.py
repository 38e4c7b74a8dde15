"""Deterministic test signals: the capture stimulus and a programme-like (music-like) signal.

The capture stimulus is what you play through the device you want to model.  It is a fixed
sequence of segments, separated by short silences, that excite the dynamics from every side
(:func:`stimulus_segments` gives the table for a given duration; durations scale with it, the
burst, gap and hit timings inside a segment are in real time and do not):

=============  =====  ====================================================================
segment        share  content
=============  =====  ====================================================================
silence        —      0.5 s at the start and between segments (latency, state reset)
tone_steps     30 %   1 kHz tone stepping from a −40 dBFS bed up to −30…0 dBFS bursts of
                      10 ms…2 s and back for 50 ms…1.5 s: attack and release at every level
noise_bursts   15 %   pink-noise bursts at −40…0 dBFS peak with crest factors from ~6 dB
                      (saturated) to ~20 dB (gated), over a −50 dBFS pink bed
drum_hits      15 %   kick/snare/hat-like decaying hits at −40…0 dBFS, 60…700 ms apart,
                      over a −55 dBFS pink bed
level_sweep    15 %   1 kHz tone swept −40 → 0 → −40 dBFS (linear in dB): static curve
programme      25 %   :func:`programme_like` under a slow (0.1…2 Hz) ±12 dB level modulation
=============  =====  ====================================================================

Levels are peak levels; "0 dBFS" means the ceiling, :data:`PEAK_CEILING_DBFS` (−0.3 dBFS), which
no sample exceeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..units import db_to_gain

PEAK_CEILING_DBFS = -0.3
FLOOR_DBFS = -40.0  # the lowest level the stimulus is designed to cover
SILENCE_SECONDS = 0.5
MIN_DURATION_SECONDS = 10.0
TONE_HZ = 1000.0
SEGMENT_SHARES: tuple[tuple[str, float], ...] = (
    ("tone_steps", 0.30),
    ("noise_bursts", 0.15),
    ("drum_hits", 0.15),
    ("level_sweep", 0.15),
    ("programme", 0.25),
)


@dataclass(frozen=True)
class Segment:
    """One section of the capture stimulus."""

    name: str
    start_seconds: float
    duration_seconds: float


def stimulus_segments(sample_rate: float = 44100, duration_seconds: float = 60.0) -> list[Segment]:
    """The segment table of :func:`capture_stimulus` (boundaries on whole samples)."""
    total = _samples(duration_seconds, sample_rate)
    if duration_seconds < MIN_DURATION_SECONDS:
        raise ParameterError(f"duration_seconds must be >= {MIN_DURATION_SECONDS}, got {duration_seconds}")
    silence = _samples(SILENCE_SECONDS, sample_rate)
    content = total - silence * (len(SEGMENT_SHARES) + 1)
    lengths = [int(round(share * content)) for _, share in SEGMENT_SHARES]
    lengths[-1] = content - sum(lengths[:-1])
    segments, start = [], 0
    for (name, _), length in zip(SEGMENT_SHARES, lengths):
        segments.append(Segment("silence", start / sample_rate, silence / sample_rate))
        start += silence
        segments.append(Segment(name, start / sample_rate, length / sample_rate))
        start += length
    segments.append(Segment("silence", start / sample_rate, silence / sample_rate))
    return segments


def capture_stimulus(sample_rate: float = 44100, *, duration_seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    """The capture stimulus (mono float64, peak ≤ −0.3 dBFS); identical for identical arguments."""
    segments = stimulus_segments(sample_rate, duration_seconds)
    out = np.zeros(_samples(duration_seconds, sample_rate))
    generators = dict(zip((name for name, _ in SEGMENT_SHARES), np.random.SeedSequence(seed).spawn(len(SEGMENT_SHARES))))
    makers = {
        "tone_steps": _tone_steps,
        "noise_bursts": _noise_bursts,
        "drum_hits": _drum_hits,
        "level_sweep": _level_sweep,
        "programme": _modulated_programme,
    }
    for segment in segments:
        if segment.name == "silence":
            continue
        start = int(round(segment.start_seconds * sample_rate))
        length = int(round(segment.duration_seconds * sample_rate))
        part = makers[segment.name](length, sample_rate, np.random.default_rng(generators[segment.name]))
        out[start : start + length] = part * min(1.0, db_to_gain(PEAK_CEILING_DBFS) / np.max(np.abs(part)))
    return out


def programme_like(sample_rate: float = 44100, duration_seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """A music-like mono signal (peak −1 dBFS): notes with harmonics and envelopes, a drum pattern
    at 90–130 BPM with varied velocities, and a quiet pink-noise bed.  Deterministic for a seed."""
    if not duration_seconds > 0:
        raise ParameterError(f"duration_seconds must be > 0, got {duration_seconds}")
    rng = np.random.default_rng(seed)
    length = _samples(duration_seconds, sample_rate)
    out = 0.002 * _pink_noise(length, rng)
    notes = np.zeros(length)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    for _ in range(max(1, int(4 * duration_seconds))):
        start = int(rng.integers(0, length))
        midi = 36 + 12 * int(rng.integers(0, 4)) + int(rng.choice(scale))
        note = _note(440.0 * 2 ** ((midi - 69) / 12), rng.uniform(0.1, 1.2), sample_rate, rng)
        stop = min(length, start + note.size)
        notes[start:stop] += rng.uniform(0.1, 1.0) * note[: stop - start]
    out += 0.3 * notes / max(1.0, np.max(np.abs(notes)))
    beat = int(round(60.0 / rng.uniform(90, 130) * sample_rate / 2))  # eighth notes
    drums = np.zeros(length)
    for step, start in enumerate(range(0, length, beat)):
        kind = "kick" if step % 4 == 0 else "snare" if step % 4 == 2 else "hat"
        hit = _hit(kind, sample_rate, rng) * rng.uniform(0.4, 1.0)
        stop = min(length, start + hit.size)
        drums[start:stop] += hit[: stop - start]
    out += 0.5 * drums
    return out * (db_to_gain(-1.0) / np.max(np.abs(out)))


# -- segments ------------------------------------------------------------------------------------


def _tone_steps(length: int, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    bed = db_to_gain(FLOOR_DBFS)
    burst_levels_db = np.array([-30.0, -20.0, -12.0, -6.0, -3.0, 0.0])
    burst_seconds = np.array([0.01, 0.03, 0.1, 0.3, 0.7, 2.0])
    gap_seconds = np.array([0.05, 0.15, 0.4, 0.8, 1.5])
    envelope = np.full(length, bed)
    position, step = _samples(0.2, sample_rate), 0
    while position < length:
        level_db = burst_levels_db[step % burst_levels_db.size]  # every level in turn ...
        burst = _samples(burst_seconds[rng.integers(burst_seconds.size)], sample_rate)  # ... with varied timing
        envelope[position : position + burst] = db_to_gain(level_db + PEAK_CEILING_DBFS)
        position += burst + _samples(gap_seconds[rng.integers(gap_seconds.size)], sample_rate)
        step += 1
    return envelope * _sine(TONE_HZ, length, sample_rate)


def _noise_bursts(length: int, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    out = db_to_gain(-50.0) * _unit_peak(_pink_noise(length, rng))
    position = _samples(0.1, sample_rate)
    while position < length:
        burst = min(length - position, _samples(rng.uniform(0.05, 1.5), sample_rate))
        noise = _pink_noise(burst, rng)
        shape = rng.integers(3)
        if shape == 0:  # saturated: low crest factor
            noise = np.tanh(3.0 * noise / np.std(noise))
        elif shape == 2:  # gated: high crest factor
            noise = noise * (_pink_noise(burst, rng) > 1.0 * np.std(noise))
        if np.any(noise):
            out[position : position + burst] = db_to_gain(rng.uniform(FLOOR_DBFS, 0.0) + PEAK_CEILING_DBFS) * _unit_peak(noise)
        position += burst + _samples(rng.uniform(0.05, 0.8), sample_rate)
    return out


def _drum_hits(length: int, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    out = db_to_gain(-55.0) * _unit_peak(_pink_noise(length, rng))
    position = _samples(0.05, sample_rate)
    while position < length:
        hit = _unit_peak(_hit(("kick", "snare", "hat")[rng.integers(3)], sample_rate, rng))
        stop = min(length, position + hit.size)
        out[position:stop] += hit[: stop - position] * db_to_gain(rng.uniform(FLOOR_DBFS, 0.0) + PEAK_CEILING_DBFS)
        position += _samples(rng.uniform(0.06, 0.7), sample_rate)
    return out


def _level_sweep(length: int, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    half = length // 2
    level_db = np.concatenate((np.linspace(FLOOR_DBFS, 0.0, half), np.linspace(0.0, FLOOR_DBFS, length - half)))
    return db_to_gain(level_db + PEAK_CEILING_DBFS) * _sine(TONE_HZ, length, sample_rate)


def _modulated_programme(length: int, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    music = programme_like(sample_rate, length / sample_rate, int(rng.integers(2**31)))[:length]
    t = np.arange(length) / sample_rate
    rate_hz = rng.uniform(0.1, 2.0, size=3)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    modulation_db = 4.0 * np.sin(2 * np.pi * rate_hz[:, None] * t + phase[:, None]).sum(axis=0)
    out = music * db_to_gain(modulation_db)
    return out * (db_to_gain(PEAK_CEILING_DBFS) / np.max(np.abs(out)))


# -- sources -------------------------------------------------------------------------------------


def _note(frequency_hz: float, duration_seconds: float, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    """A harmonic tone (1/k partials below Nyquist) with a short attack and an exponential decay."""
    n = _samples(duration_seconds, sample_rate)
    t = np.arange(n) / sample_rate
    tone = np.zeros(n)
    for k in range(1, 7):
        if k * frequency_hz < 0.45 * sample_rate:
            tone += np.sin(2 * np.pi * k * frequency_hz * t + rng.uniform(0, 2 * np.pi)) / k
    attack_seconds = rng.uniform(0.002, 0.05)
    envelope = np.minimum(1.0, t / attack_seconds) * np.exp(-t / rng.uniform(0.1, 0.6))
    envelope[-min(n, _samples(0.01, sample_rate)) :] *= np.linspace(1.0, 0.0, min(n, _samples(0.01, sample_rate)))
    return tone * envelope


def _hit(kind: str, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    """A drum-like one-shot: kick (falling sine), snare (tone + noise) or hat (high-passed noise)."""
    decay_seconds = {"kick": 0.15, "snare": 0.08, "hat": 0.03}[kind] * rng.uniform(0.7, 1.4)
    n = _samples(6 * decay_seconds, sample_rate)
    t = np.arange(n) / sample_rate
    envelope = np.exp(-t / decay_seconds)
    if kind == "kick":
        frequency_hz = 50.0 + 100.0 * np.exp(-t / 0.03)
        source = np.sin(2 * np.pi * np.cumsum(frequency_hz) / sample_rate)
    elif kind == "snare":
        source = 0.5 * np.sin(2 * np.pi * 190.0 * t) + rng.standard_normal(n)
    else:
        from scipy import signal

        sos = signal.butter(2, min(7000.0, 0.4 * sample_rate), "highpass", fs=sample_rate, output="sos")
        source = signal.sosfilt(sos, rng.standard_normal(n))
    return source * envelope


def _pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (unit standard deviation)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    k = np.arange(spectrum.size, dtype=float)
    k[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(k), length)
    return noise / (np.std(noise) or 1.0)


def _sine(frequency_hz: float, length: int, sample_rate: float) -> np.ndarray:
    return np.sin(2 * np.pi * frequency_hz * np.arange(length) / sample_rate)


def _unit_peak(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def _samples(seconds: float, sample_rate: float) -> int:
    return int(round(seconds * sample_rate))
