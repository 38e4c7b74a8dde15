"""README workflows through the command line, end to end: generate-dataset, train (its console output and
extending a run), train-hybrid.  References: soundfile reads of the written files, the run's own model file
for what the console says, and the device's documented behaviour (more peak reduction, more gain reduction)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from skips import require_module

import dynamatch
from dynamatch.cli import main

ROOT_NAME = "SignalTrain_LA2A_Dataset_1.1"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    result = CliRunner().invoke(main, ["generate-dataset", str(root), "--duration-seconds", "10", "--chain", "40,70,100",
                                       "--modes", "compress"])
    assert result.exit_code == 0, result.output
    return root / ROOT_NAME


def test_generate_dataset_writes_the_signaltrain_layout(generated):
    names = sorted(str(p.relative_to(generated)) for p in generated.rglob("*.wav"))
    assert names == sorted([
        "Train/input_138_.wav", "Train/target_138_LA2A_3c__0__40.wav", "Train/input_139_.wav",
        "Train/target_139_LA2A_3c__0__70.wav", "Train/input_140_.wav", "Train/target_140_LA2A_3c__0__100.wav",
        "Val/input_141_.wav", "Val/target_141_LA2A_3c__0__70.wav", "Test/input_142_.wav",
        "Test/target_142_LA2A_3c__0__70.wav"])
    gains = {}
    for target in sorted((generated / "Train").glob("target_*.wav")):
        info = sf.info(str(target))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 1, "FLOAT", 441000)
        y, _ = sf.read(target)
        x, _ = sf.read(generated / "Train" / f"input_{target.name.split('_')[1]}_.wav")
        assert not np.allclose(x, y)
        gains[int(target.stem.split("__")[-1])] = 20 * np.log10(np.std(y) / np.std(x))
    assert gains[40] > gains[70] + 3 > gains[100] + 6  # more peak reduction, more gain reduction (dB)


def cli(*args) -> subprocess.CompletedProcess:
    """The installed command in a fresh process: Lightning's own console output is part of what is checked."""
    env = dict(os.environ, PYTHONPATH=str(Path(dynamatch.__file__).resolve().parents[1]), COLUMNS="200")
    code = "import sys; from dynamatch.cli import main; sys.argv[0] = 'dynamatch'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


