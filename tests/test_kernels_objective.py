"""The exact objective (loss, gradient, Hessian) of the 4A-2A compressor against independent references:
scipy's lfilter, per-chunk rendering with Compressor.process, finite differences, and torchcomp with
reverse-over-reverse autograd."""

from __future__ import annotations

import numpy as np
import pytest
from skips import require_module
from naive import chunked_esr_naive, chunked_prediction_naive, prefilter_naive, torchcomp_esr

from dynamatch import Compressor
from dynamatch.errors import AudioError, LengthMismatchError, ParameterError, SilentAudioError
from dynamatch.kernels.chunks import chunk_count
from dynamatch.kernels.prefilter import PREFILTER_POLE, prefilter, prefilter_block
from dynamatch.optimize.objective import CompressorObjective

SAMPLE_RATE = 44100


def programme(seconds: float, seed: int = 0) -> np.ndarray:
    """A short programme-like test signal: a tone and noise under a wandering envelope with bursts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    time_seconds = np.arange(n) / SAMPLE_RATE
    envelope = np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    envelope *= 0.6 / envelope.max()
    bursts = 1.0 + 2.0 * (np.sin(2 * np.pi * 3.0 * time_seconds) > 0.7)
    tone = np.sin(2 * np.pi * 220.0 * time_seconds) + 0.3 * np.sin(2 * np.pi * 1250.0 * time_seconds)
    return envelope * bursts * (0.7 * tone + 0.3 * rng.normal(size=n)) / 2.0


def knee_free_threshold_db(x: np.ndarray, low_db: float, high_db: float) -> float:
    """Middle of the widest gap between sample levels in [low_db, high_db]: no sample sits on the knee
    within a finite-difference step of it."""
    levels_db = np.sort(20 * np.log10(np.maximum(np.abs(x), 1e-10)))
    levels_db = levels_db[(levels_db > low_db) & (levels_db < high_db)]
    widest = int(np.argmax(np.diff(levels_db)))
    return float(0.5 * (levels_db[widest] + levels_db[widest + 1]))


@pytest.fixture(scope="module")
def pair():
    dry = programme(0.5)
    wet = Compressor(threshold_db=-24.0, ratio=5.0, attack_ms=4.0, release_ms=120.0, makeup_db=4.0).process(
        dry, SAMPLE_RATE
    )
    wet = wet + 0.002 * np.random.default_rng(1).normal(size=dry.size)  # not reachable exactly
    return dry, wet


@pytest.fixture(scope="module")
def point(pair):
    """Kernel parameters away from the truth, with the threshold in a gap between sample levels."""
    dry, _ = pair
    threshold_db = knee_free_threshold_db(dry, -21.0, -19.0)
    return Compressor(threshold_db=threshold_db, ratio=3.0, attack_ms=2.0, release_ms=80.0,
                      makeup_db=2.5).kernel_vector(SAMPLE_RATE)


# -- pre-filter ----------------------------------------------------------------------------------
def test_prefilter_matches_lfilter_on_every_row():
    x = np.random.default_rng(2).normal(size=(2, 3, 500))
    np.testing.assert_allclose(prefilter(x), prefilter_naive(x), rtol=0, atol=1e-12)
    assert PREFILTER_POLE == 0.995


def test_prefilter_block_carries_state_across_blocks():
    x = np.random.default_rng(3).normal(size=1000)
    out = np.empty_like(x)
    state = np.zeros(2)
    for start in range(0, 1000, 137):
        prefilter_block(x[start:start + 137], out[start:start + 137], state, PREFILTER_POLE)
    np.testing.assert_allclose(out, prefilter_naive(x), rtol=0, atol=1e-12)


def test_prefilter_blocks_dc_and_passes_high_frequencies():
    n = 20000
    dc = prefilter(np.ones(n))
    nyquist = prefilter((-1.0) ** np.arange(n))
    assert abs(dc[-1]) < 1e-12
    # |H(-1)| = 2 / (1 + p)
    assert abs(abs(nyquist[-1]) - 2.0 / (1.0 + PREFILTER_POLE)) < 1e-9


# -- loss against per-chunk rendering ----------------------------------------------------------------
@pytest.mark.parametrize("seconds", [0.5, 1.13])
@pytest.mark.parametrize("prefilter_on", [True, False])
def test_chunked_loss_matches_naive_rendering(pair, seconds, prefilter_on):
    dry = programme(seconds, seed=4)
    wet = Compressor(-22.0, 6.0, 3.0, 90.0, 3.0).process(dry, SAMPLE_RATE)
    wet = wet + 0.001 * np.random.default_rng(5).normal(size=dry.size)
    model = Compressor(-19.0, 3.5, 1.5, 60.0, 1.0)
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.3, warmup_seconds=0.07,
                                    prefilter=prefilter_on)
    expected = chunked_esr_naive(dry, wet, model, SAMPLE_RATE, objective.chunk_samples, objective.warmup_samples,
                                 prefilter=prefilter_on)
    assert chunk_count(dry.size, objective.chunk_samples, objective.warmup_samples) > 1
    q = objective.kernel_params(model)
    assert objective.esr(model) == pytest.approx(expected, rel=1e-10)
    assert objective.loss_grad(q)[0] == pytest.approx(expected, rel=1e-10)
    assert objective.loss_grad_hess(q)[0] == pytest.approx(expected, rel=1e-10)


def test_single_chunk_equals_unchunked_loss(pair):
    dry, wet = pair
    model = Compressor(-20.0, 4.0, 2.0, 100.0, 3.0)
    unchunked_z = prefilter_naive(model.process(dry, SAMPLE_RATE))
    unchunked_t = prefilter_naive(wet)
    expected = np.sum((unchunked_z - unchunked_t) ** 2) / np.sum(unchunked_t**2)
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.5, warmup_seconds=0.1)
    assert chunk_count(dry.size, objective.chunk_samples, objective.warmup_samples) == 1
    assert objective.esr(model) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("samples", [26460, 26461, 33077, 40000, 45001])
def test_every_sample_counted_exactly_once(samples):
    # No compression (threshold above the peak) and wet = 2·dry: the prediction at 0 dB make-up is
    # exactly half the target in every counted sample once the warm-up has flushed the filter state
    # (0.995^6615 ≈ 4e-15), so ESR = Σ(z - 2z)² / Σ(2z)² = 1/4 only if every sample is counted once.
    dry = programme(samples / SAMPLE_RATE, seed=6)[:samples]
    wet = 2.0 * dry
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.3, warmup_seconds=0.15)
    q = np.array([20.0, 4.0, 0.1, 0.01, 0.0])
    assert chunk_count(samples, objective.chunk_samples, objective.warmup_samples) >= 3
    z, _ = chunked_prediction_naive(dry, wet, Compressor(20.0, 4.0), SAMPLE_RATE, objective.chunk_samples,
                                    objective.warmup_samples)
    assert z.size == samples
    assert objective.loss(q) == pytest.approx(0.25, rel=1e-9)


def test_matched_makeup_equalises_prediction_and_target_energy(pair):
    dry, wet = pair
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.2, warmup_seconds=0.05)
    model = Compressor(-20.0, 4.0, 2.0, 100.0, makeup_db=-7.0)
    makeup_db = objective.matched_makeup_db(model)
    z, t = chunked_prediction_naive(dry, wet, model.with_params(makeup_db=makeup_db), SAMPLE_RATE,
                                    objective.chunk_samples, objective.warmup_samples)
    assert np.sum(z**2) == pytest.approx(np.sum(t**2), rel=1e-10)


def test_perfect_fit_has_zero_loss_without_cancellation():
    dry = programme(0.3, seed=7)
    truth = Compressor(-22.0, 5.0, 3.0, 100.0, 6.0)
    objective = CompressorObjective(dry, truth.process(dry, SAMPLE_RATE), SAMPLE_RATE)
    loss, grad, _ = objective.loss_grad_hess(objective.kernel_params(truth))
    assert loss < 1e-25
    assert np.all(np.abs(grad) < 1e-10)


# -- derivatives against finite differences -----------------------------------------------------------
def _steps(q):
    return np.array([1e-5, 1e-6 * q[1], 1e-6 * q[2], 1e-6 * q[3], 1e-5])


def test_gradient_matches_central_differences_of_the_loss(pair, point):
    dry, wet = pair
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.2, warmup_seconds=0.05)
    _, grad = objective.loss_grad(point)
    numeric = np.empty(5)
    for i, h in enumerate(_steps(point)):
        e = np.zeros(5)
        e[i] = h
        numeric[i] = (objective.loss(point + e) - objective.loss(point - e)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_hessian_matches_central_differences_of_the_gradient(pair, point):
    dry, wet = pair
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=0.2, warmup_seconds=0.05)
    loss, grad, hess = objective.loss_grad_hess(point)
    assert (loss, *grad) == pytest.approx((objective.loss(point), *objective.loss_grad(point)[1]), rel=1e-12)
    np.testing.assert_array_equal(hess, hess.T)
    numeric = np.empty((5, 5))
    for i, h in enumerate(_steps(point)):
        e = np.zeros(5)
        e[i] = h
        numeric[:, i] = (objective.loss_grad(point + e)[1] - objective.loss_grad(point - e)[1]) / (2 * h)
    scale = np.sqrt(np.outer(np.abs(np.diag(hess)), np.abs(np.diag(hess))))
    assert np.max(np.abs(hess - numeric) / scale) < 1e-5
    # the diagonal also from second differences of the loss alone
    for i, h in enumerate(_steps(point) * 100):  # larger steps: second differences amplify round-off
        e = np.zeros(5)
        e[i] = h
        second = (objective.loss(point + e) - 2 * loss + objective.loss(point - e)) / h**2
        assert second == pytest.approx(hess[i, i], rel=1e-4)


# -- derivatives against torchcomp + reverse-over-reverse autograd -----------------------------------------
def test_gradient_and_hessian_match_torchcomp_autograd(pair, point):
    torch = require_module("torch")
    require_module("torchcomp")
    dry, wet = (signal[: SAMPLE_RATE // 4] for signal in pair)  # 0.25 s keeps the oracle quick
    objective = CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=1.0, warmup_seconds=0.1)  # one chunk
    loss, grad, hess = objective.loss_grad_hess(point)

    esr, prefilter_torch = torchcomp_esr(dry, prefilter_naive(wet))
    np.testing.assert_allclose(prefilter_torch(torch.from_numpy(wet)).numpy(), prefilter_naive(wet), atol=1e-12)
    params = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    torch_loss = esr(params)
    (torch_grad,) = torch.autograd.grad(torch_loss, params)
    torch_hess = torch.autograd.functional.hessian(esr, params.detach()).numpy()

    assert loss == pytest.approx(torch_loss.item(), rel=1e-9)
    np.testing.assert_allclose(grad, torch_grad.numpy(), rtol=1e-6)
    scale = np.sqrt(np.outer(np.abs(np.diag(hess)), np.abs(np.diag(hess))))
    assert np.max(np.abs(hess - torch_hess) / scale) < 1e-6
    np.testing.assert_allclose(np.diag(hess), np.diag(torch_hess), rtol=1e-6)


# -- parameters and validation ------------------------------------------------------------------------
def test_kernel_params_round_trip_through_real_units():
    model = Compressor(-30.0, 7.0, 0.5, 300.0, 5.0)
    q = model.kernel_vector(SAMPLE_RATE)
    np.testing.assert_allclose(q[2:4], 1.0 - np.exp(-2200.0 / (np.array([0.5, 300.0]) * SAMPLE_RATE)), rtol=1e-12)
    assert (q[0], q[1], q[4]) == (-30.0, 7.0, 5.0)
    back = Compressor.from_kernel_vector(q, SAMPLE_RATE)
    np.testing.assert_allclose(back.to_vector(), model.to_vector(), rtol=1e-12)


def test_invalid_inputs_raise_library_errors(pair):
    dry, wet = pair
    with pytest.raises(LengthMismatchError):
        CompressorObjective(dry, wet[:-1], SAMPLE_RATE)
    with pytest.raises(AudioError):
        CompressorObjective(np.stack([dry, dry]), np.stack([wet, wet]), SAMPLE_RATE)
    with pytest.raises(ParameterError):
        CompressorObjective(dry, wet, SAMPLE_RATE, chunk_seconds=1.0, warmup_seconds=1.0)
    with pytest.raises(SilentAudioError):
        CompressorObjective(dry, np.zeros_like(wet), SAMPLE_RATE)
    objective = CompressorObjective(dry, wet, SAMPLE_RATE)
    for bad in ([-20.0, 4.0, 0.0, 0.01, 0.0], [-20.0, 0.0, 0.1, 0.01, 0.0], [np.nan, 4.0, 0.1, 0.01, 0.0], [1.0] * 4):
        with pytest.raises(ParameterError):
            objective.loss(np.array(bad))
