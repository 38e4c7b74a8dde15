"""The torch parallel-scan backend against the numba kernels (float64, rtol 1e-9) and a sequential loop;
every family member, ``opto``/``opto-hp`` (coupled states: matrix scan) included."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skips import require_module

torch = require_module("torch")

from test_kernels_objective import SAMPLE_RATE, programme  # noqa: E402

from dynamatch import Compressor  # noqa: E402
from dynamatch.errors import ParameterError  # noqa: E402
from dynamatch.models.family import MODELS  # noqa: E402
from dynamatch.kernels.torch_family import TORCH_MEMBERS  # noqa: E402
from dynamatch.kernels.torch_scan import ff5_branches, linear_scan, matrix_scan  # noqa: E402
from dynamatch.optimize.objective import CompressorObjective  # noqa: E402
from dynamatch.optimize.torch_backend import TorchCompressorObjective  # noqa: E402


def _sequential(a, b):
    y = np.zeros_like(b)
    previous = np.zeros(b.shape[:-1])
    for n in range(b.shape[-1]):
        previous = a[..., n] * previous + b[..., n]
        y[..., n] = previous
    return y


@pytest.mark.parametrize("length", [1, 7, 16, 17, 300, 4099])
@pytest.mark.parametrize("block", [2, 5, 16])
def test_linear_scan_matches_sequential_loop(length, block):
    rng = np.random.default_rng(length)
    a = rng.uniform(0.0, 1.0, (3, length))
    b = rng.normal(size=(3, length))
    y = linear_scan(torch.tensor(a), torch.tensor(b), block).numpy()
    np.testing.assert_allclose(y, _sequential(a, b), rtol=1e-12, atol=1e-12)


def test_linear_scan_is_stable_on_long_slow_recursions():
    n = 200_000
    a = np.full(n, 1.0 - 1e-5)  # a slow pole: products over the signal underflow no further than the loop's
    b = np.random.default_rng(0).normal(size=n)
    y = linear_scan(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(y, _sequential(a[None], b[None])[0], rtol=1e-9, atol=1e-9)


def _sequential_matrix(a, b):
    y = np.zeros(b.shape[:-3] + b.shape[-2:])
    out = np.zeros_like(b)
    for n in range(b.shape[-3]):
        y = a[..., n, :, :] @ y + b[..., n, :, :]
        out[..., n, :, :] = y
    return out


@pytest.mark.parametrize("length", [1, 2, 16, 17, 300, 4099])
@pytest.mark.parametrize("block", [2, 5, 16])
def test_matrix_scan_matches_sequential_loop(length, block):
    rng = np.random.default_rng(length + block)
    a = rng.uniform(-0.4, 0.4, (3, length, 4, 4))
    b = rng.normal(size=(3, length, 4, 6))
    products = []
    y = matrix_scan(torch.tensor(a), torch.tensor(b), block, products).numpy()
    expected = _sequential_matrix(a, b)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    again = matrix_scan(torch.tensor(a), torch.tensor(-2.0 * b[..., :3]), block, products).numpy()  # kept products
    np.testing.assert_allclose(again, -2.0 * expected[..., :3], rtol=1e-12, atol=1e-12)


def test_matrix_scan_is_stable_on_long_slow_coupled_recursions():
    n = 60_000
    rng = np.random.default_rng(3)
    rotation = np.array([[np.cos(1e-3), -np.sin(1e-3)], [np.sin(1e-3), np.cos(1e-3)]])
    a = np.broadcast_to((1.0 - 1e-5) * rotation, (n, 2, 2)).copy()  # slow, oscillating: nothing decays fast
    a[:, 0, 1] += rng.uniform(-1e-4, 1e-4, n)
    b = rng.normal(size=(n, 2, 3))
    y = matrix_scan(torch.tensor(a), torch.tensor(b)).numpy()
    expected = _sequential_matrix(a, b)
    np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_strongly_connected_groups_come_after_what_they_read():
    require_module("sympy")
    from dynamatch.codegen.torch_module import _strongly_connected

    reads = {0: {0, 1}, 1: {0}, 2: {2, 0}, 3: {3, 4}, 4: {3, 2}, 5: set()}
    assert _strongly_connected(reads) == [[0, 1], [2], [3, 4], [5]]


def test_branch_fixed_point_is_the_sequential_gain():
    x = programme(0.3)
    compressor = Compressor(threshold_db=-26.0, ratio=6.0, attack_ms=1.0, release_ms=50.0)
    q = compressor.kernel_vector(SAMPLE_RATE)
    level = torch.tensor(np.log(np.maximum(np.abs(x), 1e-10)))
    over = level - np.log(10) / 20 * q[0]
    target = torch.where(over > 0, torch.exp(-(1 - 1 / q[1]) * over), torch.ones_like(over))
    gain, _, passes = ff5_branches(target, q[2], q[3])
    reference = compressor.process(x, SAMPLE_RATE) / x
    finite = np.abs(x) > 1e-6
    np.testing.assert_allclose(gain.numpy()[finite], reference[finite], rtol=1e-10)
    assert passes >= 2  # the first guess is not the answer: the iteration did work


@pytest.fixture(scope="module")
def pair():
    dry = programme(1.3, seed=3)
    wet = Compressor(threshold_db=-24.0, ratio=5.0, attack_ms=4.0, release_ms=120.0, makeup_db=4.0).process(
        dry, SAMPLE_RATE)
    return dry, wet + 0.002 * np.random.default_rng(1).normal(size=dry.size)


POINTS = [
    dict(threshold_db=-20.3, ratio=3.0, attack_ms=2.0, release_ms=80.0, makeup_db=2.5),
    dict(threshold_db=-30.1, ratio=12.0, attack_ms=0.3, release_ms=600.0, makeup_db=6.0),
    dict(threshold_db=-24.0, ratio=5.0, attack_ms=4.0, release_ms=120.0, makeup_db=4.0),  # the optimum
]


@pytest.mark.parametrize("chunking", [(12.0, 1.0, 4), (0.4, 0.1, 1), (0.4, 0.1, 3), (0.25, 0.05, 2)])
@pytest.mark.parametrize("params", POINTS)
def test_loss_gradient_hessian_match_numba(pair, chunking, params):
    dry, wet = pair
    chunk_seconds, warmup_seconds, batch_chunks = chunking
    numba_objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=chunk_seconds,
                                          warmup_seconds=warmup_seconds)
    torch_objective = TorchCompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=chunk_seconds,
                                               warmup_seconds=warmup_seconds, batch_chunks=batch_chunks)
    q = Compressor(**params).kernel_vector(SAMPLE_RATE)
    expected = numba_objective.loss_grad_hess(q)
    for _ in range(2):  # cold, then warm-started branches
        loss, grad, hess = torch_objective.loss_grad_hess(q)
        assert loss == pytest.approx(expected[0], rel=1e-9)
        np.testing.assert_allclose(grad, expected[1], rtol=1e-9, atol=1e-12 * np.abs(expected[1]).max())
        np.testing.assert_allclose(hess, expected[2], rtol=1e-9, atol=1e-12 * np.abs(expected[2]).max())
    assert torch_objective.passes == 1  # warm start: the branches were already right
    assert torch_objective.loss(q) == pytest.approx(expected[0], rel=1e-9)
    np.testing.assert_allclose(torch_objective.loss_grad(q)[1], expected[1], rtol=1e-9)


def test_float32_is_close_but_not_exact(pair):
    dry, wet = pair
    q = Compressor(**POINTS[0]).kernel_vector(SAMPLE_RATE)
    exact = CompressorObjective(dry, wet, SAMPLE_RATE).loss_grad_hess(q)
    single = TorchCompressorObjective(dry, wet, SAMPLE_RATE, dtype="float32").loss_grad_hess(q)
    assert single[0] == pytest.approx(exact[0], rel=1e-3)
    np.testing.assert_allclose(single[1], exact[1], rtol=1e-2, atol=1e-3 * np.abs(exact[1]).max())
    np.testing.assert_allclose(single[2], exact[2], rtol=5e-2, atol=1e-2 * np.abs(exact[2]).max())
    assert single[0] != exact[0]


def test_missing_cuda_is_a_clear_error(pair):
    dry, wet = pair
    if torch.cuda.is_available():
        pytest.skip("tool: a CUDA GPU is visible")
    with pytest.raises(ParameterError, match="no CUDA"):
        TorchCompressorObjective(dry, wet, SAMPLE_RATE, device="cuda")


# -- every family member: the generated torch objective against the generated numba kernels --------------
@pytest.fixture(scope="module")
def short_pair():
    dry = programme(0.2, seed=4)
    wet = Compressor(threshold_db=-24.0, ratio=5.0, attack_ms=4.0, release_ms=120.0, makeup_db=4.0).process(
        dry, SAMPLE_RATE)
    return dry, wet + 0.002 * np.random.default_rng(2).normal(size=dry.size)


def _member_point(name: str, which: int) -> np.ndarray:
    """Kernel parameters of member ``name``: its extra parameters away from neutral (their first or last
    start), the FF-5 ones at two different places."""
    spec = MODELS[name]
    values = {p.name: (p.starts[-which] if p.starts else p.default) for p in spec.parameters}
    values.update([dict(threshold_db=-21.0, ratio=3.0, attack_ms=2.0, release_ms=90.0, makeup_db=2.0),
                   dict(threshold_db=-29.0, ratio=9.0, attack_ms=0.5, release_ms=400.0, makeup_db=5.0)][which])
    return Compressor(model=name, **values).kernel_vector(SAMPLE_RATE)


@pytest.mark.parametrize("chunking", [(0.1, 0.02, 4), (0.06, 0.01, 2)])
@pytest.mark.parametrize("name", [m for m in MODELS if m in TORCH_MEMBERS])
def test_every_member_matches_its_numba_kernels(short_pair, name, chunking):
    dry, wet = short_pair
    chunk_seconds, warmup_seconds, batch_chunks = chunking
    settings = dict(model=name, chunk_seconds=chunk_seconds, warmup_seconds=warmup_seconds)
    numba_objective = CompressorObjective(dry, wet, SAMPLE_RATE, **settings)
    torch_objective = TorchCompressorObjective(dry, wet, SAMPLE_RATE, batch_chunks=batch_chunks, **settings)
    for which in (0, 1):  # the second point starts its branch search from the first point's states
        q = _member_point(name, which)
        expected = numba_objective.loss_grad_hess(q)
        loss, grad, hess = torch_objective.loss_grad_hess(q)
        assert loss == pytest.approx(expected[0], rel=1e-9)
        np.testing.assert_allclose(grad, expected[1], rtol=1e-9, atol=1e-12 * np.abs(expected[1]).max())
        np.testing.assert_allclose(hess, expected[2], rtol=1e-9, atol=1e-12 * np.abs(expected[2]).max())
        assert np.count_nonzero(hess) == hess.size  # every parameter reaches the loss (a real check)
    np.testing.assert_allclose(torch_objective.loss_grad(q)[1], expected[1], rtol=1e-9)


@pytest.mark.parametrize("model", ["level"])  # a generated non-FF-5 member; the CLI test fits ff5 on the device
def test_newton_fit_on_the_torch_backend_follows_the_numba_path(model):
    from dynamatch.fitting import fit_arrays

    dry = programme(1.2, seed=5)
    wet = Compressor(threshold_db=-22.0, ratio=4.0, attack_ms=3.0, release_ms=150.0, makeup_db=3.0).process(
        dry, SAMPLE_RATE) + 0.001 * np.random.default_rng(2).normal(size=dry.size)
    settings = dict(model=model, chunk_seconds=0.4, warmup_seconds=0.1, max_iterations=8, coarse=False)
    reference = fit_arrays(dry, wet, SAMPLE_RATE, **settings)
    on_torch = fit_arrays(dry, wet, SAMPLE_RATE, device="cpu-torch", **settings)
    assert on_torch.params.model == model
    assert on_torch.nit == reference.nit
    assert on_torch.loss == pytest.approx(reference.loss, rel=1e-8)
    np.testing.assert_allclose(on_torch.params.kernel_vector(SAMPLE_RATE), reference.params.kernel_vector(SAMPLE_RATE),
                               rtol=1e-7)
    assert [h.loss for h in on_torch.history] == pytest.approx([h.loss for h in reference.history], rel=1e-8)


def test_cli_fit_device_reaches_the_torch_backend(tmp_path):
    import soundfile as sf
    from click.testing import CliRunner

    from dynamatch.cli import main

    dry = programme(1.5, seed=6)
    wet = Compressor(threshold_db=-22.0, ratio=4.0, attack_ms=3.0, release_ms=150.0).process(dry, SAMPLE_RATE)
    sf.write(tmp_path / "dry.wav", dry, SAMPLE_RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", wet, SAMPLE_RATE, subtype="FLOAT")
    args = ["fit", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o", str(tmp_path / "m.json"), "--no-plot",
            "--no-align", "--chunk-seconds", "0.5", "--warmup-seconds", "0.1", "--max-iterations", "3"]
    for model in ("ff5", "level"):
        result = CliRunner().invoke(main, args + ["--device", "cpu-torch", "--model", model])
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "m.json").read_text())["model"] == model


def test_train_gpu_flags_reach_the_trainer_or_fail_in_one_line(tmp_path, monkeypatch):
    require_module("lightning")
    import lightning.pytorch as pl
    from click.testing import CliRunner

    from dynamatch.cli import main
    from dynamatch.data.generate import generate_signaltrain_like

    root = generate_signaltrain_like(tmp_path / "ds", duration_seconds=10.0, peak_reductions=[40], seed=0)
    args = ["train", "lstm-32", str(root), "-o", str(tmp_path / "out"), "--max-steps", "1",
            "--accelerator", "gpu", "--precision", "bf16-mixed"]
    if not torch.cuda.is_available():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "no CUDA GPU" in result.output
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    seen = {}

    class Reached(Exception):
        pass

    def fake_trainer(**kwargs):
        seen.update(kwargs)
        raise Reached

    monkeypatch.setattr(pl, "Trainer", fake_trainer)
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, Reached), result.output
    assert seen["accelerator"] == "gpu" and seen["precision"] == "bf16-mixed"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="tool: no CUDA GPU")
@pytest.mark.parametrize("params", POINTS)
def test_cuda_matches_numba(pair, params):
    dry, wet = pair
    q = Compressor(**params).kernel_vector(SAMPLE_RATE)
    expected = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.4, warmup_seconds=0.1).loss_grad_hess(q)
    got = TorchCompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.4, warmup_seconds=0.1,
                                   device="cuda").loss_grad_hess(q)
    assert got[0] == pytest.approx(expected[0], rel=1e-9)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-9, atol=1e-12 * np.abs(expected[1]).max())
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-9, atol=1e-12 * np.abs(expected[2]).max())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="tool: no CUDA GPU")
@pytest.mark.parametrize("name", [m for m in MODELS if m in TORCH_MEMBERS])
def test_cuda_matches_numba_for_every_member(short_pair, name):
    dry, wet = short_pair
    settings = dict(model=name, chunk_seconds=0.06, warmup_seconds=0.01)
    q = _member_point(name, 0)
    expected = CompressorObjective(dry, wet, SAMPLE_RATE, **settings).loss_grad_hess(q)
    got = TorchCompressorObjective(dry, wet, SAMPLE_RATE, device="cuda", **settings).loss_grad_hess(q)
    assert got[0] == pytest.approx(expected[0], rel=1e-9)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-9, atol=1e-12 * np.abs(expected[1]).max())
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-9, atol=1e-12 * np.abs(expected[2]).max())


def test_every_member_has_a_torch_objective_and_coupled_states_are_one_matrix_scan(monkeypatch):
    """``opto``'s four states read each other's previous values (the cell's stages read the reduction
    they make): the generator scans them as one group with the matrix scan, every right-hand side at
    once; ``opto-hp``'s output high-pass reads the group but not back, so it stays a one-pole scan."""
    from dynamatch.kernels import torch_family

    assert TORCH_MEMBERS == set(MODELS)
    opto = torch_family.torch_kernels_of("opto")
    assert not opto.SCANNED_STATES  # the values: a loop over the samples (max() panel, softplus cell)
    hp = torch_family.torch_kernels_of("opto_hp")
    for module in (opto, hp):
        source = open(module.__file__).read()
        assert source.count("coupling_0_1_2_3 = coupling(") == 1  # one matrix for both orders
        assert source.count("matrix_scan(coupling_0_1_2_3") == 2  # first, then second derivatives
    assert "output_lowpass_prev__d0 = shifted(state_scan(" in open(hp.__file__).read()
    with pytest.raises(ParameterError, match="'no-such' has no generated torch objective"):
        torch_family.torch_kernels_of("no_such")  # one line, no traceback (a member the generator skipped)


