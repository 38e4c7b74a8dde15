"""Fits on real LA-2A recordings (../shared/la2a): alignment, fit, and generalisation to unseen audio."""

import numpy as np
import pytest

from dynamatch.data.alignment import align_pair
from dynamatch.data.audio import AudioPair, load_pair
from dynamatch.fitting import fit_arrays, fit_files
from dynamatch.metrics import esr


def halves(pair: AudioPair):
    mid = len(pair.dry) // 2
    return (pair.dry[:mid], pair.wet[:mid]), (pair.dry[mid:], pair.wet[mid:])


@pytest.mark.parametrize("sample", ["sample1", "sample4"])
def test_fit_on_one_excerpt_predicts_the_next(la2a_dir, sample):
    folder = la2a_dir / "signaltrain_excerpts"
    pair, alignment = align_pair(load_pair(folder / f"{sample}_input.wav", folder / f"{sample}_target.wav"))
    assert -1.0 < alignment.lag_samples < -0.6  # the target leads by ~0.8 samples (CONTEXT §4)
    (fit_dry, fit_wet), (test_dry, test_wet) = halves(pair)
    result = fit_arrays(fit_dry, fit_wet, pair.sample_rate)
    assert result.success, result.message
    in_sample = esr(result.params.process(fit_dry, pair.sample_rate), fit_wet)
    held_out = esr(result.params.process(test_dry, pair.sample_rate), test_wet)
    # identity (no compression, level matched) as the baseline a useful model must beat
    gain = np.dot(test_dry, test_wet) / np.dot(test_dry, test_dry)
    baseline = esr(gain * test_dry, test_wet)
    print(f"{sample}: fit ESR {in_sample:.4f}, held-out ESR {held_out:.4f}, level-matched identity {baseline:.4f}, {result.params}")
    assert in_sample == pytest.approx(result.loss, rel=0.05)
    assert held_out < 0.05
    assert held_out < 0.5 * baseline


def test_fit_on_one_mp3_clip_predicts_another_at_the_same_setting(la2a_dir):
    folder = la2a_dir / "pr80_mp3"
    capture = fit_files(folder / "ed1_input.mp3", folder / "ed1_target.mp3")
    other, _ = align_pair(load_pair(folder / "ed2_input.mp3", folder / "ed2_target.mp3"))
    held_out = esr(capture.compressor.process(other.dry, other.sample_rate), other.wet)
    print(f"ed1 → ed2: fit ESR {capture.result.loss:.4f}, held-out ESR {held_out:.4f}, {capture.compressor}")
    assert held_out < 0.1
