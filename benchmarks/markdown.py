"""Markdown cells and tables shared by every report writer of the benchmarks.

Hand-written rather than ``tabulate``'s "pipe" format: that pads every column to its widest
cell, which would rewrite each committed report; these tables keep one space around a cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["fmt", "markdown_table"]

_RULES = {"": "---", "left": ":---", "right": "---:", "center": ":---:"}


def fmt(value: Any, digits: int = 1) -> str:
    """A number with ``digits`` decimals, '–' for a missing one."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    align: Sequence[str] | None = None,
) -> list[str]:
    """The lines of a table: ``| a | b |``, the rule, then one line per row. ``align``: per
    column "" (the renderer's default), "left", "right" or "center"."""
    aligns = list(align) if align is not None else [""] * len(header)
    if len(aligns) != len(header) or not set(aligns) <= set(_RULES):
        raise ValueError(f"align needs one of {sorted(_RULES)} per column, got {aligns}")
    lines = [_row(header), "|" + "".join(_RULES[a] + "|" for a in aligns)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row of {len(row)} cells under {len(header)} columns: {row}")
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
