"""evaluate --baseline: a real third-party plugin (ZamComp VST3) scored on a generated SignalTrain-layout set.

The dataset's targets are ZamComp itself, rendered by pedalboard directly (not through dynamatch's host),
at a known knob → parameter mapping and with known input/output gains around it.  A baseline with the
right mapping must then reproduce the targets (ESR near float32 rounding) and its automatic calibration
must recover the gains; a wrong mapping must score badly.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.data.datasets import open_dataset
from dynamatch.data.generate import generate_signaltrain_like
from dynamatch.errors import ParameterError
from dynamatch.maps.baseline import BaselineMapping, parse_baseline_map, score_plugin_baseline
from dynamatch.metrics import esr

ZAMCOMP = Path("/usr/lib/vst3/ZamComp.vst3")
SAMPLE_RATE = 44100
IN_DB, OUT_DB = 5.3, -3.7  # the gains the "device" applied around the plugin
RATIO = {"compress": 4.0, "limit": 12.0}
FIXED = {"attack_ms": 5.0, "release_ms": 100.0, "knee_db": 0.0, "makeup_db": 0.0}
MAP_SPECS = ["peak_reduction=threshold_db@0:0,100:-30", "mode=ratio@compress:4,limit:12",
             *(f"{k}={v:g}" for k, v in FIXED.items())]

try:
    import pedalboard
except ImportError:  # pragma: no cover - pedalboard is a dev dependency
    pedalboard = None
needs_zamcomp = pytest.mark.skipif(
    pedalboard is None or not ZAMCOMP.exists(),
    reason="hosting VST3 needs pedalboard (pip install pedalboard)" if pedalboard is None
    else f"{ZAMCOMP} not installed (apt install zam-plugins)")


def zamcomp_device(x, sample_rate, mode, peak_reduction):
    """ZamComp through pedalboard directly, threshold −0.3·PR dB, with gains around it."""
    plugin = pedalboard.load_plugin(str(ZAMCOMP))
    for key, value in {**FIXED, "threshold_db": -0.3 * peak_reduction, "ratio": RATIO[mode]}.items():
        setattr(plugin, key, value)
    gain_in, gain_out = 10 ** (IN_DB / 20), 10 ** (OUT_DB / 20)
    y = plugin.process((np.asarray(x, np.float32) * gain_in)[None], sample_rate, reset=True)[0]
    return y.astype(np.float64) * gain_out


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("baseline")
    generate_signaltrain_like(root, duration_seconds=10.0, peak_reductions=[40, 70, 100], seed=3, device=zamcomp_device)
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_parse_baseline_map():
    mapping = parse_baseline_map(MAP_SPECS)
    assert mapping.knob_param == "threshold_db" and mapping.knob_points == ((0.0, 0.0), (100.0, -30.0))
    assert mapping.settings("limit", 70) == {**FIXED, "threshold_db": pytest.approx(-21.0), "ratio": 12.0}
    assert parse_baseline_map(["peak_reduction=Peak Reduction"]).settings("compress", 65) == {"Peak Reduction": 65.0}
    for bad in ["peak_reduction", "ratio=four", "mode=ratio@fast:1", "peak_reduction=threshold_db@0:0", "x=1@a:b"]:
        with pytest.raises(ParameterError):
            parse_baseline_map([bad])


@needs_zamcomp
def test_calibrated_baseline_reproduces_the_plugin_and_recovers_the_gains(dataset_root):
    dataset = open_dataset(dataset_root)
    rows, gains = score_plugin_baseline(ZAMCOMP, dataset, parse_baseline_map(MAP_SPECS), calibration_seconds=5.0)
    print({m: (round(g.input_gain_db, 4), round(g.output_gain_db, 4), g.calibration_esr) for m, g in gains.items()})
    assert set(gains) == {"compress", "limit"}
    for g in gains.values():
        assert g.input_fitted and g.output_fitted and g.latency_samples == 0
        assert g.input_gain_db == pytest.approx(IN_DB, abs=0.05)
        assert g.output_gain_db == pytest.approx(OUT_DB, abs=0.05)
    assert len(rows) == len(dataset.pairs()) and {r["model"] for r in rows} == {"ZamComp"}
    print(f"calibrated rows: max ESR {max(r['esr'] for r in rows):.3g}")
    assert max(r["esr"] for r in rows) < 1e-5

    # the rows score what the plugin renders: recompute one independently with pedalboard
    pair = dataset.pairs(mode="limit", peak_reduction=40)[0]
    x, y = dataset.read(pair)
    g = gains["limit"]
    plugin = pedalboard.load_plugin(str(ZAMCOMP))
    for key, value in {**FIXED, "threshold_db": -12.0, "ratio": 12.0}.items():
        setattr(plugin, key, value)
    direct = plugin.process((x * 10 ** (g.input_gain_db / 20)).astype(np.float32)[None], SAMPLE_RATE, reset=True)[0]
    row = next(r for r in rows if r["pair"] == pair.name)
    assert row["esr"] == pytest.approx(esr(direct * 10 ** (g.output_gain_db / 20), y), rel=1e-6, abs=1e-12)


@needs_zamcomp
def test_fixed_gains_and_a_wrong_mapping_score_worse(dataset_root):
    dataset = open_dataset(dataset_root)
    mapping = parse_baseline_map(MAP_SPECS)
    exact, _ = score_plugin_baseline(ZAMCOMP, dataset, mapping, input_gain_db=IN_DB, output_gain_db=OUT_DB,
                                     split="train")
    unity, gains = score_plugin_baseline(ZAMCOMP, dataset, mapping, input_gain_db=0.0, output_gain_db=0.0, split="train")
    assert not gains["compress"].input_fitted and not gains["compress"].output_fitted
    wrong = BaselineMapping(knob_param="threshold_db", knob_points=((0.0, 0.0), (100.0, -60.0)), mode_param="ratio",
                            mode_values={"compress": 2.0, "limit": 2.0}, fixed=FIXED)
    wrong_rows, _ = score_plugin_baseline(ZAMCOMP, dataset, wrong, input_gain_db=IN_DB, output_gain_db=OUT_DB, split="train")
    best = max(r["esr"] for r in exact)
    print(f"exact max ESR {best:.3g}; unity gains min {min(r['esr'] for r in unity):.3g}; "
          f"wrong map min {min(r['esr'] for r in wrong_rows):.3g}")
    assert best < 1e-5
    assert min(r["esr"] for r in unity) > 100 * best
    assert min(r["esr"] for r in wrong_rows) > 100 * best


@needs_zamcomp
def test_plugin_latency_is_measured_and_compensated(tmp_path):
    """Targets 25 samples late (as through an interface): the baseline advances the plugin to match."""
    def late_device(x, sample_rate, mode, peak_reduction):
        y = zamcomp_device(x, sample_rate, mode, peak_reduction)
        return np.concatenate([np.zeros(25), y[:-25]])

    root = generate_signaltrain_like(tmp_path, duration_seconds=10.0, peak_reductions=[70], modes=("compress",),
                                     seed=6, device=late_device)
    dataset = open_dataset(root)
    rows, gains = score_plugin_baseline(ZAMCOMP, dataset, parse_baseline_map(MAP_SPECS), input_gain_db=IN_DB,
                                        output_gain_db=OUT_DB)
    assert gains["compress"].latency_samples == -25  # the plugin's output leads the targets
    assert max(r["esr"] for r in rows) < 1e-5 and {r["latency_samples"] for r in rows} == {-25}
    uncompensated, _ = score_plugin_baseline(ZAMCOMP, dataset, parse_baseline_map(MAP_SPECS), input_gain_db=IN_DB,
                                             output_gain_db=OUT_DB, latency_samples=0)
    assert min(r["esr"] for r in uncompensated) > 1000 * max(r["esr"] for r in rows)


@needs_zamcomp
def test_cli_writes_model_and_baseline_rows_in_one_csv(dataset_root, tmp_path):
    out = tmp_path / "eval"
    result = run("--format", "plain", "evaluate", dataset_root, "--model", "preset:la2a", "--baseline", ZAMCOMP,
                 *(a for spec in MAP_SPECS for a in ("--baseline-map", spec)), "--calibration-seconds", 5,
                 "--split", "train", "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert {r["model"] for r in rows} == {"preset:la2a", "ZamComp"}
    assert len(rows) == 2 * len(open_dataset(dataset_root).pairs(split="train"))
    assert all(float(r["esr"]) < 1e-5 for r in rows if r["model"] == "ZamComp")
    assert (out / "scores.png").stat().st_size > 10_000
    document = json.loads((out / "baseline.json").read_text())
    assert document["gains"]["compress"]["input_gain_db"] == pytest.approx(IN_DB, abs=0.05)


@needs_zamcomp
@pytest.mark.parametrize("args, message", [
    (["--baseline", "/nonexistent/Foo.vst3", "--baseline-map", "peak_reduction=threshold_db"], "plugin not found"),
    (["--baseline", "/tmp/notaplugin.txt", "--baseline-map", "peak_reduction=threshold_db"], ".vst3"),
    (["--baseline", str(ZAMCOMP), "--baseline-map", "peak_reduction=Peak Reduction"], "no parameter 'Peak Reduction'"),
    (["--baseline", str(ZAMCOMP)], "names no parameter"),
    (["--baseline", str(ZAMCOMP), "--baseline-map", "peak_reduction=threshold_db@0:0,100:20"], "outside"),
    (["--baseline-map", "peak_reduction=threshold_db"], "need --baseline"),
])
def test_bad_baseline_input_is_one_line_and_exit_2(dataset_root, tmp_path, args, message):
    result = CliRunner().invoke(main, ["evaluate", str(dataset_root), "-o", str(tmp_path / "e"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


LSP_URI = "http://lsp-plug.in/plugins/lv2/compressor_mono"
LSP_FIXED = {"cr": 4.0, "at": 5.0, "rt": 100.0}


def _lv2_available() -> str | None:
    import shutil
    import subprocess

    if shutil.which("lv2apply") is None or shutil.which("lv2ls") is None:
        return "lv2apply/lv2ls not installed (apt install lilv-utils)"
    if LSP_URI not in subprocess.run(["lv2ls"], capture_output=True, text=True).stdout.split():
        return f"{LSP_URI} not installed (apt install lsp-plugins-lv2)"
    return None


def lv2apply_device(x, sample_rate, mode, peak_reduction):
    """The LSP compressor rendered by Debian's lv2apply (not dynamatch's host), threshold 0.5 → 0.05 over PR 0 → 100."""
    import subprocess
    import tempfile

    import soundfile as sf

    threshold = float(np.interp(peak_reduction, [0, 100], [0.5, 0.05]))
    with tempfile.TemporaryDirectory() as folder:
        src, dst = Path(folder) / "in.wav", Path(folder) / "out.wav"
        sf.write(src, (np.asarray(x) * 10 ** (3.0 / 20)).astype(np.float32), sample_rate, subtype="FLOAT")
        controls = [a for k, v in {**LSP_FIXED, "al": threshold}.items() for a in ("-c", k, f"{v:.9g}")]
        subprocess.run(["lv2apply", "-i", str(src), "-o", str(dst), *controls, LSP_URI], check=True, capture_output=True)
        y, _ = sf.read(dst, dtype="float64")
    return y * 10 ** (-2.0 / 20)


def test_lv2_baseline_by_display_names_matches_lv2apply(tmp_path):
    reason = _lv2_available()
    if reason:
        pytest.skip(reason)
    root = generate_signaltrain_like(tmp_path, duration_seconds=10.0, peak_reductions=[40, 100], modes=("compress",),
                                     seed=4, device=lv2apply_device)
    specs = ["peak_reduction=Attack threshold@0:0.5,100:0.05", "Ratio=4", "Attack time=5", "Release time=100"]
    rows, gains = score_plugin_baseline(LSP_URI, open_dataset(root), parse_baseline_map(specs), calibration_seconds=5.0)
    g = gains["compress"]
    print(f"LSP via liblilv vs lv2apply: gains {g.input_gain_db:.3f} / {g.output_gain_db:.3f} dB, "
          f"ESR max {max(r['esr'] for r in rows):.3g}")
    assert g.input_gain_db == pytest.approx(3.0, abs=0.1) and g.output_gain_db == pytest.approx(-2.0, abs=0.1)
    assert max(r["esr"] for r in rows) < 1e-4
