"""Listening-test kit (webMUSHRA, loudness-matched) and its statistics (Kruskal–Wallis, Conover, Holm)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner
from scipy import stats

from dynamatch.cli import main
from dynamatch.data.generate import generate_signaltrain_like
from dynamatch.listening import adjust_p, analyse_ratings, average_ranks, conover, kruskal_wallis, Rating
from dynamatch.models.compressor import Compressor
from dynamatch.models.model_file import save_compressor


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output, result.output
    return lines[0]


# -- statistics -----------------------------------------------------------------------------------


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3, 1, 4, 1, 5, 9, 2, 6, 5])).tolist() == [4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kruskal_wallis_matches_scipy_with_ties_and_unequal_groups(seed):
    rng = np.random.default_rng(seed)
    groups = [np.round(rng.normal(mu, 12, size)).clip(0, 100) for mu, size in ((60, 17), (65, 23), (50, 9), (62, 30))]
    ours = kruskal_wallis(groups)
    reference = stats.kruskal(*groups)
    assert ours.h == pytest.approx(reference.statistic, rel=1e-12)
    assert ours.p == pytest.approx(reference.pvalue, rel=1e-9)
    assert ours.df == 3


def test_conover_hand_worked_two_groups():
    # A = 1,2,3 and B = 4,5,6: ranks equal values, mean ranks 2 and 5, N = 6, k = 2.
    # S² = (Σr² − N(N+1)²/4)/(N−1) = (91 − 73.5)/5 = 3.5;  H = ((6² + 15²)/3 − 73.5)/3.5 = 13.5/3.5 = 27/7.
    # t = 3 / sqrt(3.5 · (5 − 27/7)/4 · (1/3 + 1/3)) = 3 / sqrt(2/3);  p = 2·P(T₄ > t).
    kw = kruskal_wallis([[1, 2, 3], [4, 5, 6]])
    assert kw.h == pytest.approx(27 / 7, rel=1e-12) and kw.s2 == pytest.approx(3.5)
    (pair,) = conover({"A": [1, 2, 3], "B": [4, 5, 6]})
    assert pair.t == pytest.approx(3 / math.sqrt(2 / 3), rel=1e-12)
    assert pair.df == 4
    assert pair.p == pytest.approx(2 * stats.t.sf(3 / math.sqrt(2 / 3), 4), rel=1e-12)
    assert pair.p_adjusted == pair.p  # one comparison: Holm changes nothing


def test_holm_hand_worked():
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max 0.02, 0.03, 0.06, 0.06
    assert adjust_p([0.01, 0.04, 0.03, 0.005], "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_p([0.01, 0.4], "bonferroni") == pytest.approx([0.02, 0.8])
    assert adjust_p([0.5, 0.9, 0.8], "holm") == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("adjust", ["none", "holm", "bonferroni"])
def test_conover_matches_scikit_posthocs(adjust):
    sp = pytest.importorskip("scikit_posthocs", reason="scikit-posthocs is the independent reference (pip install scikit-posthocs)")
    import pandas as pd

    rng = np.random.default_rng(7)
    groups = {"ref": np.round(rng.normal(92, 6, 24)).clip(0, 100), "a": np.round(rng.normal(72, 12, 24)),
              "b": np.round(rng.normal(70, 12, 20)), "anchor": np.round(rng.normal(25, 10, 24)).clip(0, 100)}
    frame = pd.DataFrame([(k, v) for k, values in groups.items() for v in values], columns=["condition", "rating"])
    reference = sp.posthoc_conover(frame, val_col="rating", group_col="condition",
                                   p_adjust=None if adjust == "none" else adjust)
    for pair in conover(groups, adjust=adjust):
        assert pair.p_adjusted == pytest.approx(reference.loc[pair.a, pair.b], rel=1e-9, abs=1e-300), (pair.a, pair.b)


def synthetic_ratings(seed=0, listeners=12, trials=4):
    """Known structure: reference ≈ 95, two models from one distribution ≈ 75, a worse model ≈ 55, anchor ≈ 20."""
    rng = np.random.default_rng(seed)
    means = {"reference": 95, "map": 75, "map_twin": 75, "preset": 55, "anchor35": 20}
    rows = []
    for listener in range(listeners):
        for trial in range(trials):
            for condition, mu in means.items():
                score = float(np.clip(np.round(rng.normal(mu, 7)), 0, 100))
                rows.append((f"L{listener}", f"trial{trial + 1:02d}", condition, score))
    return rows


def test_analyse_cli_on_synthetic_webmushra_ratings(tmp_path):
    rows = synthetic_ratings()
    path = tmp_path / "mushra.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["session_test_id", "session_uuid", "trial_id", "rating_stimulus", "rating_score", "rating_time",
                         "rating_comment"])
        for listener, trial, condition, score in rows:
            writer.writerow(["dynamatch", listener, trial, condition, f"{score:g}", "1234", ""])
    result = run("--format", "plain", "listening-test", "--analyse", path, "-o", tmp_path / "stats")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "stats" / "analysis.json").read_text())
    assert document["format"] == "dynamatch.listening_analysis" and document["listeners"] == 12
    groups = {}
    for _, _, condition, score in rows:
        groups.setdefault(condition, []).append(score)
    reference = stats.kruskal(*groups.values())
    assert document["kruskal_wallis"]["h"] == pytest.approx(reference.statistic, rel=1e-12)
    assert document["kruskal_wallis"]["p"] < 1e-20
    medians = {c["condition"]: c["median"] for c in document["conditions"]}
    for condition, values in groups.items():
        assert medians[condition] == np.median(values)
    assert [c["condition"] for c in document["conditions"]][0] == "reference"
    assert [c["condition"] for c in document["conditions"]][-1] == "anchor35"
    significant = {frozenset((p["a"], p["b"])): p["significant"] for p in document["conover"]}
    assert len(significant) == 10
    assert significant.pop(frozenset(("map", "map_twin"))) is False  # same distribution: no difference found
    assert all(significant.values())  # every other pair differs by ≥ 20 points with σ = 7
    assert (tmp_path / "stats" / "ratings.png").read_bytes()[:4] == b"\x89PNG"
    assert "Kruskal" in result.output and "map_twin" in result.output
    with open(tmp_path / "stats" / "conover.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 10


def test_post_screening_drops_listeners_who_miss_the_hidden_reference():
    rows = synthetic_ratings(seed=4, listeners=6, trials=10)
    ratings = []
    for listener, trial, condition, score in rows:
        if condition == "reference":
            score = max(score, 90.0)  # everyone finds the hidden reference …
            if (listener == "L2" and trial in ("trial01", "trial02")) or (listener == "L3" and trial == "trial01"):
                score = 60.0  # … except L2 in 2 of 10 trials (20 % > 15 %: excluded) and L3 in 1 of 10 (kept)
        ratings.append(Rating(condition, score, trial, listener))
    analysis = analyse_ratings(ratings, screen=True)
    assert analysis.excluded_listeners == ("L2",) and analysis.listeners == 5
    assert analyse_ratings(ratings).listeners == 6
    medians = {(t, c): m for t, c, m in analysis.trial_medians}
    kept = [r.score for r in ratings if r.listener != "L2" and r.trial == "trial03" and r.condition == "map"]
    assert medians[("trial03", "map")] == np.median(kept)


def test_plain_ratings_layout_and_analysis_api():
    ratings = [Rating(c, s, t, l) for l, t, c, s in synthetic_ratings(seed=3, listeners=5, trials=2)]
    analysis = analyse_ratings(ratings, adjust="bonferroni")
    assert analysis.trials == 2 and analysis.adjust == "bonferroni"
    assert {c.condition for c in analysis.conditions} == {"reference", "map", "map_twin", "preset", "anchor35"}


@pytest.mark.parametrize("content,needle", [
    ("condition,rating\nmap,abc\n", "not a number"),
    ("condition,rating\nmap,150\n", "outside 0–100"),
    ("condition,rating\nmap,50,extra\n", "fields"),
    ("who,what\nx,y\n", "unknown ratings layout"),
    ("condition,rating\nmap,50\nmap,60\n", "at least two"),
    ("condition,rating\na,50\nb,50\n", "nothing to test"),
])
def test_bad_ratings_give_one_line_and_exit_2(tmp_path, content, needle):
    path = tmp_path / "results.csv"
    path.write_text(content)
    assert needle in one_error_line(run("listening-test", "--analyse", path))


def test_missing_ratings_file(tmp_path):
    assert "no such ratings file" in one_error_line(run("listening-test", "--analyse", tmp_path / "nope.csv"))


# -- the kit --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    generate_signaltrain_like(root / "data", duration_seconds=10.0, peak_reductions=(50.0, 80.0), modes=("compress", "limit"))
    result = run("evaluate", root / "data", "--model", "preset:la2a", "-o", root / "eval", "--metrics", "esr")
    assert result.exit_code == 0, result.output
    save_compressor(root / "fixed.json", Compressor(threshold_db=-20, ratio=4, attack_ms=5, release_ms=100, makeup_db=0))
    return root


def test_kit_is_loudness_matched_with_reference_anchor_and_models(evaluation, tmp_path):
    pyloudnorm = pytest.importorskip("pyloudnorm", reason="loudness matching needs pyloudnorm")
    kit = tmp_path / "kit"
    result = run("listening-test", evaluation / "eval", "-o", kit, "--dataset", evaluation / "data",
                 "--model", "la2a=preset:la2a", "--model", f"fixed={evaluation / 'fixed.json'}", "--dry",
                 "--excerpt-seconds", 3, "--max-trials", 4, "--loudness-lufs", -26)
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((kit / "configs" / "dynamatch.yaml").read_text())
    assert config["testId"] == "dynamatch" and config["pages"][0]["type"] == "generic"
    random_block = config["pages"][1]
    assert random_block[0] == "random"
    pages = random_block[1:]
    assert len(pages) == 4 and all(p["type"] == "mushra" for p in pages)
    assert config["pages"][-1]["type"] == "finish" and config["pages"][-1]["writeResults"] is True
    kit_document = json.loads((kit / "kit.json").read_text())
    target = kit_document["loudness_lufs"]
    assert target <= -26.0
    stimuli = list(csv.DictReader(open(kit / "stimuli.csv")))
    assert len(stimuli) == 4 * 5
    meter = None
    for page in pages:
        assert set(page["stimuli"]) == {"la2a", "fixed", "anchor35", "dry"}  # webMUSHRA adds the hidden reference
        assert page["randomize"] is True and page["showConditionNames"] is False
        files = {"reference": page["reference"], **page["stimuli"]}
        audio = {}
        for condition, relative in files.items():
            x, rate = sf.read(kit / relative)
            assert sf.info(kit / relative).subtype == "PCM_16" and x.ndim == 1 and x.size == 3 * rate
            audio[condition] = x
            meter = meter or pyloudnorm.Meter(rate)
            assert meter.integrated_loudness(x) == pytest.approx(target, abs=0.05), (page["id"], condition)
            assert np.max(np.abs(x)) <= 10 ** (-1 / 20) + 1e-4
        # the anchor is the reference low-passed at 3.5 kHz: almost no energy above 5 kHz
        spectrum = {c: np.abs(np.fft.rfft(audio[c])) ** 2 for c in ("reference", "anchor35")}
        freqs = np.fft.rfftfreq(audio["reference"].size, 1 / rate)
        high = {c: s[freqs > 5000].sum() / s.sum() for c, s in spectrum.items()}
        assert high["anchor35"] < 1e-4 < high["reference"]
        for condition in ("la2a", "fixed", "dry"):
            assert not np.allclose(audio[condition], audio["reference"], atol=1e-3)
    # the reference is the dataset's target at the recorded start (up to the loudness gain and 16-bit rounding)
    row = next(r for r in stimuli if r["condition"] == "reference")
    from dynamatch.data.datasets import open_dataset

    ds = open_dataset(evaluation / "data")
    pair = next(p for p in ds.pairs() if p.name == row["pair"])
    _, wet = ds.read(pair, start_seconds=float(row["start_seconds"]), duration_seconds=3.0)
    written, _ = sf.read(kit / row["file"])
    middle = slice(rate // 10, -rate // 10)  # outside the 20 ms fades
    gain = 10 ** (float(row["gain_db"]) / 20)
    assert np.max(np.abs(written[middle] - gain * wet[middle])) < 1e-3


def test_kit_bad_input_gives_one_line(evaluation, tmp_path):
    assert "not found" in one_error_line(run("listening-test", tmp_path / "nope", "-o", tmp_path / "k"))
    (tmp_path / "empty").mkdir()
    assert "unknown layout" in one_error_line(run("listening-test", tmp_path / "empty", "-o", tmp_path / "k",
                                                  "--model", "preset:la2a", "--dataset", evaluation / "data"))
    bare = tmp_path / "bare-eval"  # an evaluation folder without its evaluation.json record
    bare.mkdir()
    (bare / "scores.csv").write_bytes((evaluation / "eval" / "scores.csv").read_bytes())
    assert "--dataset" in one_error_line(run("listening-test", bare, "-o", tmp_path / "k", "--model", "preset:la2a"))
    assert "--model" in one_error_line(run("listening-test", bare, "-o", tmp_path / "k", "--dataset", evaluation / "data"))
    assert "no such model file" in one_error_line(run("listening-test", evaluation / "eval", "-o", tmp_path / "k",
                                                      "--dataset", evaluation / "data", "--model", tmp_path / "x.json"))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "scores.csv").write_text("model,mode,peak_reduction,pair,esr\nm,compress,oops,138_3c_compress_50,0.1\n")
    assert "corrupt" in one_error_line(run("listening-test", corrupt, "-o", tmp_path / "k", "--model", "preset:la2a",
                                           "--dataset", evaluation / "data"))
    assert not (tmp_path / "k").exists()


def test_kit_defaults_to_what_the_evaluation_recorded(evaluation, tmp_path):
    pytest.importorskip("pyloudnorm", reason="loudness matching needs pyloudnorm")
    record = json.loads((evaluation / "eval" / "evaluation.json").read_text())
    assert record["models"] == [{"label": "preset:la2a", "source": "preset:la2a"}]
    result = run("listening-test", evaluation / "eval", "-o", tmp_path / "kit", "--excerpt-seconds", 2, "--max-trials", 1,
                 "--no-anchor")
    assert result.exit_code == 0, result.output
    kit = json.loads((tmp_path / "kit" / "kit.json").read_text())
    assert kit["dataset"] == record["dataset"] and kit["conditions"] == ["reference", "preset_la2a"]


def neural_forward(model, x, mode, peak_reduction):
    """Whole-signal forward pass in eval mode (the reference the block-wise rendering must equal)."""
    import torch

    cond = torch.tensor([[1.0 if mode == "limit" else 0.0, peak_reduction / 100.0]], dtype=torch.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float32)).view(1, 1, -1), cond)[0, 0].double().numpy()


def test_kit_renders_neural_models(evaluation, tmp_path):
    torch = pytest.importorskip("torch", reason="neural models need the [nn] extra")
    pytest.importorskip("pyloudnorm", reason="loudness matching needs pyloudnorm")
    from dynamatch.data.datasets import open_dataset
    from dynamatch.neural.registry import build_model, save_model

    torch.manual_seed(0)
    model = build_model("lstm-32").eval()
    path = save_model(model, tmp_path / "nn" / "model.json")
    result = run("listening-test", evaluation / "eval", "-o", tmp_path / "kit", "--model", f"lstm={path}",
                 "--excerpt-seconds", 2, "--max-trials", 1, "--no-anchor")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "kit" / "stimuli.csv")))
    row = next(r for r in rows if r["condition"] == "lstm")
    ds = open_dataset(evaluation / "data")
    pair = next(p for p in ds.pairs() if p.name == row["pair"])
    start = float(row["start_seconds"])
    dry, _ = ds.read(pair, start_seconds=start - 2.0, duration_seconds=4.0)  # rendered from 2 s before the excerpt
    expected = neural_forward(model, dry, pair.mode, pair.peak_reduction)[2 * ds.sample_rate:]
    written, rate = sf.read(tmp_path / "kit" / row["file"])
    middle = slice(rate // 10, -rate // 10)  # outside the 20 ms fades
    gain = 10 ** (float(row["gain_db"]) / 20)
    assert np.max(np.abs(written[middle] - gain * expected[middle])) < 1e-3 * max(1.0, gain)


def test_kit_without_torch_refuses_neural_models_in_one_line(evaluation, tmp_path, monkeypatch):
    import sys

    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format": "dynamatch.neural", "format_version": 1, "config": {"name": "lstm-32"}}))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError, as without the extra
    line = one_error_line(run("listening-test", evaluation / "eval", "-o", tmp_path / "kit", "--model", path))
    assert str(path) in line and "pip install 'dynamatch[nn]'" in line


def test_report_shows_kit_players_and_analysis(evaluation, tmp_path):
    kit = tmp_path / "kit"
    result = run("listening-test", evaluation / "eval", "-o", kit, "--dataset", evaluation / "data",
                 "--model", "preset:la2a", "--excerpt-seconds", 2, "--max-trials", 2)
    assert result.exit_code == 0, result.output
    ratings = tmp_path / "results.csv"
    with open(ratings, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["listener", "trial", "condition", "rating"])
        writer.writerows(synthetic_ratings(seed=5, listeners=4, trials=2))
    assert run("listening-test", "--analyse", ratings, "-o", tmp_path / "stats").exit_code == 0
    result = run("report", kit, tmp_path / "stats", "-o", tmp_path / "r.html", "--audio-seconds", 1)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r.html").read_text()
    assert text.count("<audio") == 2 * 3  # 2 trials × (reference, la2a, anchor35)
    analysis = json.loads((tmp_path / "stats" / "analysis.json").read_text())
    assert f"H = {analysis['kruskal_wallis']['h']:.4g}" in text
    for condition in analysis["conditions"]:
        assert f">{condition['median']:.4g}<" in text
    assert "ratings.png" in text


def test_rewriting_a_kit_removes_the_files_it_dropped(evaluation, tmp_path):
    kit = tmp_path / "kit"
    common = ("-o", kit, "--dataset", evaluation / "data", "--model", "preset:la2a", "--excerpt-seconds", 2)
    assert run("listening-test", evaluation / "eval", *common, "--max-trials", 3).exit_code == 0
    assert len(list(kit.rglob("*.wav"))) == 3 * 3
    (kit / "notes.wav").write_bytes(b"mine")  # not the kit's: kept
    assert run("listening-test", evaluation / "eval", *common, "--max-trials", 2, "--no-anchor").exit_code == 0
    written = sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*.wav"))
    listed = sorted(row["file"] for row in csv.DictReader(open(kit / "stimuli.csv")))
    assert written == sorted(listed + ["notes.wav"]) and len(listed) == 2 * 2
