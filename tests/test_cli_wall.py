"""What keeps `dynamatch fit`'s wall time near its fit: kernels loaded while long files are read, the full-length
signals freed before the plot, no shutdown collections."""

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


def test_plot_excerpt_keeps_the_drawn_seconds_as_copies_and_short_captures_as_they_are():
    from dynamatch.data import AudioPair
    from dynamatch.fitting import CaptureFit
    from dynamatch.report.fit import PLOT_SECONDS, plot_excerpt

    rate = 1000
    n = int(PLOT_SECONDS * rate)
    dry, wet = np.arange(3 * n, dtype=np.float32), -np.arange(3 * n, dtype=np.float32)
    capture = CaptureFit(result=None, alignment=None, pair=AudioPair(dry, wet, rate, "d", "w"))
    excerpt = plot_excerpt(capture)
    assert excerpt.pair.dry.tolist() == dry[:n].tolist() and excerpt.pair.wet.tolist() == wet[:n].tolist()
    assert not np.shares_memory(excerpt.pair.dry, dry) and not np.shares_memory(excerpt.pair.wet, wet)
    short = CaptureFit(result=None, alignment=None, pair=AudioPair(dry[:n], wet[:n], rate, "d", "w"))
    assert plot_excerpt(short) is short


def test_the_fit_command_freezes_the_collector_after_writing_its_files(tmp_path):
    import json
    import subprocess
    import sys

    from dynamatch.models.compressor import Compressor

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(44100 * 4) * 0.3).astype(np.float32)
    sf.write(tmp_path / "dry.wav", x, 44100, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", Compressor(-20, 3, 5, 100, 0).process(x, 44100).astype(np.float32), 44100,
             subtype="FLOAT")
    code = ("import gc, sys; from dynamatch.cli import main\n"
            "try:\n main(sys.argv[1:])\nexcept SystemExit as e:\n assert not e.code, e.code\n"
            "print('frozen', gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", code, "fit", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"),
                           "-o", str(tmp_path / "model.json"), "--no-plot", "--max-iterations", "3"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split("frozen")[-1]) > 0
    assert "fit" in json.loads((tmp_path / "model.json").read_text())