def test_float32_opto_is_close_but_not_exact(short_pair):
    dry, wet = short_pair
    settings = dict(model="opto", chunk_seconds=0.1, warmup_seconds=0.02)
    q = _member_point("opto", 0)
    exact = CompressorObjective(dry, wet, SAMPLE_RATE, **settings).loss_grad_hess(q)
    single = TorchCompressorObjective(dry, wet, SAMPLE_RATE, dtype="float32", **settings).loss_grad_hess(q)
    assert single[0] == pytest.approx(exact[0], rel=1e-4)
    np.testing.assert_allclose(single[1], exact[1], atol=1e-3 * np.abs(exact[1]).max())
    np.testing.assert_allclose(single[2], exact[2], atol=1e-2 * np.abs(exact[2]).max())
    assert single[0] != exact[0]


def test_cli_fit_device_fits_opto(tmp_path):
    """The coupled member on the device: a warm-started fit (one start, no ranking of the 81 extension
    starts), a short pair (the fit needs ≥ 1.05 s)."""
    import soundfile as sf
    from click.testing import CliRunner

    from dynamatch.cli import main
    from dynamatch.models.model_file import save_compressor

    dry = programme(1.1, seed=6)
    truth = Compressor(model="opto", threshold_db=-24.0, ratio=4.0, attack_ms=3.0, release_ms=150.0)
    wet = truth.process(dry, SAMPLE_RATE)
    sf.write(tmp_path / "dry.wav", dry, SAMPLE_RATE, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", wet, SAMPLE_RATE, subtype="FLOAT")
    save_compressor(tmp_path / "start.json", truth.with_params(threshold_db=-22.0, release_ms=200.0))
    args = ["fit", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o", str(tmp_path / "m.json"), "--no-plot",
            "--no-align", "--chunk-seconds", "0.2", "--warmup-seconds", "0.05", "--max-iterations", "2",
            "--warm-start", str(tmp_path / "start.json"), "--device", "cpu-torch", "--model", "opto",
            "--ignore-checks"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.json").read_text())["model"] == "opto"
