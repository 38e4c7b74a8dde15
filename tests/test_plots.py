"""The fit plot draws what the signals say, also where they are silent."""

import numpy as np

from dynamatch.report import plots


def test_apparent_gain_leaves_a_gap_in_silences_instead_of_plunging(tmp_path, monkeypatch):
    """The apparent-gain trace (wet level − dry level) plunged to −60…−100 dB in every silence."""
    sample_rate = 8000
    rng = np.random.default_rng(0)
    dry = 0.3 * rng.standard_normal(4 * sample_rate)
    dry[sample_rate:2 * sample_rate] = 1e-6 * rng.standard_normal(sample_rate)  # a silence at −120 dBFS
    wet = 0.5 * dry  # a device at −6.02 dB ...
    wet[sample_rate:2 * sample_rate] = 1e-9 * rng.standard_normal(sample_rate)  # ... whose output is quieter still
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    plots.plot_fit(tmp_path / "fit.png", dry, wet, wet, sample_rate, max_seconds=4.0)
    line = figures[0].axes[2].lines[0]
    t, gain = np.asarray(line.get_xdata()), np.asarray(line.get_ydata(), dtype=float)
    loud = (t > 0.1) & (t < 0.9) | (t > 2.1) & (t < 3.9)
    silent = (t > 1.1) & (t < 1.9)
    np.testing.assert_allclose(gain[loud], 20 * np.log10(0.5), atol=1e-6)
    assert np.isnan(gain[silent]).all()
    assert np.nanmin(gain) > -7.0
