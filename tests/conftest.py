"""Shared fixtures: paths to the real LA-2A clips in ../shared (skipped cleanly when absent, see skips.py),
a summary of every skip at the end of the run, counted by what was missing, and each test run in the
floating-point environment the session started with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dynamatch.data.floating_point import preserved_floating_point_environment
from skips import SHARED, require_shared, summarise_skips

LA2A = SHARED / "la2a"
ANCHORS = SHARED / "anchors" / "4a2a"


@pytest.fixture(scope="session")
def la2a_dir() -> Path:
    return require_shared(LA2A, "real LA-2A clips")


@pytest.fixture(scope="session")
def anchors_dir() -> Path:
    return require_shared(ANCHORS, "published 4A-2A anchors")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Two pytest workers on two cores: more torch threads than that only contend (10-30x slower)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def throw_away_presets_dir(tmp_path_factory):
    """Installed presets go to a throw-away folder (inherited by subprocesses), never the user's own."""
    os.environ["DYNAMATCH_PRESETS_DIR"] = str(tmp_path_factory.mktemp("presets"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Undo what a test's plugins did to the floating-point environment (set-up and tear-down included).

    Tests that load a fast-math plugin (ZamComp) through pedalboard directly turn on flush-to-zero for
    the whole worker, and later tests on that worker would compute with denormals read as zero.
    """
    with preserved_floating_point_environment():
        yield


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """How many tests skipped and why (skips.summarise_skips)."""
    summarise_skips(terminalreporter)
