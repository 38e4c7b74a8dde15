"""Every member of the grey-box family, checked automatically from its one description.

References: the member's equations run one sample at a time with plain floats (tests/naive.py, not the
generated kernels), scipy's lfilter for the pre-filter, central finite differences for the gradient and
Hessian, the hand-written FF-5 kernels of dynamatch 0.1 (recorded values) and the generator itself
(the checked-in kernels must be what it writes today).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skips import require_module
from naive import chunked_esr_model_naive, render_naive

from dynamatch import Compressor
from dynamatch.fitting import fit_arrays
from dynamatch.models.family import MODELS, model_spec
from dynamatch.optimize import minimize
from dynamatch.optimize.objective import CompressorObjective

SAMPLE_RATE = 44100
DATA = Path(__file__).parent / "data"
#: values of the parameters beyond FF-5's at which the derivatives are checked (away from neutral and bounds)
TEST_VALUES = {"knee_db": 5.0, "detector_ms": 8.0, "emphasis_db": 4.0, "emphasis_hz": 1500.0, "feedback": 0.4,
               "release_slow_ms": 2000.0, "slow_share": 0.4, "memory_ms": 800.0, "output_highpass_hz": 6.0}


def programme(seconds: float, seed: int = 0) -> np.ndarray:
    """Tone and noise under a wandering envelope with bursts (level steps for attack and release)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    envelope *= 0.6 / envelope.max()
    bursts = 1.0 + 2.0 * (np.sin(2 * np.pi * 3.0 * t) > 0.7)
    tone = np.sin(2 * np.pi * 220.0 * t) + 0.3 * np.sin(2 * np.pi * 1250.0 * t)
    return envelope * bursts * (0.7 * tone + 0.3 * rng.normal(size=n)) / 2.0


def member(model: str, **ff5) -> Compressor:
    values = {name: TEST_VALUES[name] for name in model_spec(model).parameter_names if name in TEST_VALUES}
    return Compressor(model=model, **(ff5 | values))


TRUTH = dict(threshold_db=-22.0, ratio=5.0, attack_ms=3.0, release_ms=90.0, makeup_db=3.0)
POINT = dict(threshold_db=-19.37, ratio=3.0, attack_ms=2.0, release_ms=80.0, makeup_db=2.5)


@pytest.fixture(scope="module")
def signals():
    dry = programme(0.5)
    return dry, np.random.default_rng(1).normal(size=dry.size)


def target(model: str, dry: np.ndarray) -> np.ndarray:
    wet = member(model, **TRUTH).process(dry, SAMPLE_RATE)
    return wet + 0.002 * np.random.default_rng(1).normal(size=dry.size)  # not reachable exactly


# -- the generator ---------------------------------------------------------------------------------
def test_checked_in_kernels_are_what_the_generator_writes():
    require_module("sympy")
    from dynamatch.codegen.files import generated_files

    stale = [str(path) for path, text in generated_files()
             if (path.is_file() if text is None else not path.is_file() or path.read_text() != text)]
    assert not stale, f"regenerate with `python -m dynamatch.codegen`: {stale}"


def test_no_generated_file_lacks_a_family_member():
    from dynamatch.codegen.files import HEADERS_DIR, KERNELS_DIR, TORCH_KERNELS_DIR, TORCHSCRIPT_DIR, orphaned_files

    members = {spec.module_name for spec in MODELS.values()}
    files = {p for folder in (KERNELS_DIR, HEADERS_DIR, TORCHSCRIPT_DIR, TORCH_KERNELS_DIR) for p in folder.iterdir()
             if p.suffix in (".py", ".hpp") and p.stem != "__init__"}
    assert {p for p in files if p.stem not in members} == set(orphaned_files()) == set(), \
        "run `python -m dynamatch.codegen`: it removes the generated files of removed members"


def test_unknown_model_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="choose one of ff5, ff5-knee"):
        Compressor(model="la3a")
    with pytest.raises(ValueError, match="has no parameter"):
        Compressor(model="ff5", knee_db=3.0)


