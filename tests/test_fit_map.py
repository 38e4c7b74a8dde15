"""Map fitting end to end on a generated SignalTrain-layout dataset: chain, resume, paper protocol."""

import csv
import json

import numpy as np
import pytest

from dynamatch.data.datasets import open_dataset
from dynamatch.data.generate import generate_signaltrain_like
from dynamatch.maps import ParameterMap
from dynamatch.maps.evaluate import paper_protocol, score_map
from dynamatch.maps.fit_map import fit_map, progress_path
from naive import prefilter_naive

PEAK_REDUCTIONS = list(range(40, 101, 5))


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("signaltrain")
    return generate_signaltrain_like(root, duration_seconds=60.0, peak_reductions=PEAK_REDUCTIONS, modes=("compress",))


@pytest.fixture(scope="module")
def paper(dataset_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    written = paper_protocol(open_dataset(dataset_root), out, modes=("compress",))
    return out, written


def test_chained_map_is_monotone_and_smooth(paper):
    out, written = paper
    m = ParameterMap.load(written["map"])
    assert np.allclose(m.knots("compress"), PEAK_REDUCTIONS)
    table = m.modes["compress"]
    # more peak reduction = more compression: the threshold falls monotonically with the knob
    assert np.all(np.diff(table["threshold_db"]) < 0), table["threshold_db"]
    # smooth: no parameter jumps by more than a quarter of its total range between neighbours
    for name in ("threshold_db", "ratio", "attack_ms", "release_ms"):
        values = np.log(table[name]) if name.endswith("_ms") else table[name]
        span = np.ptp(values) + 1e-9
        assert np.max(np.abs(np.diff(values))) < 0.3 * span + 0.05 * abs(np.mean(values)), (name, values)
    # every fit reproduces its target well (the virtual opto device is not exactly representable)
    assert all(s["esr"] < 0.1 for s in m.fit_statistics["compress"])


def test_paper_csv_shape_and_interpolation_close_to_fit(paper, anchors_dir):
    out, written = paper
    ours = list(csv.reader(open(written["compress"])))
    published = list(csv.reader(open(anchors_dir / "comp.csv")))
    assert ours[0] == published[0] and ours[1] == published[1]
    assert [r[0] for r in ours[2:]] == [r[0] for r in published[2:]]
    for row in ours[2:]:
        pr, fit, linear, spline = int(row[0]), float(row[1]), row[2], row[3]
        if pr % 10:  # held-out settings 45 ... 95: interpolated from the even knots
            assert float(linear) <= 1.05 * fit, row
            assert float(spline) <= 1.05 * fit, row
        else:
            assert linear == "" and spline == ""


def test_score_map_agrees_with_an_independent_esr(dataset_root, paper):
    """score_map's ESR against one computed here with scipy's lfilter (not dynamatch.metrics, which it calls)."""
    out, written = paper
    ds = open_dataset(dataset_root)
    m = ParameterMap.load(written["map"])
    rows = score_map(m, ds, split="train", modes=["compress"], peak_reductions=[65.0])
    assert len(rows) == 1
    pair = ds.pairs(split="train", mode="compress", peak_reduction=65.0)[0]
    dry, wet = ds.read(pair)
    predicted = prefilter_naive(m.compressor(65.0, "compress").process(dry, ds.sample_rate))
    target = prefilter_naive(wet)
    independent = np.sum((target - predicted) ** 2) / np.sum(target**2)
    assert rows[0]["esr"] == pytest.approx(independent, rel=1e-9)


class Killed(BaseException):
    """Stands for SIGKILL/Ctrl-C: not an Exception, so nothing in fit_map may swallow it."""


def test_killed_run_resumes_without_refitting(dataset_root, tmp_path):
    """Deterministic: the run is stopped right after its second setting was saved (no timing, no skip)."""
    ds = open_dataset(dataset_root)
    chain = [100.0, 90.0, 80.0, 70.0, 60.0, 50.0, 40.0]
    output = tmp_path / "map.json"

    def stop_after_two(fit, index, total):
        if index == 1:
            raise Killed

    with pytest.raises(Killed):
        fit_map(ds, output, modes=["compress"], chain=chain, on_setting=stop_after_two)
    assert not output.exists()
    done_before = {f["peak_reduction"] for f in json.loads(progress_path(output).read_text())["fits"]}
    assert done_before == {100.0, 90.0}

    refitted = []
    resumed = fit_map(ds, output, modes=["compress"], chain=chain, on_start=lambda mode, pr, i, n: refitted.append(pr))
    assert not done_before & set(refitted)
    assert sorted(done_before | set(refitted)) == sorted(chain)

    uninterrupted = fit_map(ds, tmp_path / "fresh.json", modes=["compress"], chain=chain)
    for name, values in uninterrupted.modes["compress"].items():
        np.testing.assert_allclose(resumed.modes["compress"][name], values, rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("looks_real", [False, True])
def test_fitting_the_real_signaltrain_layout_replaces_the_la2a_preset(tmp_path, monkeypatch, looks_real):
    from click.testing import CliRunner

    from dynamatch.cli import main
    from dynamatch.data.generate import GENERATED_MARKER

    monkeypatch.setenv("DYNAMATCH_PRESETS_DIR", str(tmp_path / "presets"))
    root = generate_signaltrain_like(tmp_path / "st", duration_seconds=10.0, peak_reductions=[60, 80])
    if looks_real:
        (root / GENERATED_MARKER).unlink()
    result = CliRunner().invoke(main, ["fit-map", str(root), "-o", str(tmp_path / "map.json"), "--chain", "80,60", "--no-plot"])
    assert result.exit_code == 0, result.output
    installed = tmp_path / "presets" / "la2a.json"
    assert installed.exists() == looks_real
    expected = ParameterMap.load(tmp_path / "map.json") if looks_real else None
    preset = ParameterMap.preset("la2a")
    if looks_real:
        np.testing.assert_allclose(preset.parameters(70.0, "limit"), expected.parameters(70.0, "limit"))
    else:
        assert preset.knots("compress")[0] == 40.0  # still the shipped published map


@pytest.mark.parametrize("protocol", ["paper", "held-out", "score"])
def test_evaluate_command_writes_tables_and_plots(tmp_path, protocol):
    from click.testing import CliRunner

    from dynamatch.cli import main

    root = generate_signaltrain_like(tmp_path / "st", duration_seconds=12.0, peak_reductions=[40, 45, 50],
                                     modes=("limit",))
    args = ["evaluate", str(root), "-o", str(tmp_path / "out"), "--protocol", protocol, "--modes", "limit"]
    if protocol == "held-out":
        args += ["--fit-seconds", "8"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    if protocol == "paper":
        rows = list(csv.reader(open(out / "limit.csv")))
        assert [r[0] for r in rows[2:]] == ["40", "45", "50"]
        assert rows[3][2] and rows[3][3] and not rows[2][2]  # 45 is interpolated from 40 and 50
    if protocol == "held-out":
        rows = list(csv.DictReader(open(out / "held_out.csv")))
        parts = {r["part"] for r in rows}
        assert parts == {"in-sample", "held-out"}
        assert all(float(r["esr"]) < 0.1 for r in rows)
    if protocol != "score":
        assert (out / "parameters.png").read_bytes()[:4] == b"\x89PNG"
    else:
        rows = list(csv.DictReader(open(out / "scores.csv")))
        assert len(rows) == 3 + 2  # train settings + val + test pairs, scored with the shipped la2a preset
