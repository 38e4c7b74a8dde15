"""Capturing a real third-party compressor: ZamComp (Debian zam-plugins VST3) hosted by pedalboard."""

from pathlib import Path

import numpy as np
import pytest
from skips import require_module

from dynamatch.data.stimulus import capture_stimulus
from dynamatch.fitting import fit_arrays

ZAMCOMP = Path("/usr/lib/vst3/ZamComp.vst3")


@pytest.mark.parametrize("threshold_db, ratio", [(-24.0, 4.0), (-18.0, 8.0)])
def test_fit_recovers_zamcomp_static_settings(threshold_db, ratio):
    pedalboard = require_module("pedalboard")
    if not ZAMCOMP.exists():
        pytest.skip(f"tool: {ZAMCOMP} not installed (apt install zam-plugins)")
    plugin = pedalboard.load_plugin(str(ZAMCOMP))
    plugin.threshold_db, plugin.ratio, plugin.knee_db = threshold_db, ratio, 0.0
    plugin.attack_ms, plugin.release_ms, plugin.makeup_db = 5.0, 100.0, 0.0
    x = capture_stimulus(44100, duration_seconds=20.0)
    y = plugin(x[None].astype(np.float32), 44100)[0].astype(float)
    result = fit_arrays(x, y, 44100)
    fitted = result.params
    assert result.success, result.message
    assert result.loss < 0.01
    # the static curve (hard knee) is the same model: threshold, slope and make-up carry over;
    # ZamComp's ballistics are defined differently, so its attack/release times are not compared.
    # The slope 1 - 1/ratio (dB of reduction per dB over threshold) is what the audio determines.
    assert fitted.threshold_db == pytest.approx(threshold_db, abs=1.5)
    assert 1 - 1 / fitted.ratio == pytest.approx(1 - 1 / ratio, abs=0.03)
    assert fitted.makeup_db == pytest.approx(0.0, abs=0.5)