def test_files_of_a_renamed_member_load_as_the_member_they_describe(tmp_path):
    """dynamatch 0.2 called ``ff5-slow`` "opto": its compressor and map files still mean ff5-slow."""
    from dynamatch.maps.parameter_map import ParameterMap
    from dynamatch.models.model_file import load_compressor, save_compressor

    old = {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 80.0, "release_slow_ms": 2000.0,
           "slow_share": 0.4, "memory_ms": 900.0, "makeup_db": 1.0}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "dynamatch.compressor", "format_version": 2, "model": "opto",
                                "parameters": old}))
    loaded = load_compressor(path)
    assert loaded.model == "ff5-slow" and loaded.to_dict() == old
    table = {"peak_reduction": [40.0, 80.0], **{k: [v, v] for k, v in old.items()}}
    map_path = tmp_path / "old_map.json"
    map_path.write_text(json.dumps({"format": "dynamatch.parameter_map", "format_version": 2, "model": "opto",
                                    "knob": "peak_reduction", "modes": {"compress": table}}))
    assert ParameterMap.load(map_path).compressor(60.0, "compress").model == "ff5-slow"
    # today's opto files are today's opto
    current = member("opto", **POINT)
    assert load_compressor(save_compressor(tmp_path / "new.json", current)).model == "opto"


# -- render against the per-sample reference ---------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_render_matches_the_per_sample_equations(model):
    x = programme(0.25, seed=2)
    stereo = np.stack([x, 0.7 * np.roll(x, 13)])
    comp = member(model, **POINT)
    for signal in (x, stereo):
        expected, expected_gain = render_naive(comp, signal, SAMPLE_RATE)
        makeup = 10.0 ** (comp.makeup_db / 20.0)
        np.testing.assert_allclose(comp.process(signal, SAMPLE_RATE), makeup * expected, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(comp.gain(signal, SAMPLE_RATE), expected_gain, rtol=1e-11)


@pytest.mark.parametrize("model", MODELS)
def test_streaming_is_block_size_invariant(model):
    x = np.stack([programme(0.2, seed=3), programme(0.2, seed=4)])
    comp = member(model, **POINT)
    whole = comp.process(x, SAMPLE_RATE)
    stream = comp.stream(SAMPLE_RATE, channels=2)
    sizes = [1, 32, 511, 4096]
    blocks, start, k = [], 0, 0
    while start < x.shape[1]:
        size = sizes[k % len(sizes)]
        blocks.append(stream.process(x[:, start:start + size]))
        start, k = start + size, k + 1
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole)


# -- the objective: loss against the reference, derivatives against finite differences --------------------
@pytest.mark.parametrize("model", MODELS)
def test_chunked_loss_matches_the_per_sample_reference(signals, model):
    dry, _ = signals
    wet = target(model, dry)
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, model=model, chunk_seconds=0.2, warmup_seconds=0.05)
    comp = member(model, **POINT)
    expected = chunked_esr_model_naive(dry, wet, comp, SAMPLE_RATE, objective.chunk_samples, objective.warmup_samples)
    q = objective.kernel_params(comp)
    for value in (objective.loss(q), objective.loss_grad(q)[0], objective.loss_grad_hess(q)[0]):
        assert value == pytest.approx(expected, rel=1e-10)


def _steps(objective, q):
    """Central-difference steps in kernel space: 1e-5 dB-like, 1e-6 shares, relative 1e-6 for ratios and
    coefficients but at least 1e-9 (relative steps drown the slow coefficients, α ≈ 2e-5, in round-off)."""
    steps = []
    for p, value in zip(objective.spec.parameters, q):
        steps.append(1e-5 if p.kind == "db" else (1e-6 if p.kind == "share" else 1e-6 * max(abs(value), 1e-3)))
    return np.array(steps)


@pytest.mark.parametrize("model", MODELS)
def test_gradient_and_hessian_match_central_differences(signals, model):
    dry, _ = signals
    objective = CompressorObjective(dry, target(model, dry), SAMPLE_RATE, model=model, chunk_seconds=0.2,
                                    warmup_seconds=0.05)
    check_derivatives(objective, objective.kernel_params(member(model, **POINT)))


def check_derivatives(objective: CompressorObjective, q: np.ndarray) -> None:
    """The objective's gradient and Hessian at ``q`` against central differences of its loss and gradient."""
    loss, grad, hess = objective.loss_grad_hess(q)
    assert (loss, *grad) == pytest.approx((objective.loss(q), *objective.loss_grad(q)[1]), rel=1e-12)
    np.testing.assert_array_equal(hess, hess.T)
    n = q.size
    grad_fd, hess_fd = np.empty(n), np.empty((n, n))
    for i, h in enumerate(_steps(objective, q)):
        e = np.zeros(n)
        e[i] = h
        grad_fd[i] = (objective.loss(q + e) - objective.loss(q - e)) / (2 * h)
        hess_fd[:, i] = (objective.loss_grad(q + e)[1] - objective.loss_grad(q - e)[1]) / (2 * h)
    scale_g = np.abs(grad) + 1e-3 * np.abs(grad).max()
    assert np.max(np.abs(grad - grad_fd) / scale_g) < 1e-6
    # each entry relative to the largest of its row or column (whichever is smaller): the finite
    # difference of a column carries round-off of the size of that column's largest entry
    magnitude = np.abs(hess)
    scale = np.minimum(magnitude.max(axis=1, keepdims=True), magnitude.max(axis=0, keepdims=True))
    error = np.abs(hess - hess_fd) / scale
    # H_ij has two independent estimates (differencing in i or in j): it must match the better one
    assert np.max(np.minimum(error, error.T)) < 1e-6
    assert np.max(error) < 1e-5