def test_training_prints_steps_and_the_loss_it_saves_and_a_run_can_be_extended(generated, tmp_path):
    """Training printed a logger advertisement, a deprecation warning, "Epoch 0/-2" and a train loss other than
    the saved final_train_loss; extending a run failed naming `val_every` and `resume=False`."""
    require_module("torch")
    require_module("lightning")
    run = tmp_path / "run"
    sizes = ("--batch-size", 2, "--chunk-samples", 16384)
    first = cli("train", "tcn-100-c", generated, "-o", run, "--max-steps", 3, *sizes)
    assert first.returncode == 0, first.stderr
    text = first.stdout + first.stderr
    for noise in ("litlogger", "Tip:", "deprecated", "Epoch", "/-2", "max_steps="):
        assert noise not in text, (noise, text)
    assert "steps 1–3 of 3" in text
    saved = json.loads((run / "model.json").read_text())["training"]
    printed = float(re.search(r"final training loss ([0-9.e+-]+)", text).group(1))
    assert printed == pytest.approx(saved["final_train_loss"], rel=1e-3)
    bar = [float(v) for v in re.findall(r"train_loss: ([0-9.e+-]+)", text)]
    assert bar and bar[-1] == pytest.approx(saved["final_train_loss"], abs=1e-3)

    extended = cli("train", "tcn-100-c", generated, "-o", run, "--max-steps", 5, *sizes)
    assert extended.returncode == 0, extended.stderr
    saved = json.loads((run / "model.json").read_text())["training"]
    assert saved["steps"] == 5 and [h["step"] for h in saved["history"]] == [3, 5]  # validated at its last step

    other = cli("train", "tcn-100-c", generated, "-o", run, "--max-steps", 6, "--batch-size", 4, "--chunk-samples", 16384)
    assert other.returncode == 2
    lines = [line for line in other.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "batch size 2 → 4" in lines[0] and "--restart" in lines[0], other.stderr
    assert "val_every" not in lines[0] and "resume=False" not in lines[0]


def test_train_hybrid_runs_the_steps_and_sizes_it_is_given(generated, tmp_path):
    """`train-hybrid --max-steps 5` ran 40 steps and had no --batch-size/--chunk-samples."""
    require_module("torch")
    require_module("lightning")
    result = CliRunner().invoke(main, ["train-hybrid", "la2a", str(generated), "-o", str(tmp_path / "gru"),
                                       "--max-steps", "2", "--batch-size", "2", "--chunk-samples", "16384"])
    assert result.exit_code == 0, result.output
    training = json.loads((tmp_path / "gru" / "model.json").read_text())["training"]
    assert training["steps"] == 2 and [h["step"] for h in training["history"]] == [2]
    assert (training["settings"]["batch_size"], training["settings"]["chunk_samples"]) == (2, 16384)
    assert "2 steps" in result.output


def test_export_plugin_with_gru_end_to_end(generated, tmp_path):
    """train-hybrid → export plugin la2a --gru RUN → the VST3 in a host renders compressor + trained GRU as
    torch does (reference: the saved model run in torch after dynamatch's compressor at make-up 0 dB)."""
    import shutil

    from dynamatch.export.plugin import DPF_PATH
    from dynamatch.maps import ParameterMap

    torch = require_module("torch")
    require_module("lightning")
    pedalboard = require_module("pedalboard", install="pedalboard hosts the VST3 in this test")
    if not (DPF_PATH / "Makefile.plugins.mk").is_file() or shutil.which("g++") is None:
        pytest.skip(f"tool: DPF at {DPF_PATH} and g++ are needed to build the plugin (apt install dpf-source g++)")
    runner = CliRunner()
    trained = runner.invoke(main, ["train-hybrid", "la2a", str(generated), "-o", str(tmp_path / "gru"),
                                   "--max-steps", "2", "--batch-size", "2", "--chunk-samples", "16384"])
    assert trained.exit_code == 0, trained.output
    built = runner.invoke(main, ["export", "plugin", "la2a", "--gru", str(tmp_path / "gru"), "--format", "vst3",
                                 "-o", str(tmp_path / "plugin")])
    assert built.exit_code == 0, built.output
    bundle = tmp_path / "plugin" / "vst3" / "dynamatch-la-2a-mono.vst3"  # named after the preset (la2a)
    assert bundle.name in built.output.replace("\n", "")
    plugin = pedalboard.load_plugin(str(bundle))
    plugin.peak_reduction, plugin.mode, plugin.output_gain_db = 65.0, "Limit", 0.0

    rng = np.random.default_rng(3)
    levels = np.repeat(10 ** (rng.uniform(-30, -3, 6) / 20), 2205)
    x = (levels * np.sin(2 * np.pi * 220 * np.arange(levels.size) / 44100)).astype(np.float32)[None]
    y = plugin.process(x, 44100, buffer_size=128, reset=True)[0]

    from dynamatch.neural.data import conditioning
    from dynamatch.neural.registry import load_model

    compressed = ParameterMap.preset("la2a").compressor(65.0, "limit").with_params(makeup_db=0.0).process(
        x[0].astype(np.float64), 44100)
    model = load_model(tmp_path / "gru" / "model.json").double().eval()
    cond = torch.tensor([list(conditioning("limit", 65.0))], dtype=torch.float64)
    with torch.no_grad():
        expected = model(torch.from_numpy(compressed)[None, None], cond)[0, 0].numpy()
    assert np.max(np.abs(expected - compressed)) > 1e-4  # the trained GRU changes the sound
    assert np.max(np.abs(y - expected)) <= 1e-5


def test_fit_map_over_a_finished_map_says_so_without_an_empty_bar(generated, tmp_path):
    """A finished map rerun showed a "0/?" progress bar."""
    args = ["fit-map", str(generated), "-o", str(tmp_path / "map.json"), "--modes", "compress", "--no-plot"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "3/3" in first.output and "already fitted" not in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "0/?" not in again.output and "/?" not in again.output, again.output
    assert "map.json: every setting asked for is already fitted; nothing to fit" in " ".join(again.output.split())
