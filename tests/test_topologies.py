"""The family's plugin topologies against a real third-party compressor: pedalboard's (JUCE's) Compressor
smooths the *level* before its hard-knee curve, which the ``level`` member describes and FF-5 cannot."""

import numpy as np
import pytest
from skips import require_module

from dynamatch.data.stimulus import capture_stimulus, programme_like
from dynamatch.fitting import fit_arrays
from dynamatch.metrics import esr

SAMPLE_RATE = 44100


def test_the_level_topology_captures_pedalboards_compressor_where_ff5_cannot():
    pedalboard = require_module("pedalboard")
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


LSP_COMPRESSOR = "http://lsp-plug.in/plugins/lv2/compressor_mono"


def render_lsp_rms_compressor(x, tmp_path):
    """LSP Compressor Mono in RMS side-chain mode (10 ms), threshold -20 dB, 4:1, knee ±6 dB, through
    lilv's ``lv2apply`` (Debian ``lilv-utils`` + ``lsp-plugins-lv2``)."""
    import shutil
    import subprocess

    import soundfile as sf

    if shutil.which("lv2apply") is None:
        pytest.skip("tool: lv2apply (Debian lilv-utils) is not installed")
    listed = subprocess.run(["lv2ls"], capture_output=True, text=True).stdout if shutil.which("lv2ls") else ""
    if LSP_COMPRESSOR not in listed:
        pytest.skip("tool: the LSP LV2 compressor (Debian lsp-plugins-lv2) is not installed")
    sf.write(tmp_path / "in.wav", x.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    controls = {"scm": 1, "scr": 10, "al": 0.1, "cr": 4, "at": 5, "rt": 100, "kn": 0.5}
    command = ["lv2apply", "-i", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav")]
    for symbol, value in controls.items():
        command += ["-c", symbol, str(value)]
    subprocess.run(command + [LSP_COMPRESSOR], check=True, capture_output=True)
    y, rate = sf.read(tmp_path / "out.wav")
    assert rate == SAMPLE_RATE and y.shape == x.shape
    return y


def test_the_rms_level_knee_topology_captures_an_lsp_rms_compressor(tmp_path):
    x = 0.5 * np.concatenate([capture_stimulus(SAMPLE_RATE, duration_seconds=15.0),
                              programme_like(SAMPLE_RATE, 6.0, seed=3)])
    y = render_lsp_rms_compressor(x, tmp_path)
    split = int(0.7 * x.size)
    held_out, fitted = {}, {}
    for model in ("ff5", "rms-level-knee"):
        result = fit_arrays(x[:split], y[:split], SAMPLE_RATE, model=model)
        fitted[model] = result.params
        held_out[model] = esr(result.params.process(x, SAMPLE_RATE)[split:], y[split:])
    assert held_out["rms-level-knee"] < held_out["ff5"] / 3.0  # the goal; measured ≈ 11x
    knee = fitted["rms-level-knee"]
    assert knee.threshold_db == pytest.approx(-20.0, abs=0.5)  # al = 0.1
    assert knee.ratio == pytest.approx(4.0, rel=0.1)
    assert knee.knee_db == pytest.approx(12.0, abs=3.0)  # kn = 0.5: the knee spans ±6 dB