@pytest.mark.parametrize("model", MODELS)
def test_newton_recovers_the_parameters_of_targets_rendered_by_the_member(model):
    dry = programme(4.0, seed=5)
    truth = member(model, **TRUTH)
    wet = truth.process(dry, SAMPLE_RATE)
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, model=model)
    start = truth.with_params(threshold_db=-18.0, ratio=3.5, attack_ms=2.0, release_ms=130.0, makeup_db=1.0)
    result = minimize(objective, start, method="newton", max_iterations=80)
    assert result.success, result.message
    for name, value in truth.to_dict().items():
        assert result.params.to_dict()[name] == pytest.approx(value, rel=0.01, abs=1e-3), name


# -- nesting ------------------------------------------------------------------------------------------------
NESTED = [name for name, spec in MODELS.items() if spec.nested]


@pytest.mark.parametrize("model", NESTED)
def test_a_nested_member_at_its_neutral_values_renders_its_parent(model):
    parent = model_spec(model).parent
    x = np.stack([programme(0.3, seed=6), programme(0.3, seed=7)])
    comp = member(parent, **POINT)
    np.testing.assert_allclose(comp.as_model(model).process(x, SAMPLE_RATE), comp.process(x, SAMPLE_RATE),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("model", ["ff5-knee", "ff5-slow", "ff5-hp", "ff5-slow-hp"])
def test_a_nested_fit_never_ends_worse_than_its_parent(model):
    dry = programme(3.0, seed=8)
    wet = Compressor(model="ff5-slow-hp", threshold_db=-24.0, ratio=6.0, attack_ms=8.0, release_ms=70.0,
                     release_slow_ms=1500.0, slow_share=0.6, memory_ms=600.0, output_highpass_hz=5.0).process(dry, SAMPLE_RATE)
    wet = wet + 0.003 * np.random.default_rng(9).normal(size=wet.size)
    parent = fit_arrays(dry, wet, SAMPLE_RATE, model=model_spec(model).parent)
    child = fit_arrays(dry, wet, SAMPLE_RATE, model=model)
    assert child.loss <= parent.loss * (1.0 + 1e-9)


# -- FF-5 is the model of dynamatch 0.1 --------------------------------------------------------------------
def golden_signal():
    """The signal the v0.1 values were recorded on (tests/data/ff5_objective_v0.1.json)."""
    rng = np.random.default_rng(20261202)
    n = int(2.5 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = 0.05 + 0.5 * (np.sin(2 * np.pi * 0.7 * t) > 0.3) + 0.2 * np.abs(np.sin(2 * np.pi * 3.1 * t))
    x = envelope * (0.6 * np.sin(2 * np.pi * 220 * t) + 0.4 * rng.standard_normal(n))
    y = Compressor(-22.0, 5.0, 3.0, 90.0, 3.0).process(x, SAMPLE_RATE) + 1e-3 * rng.standard_normal(n)
    return x, y


def test_ff5_objective_is_unchanged_from_the_hand_written_kernels_of_v0_1():
    x, y = golden_signal()
    records = json.loads((DATA / "ff5_objective_v0.1.json").read_text())["records"]
    for r in records:
        objective = CompressorObjective(x, y, SAMPLE_RATE, chunk_seconds=r["chunk_seconds"],
                                        warmup_seconds=r["warmup_seconds"], prefilter=r["prefilter"])
        loss, grad, hess = objective.loss_grad_hess(np.array(r["kernel_params"]))
        assert loss == pytest.approx(r["loss"], rel=1e-11)
        np.testing.assert_allclose(grad, r["gradient"], rtol=1e-9, atol=1e-11 * np.abs(r["gradient"]).max())
        np.testing.assert_allclose(hess, r["hessian"], rtol=1e-9, atol=1e-11 * np.abs(r["hessian"]).max())
