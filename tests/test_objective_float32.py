"""float32 audio in the objective: stored as float32, summed in float64, the same loss, gradient and
Hessian as the float64 objective on the same (exactly float32-representable) samples."""

from __future__ import annotations

import numpy as np
import pytest

from dynamatch.data.stimulus import capture_stimulus
from dynamatch.models.compressor import Compressor
from dynamatch.optimize.objective import CompressorObjective

SAMPLE_RATE = 44_100


@pytest.mark.parametrize("model", ["ff5"])
def test_float32_objective_matches_float64(model):
    x = capture_stimulus(SAMPLE_RATE, duration_seconds=12.0, seed=0).astype(np.float32)
    y = Compressor(-30, 4, 5, 150, 3).process(x.astype(np.float64), SAMPLE_RATE).astype(np.float32)
    wide = CompressorObjective(x.astype(np.float64), y.astype(np.float64), SAMPLE_RATE, model=model)
    narrow = CompressorObjective(x, y, SAMPLE_RATE, model=model)
    assert narrow._dry.dtype == narrow._target.dtype == narrow._level_log.dtype == np.float32
    start = Compressor(-25, 3, 3, 100, 1).as_model(model)
    q = wide.kernel_params(start)
    loss64, grad64, hess64 = wide.loss_grad_hess(q)
    loss32, grad32, hess32 = narrow.loss_grad_hess(q)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-6 * np.abs(grad64).max())
    np.testing.assert_allclose(hess32, hess64, rtol=1e-4, atol=1e-6 * np.abs(hess64).max())
    assert narrow.target_energy == pytest.approx(float(np.sum(narrow._target.astype(np.float64) ** 2)), rel=1e-12)
