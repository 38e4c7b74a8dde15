"""capture → fit-map → process on a real third-party plugin (ZamComp VST3, Debian zam-plugins)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.data.capture import capture_plugin, parse_grid
from dynamatch.errors import DatasetError, ParameterError
from dynamatch.metrics import esr

ZAMCOMP = Path("/usr/lib/vst3/ZamComp.vst3")
SAMPLE_RATE = 44100
pytestmark = pytest.mark.skipif(not ZAMCOMP.exists(), reason=f"{ZAMCOMP} not installed (apt install zam-plugins)")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_capture_fit_map_process_reproduces_zamcomp_at_a_held_out_setting(tmp_path):
    pedalboard = pytest.importorskip("pedalboard")
    captured = tmp_path / "set"
    fixed = ["--param", "ratio=4", "--param", "knee_db=0", "--param", "attack_ms=5", "--param", "release_ms=100"]
    result = run("capture", ZAMCOMP, "-o", captured, "--param", "threshold_db=-30,-20,-10", *fixed,
                 "--duration-seconds", 12)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((captured / "manifest.csv").open()))
    assert [float(r["threshold_db"]) for r in rows] == [-30.0, -20.0, -10.0] and {r["knob"] for r in rows} == {"threshold_db"}
    result = run("fit-map", captured, "-o", tmp_path / "map.json", "--modes", "compress", "--model", "gain-db",
                 "--no-plot")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "map.json").read_text())["knob"] == "threshold_db"

    # held out: ZamComp itself at threshold -25 dB on programme-like audio the map never saw
    from dynamatch.data.stimulus import programme_like

    x = programme_like(SAMPLE_RATE, 6.0, seed=3).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, SAMPLE_RATE, subtype="FLOAT")
    plugin = pedalboard.load_plugin(str(ZAMCOMP))
    plugin.threshold_db, plugin.ratio, plugin.knee_db, plugin.attack_ms, plugin.release_ms = -25.0, 4.0, 0.0, 5.0, 100.0
    reference = plugin(x[None], SAMPLE_RATE)[0].astype(float)
    result = run("process", tmp_path / "map.json", "--knob", "threshold_db=-25", tmp_path / "in.wav", tmp_path / "out.wav")
    assert result.exit_code == 0, result.output
    y, _ = sf.read(tmp_path / "out.wav")
    error = esr(y, reference)
    print(f"held-out ESR at threshold_db=-25: {error:.3g}")
    assert error < 1e-3

    wrong = run("process", tmp_path / "map.json", "--knob", "ratio=3", tmp_path / "in.wav", tmp_path / "out.wav")
    assert wrong.exit_code == 2 and "threshold_db" in wrong.output


def test_capture_resumes_and_refuses_a_different_grid(tmp_path):
    grid = parse_grid(["threshold_db=-30,-20", "ratio=4"])
    seen = []
    capture_plugin(ZAMCOMP, tmp_path, grid, duration_seconds=10.0,
                   on_render=lambda i, n, setting, skipped: seen.append(skipped))
    first = (tmp_path / "wet" / "0000.wav").stat().st_mtime_ns
    (tmp_path / "wet" / "0001.wav").unlink()  # as if interrupted before the last render
    seen.clear()
    dataset = capture_plugin(ZAMCOMP, tmp_path, grid, duration_seconds=10.0,
                             on_render=lambda i, n, setting, skipped: seen.append(skipped))
    assert seen == [True, False] and len(dataset) == 2 and dataset.knob == "threshold_db"
    assert (tmp_path / "wet" / "0000.wav").stat().st_mtime_ns == first
    with pytest.raises(DatasetError):
        capture_plugin(ZAMCOMP, tmp_path, parse_grid(["threshold_db=-10"]), duration_seconds=10.0)
    with pytest.raises(ParameterError):
        capture_plugin(ZAMCOMP, tmp_path / "two", parse_grid(["threshold_db=-30,-20", "ratio=2,4"]), duration_seconds=10.0)
    with pytest.raises(ParameterError):
        capture_plugin(ZAMCOMP, tmp_path / "bad", parse_grid(["no_such=1"]), duration_seconds=10.0)
