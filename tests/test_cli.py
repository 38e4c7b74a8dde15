"""The command line: the built-in default job, processing, and one-line errors with exit status 2."""

import json

import numpy as np
import pytest
from skips import require_module
import soundfile as sf
from click.testing import CliRunner

from dynamatch import Compressor
from dynamatch.cli import main
from dynamatch.maps import ParameterMap

SAMPLE_RATE = 44100


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def noise_bursts(seconds=8.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    env = np.repeat(rng.uniform(0.01, 0.9, 40), -(-n // 40))[:n]
    return (rng.standard_normal(n) * env * 0.3).clip(-0.95, 0.95)


def test_default_job_writes_model_summary_and_plot(tmp_path):
    result = run("fit", "-o", tmp_path / "model.json")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["format"] == "dynamatch.compressor"
    assert document["fit"]["esr"] < 0.2
    assert (tmp_path / "model.summary.txt").stat().st_size > 100
    assert (tmp_path / "model.png").read_bytes()[:4] == b"\x89PNG"


def test_fit_files_recovers_a_known_compressor(tmp_path):
    x = noise_bursts()
    truth = Compressor(-24, 5, 3, 150, 2)
    sf.write(tmp_path / "dry.wav", x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", truth.process(x, SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    result = run("fit", tmp_path / "dry.wav", tmp_path / "wet.wav", "-o", tmp_path / "m.json", "--no-plot")
    assert result.exit_code == 0, result.output
    fitted = json.loads((tmp_path / "m.json").read_text())["parameters"]
    for name, value in truth.to_dict().items():
        assert fitted[name] == pytest.approx(value, rel=5e-3, abs=5e-3), name


def test_process_with_preset_matches_python_render(tmp_path):
    x = noise_bursts(2.0)
    sf.write(tmp_path / "in.wav", x, SAMPLE_RATE, subtype="FLOAT")
    result = run("process", "--preset", "la2a", "--peak-reduction", 65, "--mode", "limit", tmp_path / "in.wav", tmp_path / "out.wav")
    assert result.exit_code == 0, result.output
    y, sample_rate = sf.read(tmp_path / "out.wav")
    expected = ParameterMap.preset("la2a").compressor(65, "limit").process(x.astype(np.float32).astype(float), SAMPLE_RATE)
    assert sample_rate == SAMPLE_RATE
    np.testing.assert_allclose(y.squeeze(), expected, atol=1e-6)


@pytest.mark.parametrize("case", ["missing", "nan", "silent", "corrupt", "unrelated", "one-file"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    x = noise_bursts(3.0)
    dry, wet = tmp_path / "dry.wav", tmp_path / "wet.wav"
    sf.write(dry, x, SAMPLE_RATE, subtype="FLOAT")
    y = Compressor(-20, 4, 5, 100, 0).process(x, SAMPLE_RATE)
    if case == "nan":
        y[1000] = np.nan
    if case == "silent":
        y[:] = 0
    if case == "unrelated":
        y = noise_bursts(3.0, seed=7)
    sf.write(wet, y, SAMPLE_RATE, subtype="FLOAT")
    if case == "corrupt":
        wet.write_bytes(b"RIFF not really a wav file")
    args = {"missing": ("fit", dry, tmp_path / "nope.wav"), "one-file": ("fit", dry)}.get(case, ("fit", dry, wet))
    result = run(*args, "-o", tmp_path / "m.json", "--no-plot")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line.replace(str(tmp_path) + "/", "") for line in result.output.strip().splitlines() if line.strip()]
    expected = {
        "missing": "error: nope.wav: file not found: check the path",
        "nan": "error: wet.wav: 1 non-finite samples (NaN/inf), first at sample 1000 (0.023 s): "
               "re-render or re-export the audio",
        "silent": "error: wet.wav: silent (all zero, below -90 dBFS): check the recording level and routing",
        "corrupt": "error: wet.wav: cannot be read as audio (Format not recognised): check the file is complete, "
                   "or convert it to WAV/FLAC",
        "unrelated": "error: dry.wav and wet.wav do not look like the same recording (peak correlation 0.01 < 0.3): "
                     "check the files",
        "one-file": "Error: give both DRY and WET, or neither for the built-in default",
    }[case]
    assert lines[-1] == expected, result.output
    if case != "one-file":
        assert len(lines) == 1, result.output


def test_bench_rtf_writes_csv_and_plot(tmp_path):
    require_module("torch")
    result = run("bench", "rtf", "--models", "gru-8", "--frames", "512,2048", "--duration-seconds", 0.3,
                 "--repeats", 1, "--threads", 1, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "rtf.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2  # header + (gru-8, 4a2a) × 2 frame sizes
    assert (tmp_path / "rtf.png").read_bytes()[:4] == b"\x89PNG"


def test_capture_workflow_with_a_third_party_compressor(tmp_path):
    """stimulus → a real plugin (pedalboard's compressor) with 37 samples latency and inverted polarity → fit."""
    pedalboard = require_module("pedalboard")
    assert run("stimulus", tmp_path / "stimulus.wav", "--duration-seconds", 20).exit_code == 0
    x, sample_rate = sf.read(tmp_path / "stimulus.wav")
    plugin = pedalboard.Compressor(threshold_db=-24, ratio=4, attack_ms=5, release_ms=100)
    y = plugin(x.astype(np.float32), sample_rate).astype(float)
    recorded = -np.concatenate([np.zeros(37), y])[: x.size]
    sf.write(tmp_path / "recorded.wav", recorded, sample_rate, subtype="FLOAT")
    result = run("fit", tmp_path / "stimulus.wav", tmp_path / "recorded.wav", "-o", tmp_path / "m.json", "--no-plot")
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "m.json").read_text())["fit"]
    assert fit["alignment"]["polarity"] == -1
    assert fit["alignment"]["lag_samples"] == pytest.approx(37.0, abs=0.05)
    assert fit["esr"] < 0.05


def test_missing_optional_dependency_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.delitem(__import__("sys").modules, "dynamatch.neural.train", raising=False)
    result = run("train", "tcn-300-c", tmp_path, "-o", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "pip install 'dynamatch[nn]'" in result.output
    assert "Traceback" not in result.output
