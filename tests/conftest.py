"""Shared fixtures: paths to the real LA-2A clips in ../shared (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
LA2A = SHARED / "la2a"
ANCHORS = SHARED / "anchors" / "4a2a"


@pytest.fixture(scope="session")
def la2a_dir() -> Path:
    if not LA2A.is_dir():
        pytest.skip(f"real LA-2A clips not found at {LA2A} (../shared is absent on this checkout)")
    return LA2A


@pytest.fixture(scope="session")
def anchors_dir() -> Path:
    if not ANCHORS.is_dir():
        pytest.skip(f"published 4A-2A anchors not found at {ANCHORS}")
    return ANCHORS


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
