"""Wall time of named stages (``dynamatch fit --verbose`` prints them)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

#: When the process started importing dynamatch (the CLI reports imports as a stage).
PROCESS_STARTED = time.perf_counter()


class StageTimes:
    """Ordered ``{stage: seconds}``; ``with times.stage("align"): ...`` adds to a stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

    def total(self) -> float:
        return sum(self.seconds.values())

    def lines(self) -> list[str]:
        return [f"{name:<12} {seconds:8.3f} s" for name, seconds in self.seconds.items()] + [
            f"{'total':<12} {self.total():8.3f} s"]


@contextmanager
def maybe(times: StageTimes | None, name: str) -> Iterator[None]:
    """``times.stage(name)`` when ``times`` is given, else nothing."""
    if times is None:
        yield
    else:
        with times.stage(name):
            yield
