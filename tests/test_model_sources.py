"""One model-source resolver: preset names (shipped or installed, bare or preset:NAME), map and model files,
run folders; every command that takes a model goes through it, and unknown names are one clear line."""

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from dynamatch import Compressor
from dynamatch.cli import main
from dynamatch.errors import ModelFileError
from dynamatch.maps import ParameterMap
from dynamatch.maps.parameter_map import install_preset
from dynamatch.model_loading import load_processor, resolve_model_source
from dynamatch.models.model_file import save_compressor

SAMPLE_RATE = 44100


def small_map():
    table = {"peak_reduction": [40.0, 70.0, 100.0], "threshold_db": [-10.0, -20.0, -30.0], "ratio": [2.0, 3.0, 4.0],
             "attack_ms": [5.0, 5.0, 5.0], "release_ms": [100.0, 100.0, 100.0], "makeup_db": [0.0, 1.0, 2.0]}
    return ParameterMap({"compress": table, "limit": table})


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_every_kind_of_source(tmp_path):
    shipped = ParameterMap.preset("la2a")
    assert resolve_model_source("preset:la2a").kind == "preset"
    assert resolve_model_source("la2a").kind == "preset"  # a bare preset name
    map_path = small_map().save(tmp_path / "map.json")
    model_path = save_compressor(tmp_path / "m.json", Compressor(-30, 3, 5, 100, 0))
    run_folder = tmp_path / "run"
    save_compressor(run_folder / "model.json", Compressor(-25, 3, 5, 100, 0))
    assert resolve_model_source(map_path).kind == "map"
    assert resolve_model_source(model_path).kind == "compressor"
    assert resolve_model_source(run_folder).path == run_folder / "model.json"
    assert load_processor("la2a", peak_reduction=65, mode="limit") == shipped.compressor(65, "limit")
    assert load_processor(run_folder) == Compressor(-25, 3, 5, 100, 0)
    np.testing.assert_allclose(resolve_model_source(map_path).parameter_map().parameters(70.0),
                               small_map().parameters(70.0))


def test_installed_preset_by_name(tmp_path):
    install_preset(small_map(), "my-comp")
    assert load_processor("preset:my-comp", peak_reduction=70) == small_map().compressor(70)
    assert load_processor("my-comp", peak_reduction=70) == small_map().compressor(70)


def test_unknown_name_lists_the_presets(tmp_path):
    install_preset(small_map(), "my-comp")
    for source in ("fairchild", "preset:fairchild", tmp_path / "missing.json"):
        with pytest.raises(ModelFileError) as caught:
            resolve_model_source(source)
        message = str(caught.value)
        assert "\n" not in message and "la2a" in message and "my-comp" in message, message
    with pytest.raises(ModelFileError, match="folder"):
        resolve_model_source(tmp_path)  # a folder without model.json


def test_a_file_of_another_kind_is_refused_by_name(tmp_path):
    path = tmp_path / "map.json.progress.json"
    path.write_text(json.dumps({"format": "dynamatch.fit_map_progress", "format_version": 1, "settings": {}, "fits": []}))
    with pytest.raises(ModelFileError, match="fit-map progress"):
        load_processor(path)
    model_path = save_compressor(tmp_path / "m.json", Compressor())
    with pytest.raises(ModelFileError, match="parameter map"):
        resolve_model_source(model_path).parameter_map()


def test_process_preset_takes_an_installed_preset(tmp_path):
    """--preset accepted only 'la2a' although fit-map --install-preset installs any name."""
    install_preset(small_map(), "my-comp")
    x = np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1
    sf.write(tmp_path / "in.wav", x, SAMPLE_RATE, subtype="FLOAT")
    result = run("process", "--preset", "my-comp", "--peak-reduction", 70, tmp_path / "in.wav", tmp_path / "out.wav")
    assert result.exit_code == 0, result.output
    y, _ = sf.read(tmp_path / "out.wav")
    np.testing.assert_allclose(y, small_map().compressor(70).process(x.astype(np.float32).astype(float), SAMPLE_RATE),
                               atol=1e-6)
    line = one_line_error(run("process", "--preset", "fairchild", tmp_path / "in.wav", tmp_path / "out.wav"))
    assert "fairchild" in line and "my-comp" in line and "la2a" in line


def test_export_plugin_preset_takes_an_installed_preset(tmp_path, monkeypatch):
    import dynamatch.export as export

    install_preset(small_map(), "my-comp")
    seen = {}

    def fake_build(parameter_map, output_dir, **options):
        seen["map"] = parameter_map
        raise ModelFileError("stop here")

    monkeypatch.setattr(export, "build_plugin", fake_build)
    result = run("export", "plugin", "--preset", "my-comp", "-o", tmp_path / "build")
    assert result.exit_code == 2 and "error: stop here" in result.output, result.output
    np.testing.assert_allclose(seen["map"].parameters(70.0), small_map().parameters(70.0))
    line = one_line_error(run("export", "plugin", "--preset", "fairchild", "-o", tmp_path / "build"))
    assert "my-comp" in line


@pytest.mark.parametrize("command", [
    ["evaluate", "DATA", "--model", "fairchild"],
    ["bench", "rtf", "--compressor", "fairchild", "--models", "lstm-32"],
    ["train-hybrid", "fairchild", "DATA", "-o", "OUT"],
])
def test_every_command_resolves_names_the_same_way(tmp_path, command):
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.csv").write_text("input,target,mode,peak_reduction\n")
    args = [str(data) if a == "DATA" else str(tmp_path / "out") if a == "OUT" else a for a in command]
    line = one_line_error(run(*args))
    assert "fairchild" in line and "la2a" in line, line


def test_process_says_when_a_single_compressor_ignores_the_knob(tmp_path):
    """`process MODEL --peak-reduction 65` with a fitted single compressor ignored the knob silently."""
    model_path = save_compressor(tmp_path / "m.json", Compressor(-30, 3, 5, 100, 0))
    x = np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1
    sf.write(tmp_path / "in.wav", x, SAMPLE_RATE, subtype="FLOAT")
    result = run("process", model_path, tmp_path / "in.wav", tmp_path / "out.wav", "--peak-reduction", 65, "--mode", "limit")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--peak-reduction" in warnings[0] and "--mode" in warnings[0], result.output
    quiet = run("process", model_path, tmp_path / "in.wav", tmp_path / "out.wav")
    assert "warning" not in quiet.output, quiet.output


@pytest.mark.parametrize("args, expected", [
    (["--preset", "la2a"], "dynamatch LA-2A"),
    (["MAP"], "dynamatch zam-threshold"),
    (["--preset", "my-comp"], "dynamatch my-comp"),
    (["MAP", "--name", "My Comp"], "My Comp"),
])
def test_exported_plugin_is_named_after_its_map(tmp_path, monkeypatch, args, expected):
    """A plugin exported from the user's own map kept the preset's name and URI (dynamatch-la-2a): two
    installed plugins then collided in a host."""
    import dynamatch.export as export

    install_preset(small_map(), "my-comp")
    map_path = small_map().save(tmp_path / "zam-threshold.json")
    seen = {}

    def fake_build(parameter_map, output_dir, **options):
        seen.update(options)
        raise ModelFileError("stop here")

    monkeypatch.setattr(export, "build_plugin", fake_build)
    words = [str(map_path) if a == "MAP" else a for a in args]
    result = run("export", "plugin", *words, "-o", tmp_path / "build")
    assert result.exit_code == 2 and "stop here" in result.output, result.output
    assert seen["name"] == expected
