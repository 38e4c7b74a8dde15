"""The fit pipeline's paths: coarse-to-fine (the default for every long capture), bounds, and the CLI's
--warm-start and --method."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from dynamatch import Compressor
from dynamatch import fitting
from dynamatch.cli import main
from dynamatch.optimize import Bounds

SAMPLE_RATE = 8000
TRUE = Compressor(threshold_db=-22.0, ratio=4.0, attack_ms=5.0, release_ms=120.0, makeup_db=1.0)
SETTINGS = dict(chunk_seconds=4.0, warmup_seconds=0.5)


def programme(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise whose level jumps every 0.5 s over 30 dB: attack and release all the way through."""
    rng = np.random.default_rng(seed)
    levels = np.repeat(10 ** (rng.uniform(-35, -3, int(2 * seconds)) / 20), SAMPLE_RATE // 2)
    return rng.standard_normal(levels.size) * levels


@pytest.fixture(scope="module")
def long_pair():
    x = programme(60.0)
    return x, TRUE.process(x, SAMPLE_RATE)


def test_coarse_to_fine_counts_both_passes_and_finds_the_single_pass_optimum(long_pair, monkeypatch):
    """After a coarse-to-fine fit, nit and history covered only the fine pass while the time covered both."""
    x, y = long_pair
    monkeypatch.setattr(fitting, "COARSE_MIN_SECONDS", 30.0)  # the 60-s pair now takes the default long path
    stages = []
    result = fitting.fit_arrays(x, y, SAMPLE_RATE, on_stage=stages.append, **SETTINGS)
    assert stages == ["ff5 on excerpts", "ff5: refining on the whole signal"]
    coarse, fine = (int(v) for v in re.search(r"(\d+) iterations on 12 s of excerpts, then (\d+) on the whole",
                                              result.message).groups())
    assert coarse >= 3 and result.nit == coarse + fine
    assert [h.iteration for h in result.history] == list(range(result.nit + 1))
    times = [h.elapsed_seconds for h in result.history]
    assert times == sorted(times) and times[-1] <= result.elapsed_seconds
    assert result.history[-1].loss == pytest.approx(result.loss, rel=1e-12)
    single = fitting.fit_arrays(x, y, SAMPLE_RATE, coarse=False, **SETTINGS)
    assert "excerpts" not in single.message
    assert result.loss == pytest.approx(single.loss, rel=1e-4, abs=1e-9)
    np.testing.assert_allclose(result.params.to_vector(), single.params.to_vector(), rtol=1e-3)
    np.testing.assert_allclose(result.params.to_vector(), TRUE.to_vector(), rtol=1e-3)


def test_bounds_none_means_unbounded_in_fit_arrays_as_in_the_optimisers(monkeypatch):
    """`bounds=None` meant "default bounds" in fit_arrays but "unbounded" in the optimisers."""
    x = programme(20.0, seed=1)
    target = TRUE.with_params(ratio=40.0)  # beyond the default ratio range (1 … 20)
    y = target.process(x, SAMPLE_RATE)
    wide = fitting.fit_arrays(x, y, SAMPLE_RATE, bounds=Bounds(ratio=(1.0, 60.0)), **SETTINGS)
    default = fitting.fit_arrays(x, y, SAMPLE_RATE, **SETTINGS)
    narrow = fitting.fit_arrays(x, y, SAMPLE_RATE, bounds=Bounds(ratio=(1.0, 3.0)), **SETTINGS)
    assert wide.params.ratio == pytest.approx(40.0, rel=1e-3)
    assert default.params.ratio <= 20.0 + 1e-9 and narrow.params.ratio <= 3.0 + 1e-9
    assert wide.loss < default.loss < narrow.loss
    given = []
    real_minimize = fitting.minimize
    monkeypatch.setattr(fitting, "minimize", lambda *a, **k: given.append(k["bounds"]) or real_minimize(*a, **k))
    fitting.fit_arrays(x, y, SAMPLE_RATE, bounds=None, max_iterations=0, **SETTINGS)
    fitting.fit_arrays(x, y, SAMPLE_RATE, max_iterations=0, **SETTINGS)
    assert given[0] is None and isinstance(given[1], Bounds)  # None reaches the optimiser as None: unbounded


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    x = programme(20.0, seed=2)
    sf.write(folder / "dry.wav", x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(folder / "wet.wav", TRUE.process(x, SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    return folder / "dry.wav", folder / "wet.wav"


def fit_cli(files, output, *extra):
    result = run("fit", *files, "-o", output, "--no-plot", "--no-align", "--ignore-checks", "--chunk-seconds", 4,
                 "--warmup-seconds", 0.5, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text())


def test_warm_start_through_the_cli_starts_at_the_given_model(files, tmp_path):
    first = fit_cli(files, tmp_path / "first.json")
    assert first["fit"]["iterations"] >= 3
    warm = fit_cli(files, tmp_path / "warm.json", "--warm-start", tmp_path / "first.json")
    assert warm["fit"]["iterations"] <= 1  # started at the optimum: nothing left to do
    for name, value in first["parameters"].items():
        assert warm["parameters"][name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    # an off start is taken too: from a compressor far away it takes iterations again
    off = TRUE.with_params(threshold_db=-40.0, ratio=1.5, attack_ms=40.0)
    from dynamatch.models.model_file import save_compressor

    save_compressor(tmp_path / "off.json", off)
    again = fit_cli(files, tmp_path / "again.json", "--warm-start", tmp_path / "off.json")
    assert again["fit"]["iterations"] >= 3


@pytest.mark.parametrize("method", ["lm", "adam"])
def test_each_method_through_the_cli(files, tmp_path, method):
    from dynamatch.metrics import esr

    document = fit_cli(files, tmp_path / f"{method}.json", "--method", method)
    assert document["fit"]["method"] == method
    fitted = Compressor(**document["parameters"])
    if method == "lm":  # second order like Newton: the true parameters
        np.testing.assert_allclose(fitted.to_vector(), TRUE.to_vector(), rtol=1e-3)
        return
    # Adam (first order) stops at its iteration limit: better than its start, not better than the truth
    x, _ = sf.read(files[0])
    y, _ = sf.read(files[1])
    start = esr(fitting.DEFAULT_START.process(x, SAMPLE_RATE), y)
    assert 0.0 < document["fit"]["esr"] < 0.5 * start
    assert esr(fitted.process(x, SAMPLE_RATE), y) > esr(TRUE.process(x, SAMPLE_RATE), y)


def test_distinct_starts_keeps_one_start_per_basin_of_equal_loss():
    """opto's candidate starts at slow share 0 differ only in the slow stage's times, which the loss does not
    see there: they tie, and only the lowest of each group of equal loss is optimised."""
    from dynamatch.optimize import CompressorObjective

    x = programme(6.0, seed=3)
    objective = CompressorObjective(x, TRUE.process(x, SAMPLE_RATE), SAMPLE_RATE, **SETTINGS).with_model("opto")
    candidates = fitting.extension_starts(TRUE.as_model("opto"), TRUE.parameter_names)
    losses = np.array([objective.esr(c) for c in candidates])
    groups = []  # independent grouping: sort, then split where neighbours differ by more than 1e-12 relative
    for f in np.sort(losses):
        if not groups or abs(f - groups[-1]) > 1e-12 * abs(groups[-1]):
            groups.append(f)
    assert len(groups) < len(candidates)  # the ties are real
    chosen = fitting.distinct_starts(candidates, objective.esr, 3)
    np.testing.assert_allclose([objective.esr(c) for c in chosen], groups[:3], rtol=1e-12)


@pytest.fixture(scope="module")
def opto_pair():
    from dynamatch.models.opto import OptoLevellingAmplifier

    x = programme(120.0, seed=5)
    return x, OptoLevellingAmplifier(peak_reduction=65.0, mode="compress").process(x, SAMPLE_RATE)


def test_abandoned_attempts_and_screened_ranking_end_in_the_basin_all_attempts_find(opto_pair, monkeypatch):
    """The starts ranked and optimised on a quarter of the excerpts, an attempt abandoned once loss - 2 x
    decrement is above the best finished attempt's loss, the best then optimised on all the excerpts: the fit
    ends where optimising every start in full on all of the excerpts (ranked there too) ends."""
    x, y = opto_pair
    monkeypatch.setattr(fitting, "COARSE_MIN_SECONDS", 30.0)
    cut = fitting.coarse_excerpts  # 4-s excerpts: 4 of them for the coarse pass, 1 to screen and run the attempts on
    monkeypatch.setattr(fitting, "coarse_excerpts", lambda d, w, sr, fraction=fitting.COARSE_FRACTION:
                        cut(d, w, sr, fraction, excerpt_seconds=4.0))
    outcomes = []
    original = fitting.minimize

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        outcomes.append(result.status.name)
        return result

    monkeypatch.setattr(fitting, "minimize", recording)
    stages = []
    fast = fitting.fit_arrays(x, y, SAMPLE_RATE, model="opto", on_stage=stages.append, **SETTINGS)
    assert "opto: start 1/3 on screening excerpts" in stages and "opto: best start on excerpts" in stages
    fast_outcomes, outcomes[:] = list(outcomes), []
    monkeypatch.setattr(fitting, "_dropping", lambda callback, beat: callback)  # every attempt runs to its end
    monkeypatch.setattr(fitting, "SCREEN_FRACTION", fitting.COARSE_FRACTION)  # rank on all the excerpts
    full = fitting.fit_arrays(x, y, SAMPLE_RATE, model="opto", **SETTINGS)
    assert "CALLBACK_STOP" not in outcomes
    assert fast.loss == pytest.approx(full.loss, rel=1e-6)
    np.testing.assert_allclose(fast.params.to_vector(), full.params.to_vector(), rtol=1e-3, atol=1e-6)
    assert len(fast_outcomes) == len(outcomes) + 1  # + the best screened start's pass on the excerpts


def test_speculative_hessian_pass_takes_the_same_iterates_with_fewer_evaluations():
    """After a full step Newton evaluates the Hessian pass at the next full step directly; with speculate=False
    it tests that step with a loss-only pass first: the same iterates, losses and step sizes."""
    from dynamatch.optimize import CompressorObjective, minimize

    x = programme(20.0, seed=7)
    objective = CompressorObjective(x, TRUE.process(x, SAMPLE_RATE), SAMPLE_RATE, **SETTINGS)
    start = Compressor(threshold_db=-30.0, ratio=2.0, attack_ms=2.0, release_ms=300.0, makeup_db=0.0)
    fast = minimize(objective, start, decrement_tolerance=1e-12)
    plain = minimize(objective, start, decrement_tolerance=1e-12, speculate=False)
    assert fast.status == plain.status and fast.nit == plain.nit >= 4
    np.testing.assert_allclose([h.loss for h in fast.history], [h.loss for h in plain.history], rtol=1e-9)
    np.testing.assert_allclose([h.step_size for h in fast.history], [h.step_size for h in plain.history], rtol=1e-9)
    np.testing.assert_allclose(fast.x, plain.x, rtol=1e-9)
    assert fast.nfev < plain.nfev
