"""The CLI's user-facing output: --verbose stage times, tables readable in a pipe (--format), the fit
plot's fast envelope (checked against numpy's convolution)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.data.stimulus import capture_stimulus
from dynamatch.models.compressor import Compressor
from dynamatch.report.plots import envelope_db

SAMPLE_RATE = 44_100


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    x = capture_stimulus(SAMPLE_RATE, duration_seconds=10.0, seed=0)[: 5 * SAMPLE_RATE]
    y = Compressor(threshold_db=-30, ratio=4, attack_ms=5, release_ms=150, makeup_db=3).process(x, SAMPLE_RATE)
    sf.write(folder / "dry.wav", x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(folder / "wet.wav", y, SAMPLE_RATE, subtype="FLOAT")
    return folder / "dry.wav", folder / "wet.wav"


@pytest.mark.parametrize("window_ms", [10.0, 9.977])  # odd and even window lengths
def test_envelope_matches_numpy_convolution(window_ms):
    x = np.random.default_rng(0).standard_normal(5000)
    n = max(1, int(round(window_ms * 1e-3 * SAMPLE_RATE)))
    reference = 10 * np.log10(np.maximum(np.convolve(x**2, np.ones(n) / n, mode="same"), 1e-20))
    np.testing.assert_allclose(envelope_db(x, SAMPLE_RATE, window_ms), reference, atol=1e-9)
    assert envelope_db(x[:10], SAMPLE_RATE).shape == (10,)  # never longer than the signal


def test_verbose_fit_prints_every_stage_and_the_fit_time(pair, tmp_path):
    result = run("fit", *pair, "-o", tmp_path / "m.json", "--max-iterations", 3, "--verbose")
    assert result.exit_code == 0, result.output
    text = result.output.split("stage times (wall):", 1)[1]
    stages = {line.split()[0]: float(line.split()[1]) for line in text.strip().splitlines()}
    assert list(stages) == ["imports", "read", "checks", "alignment", "fit", "save", "plot", "total"]
    assert stages["total"] == pytest.approx(sum(v for k, v in stages.items() if k != "total"), abs=5e-3)  # each printed to 1 ms
    fit = json.loads((tmp_path / "m.json").read_text())["fit"]
    assert fit["fit_seconds"] == pytest.approx(stages["fit"], abs=2e-3)
    assert (tmp_path / "m.png").stat().st_size > 10_000


def test_tables_in_a_pipe_are_plain_csv_or_json_and_never_truncated():
    from dynamatch.models.family import MODELS

    plain = run("models")  # CliRunner's streams are not terminals: auto means plain
    assert plain.exit_code == 0
    header = plain.output.splitlines()[1].split()
    assert header[:3] == ["model", "parent", "parameters"] and "…" not in plain.output
    for spec in MODELS.values():
        assert ", ".join(spec.parameter_names) in plain.output and spec.summary in plain.output
    rows = list(csv.DictReader(io.StringIO(run("--format", "csv", "models").output)))
    assert [r["model"] for r in rows] == list(MODELS)
    assert [r["parameters"] for r in rows] == [", ".join(s.parameter_names) for s in MODELS.values()]
    document = json.loads(run("--format", "json", "models").output)
    assert document["title"] == "grey-box model family" and [r["model"] for r in document["rows"]] == list(MODELS)


def test_fit_parameter_table_as_csv(pair, tmp_path):
    result = run("--format", "csv", "fit", *pair, "-o", tmp_path / "m.json", "--max-iterations", 3, "--no-plot")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "m.json").read_text())["parameters"]
    lines = result.output.splitlines()
    start = lines.index("parameter,value")
    table = dict(tuple(line.split(",", 1)) for line in lines[start + 1: start + 1 + len(saved)])
    assert set(table) == set(saved)
    for name, text in table.items():
        assert float(text.split()[0]) == pytest.approx(saved[name], rel=1e-3, abs=1e-3)


def test_capture_check_in_a_pipe_has_no_console_markup(pair):
    """The check's status column is coloured on a terminal; a pipe or CSV gets the bare words."""
    from dynamatch.data.check import check_files

    report = check_files(*pair)
    rows = list(csv.DictReader(io.StringIO(run("--format", "csv", "check", *pair).output.split("capture check")[0])))
    assert [(r["check"], r["status"]) for r in rows] == [(line.name, line.status) for line in report.lines]
    plain = run("check", *pair).output
    assert "[/]" not in plain and "[green]" not in plain and "[yellow]" not in plain
    assert all(line.message.split(":")[0] in plain for line in report.lines)


def test_fit_says_which_resampling_and_alignment_it_applied(pair, tmp_path):
    """A wet at another rate was resampled and a latency/polarity fix applied without a console line."""
    import soxr

    dry, wet = pair
    y, _ = sf.read(wet)
    shifted = -np.concatenate([np.zeros(37), y[:-37]])  # 37 samples late, inverted ...
    sf.write(tmp_path / "wet48.wav", soxr.resample(shifted, SAMPLE_RATE, 48_000), 48_000, subtype="FLOAT")  # ... at 48 kHz
    result = run("fit", dry, tmp_path / "wet48.wav", "--sample-rate", SAMPLE_RATE, "-o", tmp_path / "m.json",
                 "--no-plot", "--max-iterations", 3)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"{tmp_path / 'wet48.wav'}: resampled from 48000 Hz to 44100 Hz (soxr VHQ, --sample-rate)" in lines
    aligned = [line for line in lines if line.startswith("aligned:")]
    assert len(aligned) == 1 and "lags by 37.00 samples (0.839 ms) and is inverted" in aligned[0], result.output
    plain = run("fit", *pair, "-o", tmp_path / "p.json", "--no-plot", "--max-iterations", 3)
    assert plain.exit_code == 0 and "aligned:" not in plain.output and "resampled" not in plain.output, plain.output
