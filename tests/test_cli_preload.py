"""`dynamatch fit` loads the long-capture kernels in the reading thread of long files."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from dynamatch import cli
from dynamatch.data import load_pair
from dynamatch.kernels import signal_checks


def test_background_runs_only_for_long_files_and_the_preload_loads_the_float32_kernels(tmp_path, monkeypatch):
    import dynamatch.data.audio as audio

    x = np.linspace(-0.5, 0.5, 4410).astype(np.float32)
    for name in ("dry.wav", "wet.wav"):
        sf.write(tmp_path / name, x, 44100, subtype="FLOAT")
    calls = []
    load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav", background=lambda: calls.append("short"))
    assert calls == []
    monkeypatch.setattr(audio, "PARALLEL_READ_BYTES", 100)
    load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav", background=lambda: calls.append("long"))
    assert calls == ["long"]
    load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav", background=cli._load_long_capture_kernels)
    assert any(str(signature[0].dtype) == "float32" for signature in signal_checks._statistics_parallel.signatures)
    assert any(str(signature[0].dtype) == "float32" for signature in signal_checks._fir_same_in_place.signatures)
    assert signal_checks.dot(x) == signal_checks.dot(x.astype(np.float64))  # and they still compute
