"""The family's plugin topologies against a real third-party compressor: pedalboard's (JUCE's) Compressor
smooths the *level* before its hard-knee curve, which the ``level`` member describes and FF-5 cannot."""

import numpy as np
import pytest

from dynamatch.data.stimulus import capture_stimulus, programme_like
from dynamatch.fitting import fit_arrays
from dynamatch.metrics import esr

SAMPLE_RATE = 44100


def test_the_level_topology_captures_pedalboards_compressor_where_ff5_cannot():
    pedalboard = pytest.importorskip("pedalboard")
    x = 0.5 * np.concatenate([capture_stimulus(SAMPLE_RATE, duration_seconds=15.0),
                              programme_like(SAMPLE_RATE, 6.0, seed=3)])
    plugin = pedalboard.Compressor(threshold_db=-24.0, ratio=4.0, attack_ms=5.0, release_ms=120.0)
    y = plugin.process(x.astype(np.float32)[None, :], SAMPLE_RATE)[0].astype(np.float64)
    split = int(0.7 * x.size)  # fit on the stimulus, score on unseen programme
    held_out = {}
    for model in ("ff5", "level"):
        result = fit_arrays(x[:split], y[:split], SAMPLE_RATE, model=model)
        held_out[model] = esr(result.params.process(x, SAMPLE_RATE)[split:], y[split:])
        if model == "level":
            assert result.params.threshold_db == pytest.approx(-24.0, abs=0.01)
            assert result.params.ratio == pytest.approx(4.0, rel=1e-3)
    assert held_out["level"] < held_out["ff5"] / 3.0  # the goal; measured ≈ 1e-14 vs 3e-3
    assert held_out["level"] < 1e-6  # float32 rendering of the plugin is the only difference left
