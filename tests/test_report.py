"""Aggregation (CSVs -> paper tables), the paper's numbers as data, and the claim verdict rules."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from scflow.cache import REPO_ROOT
from scflow.repro import claim_rules, claims, markdown_tables, report, tables
from scflow.repro.claim_rules import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, verdict
from scflow.repro.presets import preset_values
from scflow.repro.results import write_results

RUNS_DIR = REPO_ROOT / "papermill_runs"


def _write_run(folder: Path, run: str, method: str, fid: dict[int, float],
               extra: dict[str, dict[int, float]] | None = None,
               config_hash: str | None = None) -> None:
    """A results CSV like a notebook writes: fid (and other metrics) per NFE."""
    rows = [dict(metric="fid", value=v, method=method, nfe=n, n_samples=100, wall_time_s=10.0 * n)
            for n, v in fid.items()]
    for metric, series in (extra or {}).items():
        rows += [dict(metric=metric, value=v, method=method, nfe=n) for n, v in series.items()]
    meta = dict(run=run, notebook="nb", preset="smoke", seed=0, feature_backend="digits",
                git_sha="abc", config_hash=config_hash or f"h-{run}", device="cpu")
    write_results(rows, folder / f"{run}.csv", meta)


@pytest.fixture
def paper():
    return tables.load_paper_numbers()


@pytest.fixture
def partial(tmp_path):
    """A partial grid: teacher, CD (NFE 1, 2 only) and SCFlow; everything else missing."""
    _write_run(tmp_path, "01_teacher", "teacher", {1: 400.0, 2: 150.0, 25: 40.0})
    _write_run(tmp_path, "table4_cd", "cd", {1: 80.0, 2: 40.0},
               {"consistency_rmse": {2: 0.2, 4: 0.3}})
    _write_run(tmp_path, "table4_bi", "scflow", {1: 30.0, 2: 28.0, 4: 29.0, 8: 30.0, 16: 34.0},
               {"consistency_rmse": {2: 0.05, 4: 0.07}})
    return tmp_path


# --- the paper's numbers (data file) ------------------------------------------------------------

def test_paper_numbers_have_every_table_row(paper):
    rows = paper.drop_duplicates(["table", "row"]).groupby("table").size().to_dict()
    assert rows == {"3": 5, "4": 4, "5": 6, "6": 9, "F": 2}


@pytest.mark.parametrize("table,row,nfe,value", [
    ("3", "LFM (teacher)", 1, 200.13), ("3", "LFM + Rectified + Distill", 2, 30.85),
    ("4", "+RF", 8, 12.68), ("4", "CD", 16, 53.69), ("5", "(0.1, 1, 1)", 1, 35.22),
    ("5", "(1, 0.1, 0.1)", 16, 12.55), ("6", "t_trunc 0.5", 16, 8.28),
    ("6", "t_skip 0.2", 1, 11.86), ("6", "EMA mu 0.95", 4, 8.07),
])
def test_paper_numbers_match_method_md(paper, table, row, nfe, value):
    sel = paper[(paper.table == table) & (paper.row == row) & (paper.nfe == nfe)]
    assert len(sel) == 1 and sel.paper.iloc[0] == value


def test_default_row_is_identical_across_tables(paper):
    """Tables 4 (+BI), 5 (0.1, 0.1, 0.1) and 6 (defaults) quote the same numbers."""
    def series(table, row):
        return paper[(paper.table == table) & (paper.row == row)].paper.dropna().tolist()
    ref = series("4", "+BI")
    for table, row in [("5", "(0.1, 0.1, 0.1)"), ("6", "t_trunc 0.4"), ("6", "EMA mu 0.9"),
                       ("6", "t_skip 0.1")]:
        assert series(table, row) == ref


def test_every_row_has_a_run_file(paper):
    missing = sorted({r for r in paper.run if not (RUNS_DIR / f"{r}.yaml").exists()})
    assert not missing, f"rows of paper_numbers.csv without papermill_runs/<run>.yaml: {missing}"


def test_default_rows_dedupe_to_one_configuration():
    """The runner runs the default SCFlow configuration once; the other files alias it."""
    from scflow.repro.plan import plan

    names = ["table4_bi", "table5_w0.1_0.1_0.1", "table6_trunc0.4", "table6_ema0.9",
             "table6_skip0.1", "table4_bi_fidelity_paper"]
    runs = plan([RUNS_DIR / f"{n}.yaml" for n in names], preset="mini")
    assert len({r.params.config_hash for r in runs}) == 1
    others = plan([RUNS_DIR / f"{n}.yaml" for n in
                   ["table4_bi_fidelity_code", "table6_trunc0", "table5_w1_1_1"]], preset="mini")
    assert runs[0].params.config_hash not in {r.params.config_hash for r in others}


def test_report_run_sorts_last():
    from scflow.repro.plan import collect_files

    assert collect_files([RUNS_DIR])[-1].name == "zz_report.yaml"


# --- aggregation --------------------------------------------------------------------------------

def test_compare_table_matches_ours_and_paper_to_the_right_rows(partial, paper):
    results = tables.load_results(partial)
    cmp = tables.compare_table(results, paper, "4")
    def cell(row, nfe):
        return cmp[(cmp.row == row) & (cmp.nfe == nfe)].iloc[0]
    assert cell("CD", 2).ours == 40.0 and cell("CD", 2).paper == 23.56
    assert cell("+BI", 16).ours == 34.0 and cell("+BI", 16).paper == 7.24
    assert math.isnan(cell("CD", 8).ours) and cell("CD", 8).run_done  # not evaluated
    assert math.isnan(cell("+GAN", 1).ours) and not cell("+GAN", 1).run_done  # run missing
    t3 = tables.compare_table(results, paper, "3")
    assert sorted(set(t3.nfe)) == [1, 2, 25]
    assert t3[(t3.row == "LFM (teacher)") & (t3.nfe == 25)].ours.iloc[0] == 40.0


def test_table_markdown_says_missing_and_not_evaluated(partial, paper):
    md = markdown_tables.table_markdown(tables.compare_table(tables.load_results(partial), paper, "4"))
    lines = {line.split("|")[1].strip(): line for line in md.splitlines()[2:]}
    assert "80 / 41.34" in lines["CD"] and "n/e / 51.34" in lines["CD"]
    assert lines["+GAN"].count("missing") == 5


def test_missing_runs_and_wall_times(partial, paper):
    results = tables.load_results(partial)
    missing = tables.missing_runs(results, paper)
    assert "table4_gan" in missing and "table3_rectified" in missing
    assert "table4_cd" not in missing and "01_teacher" not in missing
    times = tables.wall_times(results).set_index("run")
    assert times.loc["01_teacher", "wall_time_s"] == 250.0  # the last row's wall_time_s
    assert not times.alias.any()
    # an alias (same config hash as an earlier run) is flagged, so its time is not counted twice
    _write_run(partial, "table5_w0.1_0.1_0.1", "scflow", {1: 30.0}, config_hash="h-table4_bi")
    times = tables.wall_times(tables.load_results(partial)).set_index("run")
    assert times.alias.to_dict() == {"01_teacher": False, "table4_bi": False, "table4_cd": False,
                                     "table5_w0.1_0.1_0.1": True}


def test_load_results_of_an_empty_folder(tmp_path, paper):
    results = tables.load_results(tmp_path)
    assert results.empty
    cmp = tables.compare_table(results, paper, "6")
    assert cmp.ours.isna().all() and len(cmp) == 9 * 5


def test_build_report_on_a_partial_grid(partial):
    text = report.build_report("smoke", partial)
    assert "python -m scflow.repro.report --preset smoke" in text
    assert "**Missing runs**" in text and "`table4_gan`" in text
    for title in tables.TABLE_TITLES.values():
        assert title in text
    path = report.write_report("smoke", partial)
    assert path.read_text() == text


def test_report_figures_tolerate_missing_samples_files(partial):
    from scflow.repro.report_figures import make_report_figures

    figures = make_report_figures(partial)
    assert all((partial / rel).exists() for _, rel in figures)
    assert any("Fig. 6" in caption for caption, _ in figures)


# --- claims and their verdict rule --------------------------------------------------------------

@pytest.mark.parametrize("lhs,op,rhs,expected", [
    (1.0, "<", 2.0, REPRODUCED), (2.0, "<", 1.0, NOT_REPRODUCED), (1.0, "<", 1.04, INCONCLUSIVE),
    (1.04, "<", 1.0, INCONCLUSIVE), (2.0, ">", 1.0, REPRODUCED), (1.0, ">", 2.0, NOT_REPRODUCED),
    (1.0, ">", 1.03, INCONCLUSIVE), (1.04, "<~", 1.0, REPRODUCED), (1.2, "<~", 1.0, NOT_REPRODUCED),
    (None, "<", 1.0, INCONCLUSIVE), (1.0, "<", float("nan"), INCONCLUSIVE),
    (-2.0, "<", -1.0, REPRODUCED),
])
def test_verdict_rule(lhs, op, rhs, expected):
    assert verdict(lhs, op, rhs, 0.05) == expected


def test_every_claim_holds_on_the_papers_own_numbers(paper):
    """The rules encode the paper's claims: on the paper's FIDs each one is reproduced."""
    df = claims.judge_all(claims.CLAIMS, tables.load_results(Path("/nonexistent")), paper)
    paper_has = [c.key for c in claims.CLAIMS if c.lhs.metric in ("fid", "sec_per_image")]
    headline = {"t4_cd_u_shape", "t4_rf_one_step", "t4_bi_one_step", "t4_flat_max_min",
                "t4_bi_vs_cd_every_nfe"}
    assert headline <= set(paper_has)
    assert set(df[df.key.isin(paper_has)].paper_verdict) == {REPRODUCED}
    by_key = df.set_index("key")
    assert by_key.loc["t4_cd_u_shape", "paper_lhs"] == pytest.approx(53.69 / 23.56)
    assert by_key.loc["t4_flat_max_min", "paper_lhs"] == pytest.approx(8.06 / 7.24)
    assert by_key.loc["t4_bi_vs_cd_every_nfe", "paper_lhs"] == pytest.approx(7.67 / 23.56)
    for key in ("fig6_consistency", "fig4_saturation_vs_scflow"):  # no number in the paper
        assert by_key.loc[key, "paper_verdict"] == "n/a"
    assert set(df[~df.key.isin(paper_has)].paper_verdict) == {"n/a"}  # metrics of ours only
    assert set(df.verdict) == {INCONCLUSIVE}  # no results at all: nothing is decided


def test_claim_verdicts_follow_our_numbers(partial, paper):
    results = tables.load_results(partial)
    df = claims.judge_all(claims.CLAIMS, results, paper).set_index("key")
    assert df.loc["t3_teacher", "verdict"] == REPRODUCED  # 30 vs 400
    assert df.loc["t3_cd", "verdict"] == REPRODUCED  # mean of NFE 1, 2: 29 vs 60
    assert df.loc["t4_flat", "verdict"] == NOT_REPRODUCED  # 34 > 1.05 * 30
    assert df.loc["t3_rectified", "verdict"] == INCONCLUSIVE  # run missing
    assert "T3 LFM + Rectified + Distill NFE 1" in df.loc["t3_rectified", "missing"]
    # the same claim flips when the numbers do
    _write_run(partial, "table4_bi", "scflow", {1: 90.0, 2: 95.0, 4: 90.0, 8: 90.0, 16: 80.0})
    df = claims.judge_all(claims.CLAIMS, tables.load_results(partial), paper).set_index("key")
    assert df.loc["t3_cd", "verdict"] == NOT_REPRODUCED
    assert df.loc["t4_flat", "verdict"] == REPRODUCED


def test_quantity_reductions():
    vals = {("A", 1): 10.0, ("A", 16): 20.0, ("B", 1): 4.0, ("B", 16): 2.0}

    def get(table, row, nfe, metric):
        return vals.get((row, nfe))

    q = claim_rules.Quantity("4", ("A", "B"), (1, 16))
    assert claim_rules.quantity_value(q, get) == (3.0, [])  # min of means 15 and 3
    q = claim_rules.Quantity("4", ("A", "B"), (1, 16), over_nfe="ratio", over_rows="max")
    assert claim_rules.quantity_value(q, get) == (2.0, [])
    value, missing = claim_rules.quantity_value(claim_rules.Quantity("4", ("A",), (1, 2)), get)
    assert value is None and missing == ["T4 A NFE 2"]


def test_claims_name_existing_table_rows(paper):
    t2i = tables.load_paper_t2i()
    rows = set(zip(paper.table, paper.row, strict=True)) | set(zip(t2i.table, t2i.row,
                                                                   strict=True))
    for c in claims.CLAIMS:
        assert c.cells() and all(cell in rows for cell in c.cells()), (c.key, c.cells())


def test_csv_columns_unchanged():
    """The aggregation reads the runner's tidy schema; fail loudly if it changes."""
    from scflow.repro.results import COLUMNS

    assert {"run", "method", "nfe", "metric", "value", "config_hash", "wall_time_s"} <= set(COLUMNS)
    assert isinstance(tables.load_results(Path("/nonexistent")), pd.DataFrame)


