r"""FF-5 objective sums in torch, batched over chunks, with every recursion as a parallel scan (CPU or CUDA).

Every recursion of the objective is a first-order linear time-varying one-pole
:math:`y[n] = a[n]\,y[n-1] + b[n]`, :math:`y[-1] = 0`, once the attack/release branch of each sample is
known.  :func:`linear_scan` evaluates it as an associative scan over pairs,
:math:`(a, x) \oplus (b, z) = (ab,\ z + b\,x)` (Blelloch 1990; Martin & Cundy 2018): Hillis–Steele
inside blocks of ``block`` samples, the same scan over the block ends (recursively), then one fix-up
multiply-add.  Only products of the coefficients ``a`` ∈ [0, 1] and sums of bounded terms appear (no
division by running products, no ``cumsum`` of rescaled terms), so the scan is as stable as the sequential
loop for any length.

The branch itself depends on the previous gain.  :func:`ff5_branches` finds it by fixed-point iteration:
guess the branches, scan, recompute each sample's branch from the scanned gain, repeat until no branch
changes.  If the branches before sample k are right, the gains before k are right and so is the branch
of k after the next pass: the iteration ends, at the latest after one pass per sample, and its fixed
point *is* the sequential recursion (in practice a handful of passes; a warm start from the previous
evaluation's branches usually needs one).

With the branch fixed, the first and second sensitivities of the gain (FF-5, kernel parameters
``q = (CT, R, α_a, α_r)``, :math:`s = 1 - 1/R`, :math:`o = \lambda - c\,CT`, :math:`\hat g = e^{-s o}`
for :math:`o > 0`) are one-poles with the same :math:`a = 1 - \alpha`:

.. math::

    g_i[n] &= (1-\alpha) g_i[n-1] + \alpha \hat g_i + \alpha_i (\hat g - g[n-1]) \\
    g_{ij}[n] &= (1-\alpha) g_{ij}[n-1] + \alpha \hat g_{ij} + \alpha_i(\hat g_j - g_j[n-1]) + \alpha_j(\hat g_i - g_i[n-1])

(:math:`\alpha_i` = 1 for the active coefficient, :math:`\hat g_{\alpha} = 0`).  The pre-filter
:math:`z[n] = u[n] - \zeta u[n-1] + p\,z[n-1]` of the prediction and of each sensitivity is a scan with
constant ``a = p``.  The sums returned have the layout of :mod:`dynamatch.kernels.objective`.

Import this module only where torch is wanted: it imports torch at the top.
"""

from __future__ import annotations

import torch

from ..units import DB_TO_LOG

PAIRS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))
DEFAULT_BLOCK = 16


