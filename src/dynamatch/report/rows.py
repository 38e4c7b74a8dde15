"""Measurement rows (dataclasses) written as CSV: one line per row, columns as the dataclass fields."""

from __future__ import annotations

import csv
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Sequence


def write_rows_csv(rows: Sequence[Any], path: str | Path) -> Path:
    """Write dataclass instances ``rows`` (all of one type) to ``path``; returns the path."""
    path = Path(path)
    names = [f.name for f in fields(rows[0])] if rows else []
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    return path