def test_t2i_tables_put_ours_beside_the_papers(tmp_path):
    """Tables 1-2: our t2i.csv numbers in the right (row, NFE) cells, the paper's beside them."""
    rows = []
    for method, nfe, fid in (("2-rf", 25, 3.0), ("2-rf", 1, 40.0), ("scflow", 1, 9.0),
                             ("scflow", 2, 8.0), ("cd", 1, 30.0), ("2-rf+distill", 1, 20.0)):
        for metric, value in (("fid", fid), ("sec_per_image", 0.01 * nfe),
                              ("prompt_accuracy", 0.5)):
            rows.append(dict(method=method, nfe=nfe, metric=metric, value=value))
    write_results(rows, tmp_path / "t2i.csv", {"run": "t2i"})
    results = tables.load_results(tmp_path)
    md = markdown_tables.t2i_markdown(results, tables.load_paper_t2i(), "1")
    assert "| Ours-0.9B | `scflow` | 1 | 9 / 11.91 |" in md
    assert "| LCM (CD) | `cd` | 1 | 30 / 35.56 |" in md
    assert "| 2-RF teacher | `2-rf` | 25 | 3 / 11.08 |" in md
    # the paper's row names stay, but our side is said to be the miniature, not a 0.9B model
    assert "| paper row | ours (miniature) |" in md and markdown_tables.T2I_ROWS_NOTE in md
    scale = "\n".join(report.scale_lines("smoke", results))
    assert f"`{preset_values('smoke')['t2i_arch']}` (" in scale and "parameters)" in scale
    assert "25.0x" in markdown_tables.t2i_speed_line(results)  # 0.25 s at NFE 25 vs 0.01 s at NFE 1
    df = claims.judge_all(claims.CLAIMS, results, tables.load_paper_numbers())
    verdicts = dict(zip(df.key, df.verdict, strict=True))
    assert verdicts["t1_2rf"] == verdicts["t1_lcm"] == verdicts["t1_instaflow"] == REPRODUCED
    assert verdicts["t1_two_step"] == REPRODUCED and verdicts["t2_speed"] == REPRODUCED


