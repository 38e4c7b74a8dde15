"""Optimisers and the bounded reparametrisation, checked on toy problems with exact derivatives
(minimisers known in closed form), against finite differences, and on the real 4A-2A objective."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skips import require_module

from dynamatch import Compressor
from dynamatch.errors import ParameterError
from dynamatch.optimize import (
    Bounds,
    FitResult,
    Parametrization,
    Status,
    minimize,
    minimize_adam,
    minimize_levenberg_marquardt,
    minimize_newton,
)
from dynamatch.models.family import model_spec
from dynamatch.units import coefficient_to_ms, ms_to_coefficient

LA2A = Path(__file__).resolve().parents[2] / "shared" / "la2a"
SAMPLE_RATE = 44100.0
ARMIJO = 1e-4
METHODS = ["newton", "lm", "adam"]
FF5 = model_spec("ff5")


# -- toy problems -------------------------------------------------------------------------------
class Problem:
    """Base: exact derivatives from ``_derivatives(x) -> (f, g, H)``; counts every call."""

    def __init__(self) -> None:
        self.calls = {"loss": 0, "loss_grad": 0, "loss_grad_hess": 0}

    def loss(self, q):
        self.calls["loss"] += 1
        return self._derivatives(np.asarray(q, dtype=float))[0]

    def loss_grad(self, q):
        self.calls["loss_grad"] += 1
        return self._derivatives(np.asarray(q, dtype=float))[:2]

    def loss_grad_hess(self, q):
        self.calls["loss_grad_hess"] += 1
        return self._derivatives(np.asarray(q, dtype=float))


class CompressorShaped(Problem):
    """A smooth 5-D function of kernel parameters with its minimum at ``q_star`` (real units:
    ``target``): f = ½ sᵀAs + ¼ Σ s⁴, s = (q − q*)/scale, A symmetric positive definite (coupled)."""

    n_parameters = 5
    sample_rate = SAMPLE_RATE

    def __init__(self, target: Compressor) -> None:
        super().__init__()
        self.q_star = self.kernel_params(target)
        self.scale = np.array([10.0, 2.0, 0.01, 3e-4, 3.0])
        rng = np.random.default_rng(1)
        m = rng.standard_normal((5, 5))
        self.a = m @ m.T / 5.0 + np.eye(5)

    @staticmethod
    def kernel_params(compressor):
        v = compressor.to_vector()
        return np.array([v[0], v[1], ms_to_coefficient(v[2], SAMPLE_RATE), ms_to_coefficient(v[3], SAMPLE_RATE), v[4]])

    @staticmethod
    def compressor(q):
        return Compressor(q[0], q[1], coefficient_to_ms(q[2], SAMPLE_RATE), coefficient_to_ms(q[3], SAMPLE_RATE), q[4])

    @staticmethod
    def kernel_limits(bounds):
        return bounds.kernel_limits(FF5, SAMPLE_RATE)

    def _derivatives(self, q):
        s = (q - self.q_star) / self.scale
        f = 0.5 * s @ self.a @ s + 0.25 * np.sum(s**4)
        g = (self.a @ s + s**3) / self.scale
        h = (self.a + np.diag(3.0 * s**2)) / np.outer(self.scale, self.scale)
        return f, g, h


class ExpBowl(Problem):
    """Strictly convex, minimum at c: f = Σ (e^s − s) + ½ sᵀAs, s = x − c (nonzero third derivative,
    so Newton's local rate is plainly quadratic)."""

    def __init__(self, n: int = 4) -> None:
        super().__init__()
        self.n_parameters = n
        self.c = np.linspace(-1.0, 2.0, n)
        self.a = np.full((n, n), 0.5) + np.eye(n)

    def _derivatives(self, x):
        s = x - self.c
        return (
            float(np.sum(np.exp(s) - s) + 0.5 * s @ self.a @ s),
            np.expm1(s) + self.a @ s,
            np.diag(np.exp(s)) + self.a,
        )


class Rosenbrock(Problem):
    """Extended Rosenbrock, minimum 0 at (1, …, 1)."""

    def __init__(self, n: int = 4) -> None:
        super().__init__()
        self.n_parameters = n

    def _derivatives(self, x):
        a, b = x[:-1], x[1:]
        f = float(np.sum(100.0 * (b - a**2) ** 2 + (1.0 - a) ** 2))
        g = np.zeros_like(x)
        g[:-1] += -400.0 * a * (b - a**2) - 2.0 * (1.0 - a)
        g[1:] += 200.0 * (b - a**2)
        h = np.zeros((x.size, x.size))
        i = np.arange(x.size - 1)
        h[i, i] += 1200.0 * a**2 - 400.0 * b + 2.0
        h[i + 1, i + 1] += 200.0
        h[i, i + 1] = h[i + 1, i] = -400.0 * a
        return f, g, h


class DoubleWell(Problem):
    """f = Σ (x² − 1)² + ½·0.3·(x₀ − x₁)²: a local maximum near 0 (indefinite Hessian there),
    minima at |x_i| ≈ 1."""

    n_parameters = 3

    def _derivatives(self, x):
        d = np.zeros_like(x)
        d[0], d[1] = x[0] - x[1], x[1] - x[0]
        f = float(np.sum((x**2 - 1.0) ** 2) + 0.15 * (x[0] - x[1]) ** 2)
        g = 4.0 * x * (x**2 - 1.0) + 0.3 * d
        h = np.diag(12.0 * x**2 - 4.0)
        h[:2, :2] += 0.3 * np.array([[1.0, -1.0], [-1.0, 1.0]])
        return f, g, h


class PseudoHuberWithHole(Problem):
    """f = Σ sqrt(1 + (x − c)²), minimum at c, but NaN where any x − c < −3.  Newton overshoots
    (its step is −s(1 + s²)), so from s = 2 the full step lands in the NaN region."""

    n_parameters = 2

    def __init__(self) -> None:
        super().__init__()
        self.c = np.array([0.5, -1.0])
        self.nan_returned = 0

    def _derivatives(self, x):
        s = x - self.c
        root = np.sqrt(1.0 + s**2)
        if np.any(s < -3.0):
            self.nan_returned += 1
            return np.nan, np.full_like(x, np.nan), np.full((x.size, x.size), np.nan)
        return float(np.sum(root)), s / root, np.diag(root**-3)


TARGET = Compressor(threshold_db=-24.0, ratio=5.0, attack_ms=3.0, release_ms=150.0, makeup_db=2.0)
START = Compressor(threshold_db=-36.0, ratio=4.0, attack_ms=1.0, release_ms=200.0, makeup_db=0.0)


# -- parametrisation ----------------------------------------------------------------------------
def test_bounds_validation_and_kernel_limits():
    with pytest.raises(ParameterError):
        Bounds(ratio=(0.5, 20))
    with pytest.raises(ParameterError):
        Bounds(attack_ms=(10, 1))
    with pytest.raises(ParameterError):
        Bounds(release_ms=(0, 100))
    with pytest.raises(ParameterError):
        Bounds(ratio=(1, float("inf")))
    lower, upper = Bounds().kernel_limits(FF5, SAMPLE_RATE)
    assert np.isneginf(lower[[0, 4]]).all() and np.isposinf(upper[[0, 4]]).all()
    assert lower[1] == 1.0 and upper[1] == 20.0
    # short time = large coefficient: the attack coefficient runs from α(100 ms) to α(0.1 ms)
    assert lower[2] == pytest.approx(1.0 - np.exp(-2200.0 / (100.0 * SAMPLE_RATE)), rel=1e-12)
    assert upper[2] == pytest.approx(1.0 - np.exp(-2200.0 / (0.1 * SAMPLE_RATE)), rel=1e-12)
    assert lower[3] == pytest.approx(1.0 - np.exp(-2200.0 / (1000.0 * SAMPLE_RATE)), rel=1e-12)


def test_to_kernel_matches_the_reference_formula_and_round_trips():
    par = Parametrization(*Bounds().kernel_limits(FF5, SAMPLE_RATE))
    u = np.array([-20.0, 0.3, -1.2, 2.0, 3.5])
    q = par.to_kernel(u)
    sigmoid = 1.0 / (1.0 + np.exp(-u))
    a_lo, a_hi = ms_to_coefficient(100.0, SAMPLE_RATE), ms_to_coefficient(0.1, SAMPLE_RATE)
    r_lo, r_hi = ms_to_coefficient(1000.0, SAMPLE_RATE), ms_to_coefficient(10.0, SAMPLE_RATE)
    expected = [
        -20.0,
        1.0 + 19.0 * sigmoid[1],
        a_lo + (a_hi - a_lo) * sigmoid[2],
        r_lo + (r_hi - r_lo) * sigmoid[3],
        3.5,
    ]
    np.testing.assert_allclose(q, expected, rtol=1e-13)
    np.testing.assert_allclose(par.from_kernel(q), u, rtol=1e-9, atol=1e-9)


def test_from_kernel_clips_strictly_inside_the_bounds():
    par = Parametrization(*Bounds().kernel_limits(FF5, SAMPLE_RATE))
    outside = CompressorShaped.kernel_params(Compressor(0.0, 50.0, 0.01, 5000.0, 0.0))
    q = par.to_kernel(par.from_kernel(outside))
    lower, upper = Bounds().kernel_limits(FF5, SAMPLE_RATE)
    assert np.all(q[1:4] > lower[1:4]) and np.all(q[1:4] < upper[1:4])
    assert q[1] == pytest.approx(20.0, rel=1e-5)


def test_transform_matches_finite_differences_of_the_composition():
    problem = CompressorShaped(TARGET)
    par = Parametrization(*Bounds().kernel_limits(FF5, SAMPLE_RATE))
    u = par.from_kernel(problem.kernel_params(START)) + np.array([0.0, 0.4, -0.3, 0.5, 0.0])

    def composed(v):
        return problem.loss(par.to_kernel(v))

    f, g_u, h_u = par.transform(u, *problem.loss_grad_hess(par.to_kernel(u)))
    assert f == composed(u)
    step = 1e-4
    eye = np.eye(5) * step
    g_fd = np.array([(composed(u + e) - composed(u - e)) / (2 * step) for e in eye])
    def second(a, b):
        return (composed(u + a + b) - composed(u + a - b) - composed(u - a + b) + composed(u - a - b)) / (4 * step**2)

    h_fd = np.array([[second(a, b) for b in eye] for a in eye])
    np.testing.assert_allclose(g_u, g_fd, rtol=1e-6, atol=1e-8 * np.abs(g_fd).max())
    np.testing.assert_allclose(h_u, h_fd, rtol=1e-4, atol=1e-5 * np.abs(h_fd).max())
    assert np.abs(np.diag(h_u) - np.diag(h_fd)).max() < 1e-4 * np.abs(h_fd).max()
    _, g_only, no_h = par.transform(u, f, problem.loss_grad(par.to_kernel(u))[1])
    assert no_h is None and np.array_equal(g_only, g_u)


def test_limit_step_keeps_direction_and_caps_each_kind():
    par = Parametrization(*Bounds().kernel_limits(FF5, SAMPLE_RATE))
    capped, scale = par.limit_step(np.array([48.0, 1.0, -1.0, 0.5, 0.0]), max_logit_step=3.0, max_free_step=24.0)
    np.testing.assert_allclose(capped, [24.0, 0.5, -0.5, 0.25, 0.0])
    assert scale == 0.5
    capped, scale = par.limit_step(np.array([1.0, 6.0, 0.0, 0.0, 0.0]), max_logit_step=3.0, max_free_step=24.0)
    np.testing.assert_allclose(capped, [0.5, 3.0, 0.0, 0.0, 0.0])


def test_bounds_require_a_compressor_objective():
    with pytest.raises(ParameterError):
        minimize_newton(Rosenbrock(), np.zeros(4))  # default bounds on a 4-D problem without sample_rate
    with pytest.raises(ParameterError):
        minimize_newton(Rosenbrock(), np.zeros(3), bounds=None)
    with pytest.raises(ParameterError):
        minimize_newton(Rosenbrock(), np.array([np.nan, 0, 0, 0]), bounds=None)


# -- convergence on toy problems ----------------------------------------------------------------
@pytest.mark.parametrize("method", ["newton", "lm"])
def test_second_order_methods_reach_the_known_minimum_in_real_units(method):
    problem = CompressorShaped(TARGET)
    result = minimize(problem, START, method=method)
    assert result.success and result.status in (Status.CONVERGED_GRADIENT, Status.CONVERGED_DECREMENT)
    assert result.nit <= 25
    np.testing.assert_allclose(result.params.to_vector(), TARGET.to_vector(), rtol=1e-6)
    np.testing.assert_allclose(result.x, problem.q_star, rtol=1e-6)
    assert result.loss < 1e-12


def test_adam_reaches_the_known_minimum():
    problem = CompressorShaped(TARGET)
    start_loss = problem._derivatives(problem.kernel_params(START))[0]
    result = minimize_adam(problem, START, learning_rate=0.05, max_iterations=3000)
    assert result.loss < 1e-4 * start_loss
    np.testing.assert_allclose(result.params.to_vector(), TARGET.to_vector(), rtol=2e-2)
    assert problem.calls["loss_grad_hess"] == 0 and problem.calls["loss"] == 0
    assert np.isnan(result.history[-1].decrement)


def test_newton_converges_quadratically_on_a_convex_problem():
    problem = ExpBowl()
    iterates = []
    result = minimize_newton(
        problem, problem.c + 2.0, bounds=None, decrement_tolerance=0.0, callback=lambda r: iterates.append(r.x.copy())
    )
    assert result.status == Status.CONVERGED_GRADIENT and result.nit <= 8
    np.testing.assert_allclose(result.x, problem.c, atol=1e-10)
    errors = [np.max(np.abs(x - problem.c)) for x in [problem.c + 2.0, *iterates]]
    local = [(a, b) for a, b in zip(errors, errors[1:]) if 1e-12 < a < 0.5 and b > 1e-15]
    assert len(local) >= 2, errors
    for before, after in local:  # e_{k+1} <= C e_k^2
        assert after <= 2.0 * before**2
    steps = [record.step_size for record in result.history[1:]]
    assert steps[-3:] == [1.0, 1.0, 1.0]  # full Newton steps near the optimum


@pytest.mark.parametrize("method", ["newton", "lm"])
def test_rosenbrock(method):
    problem = Rosenbrock()
    plain = {"speculate": False} if method == "newton" else {}
    result = minimize(problem, np.array([-1.2, 1.0, -1.2, 1.0]), method=method, bounds=None, max_iterations=200,
                      **plain)
    assert result.success, result.message
    np.testing.assert_allclose(result.x, np.ones(4), atol=1e-6)
    # the expensive evaluation runs once per accepted iterate, the line search / trials use the loss only
    assert problem.calls["loss_grad_hess"] == result.nit + 1
    assert problem.calls["loss_grad"] == 0
    assert result.nfev == sum(problem.calls.values())
    if method == "newton":  # after a full step the next full step gets the Hessian pass at once: same iterates
        plain_calls = dict(problem.calls)
        problem.calls = {k: 0 for k in problem.calls}
        fast = minimize(problem, np.array([-1.2, 1.0, -1.2, 1.0]), method=method, bounds=None, max_iterations=200)
        assert fast.nit == result.nit
        np.testing.assert_allclose([h.loss for h in fast.history], [h.loss for h in result.history], rtol=1e-12)
        assert fast.nfev == sum(problem.calls.values()) < result.nfev
        assert problem.calls["loss"] < plain_calls["loss"] and problem.calls["loss_grad_hess"] >= result.nit + 1


@pytest.mark.parametrize("method", ["newton", "lm"])
def test_indefinite_start_descends_monotonically_to_a_minimum(method):
    problem = DoubleWell()
    x0 = np.array([0.1, 0.2, -0.15])
    assert np.linalg.eigvalsh(problem._derivatives(x0)[2]).max() < 0  # negative definite: pure Newton climbs
    iterates = [x0]
    result = minimize(problem, x0, method=method, bounds=None, callback=lambda r: iterates.append(r.x.copy()))
    assert result.success, result.message
    losses = [record.loss for record in result.history]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert np.all(np.linalg.eigvalsh(problem._derivatives(result.x)[2]) > 0)
    np.testing.assert_allclose(np.abs(result.x), 1.0, atol=0.1)
    assert np.max(np.abs(problem._derivatives(result.x)[1])) < 1e-5  # decrement 1e-12 ⇒ |g| ~ 1e-6


def test_every_accepted_newton_step_satisfies_armijo():
    for problem, x0 in [(DoubleWell(), np.array([0.1, 0.2, -0.15])), (Rosenbrock(), np.array([-1.2, 1.0, -1.2, 1.0]))]:
        iterates = [x0]
        result = minimize_newton(
            problem, x0, bounds=None, max_iterations=200, callback=lambda r: iterates.append(r.x.copy())
        )
        assert result.success and len(iterates) == result.nit + 1
        history = result.history
        assert any(record.step_size < 1.0 for record in history[1:])  # the line search did work
        for k in range(1, len(iterates)):
            f_before, g_before, _ = problem._derivatives(iterates[k - 1])
            f_after = problem._derivatives(iterates[k])[0]
            slope = g_before @ (iterates[k] - iterates[k - 1])
            assert slope < 0
            assert f_after <= f_before + ARMIJO * slope  # independent recomputation
            # ... and the same condition from the recorded history (g^T Δu = -2 t decrement)
            bound = history[k - 1].loss - 2.0 * ARMIJO * history[k].step_size * history[k - 1].decrement
            assert history[k].loss <= bound + 1e-15 * abs(history[k - 1].loss)


def test_bounds_are_respected_when_the_minimum_lies_outside():
    outside = Compressor(threshold_db=-24.0, ratio=40.0, attack_ms=0.02, release_ms=150.0, makeup_db=2.0)
    problem = CompressorShaped(Compressor())
    problem.q_star = problem.kernel_params(outside)
    lower, upper = Bounds().kernel_limits(FF5, SAMPLE_RATE)
    for method in METHODS:
        seen = []
        result = minimize(problem, START, method=method, max_iterations=200, callback=lambda r: seen.append(r.x))
        for q in [*seen, result.x]:
            assert np.all(q[1:4] >= lower[1:4]) and np.all(q[1:4] <= upper[1:4])
        assert result.params.ratio > 19.0 and result.params.attack_ms < 0.2
        assert 1.0 <= result.params.ratio <= 20.0 and result.params.attack_ms >= 0.1
        assert result.loss < problem.loss(problem.kernel_params(START))


# -- callbacks, failures, results ---------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_callback_receives_intermediate_results_and_can_stop(method):
    problem = CompressorShaped(TARGET)
    seen: list[FitResult] = []

    def callback(intermediate):
        seen.append(intermediate)
        if intermediate.nit == 3:
            raise StopIteration

    result = minimize(problem, START, method=method, callback=callback)
    assert result.status == Status.CALLBACK_STOP and not result.success
    assert [r.nit for r in seen] == [1, 2, 3]
    assert all(r.status == Status.RUNNING and isinstance(r.params, Compressor) for r in seen)
    assert result.nit == 3 and len(result.history) == 4
    assert [r.loss for r in seen] == [h.loss for h in result.history[1:]]


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_start_reports_non_finite(method):
    problem = PseudoHuberWithHole()
    result = minimize(problem, problem.c - 4.0, method=method, bounds=None)
    assert result.status == Status.NON_FINITE and not result.success and result.nit == 0


@pytest.mark.parametrize("method", ["newton", "lm"])
def test_step_control_backs_off_from_a_non_finite_region(method):
    problem = PseudoHuberWithHole()
    x0 = problem.c + np.array([2.0, 0.5])
    _, g, h = problem._derivatives(x0)
    assert not np.isfinite(problem.loss(x0 - np.linalg.solve(h, g)))  # the full Newton step lands in the hole
    problem.nan_returned = 0
    result = minimize(problem, x0, method=method, bounds=None)
    assert result.success, result.message
    assert problem.nan_returned >= 1
    np.testing.assert_allclose(result.x, problem.c, atol=1e-4)  # decrement <= 1e-9 f  =>  |s| < 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_derivatives_after_a_step_stop_cleanly(method):
    class BrokenAfterStart(ExpBowl):
        def _derivatives(self, x):
            f, g, h = super()._derivatives(x)
            return (f, g * np.nan, h) if np.abs(x - 3.0).max() > 1e-12 else (f, g, h)

    result = minimize(BrokenAfterStart(n=2), np.full(2, 3.0), method=method, bounds=None)
    assert result.status == Status.NON_FINITE and not result.success
    np.testing.assert_array_equal(result.x, np.full(2, 3.0))  # the last fully finite iterate
    assert np.isfinite(result.loss)


def test_max_iterations_is_not_success():
    result = minimize_newton(Rosenbrock(), np.array([-1.2, 1.0, -1.2, 1.0]), bounds=None, max_iterations=2)
    assert result.status == Status.MAX_ITERATIONS and not result.success and result.nit == 2


def test_minimize_dispatches_and_rejects_unknown_methods():
    problem = CompressorShaped(TARGET)
    direct = minimize_levenberg_marquardt(problem, START)
    via = minimize(problem, START, method="lm")
    assert via.method == direct.method == "levenberg-marquardt"
    np.testing.assert_array_equal(via.x, direct.x)
    with pytest.raises(ParameterError):
        minimize(problem, START, method="bfgs")


def test_result_string_shows_parameters_in_real_units():
    result = minimize_newton(CompressorShaped(TARGET), START)
    text = str(result)
    assert "CONVERGED" in text and "newton" in text
    for name, value in TARGET.to_dict().items():
        line = next(line for line in text.splitlines() if line.strip().startswith(name))
        assert float(line.split()[-1]) == pytest.approx(value, rel=1e-5)
    plain = str(minimize_newton(ExpBowl(n=2), np.zeros(2), bounds=None))
    assert "x[0]" in plain and "x[1]" in plain


# -- the real 4A-2A objective --------------------------------------------------------------------
def _programme(seconds: float, sample_rate: float, seed: int = 0) -> np.ndarray:
    """Noise and tone bursts at levels from −40 to −3 dBFS, with gaps and 5 ms fades."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    x = np.zeros(n)
    position = 0
    while position < n:
        length = min(int(rng.uniform(0.05, 0.6) * sample_rate), n - position)
        k = np.arange(length)
        if rng.random() < 0.5:
            burst = rng.standard_normal(length)
        else:
            burst = np.sqrt(2.0) * np.sin(2 * np.pi * rng.uniform(80.0, 2000.0) * k / sample_rate)
        fade = np.minimum(1.0, np.minimum(k, k[::-1]) / (0.005 * sample_rate))
        x[position : position + length] = 0.5 * 10 ** (rng.uniform(-40.0, -3.0) / 20.0) * burst * fade
        position += length + int(rng.uniform(0.0, 0.2) * sample_rate)
    return x


def _rms_matched_start(dry: np.ndarray, wet: np.ndarray, sample_rate: float) -> Compressor:
    """The default start with make-up set so the prediction's RMS equals the target's."""
    prediction = START.process(dry, sample_rate)
    return START.with_params(makeup_db=20.0 * np.log10(np.std(wet) / np.std(prediction)))


def _loss_at(objective, compressor: Compressor) -> float:
    return objective.loss(objective.kernel_params(compressor))


@pytest.fixture(scope="module")
def programme_pair():
    x = _programme(10.0, SAMPLE_RATE)
    return x, TARGET.process(x, SAMPLE_RATE)


@pytest.fixture(scope="module")
def real_objective(programme_pair):
    import dynamatch.optimize.objective as objective_module  # the project's own module: never skipped
    return objective_module.CompressorObjective(*programme_pair, SAMPLE_RATE)


@pytest.mark.parametrize("method", ["newton", "lm"])
def test_recovers_compressor_parameters_from_the_default_start(real_objective, programme_pair, method):
    start = _rms_matched_start(*programme_pair, SAMPLE_RATE)
    result = minimize(real_objective, start, method=method)
    assert result.success, result.message
    assert result.nit <= 20
    np.testing.assert_allclose(result.params.to_vector(), TARGET.to_vector(), rtol=5e-3)
    losses = [record.loss for record in result.history]
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_adam_reduces_the_real_objective(real_objective, programme_pair):
    start = _rms_matched_start(*programme_pair, SAMPLE_RATE)
    result = minimize_adam(real_objective, start, learning_rate=0.05, max_iterations=40)
    assert result.loss < 0.5 * _loss_at(real_objective, start)
    assert result.loss == min(record.loss for record in result.history)


class KinkedBowl(Problem):
    """1 + ½ sᵀAs + 10⁻³ Σ|s|, s = x − c: minimum at c, where the gradient jumps (never below 10⁻³) and
    the quadratic model mispredicts every step that crosses the kink, as the 4A-2A loss does."""

    n_parameters = 3

    def __init__(self) -> None:
        super().__init__()
        self.c = np.array([0.3, -0.2, 0.1])
        self.a = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]])

    def _derivatives(self, x):
        s = x - self.c
        return 1.0 + 0.5 * s @ self.a @ s + 1e-3 * np.sum(np.abs(s)), self.a @ s + 1e-3 * np.sign(s), self.a.copy()


@pytest.mark.parametrize("method", ["newton", "lm"])
def test_a_stalled_loss_on_a_kink_ends_as_converged(method):
    problem = KinkedBowl()
    result = minimize(problem, problem.c + 1.0, method=method, bounds=None, max_iterations=200)
    assert result.status == Status.CONVERGED_LOSS and result.success, result.message
    assert result.history[-1].gradient_norm > 1e-4  # the gradient test could never have ended it
    np.testing.assert_allclose(result.x, problem.c, atol=1e-6)
    assert result.loss - 1.0 <= 1e-9  # f(c) = 1


@pytest.fixture(scope="module")
def la2a_clip():
    folder = LA2A / "signaltrain_excerpts"
    if not (folder / "sample1_input.wav").exists():
        pytest.skip(f"shared data: real LA-2A clips not found in {folder}")
    soundfile = require_module("soundfile")
    x, sample_rate = soundfile.read(folder / "sample1_input.wav")
    y, _ = soundfile.read(folder / "sample1_target.wav")
    n = min(x.size, y.size, int(8 * sample_rate))
    return x[:n], y[:n], float(sample_rate)


def test_newton_and_lm_agree_on_a_real_la2a_clip(la2a_clip, real_objective):
    objective = type(real_objective)(*la2a_clip)
    start = _rms_matched_start(*la2a_clip)
    fits = [minimize(objective, start, method=method) for method in ("newton", "lm")]
    for fit in fits:
        assert fit.success, fit.message
        assert fit.loss < _loss_at(objective, start)
        assert 0.0 < fit.loss < 0.1  # the 4A-2A paper's mean ESR on SignalTrain is ~0.08
    assert fits[0].loss == pytest.approx(fits[1].loss, rel=1e-6)
    np.testing.assert_allclose(fits[0].params.to_vector(), fits[1].params.to_vector(), rtol=1e-2)


def test_negligible_full_step_ends_as_converged_step():
    problem = ExpBowl()
    only_step = dict(gradient_tolerance=0.0, decrement_tolerance=0.0, loss_tolerance=-1.0)  # other tests off
    result = minimize_newton(problem, problem.c + 1.0, bounds=None, **only_step)
    assert result.status == Status.CONVERGED_STEP and result.success, result.message
    np.testing.assert_allclose(result.x, problem.c, atol=1e-12)


def test_levenberg_marquardt_identity_scaling_and_validation():
    problem = Rosenbrock()
    result = minimize_levenberg_marquardt(
        problem, np.array([-1.2, 1.0, -1.2, 1.0]), bounds=None, scaling="identity", max_iterations=200
    )
    assert result.success, result.message
    np.testing.assert_allclose(result.x, np.ones(4), atol=1e-6)
    with pytest.raises(ParameterError):
        minimize_levenberg_marquardt(problem, np.zeros(4), bounds=None, scaling="diagonal")
