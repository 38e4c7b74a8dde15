"""`dynamatch bench hessian`: every strategy's Hessian is verified against numba before it is timed."""

from __future__ import annotations

import csv

import pytest
from skips import require_module

require_module("torch")

from click.testing import CliRunner  # noqa: E402

from dynamatch.bench.hessian import measure  # noqa: E402
from dynamatch.cli import main  # noqa: E402


def test_forward_over_forward_through_the_pure_torch_scan_is_exact():
    row = measure("func-fwd-fwd", "cpu", batch=2, seconds=0.3, repeats=1, threads=1)
    assert row.status == "ok" and row.relative_error < 1e-9 and row.ms > 0


def test_cli_prints_and_writes_the_table(tmp_path):
    result = CliRunner().invoke(main, ["bench", "hessian", "--batch", "2", "--seconds", "0.3", "--device", "cpu",
                                       "--strategies", "numba,autograd-rev-rev", "--repeats", "1",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "hessian.csv").open()))
    assert [r["strategy"] for r in rows] == ["numba", "autograd-rev-rev"]
    assert all(r["status"] == "ok" and float(r["relative_error"]) < 1e-9 for r in rows)
    assert (tmp_path / "hessian.png").stat().st_size > 1000
    assert "26.5 ms" in result.output  # the paper's figure beside ours


def test_unknown_strategy_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["bench", "hessian", "--strategies", "magic", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "unknown Hessian strategy" in result.output
