"""How the report's figures draw: one colour per method everywhere, log axes where rows span
orders of magnitude, reference lines, one legend, no empty panel, no orphan figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from scflow.cache import REPO_ROOT
from scflow.repro import colors, plots, report_figures
from scflow.repro.report_figures import method_metric_figure, table_figure, variant_runs
from scflow.repro.results import write_results
from scflow.repro.tables import METHOD_RUNS

matplotlib.use("Agg")


def _cmp(rows: dict[str, tuple[str, str, list[float], list[float]]]) -> pd.DataFrame:
    """A compare table: row -> (run, method, ours per NFE 1, 2, paper per NFE 1, 2)."""
    out = []
    for row, (run, method, ours, paper) in rows.items():
        out += [dict(row=row, run=run, method=method, nfe=n, ours=o, ours_se=float("nan"),
                     n_seeds=1, paper=p) for n, o, p in zip((1, 2), ours, paper, strict=True)]
    return pd.DataFrame(out)


def _line_colors(ax) -> dict[str, str]:
    return {line.get_label(): to_hex(line.get_color()) for line in ax.lines}


def test_every_method_of_the_report_has_its_own_colour():
    methods = {m for _, _, m in METHOD_RUNS} | {"2-rf", "2-rf+distill", "1-rf"}
    assert all(colors.method_color(m) for m in methods)
    own = {colors.method_color(m) for m in {"teacher", "rectified", "rectified+distill", "cd",
                                            "cd+trunc+gan", "cd+trunc+gan+rf", "scflow"}}
    assert len(own) == 7  # the ablation and the baselines never share a colour
    for alias, key in colors.ALIASES.items():
        assert colors.method_color(alias) == colors.METHOD_COLORS[key]
    assert not set(colors.VARIANT_COLORS) & set(colors.METHOD_COLORS.values())


def test_variants_take_variant_colours_in_order():
    got = colors.series_colors([("scflow", False), ("scflow", True), ("scflow", True),
                                ("unknown", False)])
    assert got[0] == colors.METHOD_COLORS["scflow"]
    assert got[1:] == list(colors.VARIANT_COLORS[:3])


def test_table_figure_same_colour_in_both_panels_and_one_legend():
    cmp = _cmp({"CD": ("table4_cd", "cd", [20.0, 9.0], [41.3, 23.6]),
                "+BI": ("table4_bi", "scflow", [14.0, 9.0], [8.1, 7.7]),
                "w 1 1 1": ("table5_w1_1_1", "scflow", [15.0, 10.0], [30.3, 29.7])})
    fig = table_figure(cmp, "Table X", variant_runs={"table5_w1_1_1"})
    ours, paper = fig.axes
    assert _line_colors(ours) == _line_colors(paper)
    assert _line_colors(ours)["CD"] == colors.METHOD_COLORS["cd"]
    assert _line_colors(ours)["+BI"] == colors.METHOD_COLORS["scflow"]
    assert _line_colors(ours)["w 1 1 1"] == colors.VARIANT_COLORS[0]
    assert all(line.get_linestyle() == "--" for line in paper.lines)  # the paper's, dashed
    assert len(fig.legends) == 1 and not ours.get_legend() and not paper.get_legend()
    assert min(t.get_fontsize() for t in fig.legends[0].get_texts()) >= 9
    assert ours.get_yscale() == paper.get_yscale() == "linear"  # 9 ... 41: one order


def test_rows_spanning_orders_of_magnitude_get_a_log_axis():
    cmp = _cmp({"teacher": ("01_teacher", "teacher", [1293.0, 367.0], [200.0, float("nan")]),
                "Ours": ("table4_bi", "scflow", [14.0, 9.0], [8.1, 7.7])})
    ours, paper = table_figure(cmp, "Table 3").axes
    assert ours.get_yscale() == "log" and "log" in ours.get_ylabel()
    assert paper.get_yscale() == "log"  # 200 / 7.7 > 20 too
    assert [t.get_text() for t in ours.get_xticklabels()] == ["1", "2"]


def test_no_paper_panel_without_paper_numbers():
    cmp = _cmp({"fidelity paper": ("table4_bi", "scflow", [17.0, 9.0], [float("nan")] * 2),
                "fidelity code": ("table4_bi_fidelity_code", "scflow", [10.0, 6.0],
                                  [float("nan")] * 2)})
    fig = table_figure(cmp, "Fidelity", variant_runs={"table4_bi_fidelity_code"})
    assert len(fig.axes) == 1
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert not any("no numbers" in t for t in texts)


def test_std_ratio_has_its_reference_line_and_the_method_colours():
    df = pd.DataFrame({1: [0.98, 0.99], 16: [1.01, 1.02]}, index=["CD", "+BI (SCFlow)"])
    fig = method_metric_figure(df, "std_ratio", colors={"CD": "#d62728"})
    ax = fig.axes[0]
    refs = [line for line in ax.lines if list(line.get_ydata()) == [1.0, 1.0]]
    assert len(refs) == 1 and "1.0" in refs[0].get_label()
    assert _line_colors(ax)["CD"] == "#d62728"
    fig = method_metric_figure(df, "consistency_rmse")
    assert fig.axes[0].get_ylim()[0] == 0


def test_notebook_figures_use_the_same_colours():
    fig = plots.metric_vs_nfe({"cd": {1: 20.0, 2: 9.0}, "scflow": {1: 14.0, 2: 9.0}}, "fid")
    got = _line_colors(fig.axes[0])
    assert got == {"cd": colors.METHOD_COLORS["cd"], "scflow": colors.METHOD_COLORS["scflow"]}
    df = pd.DataFrame([dict(metric=m, value=v + draw, method=k, nfe=n, step=s, schedule=sc,
                            draw=draw)
                       for m in ("fid", "std_ratio") for k in ("cd", "scflow")
                       for n in (1, 16) for s in (250, 500) for sc in ("constant", "cosine")
                       for draw in (0, 1) for v in (1.0 + s / 1000,)])
    fig = plots.budget_figure(df)
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_label().startswith("cd"):
                assert to_hex(line.get_color()) == colors.METHOD_COLORS["cd"]


def _run(folder: Path, run: str, method: str, h: str) -> None:
    rows = [dict(metric="fid", value=10.0 + n, method=method, nfe=n) for n in (1, 2)]
    write_results(rows, folder / f"{run}.csv", dict(run=run, notebook="nb", preset="smoke",
                                                    seed=0, config_hash=h, device="cpu"))


def test_variants_are_the_runs_that_are_not_a_methods_own(tmp_path):
    _run(tmp_path, "table4_bi", "scflow", "h-bi")
    _run(tmp_path, "table6_trunc0.4", "scflow", "h-bi")  # an alias: the same configuration
    _run(tmp_path, "table6_trunc0.2", "scflow", "h-t2")
    _run(tmp_path, "table4_cd", "cd", "h-cd")
    from scflow.repro.tables import load_results

    assert variant_runs(load_results(tmp_path)) == {"table6_trunc0.2"}


def test_a_figure_the_report_no_longer_draws_is_removed(tmp_path):
    _run(tmp_path, "table4_bi", "scflow", "h-bi")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "report_fig7.png").write_bytes(b"old")
    (tmp_path / "figures" / "table4_bi_loss.png").write_bytes(b"a notebook's")
    out = report_figures.make_report_figures(tmp_path)
    assert not (tmp_path / "figures" / "report_fig7.png").exists()
    assert (tmp_path / "figures" / "table4_bi_loss.png").exists()
    drawn = {Path(rel).name for _, rel in out}
    assert {p.name for p in (tmp_path / "figures").glob("report_*.png")} <= drawn


@pytest.mark.parametrize("folder", sorted((REPO_ROOT / "results").glob("*/REPORT.md")),
                         ids=lambda p: p.parent.name)
def test_committed_reports_have_no_orphan_figure(folder):
    text = folder.read_text()
    orphans = [p.name for p in (folder.parent / "figures").glob("report_*.png")
               if f"figures/{p.name}" not in text]
    assert not orphans, f"report figures that {folder} does not show: {orphans}"
