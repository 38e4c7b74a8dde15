"""Slow, obviously-correct reference implementations that the fast kernels are tested against.

Each reference takes an independent code path (scipy, per-chunk rendering, plain loops); none imports
the kernel it checks.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

PREFILTER_POLE = 0.995  # H(z) = (1 - z^-1) / (1 - 0.995 z^-1), the 4A-2A loss pre-filter


def prefilter_naive(x: np.ndarray) -> np.ndarray:
    """The 4A-2A pre-filter along the last axis by ``scipy.signal.lfilter`` (zero initial state)."""
    return lfilter([1.0, -1.0], [1.0, -PREFILTER_POLE], np.asarray(x, dtype=np.float64), axis=-1)


def chunked_prediction_naive(dry, wet, compressor, sample_rate, chunk_samples, warmup_samples, prefilter=True):
    """Counted (prediction, target) samples of the 4A-2A chunked loss, concatenated in time order.

    Each chunk is rendered afresh by ``compressor.process`` (gain state 1) and pre-filtered from zero
    state; the target is pre-filtered once over the whole signal.  The first chunk is counted from
    its first sample, later ones after ``warmup_samples``.
    """
    dry = np.asarray(dry, dtype=np.float64)
    wet = np.asarray(wet, dtype=np.float64)
    filt = prefilter_naive if prefilter else (lambda v: v)
    target = filt(wet)
    predicted, counted_target = [], []
    start = 0
    while True:
        stop = min(start + chunk_samples, dry.size)
        z = filt(compressor.process(dry[start:stop], sample_rate))
        skip = 0 if start == 0 else warmup_samples
        predicted.append(z[skip:])
        counted_target.append(target[start + skip:stop])
        if stop == dry.size:
            break
        start += chunk_samples - warmup_samples
    return np.concatenate(predicted), np.concatenate(counted_target)


def chunked_esr_naive(dry, wet, compressor, sample_rate, chunk_samples, warmup_samples, prefilter=True) -> float:
    """Pre-filtered ESR ``Σ(z - t)² / Σt²`` of the chunked prediction (see :func:`chunked_prediction_naive`)."""
    z, t = chunked_prediction_naive(dry, wet, compressor, sample_rate, chunk_samples, warmup_samples, prefilter)
    return float(np.sum((z - t) ** 2) / np.sum(t**2))


def torchcomp_esr(dry: np.ndarray, target_filtered: np.ndarray):
    """Pre-filtered ESR as a differentiable torch function of the kernel parameters
    ``(threshold_db, ratio, alpha_attack, alpha_release, makeup_db)`` (a float64 tensor of shape (5,)),
    built on torchcomp's compressor (one chunk, gain state 1 at the start).

    Returns ``(esr, prefilter_torch)``.  The pre-filter is the difference ``u[n] - u[n-1]`` followed by
    torchlpc's one-pole recursion ``z[n] = v[n] + p z[n-1]`` (its backward is again a recursion, so
    reverse-over-reverse autograd works through it).
    """
    import torch
    import torchcomp
    from torchlpc import sample_wise_lpc

    n = dry.size
    x = torch.from_numpy(np.asarray(dry, dtype=np.float64))
    level = x.abs().clamp_min(1e-10)[None]
    pole = torch.full((1, n, 1), -PREFILTER_POLE, dtype=torch.float64)  # lpc convention: y = v - a y[n-1]
    t = torch.from_numpy(np.asarray(target_filtered, dtype=np.float64))
    target_energy = torch.sum(t**2)

    def prefilter_torch(u):
        v = u - torch.nn.functional.pad(u, (1, 0))[:-1]
        return sample_wise_lpc(v[None], pole)[0]

    def esr(params):
        # a very low expander threshold with ratio 0.5 disables torchcomp's expander
        gain = torchcomp.compexp_gain(level, params[0:1], params[1:2], -1000.0, 0.5, params[2:3], params[3:4])[0]
        z = prefilter_torch(x * gain * 10.0 ** (params[4] / 20.0))
        return torch.sum((z - t) ** 2) / target_energy

    return esr, prefilter_torch


def render_naive(compressor, x, sample_rate):
    """Output (before make-up) and linked gain of any family member, one sample at a time in plain
    Python: its equations (``spec.step`` / ``spec.output``) run with floats, not the generated kernels.
    ``x`` is (samples,) or (channels, samples); the detector sees the channel sample of largest
    magnitude, the output stage runs per channel."""
    import math
    from types import SimpleNamespace

    from dynamatch.models.blocks import FloatOps

    spec = compressor.spec
    x2d = np.atleast_2d(np.asarray(x, dtype=np.float64))
    q = SimpleNamespace(**{p.kernel_name: float(p.to_kernel(compressor.to_dict()[p.name], sample_rate))
                           for p in spec.parameters[:-1]})
    state = dict(spec.states)
    output_states = [dict(spec.output_states) for _ in range(x2d.shape[0])]
    out = np.empty_like(x2d)
    gain = np.empty(x2d.shape[1])
    for n in range(x2d.shape[1]):
        column = x2d[:, n]
        detector = float(column[int(np.argmax(np.abs(column)))])
        level_log = math.log(max(abs(detector), 1e-10))
        state, g = spec.step(FloatOps, q, SimpleNamespace(**state), detector, level_log)
        gain[n] = g
        for c in range(x2d.shape[0]):
            u = float(x2d[c, n]) * g
            if spec.output is not None:
                output_states[c], u = spec.output(FloatOps, q, SimpleNamespace(**output_states[c]), u)
            out[c, n] = u
    return out.reshape(np.shape(x)), gain


def chunked_esr_model_naive(dry, wet, compressor, sample_rate, chunk_samples, warmup_samples):
    """The chunked pre-filtered ESR of any family member, from :func:`render_naive` per chunk
    (rest state at each chunk start), scipy's pre-filter and plain numpy sums."""
    target = prefilter_naive(wet)
    makeup = 10.0 ** (compressor.makeup_db / 20.0)
    predicted, counted = [], []
    start = 0
    while True:
        stop = min(start + chunk_samples, dry.size)
        z = prefilter_naive(makeup * render_naive(compressor, dry[start:stop], sample_rate)[0])
        skip = 0 if start == 0 else warmup_samples
        predicted.append(z[skip:])
        counted.append(target[start + skip:stop])
        if stop == dry.size:
            break
        start += chunk_samples - warmup_samples
    z, t = np.concatenate(predicted), np.concatenate(counted)
    return float(np.sum((z - t) ** 2) / np.sum(t**2))
