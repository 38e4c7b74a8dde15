"""Text values that commands and the Python API share: settings chains, modes, frame sizes, name lists.

Each parser returns plain values or raises :class:`~dynamatch.errors.ParameterError` with one line that
names the option and shows a valid example (the CLI prints it with the option's name).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import ParameterError
from .models.parameters import MODES


def parse_chain(text: str) -> list[float]:
    """``'100:40:5'`` → 100, 95, …, 40 (either direction); or a comma list ``'100,90,80'``."""
    example = "write start:stop:step (100:40:5) or a list (100,90,80)"
    text = str(text).strip()
    if ":" in text:
        parts = text.split(":")
        try:
            start, stop, step = (float(v) for v in parts)
        except ValueError:
            raise ParameterError(f"--chain {text!r}: {example}") from None
        if not all(math.isfinite(v) for v in (start, stop, step)) or step == 0:
            raise ParameterError(f"--chain {text!r}: the values must be finite and the step non-zero; {example}")
        step = -abs(step) if stop < start else abs(step)
        return [float(v) for v in np.arange(start, stop + step / 2, step)]
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"--chain {text!r}: {example}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ParameterError(f"--chain {text!r}: {example}")
    return values


def parse_modes(text: str) -> list[str]:
    """``'compress,limit'`` → ``['compress', 'limit']`` (each one of :data:`~dynamatch.models.opto.MODES`)."""
    modes = [m.strip() for m in str(text).split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ParameterError(f"--modes {text!r}: unknown mode(s) {bad}; use {' and/or '.join(MODES)}")
    return modes


def parse_frames(text: str, every: Sequence[int]) -> tuple[int, ...]:
    """``'all'`` → ``every``; ``'32,2048'`` → (32, 2048) (positive integers)."""
    if str(text).strip() == "all":
        return tuple(every)
    try:
        frames = tuple(int(f) for f in str(text).split(",") if f.strip())
    except ValueError:
        frames = ()
    if not frames or any(f < 1 for f in frames):
        raise ParameterError(f"--frames {text!r}: give frame sizes as positive integers (32,2048) or 'all'")
    return frames


def parse_names(text: str | None) -> list[str] | None:
    """``'a, b'`` → ``['a', 'b']``; None or empty → None (the command's default set)."""
    if text is None:
        return None
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    return names or None
