"""`dynamatch report`: one self-contained HTML page, rendered by real headless Chromium and checked there."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from dynamatch import Compressor
from dynamatch.cli import main
from dynamatch.data.generate import generate_signaltrain_like

SAMPLE_RATE = 44100
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def noise_bursts(seconds=8.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    env = np.repeat(rng.uniform(0.01, 0.9, 40), -(-n // 40))[:n]
    return (rng.standard_normal(n) * env * 0.3).clip(-0.95, 0.95)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Small runs made by the real commands: a fit, a map, two evaluations."""
    root = tmp_path_factory.mktemp("runs")
    x = noise_bursts()
    sf.write(root / "dry.wav", x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(root / "wet.wav", Compressor(-24, 5, 3, 150, 2).process(x, SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    result = run("fit", root / "dry.wav", root / "wet.wav", "-o", root / "fit" / "model.json", "--max-iterations", 30)
    assert result.exit_code == 0, result.output
    generate_signaltrain_like(root / "data", duration_seconds=10.0, peak_reductions=(50.0, 80.0), modes=("compress",))
    result = run("fit-map", root / "data", "-o", root / "map.json", "--modes", "compress", "--chain", "80,50", "--no-plot")
    assert result.exit_code == 0, result.output
    for name, model in (("eval", root / "map.json"), ("eval-preset", "preset:la2a")):
        result = run("evaluate", root / "data", "--model", model, "--modes", "compress", "-o", root / name)
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def report(runs):
    output = runs / "out" / "report.html"
    result = run("report", runs / "fit" / "model.json", runs / "map.json", runs / "eval", runs / "eval-preset",
                 "-o", output, "--title", "test report")
    assert result.exit_code == 0, result.output
    return output


def read_scores(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def test_report_is_self_contained(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "<link" not in text
    # nothing is fetched: every src/href is a data: URI or an in-page anchor (SVG xmlns is a name, not a fetch)
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert attribute.startswith(("data:", "#")), attribute
    assert "url(http" not in text and "@import" not in text
    assert text.count("<svg") >= 3  # map parameters, comparison plot, per-run plots
    assert "data:image/png;base64," in text  # the fit's PNG
    assert "data:audio/wav;base64," in text  # A/B players of the fit (its dry/wet files exist)
    assert not list(report.parent.glob(".report.html.*"))  # atomic write left no temporary file


def chromium(*args, tmp_path):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (apt install chromium)")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
               f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def test_report_renders_in_headless_chromium(report, runs, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,1800", report.as_uri(), tmp_path=tmp_path)
    assert shot.is_file(), done.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[:2] == (1800, 1280)
    non_white = np.mean(image.min(axis=2) < 235)
    assert 0.03 < non_white < 0.9, non_white  # text, tables and plots, not a blank (or black) page
    coloured = np.sum(image.max(axis=2) - image.min(axis=2) > 80)
    assert coloured > 500, coloured  # plot lines and the accent colour actually painted

    done = chromium("--dump-dom", report.as_uri(), tmp_path=tmp_path)
    dom = done.stdout
    assert "<table" in dom and "test report" in dom, done.stderr[-2000:]
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", dom)]
    # every scored pair's ESR and ΔLDR, 4 significant digits
    for name in ("eval", "eval-preset"):
        for row in read_scores(runs / name / "scores.csv"):
            assert f"{float(row['esr']):.4g}" in cells, (name, row)
            assert f"{float(row['delta_ldr_db']):.4g}" in cells, (name, row)
    # the summary's mean ESR per model, computed here from the CSVs
    summary = re.search(r'<table id="summary-table">(.*?)</table>', dom, re.S).group(1)
    for name in ("eval", "eval-preset"):
        rows = [r for r in read_scores(runs / name / "scores.csv") if r["mode"] == "compress"]
        by_setting = {}
        for r in rows:
            by_setting.setdefault(float(r["peak_reduction"]), []).append(float(r["esr"]))
        mean = np.mean([np.mean(v) for v in by_setting.values()])
        assert f">{mean:.4g}<" in summary, (name, mean)
    # the per-setting ESR table has one column per evaluated model
    table = re.search(r'<table id="esr-compress">(.*?)</table>', dom, re.S).group(1)
    headers = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", table)]
    assert headers[0] == "setting" and any("eval-preset" in h for h in headers) and len(headers) >= 3
    # the fitted parameters with their units
    fitted = json.loads((runs / "fit" / "model.json").read_text())["parameters"]
    for name, value in fitted.items():
        assert name in cells and f"{value:.4g}" in cells, name
    assert "ms" in cells and "dB" in cells
    # the map's knots
    knots = json.loads((runs / "map.json").read_text())["modes"]["compress"]
    for value in knots["threshold_db"] + knots["release_ms"]:
        assert f"{value:.4g}" in cells
    # fit (3), eval and eval-preset (dry, target, model: 3 each); SVG: history, map, knot histories, map GR,
    # comparison, 2 excerpt GRs
    assert dom.count("<svg") >= 8 and dom.count("<audio") == 9


@pytest.fixture(scope="module")
def dom(report, tmp_path_factory):
    """The report's DOM as headless Chromium built it."""
    done = chromium("--dump-dom", report.as_uri(), tmp_path=tmp_path_factory.mktemp("chromium"))
    assert "<table" in done.stdout, done.stderr[-2000:]
    return done.stdout


def section(dom: str, run_index: int) -> str:
    return re.search(rf'<section id="run-{run_index}-[^"]*">(.*?)</section>', dom, re.S).group(1)


def table_rows(html_text: str, table_id_pattern: str) -> list[list[str]]:
    table = re.search(rf'<table id="{table_id_pattern}">(.*?)</table>', html_text, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in row]


def player_audio(html_text: str, label: str) -> np.ndarray:
    import base64
    import io

    uri = re.search(rf'<audio[^>]*data-label="{re.escape(label)}"[^>]*src="data:audio/wav;base64,([^"]+)"', html_text).group(1)
    audio, _ = sf.read(io.BytesIO(base64.b64decode(uri)), dtype="float64")
    return audio


def test_fit_history_recorded_and_shown(runs, dom):
    fit = json.loads((runs / "fit" / "model.json").read_text())["fit"]
    history = fit["history"]
    losses = history["loss"]
    assert len(losses) == fit["iterations"] + 1 == len(history["iteration"]) == len(history["gradient_norm"])
    assert losses[-1] == pytest.approx(fit["esr"], rel=1e-5)  # the last iterate is the fitted model
    assert all(after <= before * (1 + 1e-5) for before, after in zip(losses, losses[1:]))  # damped Newton descends
    assert losses[0] > 10 * losses[-1]
    rows = table_rows(section(dom, 1), "fit-history-[^\"]*")
    assert [int(r[0]) for r in rows] == history["iteration"]
    assert [r[1] for r in rows] == [f"{v:.4g}" for v in losses]
    assert re.search(r"<figure><svg[^>]*>(?:(?!<figure>).)*</svg>\s*<figcaption>fit history of model\.json", section(dom, 1), re.S)


def test_map_records_and_shows_each_knots_history(runs, dom):
    statistics = json.loads((runs / "map.json").read_text())["fit_statistics"]["compress"]
    for entry in statistics:
        assert len(entry["history"]) == entry["iterations"] + 1
        assert entry["history"][-1] == pytest.approx(entry["esr"], rel=1e-5)
    assert "fit history of each knot of map.json" in section(dom, 2)


def test_map_gain_reduction_traces_against_naive_render(runs, dom):
    from naive import render_naive

    from dynamatch.data.stimulus import capture_stimulus
    from dynamatch.maps import ParameterMap

    parameter_map = ParameterMap.load(runs / "map.json")
    x = capture_stimulus(SAMPLE_RATE, duration_seconds=10.0, seed=0)
    rows = table_rows(section(dom, 2), "map-gr-[^\"]*")
    assert [(r[0], float(r[1])) for r in rows] == [("compress", 50.0), ("compress", 80.0)]  # lowest, highest knot
    for mode, knob, mean_cell, max_cell in rows:
        _, gain = render_naive(parameter_map.compressor(float(knob), mode), x, SAMPLE_RATE)
        gain_reduction = -20 * np.log10(gain)
        assert float(mean_cell) == pytest.approx(np.mean(gain_reduction), rel=2e-3)
        assert float(max_cell) == pytest.approx(np.max(gain_reduction), rel=2e-3)
    assert float(rows[1][3]) > float(rows[0][3]) > 1.0  # more peak reduction, more gain reduction


def test_evaluation_excerpts_play_and_trace_the_scored_pair(runs, dom):
    from naive import render_naive

    from dynamatch.data.datasets import open_dataset
    from dynamatch.maps import ParameterMap

    text = section(dom, 3)  # the evaluation of map.json
    rows = table_rows(text, "eval-gr-[^\"]*")
    assert len(rows) == 1
    label, mode, setting, pair_name, start_cell, mean_cell, max_cell = rows[0]
    assert (label, mode, float(setting)) == ("map", "compress", 80.0)  # the most compressed scored pair
    dataset = open_dataset(runs / "data")
    info = next(p for p in dataset.pairs() if p.name == pair_name)
    start = float(start_cell)
    lead, n = int(2.0 * SAMPLE_RATE), int(4.0 * SAMPLE_RATE)
    dry, wet = dataset.read(info, start_seconds=start - 2.0, duration_seconds=6.0)
    quantum = 1.0 / 32768
    assert np.max(np.abs(player_audio(text, "dry (input)") - dry[lead:lead + n])) < 1.01 * quantum
    assert np.max(np.abs(player_audio(text, "target (device)") - wet[lead:lead + n])) < 1.01 * quantum
    compressor = ParameterMap.load(runs / "map.json").compressor(80.0, "compress")
    out, gain = render_naive(compressor, dry, SAMPLE_RATE)
    expected = np.clip(out * 10 ** (compressor.to_dict()["makeup_db"] / 20), -1, 1)[lead:lead + n]
    assert np.max(np.abs(player_audio(text, "model map") - expected)) < 1.01 * quantum
    gain_reduction = -20 * np.log10(gain[lead:lead + n])
    assert float(mean_cell) == pytest.approx(np.mean(gain_reduction), rel=2e-3)
    assert float(max_cell) == pytest.approx(np.max(gain_reduction), rel=2e-3)
    # the excerpt is the window of most drive: no other 4-s window after the warm-up is louder
    search, _ = dataset.read(info)
    power = np.concatenate(([0.0], np.cumsum(search ** 2)))
    energies = [power[s + n] - power[s] for s in range(lead, search.size - n + 1, n // 4)]
    assert power[int(round(start * SAMPLE_RATE)) + n] - power[int(round(start * SAMPLE_RATE))] == pytest.approx(max(energies))
    preset = section(dom, 4)  # the preset's evaluation: its model is the preset
    assert "preset:la2a" in table_rows(preset, "eval-gr-[^\"]*")[0][0]
    assert len(re.findall("<audio", preset)) == 3


def test_audio_budget_bounds_the_page(runs, tmp_path, monkeypatch):
    from dynamatch.report import html as report_html

    monkeypatch.setattr(report_html, "AUDIO_BUDGET_BYTES", 1_200_000)  # room for two 4-s players
    text = report_html.build_report([runs / "eval", runs / "eval-preset"])
    assert text.count("<audio") == 2 and "audio budget is spent" in text
    assert len(text) < 1_200_000 + 600_000


def test_published_tables_beside_ours(report):
    text = report.read_text()
    assert "4A-2A paper (published)" in text  # the generated set uses SignalTrain 3c names: the paper's column joins
    from dynamatch.maps import ParameterMap

    published = {s["peak_reduction"]: s["esr"] for s in ParameterMap.preset("la2a").fit_statistics["compress"]}
    assert f">{published[50.0]:.4g}<" in text and f">{published[80.0]:.4g}<" in text


def test_report_reads_benchmarks_and_paper_protocol_tables(tmp_path):
    (tmp_path / "rtf.csv").write_text("name,frame_samples,frames,audio_seconds,wall_seconds,rtf,threads\n"
                                      "4a2a,512,10,3.0,0.01,300.5,2\n4a2a,2048,3,3.0,0.005,612.25,2\n")
    (tmp_path / "hessian.csv").write_text("strategy,device,batch,seconds,ms,peak_mb,relative_error,status\n"
                                          "numba,cpu,2,6.0,24.61,0.1,0.0,ok\n")
    (tmp_path / "comp.csv").write_text(
        "Peak Reduction,ESR,,,Threshold (dB),Ratio,Attack (ms),Release (ms), Make-up Gain (dB)\n"
        ",GT,Linear Interpolation,Spline Interpolation,,,,,\n"
        "40,0.08429,,,-13.07,5.435,30.51,470.1,0.6978\n45,0.0802,0.08027,0.08039,-14.21,4.51,17.31,371.4,0.6503\n")
    (tmp_path / "tcn.json").write_text(json.dumps({"format": "dynamatch-neural", "format_version": 1,
                                                   "config": {"preset": "tcn-300-c", "channels": 32}}))
    result = run("report", tmp_path, "-o", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r.html").read_text()
    for value in ("300.5", "612.2", "0.08027", "-14.21", "371.4", "24.61", "tcn-300-c", "32"):
        assert f">{value}<" in text, value


@pytest.mark.parametrize("case", ["missing", "empty-folder", "corrupt-csv", "foreign-csv", "truncated-json", "binary"])
def test_bad_runs_give_one_line_and_exit_2(tmp_path, case):
    target = tmp_path / "run"
    if case == "empty-folder":
        target.mkdir()
        (target / "notes.txt").write_text("hello")
    elif case == "corrupt-csv":
        target = tmp_path / "scores.csv"
        target.write_text("model,mode,peak_reduction,pair,esr\nm,compress,50,p,not-a-number\n")
    elif case == "foreign-csv":
        target = tmp_path / "other.csv"
        target.write_text("a,b\n1,2\n")
    elif case == "truncated-json":
        target = tmp_path / "model.json"
        target.write_text('{"format": "dynamatch.compressor", "format_version": 2, "model": "ff5", "param')
    elif case == "binary":
        target = tmp_path / "scores.csv"
        target.write_bytes(b"\x00\xff\xfe" * 100)
    result = run("report", target, "-o", tmp_path / "r.html")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output, result.output
    assert not (tmp_path / "r.html").exists()
