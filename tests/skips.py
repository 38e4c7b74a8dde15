"""One way to skip a test that needs something outside the project: shared data, an optional package, a tool.

Every skip message starts with its category (``shared data:``, ``optional package:``, ``tool:``) so that the
summary printed at the end of the run (conftest.pytest_terminal_summary) counts the skips by what was missing.
A module of dynamatch itself is never skipped: its import failing is a failure.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
CATEGORIES = ("shared data", "optional package", "tool")


def require_shared(path: Path, what: str = "shared data") -> Path:
    """``path`` (under ../shared) or a skip that says it is absent."""
    if not Path(path).exists():
        pytest.skip(f"shared data: {what} not found at {path} (../shared is absent on this checkout)", allow_module_level=True)
    return Path(path)


def require_module(name: str, install: str | None = None):
    """The imported third-party module ``name``, or a skip naming how to install it.

    Refuses dynamatch's own modules: those must import, or the test fails."""
    if name == "dynamatch" or name.startswith("dynamatch."):
        raise ValueError(f"{name} is part of the project: import it, do not skip on it")
    try:
        return importlib.import_module(name)
    except ImportError as error:
        hint = f"; {install}" if install else ""
        pytest.skip(f"optional package: {name} not importable ({error}){hint}", allow_module_level=True)


def require_tool(path: Path | str, install: str) -> Path:
    """An installed file (a plugin, a binary) or a skip naming the package that provides it."""
    if not Path(path).exists():
        pytest.skip(f"tool: {path} not installed ({install})", allow_module_level=True)
    return Path(path)


def skip_tool(reason: str, install: str) -> None:
    """Skip because a tool is present but unusable (e.g. the host library failed to load it)."""
    pytest.skip(f"tool: {reason} ({install})", allow_module_level=True)


def summarise_skips(terminalreporter) -> None:
    """One line per category of skip (and one per other reason) at the end of the run."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts: dict[str, int] = {}
    for report in skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        category = next((c for c in CATEGORIES if reason.startswith(c + ":")), None)
        key = category if category else f"other: {reason[:100]}"
        counts[key] = counts.get(key, 0) + 1
    terminalreporter.write_sep("-", f"{len(skipped)} skipped, by what was missing")
    for key, count in sorted(counts.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:4d}  {key}")
