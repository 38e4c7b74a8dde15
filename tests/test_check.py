"""The capture report: known faults (lag, inverted polarity, clock drift, clipping, noise) are found."""

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy import signal

from dynamatch import Compressor
from dynamatch.cli import main
from dynamatch.data.check import STANDARD_STIMULI, check_capture, recognise_stimulus
from dynamatch.data.stimulus import capture_stimulus

SAMPLE_RATE = 44100


@pytest.fixture(scope="module")
def take():
    x = capture_stimulus(SAMPLE_RATE, duration_seconds=20.0)
    return x, Compressor(-24, 4, 5, 120, 0).process(x, SAMPLE_RATE)


def statuses(report):
    return {line.name: line.status for line in report.lines}


def test_clean_capture_passes(take):
    x, y = take
    report = check_capture(x, y, SAMPLE_RATE)
    assert report.passed
    s = statuses(report)
    assert all(s[name] == "pass" for name in ("length", "latency", "polarity", "level", "drift", "clipping", "noise"))
    assert s["stimulus"] == "warn" and s["calibration"] == "warn"  # 20-s stimulus is not standard; no reference
    assert abs(report.line("latency").values["lag_samples"]) < 0.01


def test_lag_and_inverted_polarity_are_measured(take):
    x, y = take
    wet = -np.concatenate([np.zeros(37), y])[: y.size]
    report = check_capture(x, wet, SAMPLE_RATE)
    assert report.line("latency").values["lag_samples"] == pytest.approx(37.0, abs=0.02)
    assert report.line("polarity").status == "warn" and report.line("polarity").values["polarity"] == -1
    wet_leads = y[25:]
    assert check_capture(x[: wet_leads.size], wet_leads, SAMPLE_RATE).line("latency").status == "warn"


@pytest.mark.parametrize("ppm", [3.0, -6.0])
def test_clock_drift_from_resampling_is_measured(take, ppm):
    x, y = take
    drifted = signal.resample(y, int(round(y.size * (1 + ppm * 1e-6))))  # the wet's clock runs slow/fast by ppm
    line = check_capture(x, drifted, SAMPLE_RATE).line("drift")
    assert line.status == "fail"
    assert line.values["drift_ppm"] == pytest.approx(ppm, rel=0.25)


def test_clipping_and_noise_fail(take):
    x, y = take
    clipped = np.clip(y * 30.0, -1.0, 1.0)
    line = check_capture(x, clipped, SAMPLE_RATE).line("clipping")
    assert line.status == "fail" and line.values["wet_clipped_fraction"] > 1e-3
    noisy = y + 10 ** (-55 / 20) * np.random.default_rng(0).standard_normal(y.size)
    noise = check_capture(x, noisy, SAMPLE_RATE).line("noise")
    expected_floor_db = -55.0  # RMS of unit-variance noise scaled by -55 dB
    assert noise.values["noise_floor_dbfs"] == pytest.approx(expected_floor_db, abs=0.5)
    assert noise.status == "fail"


def test_standard_stimulus_hashes_match_the_generator():
    for key, entry in STANDARD_STIMULI.items():
        x = capture_stimulus(entry["sample_rate"], duration_seconds=entry["duration_seconds"], seed=entry["seed"])
        assert recognise_stimulus(x.astype(np.float32).astype(np.float64)) == key
    assert recognise_stimulus(capture_stimulus(44100, duration_seconds=10.0)) is None


def test_calibration_in_dbu(take):
    x, y = take
    line = check_capture(x, y, SAMPLE_RATE, reference_dbu=18.0, input_reference_dbu=24.0).line("calibration")
    assert line.status == "pass"
    assert line.values["dry_peak_dbu"] == pytest.approx(20 * np.log10(np.max(np.abs(x))) + 18.0)
    assert line.values["wet_peak_dbu"] == pytest.approx(20 * np.log10(np.max(np.abs(y))) + 24.0)


def test_cli_check_json_and_fit_refuses_then_records_calibration(tmp_path, take):
    x, y = take
    x, y = x[: 10 * SAMPLE_RATE], y[: 10 * SAMPLE_RATE]
    sf.write(tmp_path / "dry.wav", x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", y, SAMPLE_RATE, subtype="FLOAT")
    drifted = signal.resample(y, int(round(y.size * (1 + 20e-6))))
    sf.write(tmp_path / "drift.wav", drifted, SAMPLE_RATE, subtype="FLOAT")
    runner = CliRunner()
    ok = runner.invoke(main, ["check", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "--json", "-",
                              "--reference-dbu", "18"])
    assert ok.exit_code == 0, ok.output
    document = json.loads(ok.stdout[ok.stdout.index("{"):])
    assert document["passed"] and {c["name"] for c in document["checks"]} >= {"latency", "drift", "noise", "stimulus"}
    bad = runner.invoke(main, ["check", str(tmp_path / "dry.wav"), str(tmp_path / "drift.wav")])
    assert bad.exit_code == 1
    refused = runner.invoke(main, ["fit", str(tmp_path / "dry.wav"), str(tmp_path / "drift.wav"), "-o",
                                   str(tmp_path / "m.json"), "--no-plot"])
    assert refused.exit_code == 2 and "drift" in refused.output and "--ignore-checks" in refused.output
    fitted = runner.invoke(main, ["fit", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o",
                                  str(tmp_path / "m.json"), "--no-plot", "--reference-dbu", "18",
                                  "--max-iterations", "15"])
    assert fitted.exit_code == 0, fitted.output
    provenance = json.loads((tmp_path / "m.json").read_text())["provenance"]
    assert provenance["calibration"]["reference_dbu"] == 18.0
    assert provenance["capture_check"]["drift"] == "pass"
