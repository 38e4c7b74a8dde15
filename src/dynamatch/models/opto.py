r"""A virtual optical levelling amplifier in the spirit of the Teletronix LA-2A (a simulation).

This is dynamatch's built-in reference device: the default demo renders a stimulus through it and
fits the 5-parameter :class:`~dynamatch.models.compressor.Compressor` to the result.  It reproduces
the LA-2A's main traits phenomenologically; it is **not** a circuit model of the real unit, and its
constants were chosen to match published descriptions of the unit (≈ 10 ms attack, ≈ 60 ms for the
first half of the release, 1–15 s for the rest), not measured from one.  Equations, per sample
(kernel: :mod:`dynamatch.kernels.opto`):

* **Feedback sidechain.**  The panel is driven by the *output* (input times the previous sample's
  gain, before the output gain), scaled by the peak-reduction knob:
  :math:`k_{dB} = -20 + 0.6\,\mathrm{PR}` dB (PR 0 → −20 dB: no audible reduction; PR 100 → +40 dB).
* **Electroluminescent panel.**  Light :math:`\ell` follows the rectified drive instantly and decays
  with a 10 ms (10–90 %) afterglow: :math:`\ell[n] = \max(k|x[n]|g[n-1],\ \ell[n-1]e^{-1/(\tau_p f_s)})`.
* **Static characteristic (soft knee).**  The photoresistor shunts a divider whose loss is
  :math:`T = 20\log_{10}(1 + \ell^p)` dB.  Far above the knee :math:`T \approx p\,(L_{out} + k_{dB})`,
  and since :math:`L_{out} = L_{in} - T` the steady-state ratio is :math:`1 + p`: ``compress`` uses
  :math:`p = 2` (3:1, softening to 1:1 through a ~20 dB knee), ``limit`` uses :math:`p = 10` (11:1,
  a sharper knee) — the real unit's switch changes the sidechain mix; here it changes the curve.
* **Photoresistor, two-stage.**  Gain reduction is the sum of a fast stage :math:`f` and a slow
  stage :math:`s` (dB).  The slow stage charges towards :math:`(1-w)T` (w = 0.6) with a 300 ms
  (10–90 %) time; the fast stage charges towards :math:`T - s` with a cell attack of
  :math:`(1 + p)\cdot 10` ms, which the feedback loop shortens about :math:`1 + p` times (after a
  −40 → −6 dBFS step at PR 70, 80 % of the settled reduction in 7.8 ms compress, 4.8 ms limit), and
  releases with 80 ms (≈ 50 % of the reduction recovered in ≈ 65 ms).  The slow stage releases
  with a 10–90 % time between 2.5 s and 28 s set by the cell's *memory* :math:`m`:
  :math:`t_{slow} = t_{short} + m\,(t_{long} - t_{short})`.
* **Memory.**  :math:`m` charges towards the drive's hardness :math:`h = T/(T + 6\,\mathrm{dB})`
  with an 8 s time and discharges with 60 s, so long or hard driving slows the final recovery.
  90 % recovery at PR 70 (1 kHz): 0.2 s at −20 dBFS → 1.5 s; 1 s at −6 dBFS → 3.9 s;
  10 s at −6 dBFS → 9.9 s; 60 s at 0 dBFS, PR 100 → 12.2 s.
* **Output.**  :math:`y = x\,g\,10^{G_{out}/20}` with :math:`g = 10^{-(f+s)/20} \in (0, 1]`; no
  output-stage saturation.

>>> amp = OptoLevellingAmplifier(peak_reduction=60, mode="compress")
>>> y = amp.process(x, sample_rate=44100)               # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import NonFiniteAudioError, ParameterError
from ..kernels.opto import initial_state, opto_gain
from ..units import RISE_TIME_CONSTANT, db_to_gain, ms_to_coefficient
from .parameters import MODES
from .shapes import as_channel_block, channels_of, check_sample_rate

EXPONENTS = {"compress": 2, "limit": 10}  # steady-state ratio is 1 + exponent
SIDECHAIN_MIN_DB = -20.0  # sidechain gain at peak reduction 0
SIDECHAIN_MAX_DB = 40.0  # sidechain gain at peak reduction 100
PANEL_DECAY_MS = 10.0
ATTACK_MS = 10.0  # ≈ closed-loop attack; the cell's own attack is (1 + exponent) times longer
SLOW_ATTACK_MS = 300.0
FAST_RELEASE_MS = 80.0
SLOW_RELEASE_SHORT_MS = 2500.0
SLOW_RELEASE_LONG_MS = 28000.0
MEMORY_CHARGE_MS = 8000.0
MEMORY_DISCHARGE_MS = 60000.0
FAST_FRACTION = 0.6
HARDNESS_DB = 6.0
# All times are 10–90 % times of their one-pole (see dynamatch.units.ms_to_coefficient).


@dataclass(frozen=True)
class OptoLevellingAmplifier:
    """Simulated LA-2A-style optical levelling amplifier; immutable, validated on construction."""

    peak_reduction: float = 50.0
    mode: str = "compress"
    output_gain_db: float = 0.0

    def __post_init__(self) -> None:
        peak_reduction = float(self.peak_reduction)
        if not (0.0 <= peak_reduction <= 100.0):
            raise ParameterError(f"peak_reduction must be between 0 and 100, got {self.peak_reduction}")
        if self.mode not in MODES:
            raise ParameterError(f"mode must be one of {MODES}, got {self.mode!r}")
        output_gain_db = float(self.output_gain_db)
        if not math.isfinite(output_gain_db):
            raise ParameterError(f"output_gain_db must be finite, got {self.output_gain_db}")
        object.__setattr__(self, "peak_reduction", peak_reduction)
        object.__setattr__(self, "output_gain_db", output_gain_db)

    @property
    def sidechain_db(self) -> float:
        """Sidechain gain set by the peak-reduction knob, in dB (linear in the knob)."""
        return SIDECHAIN_MIN_DB + (SIDECHAIN_MAX_DB - SIDECHAIN_MIN_DB) * self.peak_reduction / 100.0

    @property
    def exponent(self) -> int:
        """Exponent p of the cell curve; the steady-state ratio far above the knee is 1 + p."""
        return EXPONENTS[self.mode]

    def process(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Level ``x``: (samples,) mono or (channels, samples) stereo-linked; float64, same shape."""
        return self.stream(sample_rate, channels=channels_of(x)).process(x)

    __call__ = process

    def gain_reduction_db(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Gain reduction (dB, ≥ 0, before the output gain) over time, shape (samples,)."""
        return self.stream(sample_rate, channels=channels_of(x)).gain_reduction_db(x)

    def stream(self, sample_rate: float, channels: int = 1) -> "OptoStream":
        """A stateful processor for block-by-block use (output identical for any block size)."""
        return OptoStream(self, float(sample_rate), int(channels))


@dataclass
class OptoStream:
    """Block-by-block processing with the panel, cell and memory state carried across calls."""

    device: OptoLevellingAmplifier
    sample_rate: float
    channels: int = 1
    state: np.ndarray = field(default_factory=initial_state)

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        if self.channels < 1:
            raise ParameterError(f"channels must be >= 1, got {self.channels}")
        rate, exponent = self.sample_rate, self.device.exponent

        def alpha(time_ms: float) -> float:
            return float(ms_to_coefficient(time_ms, rate))

        def time_constant_samples(time_ms: float) -> float:  # 1 / -ln(1 - alpha)
            return time_ms * rate / RISE_TIME_CONSTANT

        self._arguments = (
            float(db_to_gain(self.device.sidechain_db)),
            exponent,
            1.0 - alpha(PANEL_DECAY_MS),
            alpha(ATTACK_MS * (1.0 + exponent)),
            alpha(SLOW_ATTACK_MS),
            alpha(FAST_RELEASE_MS),
            time_constant_samples(SLOW_RELEASE_SHORT_MS),
            time_constant_samples(SLOW_RELEASE_LONG_MS),
            alpha(MEMORY_CHARGE_MS),
            alpha(MEMORY_DISCHARGE_MS),
            FAST_FRACTION,
            HARDNESS_DB,
        )
        self._output_gain = float(db_to_gain(self.device.output_gain_db))

    def reset(self) -> None:
        """Back to a rested device (dark panel, no reduction, no memory)."""
        self.state = initial_state()

    def gain(self, block: np.ndarray) -> np.ndarray:
        """Advance the state over ``block`` and return its linear gain in (0, 1] (no output gain)."""
        x2d = self._as_2d(block)
        out = np.empty(x2d.shape[1], dtype=np.float64)
        opto_gain(x2d, *self._arguments, self.state, out)
        return out

    def gain_reduction_db(self, block: np.ndarray) -> np.ndarray:
        """Advance the state over ``block`` and return its gain reduction in dB (≥ 0)."""
        return -20.0 * np.log10(self.gain(block))

    def process(self, block: np.ndarray) -> np.ndarray:
        """Level one block: (samples,) for mono or (channels, samples)."""
        x = np.asarray(block, dtype=np.float64)
        return x * (self.gain(x) * self._output_gain)

    def _as_2d(self, block: np.ndarray) -> np.ndarray:
        x2d = as_channel_block(block, self.channels)
        if not np.isfinite(x2d).all():
            raise NonFiniteAudioError(
                "input contains NaN or infinite samples; replace them before processing"
            )
        return x2d