def test_table_figure_draws_identical_rows_once():
    """Table 6's default row appears under three names with one set of numbers: one line."""
    from scflow.repro.report_figures import table_figure

    rows = []
    for row, fids in (("t_trunc 0.4", (8.0, 7.0)), ("EMA mu 0.9", (8.0, 7.0)),
                      ("t_trunc 0", (9.0, 9.5))):
        rows += [{"row": row, "nfe": n, "ours": v, "paper": v + 1} for n, v in zip((1, 2), fids,
                                                                                     strict=True)]
    fig = table_figure(pd.DataFrame(rows), "Table 6")
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.lines]
        assert labels == ["t_trunc 0.4 = EMA mu 0.9", "t_trunc 0"], labels


def test_busy_span_merges_overlaps_and_leaves_out_pauses():
    import pandas as pd

    from scflow.repro.markdown_tables import span_minutes

    # a: 10:00-10:30, b: 10:20-10:40 (overlap), c: 12:00-12:10 after a pause of the runner
    rows = pd.DataFrame({"run": ["a", "a", "b", "c"],
                         "timestamp": ["2026-01-01T10:30:00Z", "2026-01-01T10:30:00Z",
                                       "2026-01-01T10:40:00Z", "2026-01-01T12:10:00Z"],
                         "wall_time_s": [1800, 1800, 1200, 600]})
    assert span_minutes(rows) == "50.0 min"
    assert span_minutes(rows.drop(columns="timestamp")) == "-"
