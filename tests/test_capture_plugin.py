"""capture → fit-map → process on a real third-party plugin (ZamComp VST3, Debian zam-plugins)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from skips import require_module, skip_tool
import soundfile as sf
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.data.capture import capture_plugin, parse_grid
from dynamatch.errors import DatasetError, ParameterError
from dynamatch.metrics import esr

ZAMCOMP = Path("/usr/lib/vst3/ZamComp.vst3")
SAMPLE_RATE = 44100
pytestmark = pytest.mark.skipif(not ZAMCOMP.exists(), reason=f"tool: {ZAMCOMP} not installed (apt install zam-plugins)")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_capture_fit_map_process_reproduces_zamcomp_at_a_held_out_setting(tmp_path):
    pedalboard = require_module("pedalboard")
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


LSP_COMPRESSOR = "http://lsp-plug.in/plugins/lv2/compressor_mono"


def test_capture_an_lsp_lv2_compressor_and_reproduce_a_held_out_setting(tmp_path):
    from dynamatch.data.plugins import open_plugin
    from dynamatch.data.stimulus import programme_like
    from dynamatch.maps.fit_map import fit_map

    try:
        host = open_plugin(LSP_COMPRESSOR)
    except (ImportError, OSError) as error:
        skip_tool(f"LSP LV2 compressor not available ({error})", "apt install lsp-plugins-lv2")
    fixed = {"cr": [4.0], "at": [5.0], "rt": [100.0]}
    dataset = capture_plugin(host, tmp_path / "set", {"al": [0.05, 0.1, 0.2], **fixed}, duration_seconds=10.0)
    assert dataset.knob == "al"
    parameter_map = fit_map(dataset, tmp_path / "map.json", modes=["compress"], chain=[pr for _, pr in dataset.settings()],
                            model="level", max_iterations=30)
    x = programme_like(SAMPLE_RATE, 6.0, seed=4).astype(np.float32).astype(float)
    reference = host.render(x, SAMPLE_RATE, {"al": 0.14, "cr": 4.0, "at": 5.0, "rt": 100.0})  # between knots
    error = esr(parameter_map.compressor(0.14).process(x, SAMPLE_RATE), reference)
    print(f"LSP held-out ESR at al=0.14: {error:.3g}")
    assert error < 0.02
