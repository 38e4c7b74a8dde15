"""Tables as text that stays readable anywhere: aligned plain text, CSV or JSON (rich only on a terminal).

``dynamatch --format auto`` (the default) draws rich tables on a terminal and plain, never-truncated
text elsewhere (pipes, CI logs); ``--format csv|json`` writes machine-readable tables to stdout.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

FORMATS = ("auto", "table", "plain", "csv", "json")


def render(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], fmt: str) -> str:
    """``rows`` of cell strings as ``plain`` (aligned columns, title line), ``csv`` or ``json`` text."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps({"title": title, "rows": [dict(zip(columns, row)) for row in rows]}, ensure_ascii=False) + "\n"
    if fmt != "plain":
        raise ValueError(f"format must be plain, csv or json, got {fmt!r}")
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
    return "\n".join(lines) + "\n"


def rich_table_cells(table) -> tuple[str, list[str], list[list[str]]]:
    """(title, column headers, rows) of a ``rich.table.Table`` as plain text: console markup such as
    ``[green]pass[/]`` and its escapes are resolved (a pipe or CSV file gets ``pass``, not the markup)."""
    columns = [_plain(c.header) for c in table.columns]
    cells = [[_plain(cell) for cell in c.cells] for c in table.columns]
    rows = [list(row) for row in zip(*cells)] if cells else []
    return _plain(table.title or ""), columns, rows


def _plain(cell) -> str:
    """The text a rich cell shows: ``Text`` as is, a string with its console markup resolved."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(str(cell)).plain
