"""One colour per method, the same in every figure (the report's and the notebooks').

The method is the CSV's ``method`` key (``cd``, ``scflow``, ...); the names other places use for
the same method (the budget study's ``gan``, a table row's ``+GAN``) are aliases of it. Rows of
one method that differ in a setting (Tables 5-6, the code's switches) are variants: they take
:data:`VARIANT_COLORS` in order, never a method's colour. The paper's numbers, where a figure
draws them beside ours, use the row's colour with :data:`PAPER_STYLE`.
"""

from __future__ import annotations

from collections.abc import Sequence

METHOD_COLORS: dict[str, str] = {
    "teacher": "#4d4d4d",  # the teachers: greys
    "2-rf": "#4d4d4d",
    "1-rf": "#a6a6a6",
    "rectified": "#c5a3dd",  # rectified flow (InstaFlow's recipe): purples
    "rectified+distill": "#7b3fa0",
    "2-rf+distill": "#7b3fa0",
    "cd": "#d62728",  # the Table 4 ablation, CD to full SCFlow: red, orange, green, blue
    "cd+trunc+gan": "#ff7f0e",
    "cd+trunc+gan+rf": "#2ca02c",
    "scflow": "#1f77b4",
}
"""Method key -> colour."""

ALIASES: dict[str, str] = {
    "CD": "cd", "LCM (CD)": "cd", "gan": "cd+trunc+gan", "+GAN": "cd+trunc+gan",
    "rf": "cd+trunc+gan+rf", "+RF": "cd+trunc+gan+rf", "+BI": "scflow", "SCFlow": "scflow",
    "+BI (SCFlow)": "scflow", "Ours": "scflow", "Ours-0.9B": "scflow",
}
"""Other names of a method (study keys, table rows) -> its method key."""

VARIANT_COLORS = ("#17becf", "#8c564b", "#e377c2", "#bcbd22", "#393b79", "#9c9ede", "#637939",
                  "#e7969c")
"""Rows that vary one method's settings, in the order they are drawn."""

PAPER_STYLE = {"linestyle": "--", "marker": "x"}
"""How a figure draws the paper's numbers beside ours (the row's colour)."""

REFERENCE_STYLE = {"color": "#7f7f7f", "linewidth": 0.9, "linestyle": ":"}
"""Reference lines (e.g. the data's contrast, std_ratio 1.0)."""


def method_color(name: str) -> str | None:
    """The colour of a method key or of one of its aliases; ``None`` if it has none."""
    return METHOD_COLORS.get(ALIASES.get(name, name))


def series_colors(series: Sequence[tuple[str, bool]]) -> list[str]:
    """Colours for (method or alias, is a variant) pairs drawn in one figure, in order.

    A variant, or a method without a colour of its own, takes the next variant colour.
    """
    out, k = [], 0
    for name, variant in series:
        color = None if variant else method_color(name)
        if color is None:
            color = VARIANT_COLORS[k % len(VARIANT_COLORS)]
            k += 1
        out.append(color)
    return out
