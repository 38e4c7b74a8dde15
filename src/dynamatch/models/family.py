r"""The grey-box model family: every member described once, by its per-sample equations.

Each :class:`ModelSpec` names its parameters in real units (always ending with ``makeup_db``), its
states with their rest values, and a ``step`` written with the blocks of :mod:`dynamatch.models.blocks`.
Everything else is derived from that one description: the numba render and objective kernels with exact
first and second derivatives (``python -m dynamatch.codegen`` writes them to
``dynamatch/kernels/generated/``), the plugin's C++ step, and the per-sample reference of the tests.

Shared notation (levels in nepers, see :mod:`~dynamatch.models.blocks`): :math:`\lambda = \ln\max(|x|, \varepsilon)`,
:math:`c = \ln 10 / 20`, slope :math:`s = 1 - 1/R`, static gain :math:`\hat g = e^{-s\,\max(\lambda - c\,CT,\ 0)}`
(hard knee), branching one-pole :math:`y = y_{n-1} + \alpha(u - y_{n-1})` with α = attack while the gain
falls.  The output is always :math:`y = x\,g\,10^{\gamma/20}` (γ = ``makeup_db``).

Members are *nested* where the physics allows: at the neutral values of its extra parameters a model
reproduces its ``parent`` exactly (``nested=True``), so a fit can start from the parent's optimum and never
end worse than it on the audio it was fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import ParameterError
from . import blocks as b
from .parameters import Parameter

# -- the parameters, shared by name across members -----------------------------------------------
THRESHOLD = Parameter("threshold_db", "db", -36.0, None, description="level above which the gain falls")
RATIO = Parameter("ratio", "ratio", 4.0, (1.0, 20.0), description="steady-state input:output slope above the threshold")
ATTACK = Parameter("attack_ms", "time", 1.0, (0.1, 100.0), description="10-90 % time of the attack one-pole")
RELEASE = Parameter("release_ms", "time", 200.0, (10.0, 1000.0), description="10-90 % time of the (fast) release one-pole")
MAKEUP = Parameter("makeup_db", "db", 0.0, None, description="output gain")
KNEE = Parameter("knee_db", "db", 6.0, (0.0, 30.0), neutral=0.0, starts=(6.0, 12.0),
                 description="width of the quadratic soft knee")
DETECTOR = Parameter("detector_ms", "time", 10.0, (0.001, 300.0), neutral=0.001, starts=(5.0, 30.0),
                     description="10-90 % time of the RMS (power) detector")
EMPHASIS = Parameter("emphasis_db", "db", 0.0, (-12.0, 24.0), neutral=0.0, starts=(6.0,),
                     description="side-chain high-frequency boost")
EMPHASIS_HZ = Parameter("emphasis_hz", "hz", 2000.0, (100.0, 10000.0), neutral=2000.0, starts=(1000.0, 4000.0),
                        description="corner of the side-chain emphasis shelf")
FEEDBACK = Parameter("feedback", "share", 0.5, (0.0, 1.0), neutral=0.0, starts=(0.5, 0.9),
                     description="share of the detector fed from the output (0 feed-forward, 1 feedback)")
RELEASE_SLOW = Parameter("release_slow_ms", "time", 3000.0, (300.0, 20000.0), neutral=3000.0, starts=(1000.0, 5000.0),
                         description="10-90 % time of the slow release stage")
SLOW_SHARE = Parameter("slow_share", "share", 0.5, (0.0, 1.0), neutral=0.0, starts=(0.3, 0.7),
                       description="largest share of the slow stage in the gain (reached at full memory)")
PANEL = Parameter("panel_ms", "time", 10.0, (0.05, 300.0), starts=(3.0, 30.0),
                  description="10-90 % decay time of the detector's peak-hold (the opto cell's panel afterglow)")
SLOW_ATTACK = Parameter("slow_attack_ms", "time", 300.0, (10.0, 3000.0), starts=(100.0, 1000.0),
                        description="10-90 % time of the slow stage's attack")
MEMORY = Parameter("memory_ms", "time", 2000.0, (50.0, 30000.0), neutral=2000.0, starts=(500.0, 5000.0),
                   description="10-90 % time of the cell memory that sets the slow share")
HIGHPASS = Parameter("output_highpass_hz", "hz", 7.0, (0.0, 100.0), neutral=0.0, starts=(3.0, 8.0),
                     description="corner of the first-order high-pass on the output (0 = none)")
#: Above this the cell curve ln(1 + e^v) is v to double precision (and e^v cannot overflow).
SOFTPLUS_LINEAR = 30.0
#: Rest value of the ``opto`` panel light (nepers, ≈ −260 dB): dark.
PANEL_DARK = -30.0


@dataclass(frozen=True)
class ModelSpec:
    """One member of the family: parameters (real units, ``makeup_db`` last), states, equations."""

    name: str
    summary: str
    parameters: tuple[Parameter, ...]
    states: dict[str, float]
    step: Callable = field(repr=False)
    parent: str | None = None
    nested: bool = False
    output: Callable | None = field(default=None, repr=False)
    output_states: dict[str, float] = field(default_factory=dict)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def kernel_names(self) -> tuple[str, ...]:
        """Kernel-space names of the parameters the kernels take (all but ``makeup_db``)."""
        return tuple(p.kernel_name for p in self.parameters[:-1])

    @property
    def module_name(self) -> str:
        """Module of its generated kernels in :mod:`dynamatch.kernels.generated`."""
        return self.name.replace("-", "_")

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ParameterError(f"model {self.name!r} has no parameter {name!r}; it has {', '.join(self.parameter_names)}")

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.parameters}


# -- the members ------------------------------------------------------------------------------------
def _ff5(ops, q, s, x, level_log):
    slope = b.slope_of(ops, q.ratio)
    target = b.hard_knee_gain(ops, level_log, q.threshold_db, slope)
    gain = b.gain_one_pole(ops, "gain", target, s.gain, q.alpha_attack, q.alpha_release)
    return {"gain": gain}, gain


def _ff5_knee(ops, q, s, x, level_log):
    slope = b.slope_of(ops, q.ratio)
    target = b.soft_knee_gain(ops, level_log, q.threshold_db, slope, q.knee_db)
    gain = b.gain_one_pole(ops, "gain", target, s.gain, q.alpha_attack, q.alpha_release)
    return {"gain": gain}, gain


def _ff5_rms(ops, q, s, x, level_log):
    level, power = b.rms_level(ops, x, s.power, q.alpha_detector)
    slope = b.slope_of(ops, q.ratio)
    target = b.hard_knee_gain(ops, level, q.threshold_db, slope)
    gain = b.gain_one_pole(ops, "gain", target, s.gain, q.alpha_attack, q.alpha_release)
    return {"gain": gain, "power": power}, gain


def _ff5_emphasis(ops, q, s, x, level_log):
    sidechain, lowpass = b.emphasis(ops, x, s.lowpass, q.emphasis_db, q.alpha_emphasis)
    level = b.log_level(ops, ops.abs(sidechain))
    slope = b.slope_of(ops, q.ratio)
    target = b.hard_knee_gain(ops, level, q.threshold_db, slope)
    gain = b.gain_one_pole(ops, "gain", target, s.gain, q.alpha_attack, q.alpha_release)
    return {"gain": gain, "lowpass": lowpass}, gain


def _feedback(ops, q, s, x, level_log):
    # detector on the output: lambda + phi * ln g[n-1]; slope s/(1 - phi s) keeps the steady-state ratio R
    level = ops.let("detector_log", level_log + q.feedback * ops.log(s.gain))
    feedforward_slope = b.slope_of(ops, q.ratio)
    slope = ops.let("feedback_slope", feedforward_slope / (1.0 - q.feedback * feedforward_slope))
    target = b.hard_knee_gain(ops, level, q.threshold_db, slope)
    gain = b.gain_one_pole(ops, "gain", target, s.gain, q.alpha_attack, q.alpha_release)
    return {"gain": gain}, gain


def _ff5_slow(ops, q, s, x, level_log):
    slope = b.slope_of(ops, q.ratio)
    target = b.hard_knee_gain(ops, level_log, q.threshold_db, slope)
    fast = b.gain_one_pole(ops, "gain", target, s.gain, q.alpha_attack, q.alpha_release)
    slow = b.gain_one_pole(ops, "slow", target, s.slow, q.alpha_attack, q.alpha_release_slow)
    memory = ops.let("memory", s.memory + q.alpha_memory * (1.0 - target - s.memory))
    gain = ops.let("opto_gain", fast + q.slow_share * memory * (slow - fast))
    return {"gain": fast, "slow": slow, "memory": memory}, gain


def _opto(ops, q, s, x, level_log):
    r"""The LA-2A's optical cell, a feedback design (levels and reductions in nepers).

    .. math::

        d &= \lambda - r[n-1] && \text{the cell sees the output level} \\
        u &= \max\big(d,\ u[n-1] + \ln(1 - \alpha_p)\big) && \text{panel light: instant rise, decay } \tau_p \\
        T &= \ln\big(1 + e^{(R-1)(u - c\,CT)}\big) && \text{cell curve: soft knee, slope } 1 - 1/R \text{ on the input} \\
        r_s &\leftarrow r_s + \alpha\,(w T - r_s) && \alpha = \alpha_{sa} \text{ rising, } \alpha_{sr} \text{ falling} \\
        r_f &\leftarrow r_f + \alpha\,(\max(T - r_s, 0) - r_f) && \alpha = \alpha_a \text{ rising, } \alpha_r \text{ falling} \\
        r &= r_f + r_s,\quad g = e^{-r}

    In steady state above the threshold :math:`r = (R-1)(\lambda - r - c\,CT)`, so the output rises
    1/R per unit of input: ``ratio`` and ``threshold_db`` keep their meaning through the feedback.  The
    slow stage charges only under sustained drive (``slow_attack_ms``), so the share of the release that
    is slow grows with how long and how hard the cell was driven: short peaks come back in
    ``release_ms``, long passages partly over ``release_slow_ms`` (program-dependent release)."""
    drive = ops.let("drive_log", level_log - s.reduction)
    decayed = ops.let("panel_decayed", s.panel + ops.log(1.0 - q.alpha_panel))
    panel = ops.let("panel", ops.where(drive > decayed, drive, decayed))
    over = ops.let("over", (q.ratio - 1.0) * (panel - b.DB_TO_LOG * q.threshold_db))
    capped = ops.let("over_capped", ops.where(over > SOFTPLUS_LINEAR, SOFTPLUS_LINEAR, over))
    cell = ops.let("cell", ops.where(over > SOFTPLUS_LINEAR, over, ops.log(1.0 + ops.exp(capped))))
    slow_target = ops.let("slow_target", q.slow_share * cell)
    slow = b.one_pole(ops, "slow", slow_target, s.slow, q.alpha_slow_attack, q.alpha_release_slow, slow_target > s.slow)
    fast_target = ops.let("fast_target", ops.where(cell > slow, cell - slow, 0.0))
    fast = b.one_pole(ops, "fast", fast_target, s.fast, q.alpha_attack, q.alpha_release, fast_target > s.fast)
    reduction = ops.let("reduction", fast + slow)
    gain = ops.let("opto_gain", ops.exp(-reduction))
    return {"fast": fast, "slow": slow, "reduction": reduction, "panel": panel}, gain


def _level(ops, q, s, x, level_log):
    magnitude = ops.let("magnitude", ops.abs(x))
    envelope = b.one_pole(ops, "envelope", magnitude, s.envelope, q.alpha_attack, q.alpha_release, magnitude > s.envelope)
    level = b.log_level(ops, envelope)
    slope = b.slope_of(ops, q.ratio)
    gain = b.hard_knee_gain(ops, level, q.threshold_db, slope)
    return {"envelope": envelope}, gain


def _rms_level_knee(ops, q, s, x, level_log):
    _, power = b.rms_level(ops, x, s.power, q.alpha_detector)
    rms = ops.let("rms", ops.sqrt(ops.where(power > b.EPSILON * b.EPSILON, power, b.EPSILON * b.EPSILON)))
    envelope = b.one_pole(ops, "envelope", rms, s.envelope, q.alpha_attack, q.alpha_release, rms > s.envelope)
    level = b.log_level(ops, envelope)
    slope = b.slope_of(ops, q.ratio)
    gain = b.soft_knee_gain(ops, level, q.threshold_db, slope, q.knee_db)
    return {"envelope": envelope, "power": power}, gain


def _gain_db(ops, q, s, x, level_log):
    slope = b.slope_of(ops, q.ratio)
    target_log = b.soft_knee_log_gain(ops, level_log, q.threshold_db, slope, q.knee_db)
    smoothed = b.one_pole(ops, "gain_log", target_log, s.gain_log, q.alpha_attack, q.alpha_release,
                          target_log < s.gain_log)
    gain = ops.let("gain", ops.exp(smoothed))
    return {"gain_log": smoothed}, gain


def _output_highpass(ops, q, s, u):
    output, lowpass = b.output_highpass(ops, u, s.output_lowpass, q.alpha_output_highpass)
    return {"output_lowpass": lowpass}, output


def with_output_highpass(spec: ModelSpec) -> ModelSpec:
    """``spec`` followed by a first-order output high-pass (``<name>-hp``, nested: 0 Hz is ``spec``)."""
    return ModelSpec(
        f"{spec.name}-hp", f"{spec.summary}; first-order high-pass on the output",
        spec.parameters[:-1] + (HIGHPASS, MAKEUP), spec.states, spec.step, parent=spec.name, nested=True,
        output=_output_highpass, output_states={"output_lowpass": 0.0},
    )


_FF5 = (THRESHOLD, RATIO, ATTACK, RELEASE)
_MEMBERS = (
    ModelSpec("ff5", "4A-2A: peak detector, hard knee, attack/release one-pole on the linear gain",
              _FF5 + (MAKEUP,), {"gain": 1.0}, _ff5),
    ModelSpec("ff5-knee", "ff5 with a quadratic soft knee of width knee_db",
              _FF5 + (KNEE, MAKEUP), {"gain": 1.0}, _ff5_knee, parent="ff5", nested=True),
    ModelSpec("ff5-rms", "ff5 with an RMS (power) detector of its own time constant",
              _FF5 + (DETECTOR, MAKEUP), {"gain": 1.0, "power": 0.0}, _ff5_rms, parent="ff5", nested=True),
    ModelSpec("ff5-emphasis", "ff5 with a side-chain high-frequency emphasis shelf",
              _FF5 + (EMPHASIS, EMPHASIS_HZ, MAKEUP), {"gain": 1.0, "lowpass": 0.0}, _ff5_emphasis,
              parent="ff5", nested=True),
    ModelSpec("feedback", "ff5 with the detector fed (partly) from its own output; ratio keeps its steady-state meaning",
              _FF5 + (FEEDBACK, MAKEUP), {"gain": 1.0}, _feedback, parent="ff5", nested=True),
    ModelSpec("ff5-slow", "ff5 plus a slow release stage whose share grows with a memory of the drive",
              _FF5 + (RELEASE_SLOW, SLOW_SHARE, MEMORY, MAKEUP), {"gain": 1.0, "slow": 1.0, "memory": 0.0},
              _ff5_slow, parent="ff5", nested=True),
    ModelSpec("opto", "LA-2A optical cell: feedback, panel afterglow, soft cell curve, fast and slow stages",
              _FF5 + (PANEL, SLOW_ATTACK, RELEASE_SLOW, SLOW_SHARE, MAKEUP),
              {"fast": 0.0, "slow": 0.0, "reduction": 0.0, "panel": PANEL_DARK}, _opto, parent="ff5"),
    ModelSpec("level", "attack/release detector on the linear level, then a hard knee (JUCE/pedalboard topology)",
              _FF5 + (MAKEUP,), {"envelope": 0.0}, _level, parent="ff5"),
    ModelSpec("rms-level-knee", "RMS detector, attack/release on the level, soft knee (LSP-style topology)",
              _FF5 + (DETECTOR, KNEE, MAKEUP), {"envelope": 0.0, "power": 0.0}, _rms_level_knee, parent="level"),
    ModelSpec("gain-db", "peak detector, soft knee, attack/release one-pole on the gain in dB (Giannoulis log domain)",
              _FF5 + (KNEE, MAKEUP), {"gain_log": 0.0}, _gain_db, parent="ff5"),
)
_WITH_HIGHPASS = ("ff5", "feedback", "ff5-slow", "opto", "ff5-emphasis")
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _MEMBERS} | {
    f"{name}-hp": with_output_highpass(spec) for spec in _MEMBERS for name in [spec.name] if name in _WITH_HIGHPASS
}

#: Members renamed since their files were written: (old name, its parameters) → today's member.  dynamatch
#: 0.2 called ``ff5-slow`` "opto"; its files name parameters that today's ``opto`` does not have.
RENAMED: dict[tuple[str, frozenset[str]], str] = {
    ("opto", frozenset(MODELS["ff5-slow"].parameter_names)): "ff5-slow",
    ("opto-hp", frozenset(MODELS["ff5-slow-hp"].parameter_names)): "ff5-slow-hp",
}


def current_name(model: str, parameter_names: Iterable[str]) -> str:
    """The member that a file naming ``model`` with these parameters describes (renamed members followed)."""
    names = frozenset(parameter_names)
    if model in MODELS and names == frozenset(MODELS[model].parameter_names):
        return model
    return RENAMED.get((model, names), model)


def model_spec(name: str) -> ModelSpec:
    """The family member ``name``, or ParameterError listing the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