def _block_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive Hillis–Steele scan along the last axis: (running products of a, scanned b)."""
    length = b.shape[-1]
    step = 1
    while step < length:
        b = torch.cat([b[..., :step], b[..., step:] + a[..., step:] * b[..., :-step]], dim=-1)
        a = torch.cat([a[..., :step], a[..., step:] * a[..., :-step]], dim=-1)
        step *= 2
    return a, b


def linear_scan(a: torch.Tensor, b: torch.Tensor, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    r"""Solve :math:`y[n] = a[n] y[n-1] + b[n]`, :math:`y[-1] = 0`, along the last axis.

    ``a`` broadcasts against ``b`` (e.g. one coefficient row shared by many sequences); the result has
    ``b``'s shape.  Built from differentiable torch operations only (autograd and forward-mode work)."""
    if block < 2:
        raise ValueError(f"block must be >= 2, got {block}")
    length = b.shape[-1]
    a = a.expand(*a.shape[:-1], length) if a.shape[-1] == 1 else a
    if length <= block:
        return _block_scan(a, b)[1]
    blocks = -(-length // block)
    pad = blocks * block - length
    if pad:
        a = torch.nn.functional.pad(a, (0, pad))
        b = torch.nn.functional.pad(b, (0, pad))
    a = a.reshape(*a.shape[:-1], blocks, block)
    b = b.reshape(*b.shape[:-1], blocks, block)
    products, partial = _block_scan(a, b)
    ends = linear_scan(products[..., -1], partial[..., -1], block)  # true value at each block's end
    carry = torch.nn.functional.pad(ends[..., :-1], (1, 0)).unsqueeze(-1)
    y = partial + products * carry
    return y.reshape(*y.shape[:-2], blocks * block)[..., :length]


def prefilter_scan(u: torch.Tensor, zero: float, pole: float, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    r""":math:`z[n] = u[n] - \zeta\,u[n-1] + p\,z[n-1]` along the last axis from zero state."""
    drive = u - zero * torch.nn.functional.pad(u[..., :-1], (1, 0)) if zero else u
    if pole == 0.0:
        return drive
    return linear_scan(torch.full_like(u[..., :1], pole), drive, block)


def static_gain(level_log: torch.Tensor, threshold_db, ratio) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(over, slope, target) of the hard knee: target = exp(-slope·over) where over > 0, else 1."""
    slope = 1.0 - 1.0 / ratio
    over = level_log - DB_TO_LOG * threshold_db
    target = torch.where(over > 0.0, torch.exp(-slope * over), torch.ones_like(over))
    return over, slope, target


def ff5_branches(target: torch.Tensor, alpha_attack: float, alpha_release: float,
                 attacking: torch.Tensor | None = None, block: int = DEFAULT_BLOCK,
                 max_passes: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    r"""Branching gain one-pole from rest (g[-1] = 1), attack while ``target < g[n-1]``, by branch fixed point.

    Returns (gain, attacking mask, passes); no autograd (see :func:`ff5_gain_given_branches`).
    ``attacking`` is the starting guess (e.g. the previous evaluation's)."""
    with torch.no_grad():
        target = target.detach()
        if attacking is None or attacking.shape != target.shape:
            previous_target = torch.nn.functional.pad(target[..., :-1], (1, 0), value=1.0)
            attacking = target < previous_target
        limit = max_passes if max_passes is not None else target.shape[-1] + 1
        passes = 0
        while True:
            passes += 1
            gain = ff5_gain_given_branches(target, alpha_attack, alpha_release, attacking, block)
            previous = torch.nn.functional.pad(gain[..., :-1], (1, 0), value=1.0)
            branch = previous > target
            if torch.equal(branch, attacking):
                return gain, attacking, passes
            if passes >= limit:
                raise FloatingPointError(f"the attack/release branches did not settle in {passes} passes")
            attacking = branch


def ff5_gain_given_branches(target: torch.Tensor, alpha_attack, alpha_release, attacking: torch.Tensor,
                            block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """The gain one-pole with the branch of every sample fixed (differentiable in all inputs): one scan of
    ``h = g - 1``, ``h[n] = (1 - α) h[n-1] + α (ĝ - 1)``."""
    alpha = alpha_release + (alpha_attack - alpha_release) * attacking.to(target.dtype)
    return 1.0 + linear_scan(1.0 - alpha, alpha * (target - 1.0), block)


def ff5_sums(order: int, x: torch.Tensor, level_log: torch.Tensor, t: torch.Tensor, counted: torch.Tensor,
             q, makeup_gain: float, zero: float, pole: float, attacking: torch.Tensor | None = None,
             block: int = DEFAULT_BLOCK) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Objective sums (float64, layout of :mod:`dynamatch.kernels.objective`) over a batch of chunks.

    ``x, level_log, t`` (chunks, samples) share one dtype/device; ``counted`` (same shape, bool) marks the
    samples in the loss (after the warm-up, before the padding).  Returns (sums, attacking, passes)."""
    threshold_db, ratio, alpha_attack, alpha_release = (float(v) for v in q)
    over, slope, target = static_gain(level_log, threshold_db, ratio)
    gain, attacking, passes = ff5_branches(target, alpha_attack, alpha_release, attacking, block)
    weight = counted.to(x.dtype)
    z = prefilter_scan(x * gain, zero, pole, block)
    r = makeup_gain * z - t
    rw = r * weight
    zw = z * weight
    parts = [(rw * r).sum(-1), (zw * z).sum(-1), (zw * t).sum(-1), (rw * z).sum(-1)]
    if order >= 1:
        c = DB_TO_LOG
        on = (over > 0.0).to(x.dtype)
        alpha = alpha_release + (alpha_attack - alpha_release) * attacking.to(x.dtype)
        decay = (1.0 - alpha).unsqueeze(-2)
        previous = torch.nn.functional.pad(gain[..., :-1], (1, 0), value=1.0)
        attack = attacking.to(x.dtype)
        release = 1.0 - attack
        g_hat = target * on
        g_t = g_hat * (slope * c)
        g_r = g_hat * (-over / ratio**2)
        gap = target - previous
        first_drive = torch.stack([alpha * g_t, alpha * g_r, attack * gap, release * gap], dim=-2)
        first = linear_scan(decay, first_drive, block)  # (chunks, 4, samples)
        z_first = prefilter_scan(x.unsqueeze(-2) * first, zero, pole, block)
        parts.append((rw.unsqueeze(-2) * z_first).sum(-1).T)
        parts.append((zw.unsqueeze(-2) * z_first).sum(-1).T)
        if order >= 2:
            parts.append(_pair_products(z_first, weight))
            prev_first = torch.nn.functional.pad(first[..., :-1], (1, 0))
            g_tt = g_hat * (slope * c) ** 2
            g_tr = g_hat * (c / ratio**2) * (1.0 - slope * over)
            g_rr = g_hat * (over**2 / ratio**4 + 2.0 * over / ratio**3)
            static_first = (g_t, g_r)
            coefficient = (None, None, attack, release)
            drives = []
            for i, j in PAIRS:
                if i < 2 and j < 2:
                    drives.append(alpha * (g_tt if (i, j) == (0, 0) else g_tr if (i, j) == (0, 1) else g_rr))
                    continue
                term = torch.zeros_like(gain)
                for a_index, other in ((i, j), (j, i)):
                    if coefficient[a_index] is None:
                        continue
                    static = static_first[other] if other < 2 else 0.0
                    term = term + coefficient[a_index] * (static - prev_first[..., other, :])
                drives.append(term)
            second = linear_scan(decay, torch.stack(drives, dim=-2), block)
            z_second = prefilter_scan(x.unsqueeze(-2) * second, zero, pole, block)
            parts.append((rw.unsqueeze(-2) * z_second).sum(-1).T)
    flat = [p.reshape(-1, p.shape[-1]) if p.ndim > 1 else p.reshape(1, -1) for p in parts]
    sums = torch.cat([f.to(torch.float64).sum(-1) for f in flat])
    return sums, attacking, passes


def _pair_products(z_first: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ w z_i z_j for the PAIRS, as (pairs, chunks)."""
    zw = z_first * weight.unsqueeze(-2)
    return torch.stack([(zw[..., i, :] * z_first[..., j, :]).sum(-1) for i, j in PAIRS])


def available_device(device: str) -> torch.device:
    """``device`` as a torch.device; a clear error when CUDA is asked for but absent."""
    from ..errors import ParameterError

    if device in ("cpu-torch", "cpu"):
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu-torch or numba")
        return torch.device(device)
    raise ParameterError(f"unknown torch device {device!r}; use cuda, cuda:N or cpu-torch")

