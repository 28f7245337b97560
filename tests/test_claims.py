"""The headline claims, seed replicas (mean ± SE) and the paired rule over seeds, on synthetic CSVs
without draws (the format of CSVs written before the evaluation bank: one unit per seed)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from scflow.repro import claim_rules, claims, claims_text, markdown_tables, report, tables
from scflow.repro.claim_rules import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Claim, Quantity
from scflow.repro.results import write_results

NFES = (1, 2, 4, 8, 16)
T4_RUNS = {"CD": ("table4_cd", "cd"), "+GAN": ("table4_gan", "cd+trunc+gan"),
           "+RF": ("table4_rf", "cd+trunc+gan+rf"), "+BI": ("table4_bi", "scflow")}
NEW_CLAIMS = ("t4_cd_u_shape", "fig4_saturation_vs_scflow", "t4_rf_one_step", "t4_bi_one_step",
              "t4_flat_max_min", "t4_bi_vs_cd_every_nfe", "fig6_consistency")


def _write(folder: Path, run: str, methods: dict[str, dict[str, dict[int, float]]],
           seed: int | None = 0) -> None:
    """A results CSV: {method: {metric: {nfe: value}}}, recording ``seed``."""
    rows = [dict(metric=metric, value=v, method=method, nfe=n)
            for method, metrics in methods.items() for metric, series in metrics.items()
            for n, v in series.items()]
    meta = dict(run=run, notebook="nb", preset="smoke", seed=seed, feature_backend="digits",
                git_sha="abc", config_hash=f"h-{run}", device="cpu", wall_time_s=1.0)
    write_results(rows, folder / f"{run}.csv", meta)


def _grid(folder: Path, fid: dict[str, list[float]], std16: dict[str, float],
          rmse4: dict[str, float], suffix: str = "", seed: int = 0) -> Path:
    """Table 4's rows and Table 3's rectified rows: FID per NFE, std_ratio at NFE 1/16 and
    consistency_rmse at NFE 4 (keys: Table 4 rows, 'rectified', 'rectified+distill')."""
    for row, (run, method) in T4_RUNS.items():
        _write(folder, run + suffix, {method: {
            "fid": dict(zip(NFES, fid[row], strict=True)),
            "std_ratio": {1: 0.97, 16: std16[row]}, "consistency_rmse": {4: rmse4[row]}}},
            seed)
    _write(folder, "table3_rectified" + suffix, {
        m: {"fid": {1: 40.0, 2: 30.0}, "consistency_rmse": {4: rmse4[m]}}
        for m in ("rectified", "rectified+distill")}, seed)
    return folder


# The paper's Table 4 (headline holds) and today's miniature (headline does not).
PAPER_LIKE = dict(
    fid={"CD": [41.34, 23.56, 38.75, 51.34, 53.69], "+GAN": [11.55, 19.82, 38.29, 49.45, 54.56],
         "+RF": [10.62, 11.07, 11.8, 12.68, 12.66], "+BI": [8.06, 7.67, 7.68, 7.63, 7.24]},
    std16={"CD": 1.10, "+GAN": 1.08, "+RF": 1.02, "+BI": 1.00},
    rmse4={"CD": 0.30, "+GAN": 0.25, "+RF": 0.12, "+BI": 0.08, "rectified": 0.15,
           "rectified+distill": 0.11})
MINI_LIKE = dict(
    fid={"CD": [36.6, 15.7, 13.3, 14.6, 16.1], "+GAN": [24.8, 14.5, 13.1, 14.3, 15.7],
         "+RF": [31.9, 17.4, 11.5, 10.4, 10.4], "+BI": [40.0, 18.5, 12.1, 10.6, 10.4]},
    std16={"CD": 1.000, "+GAN": 1.01, "+RF": 1.01, "+BI": 1.03},
    rmse4={"CD": 0.118, "+GAN": 0.12, "+RF": 0.11, "+BI": 0.105, "rectified": 0.095,
           "rectified+distill": 0.0896})


def _verdicts(folder: Path) -> dict[str, str]:
    df = claims.judge_all(claims.CLAIMS, tables.load_results(folder), tables.load_paper_numbers())
    return dict(zip(df.key, df.verdict, strict=True))


def test_headline_claims_reproduced_on_a_paper_like_grid(tmp_path):
    v = _verdicts(_grid(tmp_path, **PAPER_LIKE))
    assert {k: v[k] for k in NEW_CLAIMS} == dict.fromkeys(NEW_CLAIMS, REPRODUCED)


def test_headline_claims_not_reproduced_on_a_miniature_like_grid(tmp_path):
    v = _verdicts(_grid(tmp_path, **MINI_LIKE))
    # 16.1 / 15.7 = 1.03 < 1.3; 31.9 > 24.8; 40 > 31.9; 40 / 10.4 = 3.8 > 1.5;
    # 18.5 / 15.7 = 1.18 > 1.05; CD 1.000 < BI 1.03; 0.105 > 0.0896 (rectified + distill)
    assert {k: v[k] for k in NEW_CLAIMS} == dict.fromkeys(NEW_CLAIMS, NOT_REPRODUCED)


@pytest.mark.parametrize("std16,expected", [
    ({"CD": 1.10, "+GAN": 1.08, "+RF": 1.02, "+BI": 1.00}, REPRODUCED),  # CD rises the most
    ({"CD": 1.01, "+GAN": 1.01, "+RF": 1.01, "+BI": 1.01}, INCONCLUSIVE),  # every row alike
    ({"CD": 1.00, "+GAN": 1.01, "+RF": 1.01, "+BI": 1.03}, NOT_REPRODUCED),
])
def test_saturation_claim_compares_cds_contrast_gain_with_scflows(tmp_path, std16, expected):
    """Every row's contrast rises from NFE 1 (0.97) to 16 here; the claim holds only where CD's
    rises more than SCFlow's (the old rule, CD at 16 > CD at 1, passed all three)."""
    grid = dict(PAPER_LIKE, std16=std16)
    df = claims.judge_all(claims.CLAIMS, tables.load_results(_grid(tmp_path, **grid)),
                          tables.load_paper_numbers()).set_index("key")
    r = df.loc["fig4_saturation"]
    assert r.ours_lhs == pytest.approx(std16["CD"] / 0.97)
    assert r.ours_rhs == pytest.approx(std16["+BI"] / 0.97)
    assert r.verdict == expected


def test_new_claims_read_the_numbers_they_describe(tmp_path):
    df = claims.judge_all(claims.CLAIMS, tables.load_results(_grid(tmp_path, **MINI_LIKE)),
                          tables.load_paper_numbers()).set_index("key")
    assert df.loc["t4_cd_u_shape", "ours_lhs"] == pytest.approx(16.1 / 15.7)
    assert df.loc["t4_cd_u_shape", "ours_rhs"] == 1.3
    assert df.loc["t4_flat_max_min", "ours_lhs"] == pytest.approx(40.0 / 10.4)
    assert df.loc["t4_bi_vs_cd_every_nfe", "ours_lhs"] == pytest.approx(18.5 / 15.7)
    assert df.loc["fig6_consistency", "ours_rhs"] == pytest.approx(0.0896)  # Table 3's row
    assert df.loc["t4_flat_max_min", "paper_lhs"] == pytest.approx(8.06 / 7.24)
    assert df.loc["t4_cd_u_shape", "paper_lhs"] == pytest.approx(53.69 / 23.56)


def test_fig6_consistency_needs_every_row_including_rectified(tmp_path):
    """Beating Table 4's rows is not enough: a missing rectified-flow run leaves it open."""
    _grid(tmp_path, **PAPER_LIKE)
    (tmp_path / "table3_rectified.csv").unlink()
    df = claims.judge_all(claims.CLAIMS, tables.load_results(tmp_path),
                          tables.load_paper_numbers()).set_index("key")
    assert df.loc["fig6_consistency", "verdict"] == INCONCLUSIVE
    assert "T3 LFM + Rectified NFE 4" in df.loc["fig6_consistency", "missing"]


# --- quantities and rules -----------------------------------------------------------------------

def test_new_reductions_and_constant_sides():
    vals = {("4", "A", 1): 10.0, ("4", "A", 2): 5.0, ("4", "A", 4): 8.0,
            ("4", "B", 1): 20.0, ("4", "B", 2): 2.0, ("4", "B", 4): 16.0, ("3", "C", 1): 1.0}

    def get(table, row, nfe, metric):
        return vals.get((table, row, nfe))

    q = Quantity("4", ("A",), (1, 2, 4), over_nfe="max/min")
    assert claim_rules.quantity_value(q, get) == (2.0, [])
    assert claim_rules.quantity_value(Quantity("4", ("A",), (1, 2, 4), over_nfe="max"), get)[0] == 10
    q = Quantity("4", ("A",), (1, 2, 4), over_nfe="max", divide_by="B")  # 0.5, 2.5, 0.5
    assert claim_rules.quantity_value(q, get) == (2.5, [])
    q = Quantity("4", ("A", ("3", "C")), (1,))  # rows of two tables: min(10, 1)
    assert claim_rules.quantity_value(q, get) == (1.0, [])
    assert q.cells() == [("4", "A"), ("3", "C")] and "T3 C" in q.describe()
    assert claim_rules.quantity_value(1.5, get) == (1.5, [])
    value, missing = claim_rules.quantity_value(
        Quantity("4", ("A",), (1, 8), over_nfe="max", divide_by="B"), get)
    assert value is None and missing == ["T4 A NFE 8", "T4 B NFE 8"]


@pytest.mark.parametrize("kw", [dict(over_nfe="median"), dict(over_rows="mean"),
                                dict(rows=())])
def test_quantity_rejects_bad_input(kw):
    args = dict(table="4", rows=("CD",), nfes=(1,)) | kw
    with pytest.raises(ValueError):
        Quantity(**args)


def test_claim_rejects_bad_op_and_margin():
    q = Quantity("4", ("CD",), (1,))
    with pytest.raises(ValueError, match="op"):
        Claim("k", "t", "s", q, "<=", q)
    with pytest.raises(ValueError, match="margin"):
        Claim("k", "t", "s", q, "<", q, margin=1.5)


@pytest.mark.parametrize("lhs,op,rhs,m,expected", [
    (1.3, ">~", 1.3, 0.0, REPRODUCED), (1.29, ">~", 1.3, 0.0, NOT_REPRODUCED),
    (1.25, ">~", 1.3, 0.05, REPRODUCED), (1.5, "<~", 1.5, 0.0, REPRODUCED),
    (1.51, "<~", 1.5, 0.0, NOT_REPRODUCED),
])
def test_at_least_and_at_most_rules(lhs, op, rhs, m, expected):
    assert claim_rules.verdict(lhs, op, rhs, m) == expected


def test_decisive_difference():
    # "not worse than" is judged at its boundary, where a tie is a success
    assert claim_rules.decisive_difference(10.0, "<~", 10.0, 0.05) == pytest.approx(-0.5)
    assert claim_rules.decisive_difference(10.0, ">~", 10.0, 0.05) == pytest.approx(0.5)
    assert claim_rules.decisive_difference(9.0, "<", 10.0, 0.05) == -1.0


# --- seed replicas ------------------------------------------------------------------------------

def _cd_seeds(folder: Path, fids: dict[int, list[float]]) -> None:
    for seed, fid in fids.items():
        run = "table4_cd" if seed == 0 else f"table4_cd_s{seed}"
        _write(folder, run, {"cd": {"fid": dict(zip(NFES, fid, strict=True)),
                                    "std_ratio": {16: 1.0 + 0.01 * seed}}}, seed)


def test_seed_replicas_are_found_by_name_and_averaged(tmp_path):
    _cd_seeds(tmp_path, {0: [30.0] * 5, 1: [32.0] * 5, 2: [34.0] * 5})
    _write(tmp_path, "table4_cd_fidelity", {"cd": {"fid": {1: 99.0}}})  # not a replica
    results = tables.load_results(tmp_path)
    assert tables.seed_replicas(results, "table4_cd") == {0: "table4_cd", 1: "table4_cd_s1",
                                                         2: "table4_cd_s2"}
    assert tables.our_values(results, "table4_cd", "cd", 1) == {0: 30.0, 1: 32.0, 2: 34.0}
    assert tables.our_value(results, "table4_cd", "cd", 1) == pytest.approx(32.0)
    cmp = tables.compare_table(results, tables.load_paper_numbers(), "4")
    cd = cmp[(cmp.row == "CD") & (cmp.nfe == 2)].iloc[0]
    assert cd.ours == pytest.approx(32.0) and cd.ours_se == pytest.approx(2.0 / math.sqrt(3))
    assert cd.n_seeds == 3 and cd.n_draws == 0 and cd.over == "3 seeds"
    md = markdown_tables.table_markdown(cmp)
    assert "| CD | `table4_cd` | SE over 3 seeds | 32 ± 1.2 / 41.34 |" in md
    sr = tables.metric_by_method(results, "std_ratio", tables.METHOD_RUNS)
    se = tables.metric_by_method(results, "std_ratio", tables.METHOD_RUNS, stat="se")
    assert sr.loc["CD", 16] == pytest.approx(1.01)
    assert se.loc["CD", 16] == pytest.approx(0.01 / math.sqrt(3))


def test_one_seed_reads_as_before(tmp_path):
    _cd_seeds(tmp_path, {0: [30.0, 20.0, 21.0, 22.0, 23.0]})
    results = tables.load_results(tmp_path)
    cmp = tables.compare_table(results, tables.load_paper_numbers(), "4")
    assert cmp[cmp.row == "CD"].ours_se.isna().all()
    assert ("| CD | `table4_cd` | one value | 30 / 41.34 | 20 / 23.56 |"
            in markdown_tables.table_markdown(cmp))
    text = report.build_report("smoke", tmp_path)
    tables_part = text[text.index("## Table 3"):text.index("## Consistency")]
    # one value per cell: no standard error to show (the header names the column only)
    assert tables_part.count("±") == tables_part.count("ours: ±")


def test_replica_whose_seed_disagrees_with_its_name_is_an_error(tmp_path):
    _cd_seeds(tmp_path, {0: [30.0] * 5})
    _write(tmp_path, "table4_cd_s1", {"cd": {"fid": {1: 31.0}}}, seed=2)
    with pytest.raises(ValueError, match="records seed 2"):
        tables.seed_replicas(tables.load_results(tmp_path), "table4_cd")


def test_two_files_with_one_seed_are_an_error(tmp_path):
    _cd_seeds(tmp_path, {0: [30.0] * 5})
    _write(tmp_path, "table4_cd_s0", {"cd": {"fid": {1: 31.0}}}, seed=0)
    with pytest.raises(ValueError, match="both hold seed 0"):
        tables.replica_map(tables.load_results(tmp_path))


def _u_shape(cd2: float, cd16: float) -> list[float]:
    return [40.0, cd2, 30.0, 35.0, cd16]


def test_claims_are_judged_per_seed_against_the_spread(tmp_path):
    """CD's FID16 / FID2 per seed: 1.5, 1.0, 2.0 (mean 1.5 >= 1.3 by the margin rule), but
    the distances to the boundary, 0.2, -0.3, 0.7, give a 95% interval over the seeds of
    0.2 +- 4.30 x 0.5 / sqrt(3), across 0: inconclusive."""
    _cd_seeds(tmp_path, {0: _u_shape(20.0, 30.0), 1: _u_shape(20.0, 20.0),
                         2: _u_shape(20.0, 40.0)})
    df = claims.judge_all(claims.CLAIMS, tables.load_results(tmp_path),
                          tables.load_paper_numbers()).set_index("key")
    r = df.loc["t4_cd_u_shape"]
    assert r.seeds == [0, 1, 2] and r.ours_lhs == pytest.approx(1.5) and r.over == "seeds"
    assert r.d_mean == pytest.approx(0.2)
    assert r.d_hi - r.d_mean == pytest.approx(4.303 * 0.5 / math.sqrt(3), abs=1e-3)
    assert claim_rules.verdict(r.ours_lhs, ">~", r.ours_rhs, 0.0) == REPRODUCED
    assert r.verdict == INCONCLUSIVE
    md = claims_text.claims_markdown(df.reset_index())
    assert "| 1.5 vs 1.3 | +0.2 [-1.04, +1.44] (3 seeds) | **inconclusive** |" in md


def test_consistent_seeds_keep_the_verdict(tmp_path):
    _cd_seeds(tmp_path, {0: _u_shape(20.0, 40.0), 1: _u_shape(20.0, 42.0),
                         2: _u_shape(20.0, 38.0)})
    r = claims.judge_all(claims.CLAIMS, tables.load_results(tmp_path),
                         tables.load_paper_numbers()).set_index("key").loc["t4_cd_u_shape"]
    assert r.ours_lhs == pytest.approx(2.0) and r.verdict == REPRODUCED


def test_claims_use_the_seeds_common_to_their_rows(tmp_path):
    """+GAN has seed 0 only: CD's extra seeds are left out of +GAN < CD (seed 0 alone)."""
    _cd_seeds(tmp_path, {0: [30.0] * 5, 1: [90.0] * 5, 2: [90.0] * 5})
    _write(tmp_path, "table4_gan", {"cd+trunc+gan": {"fid": dict.fromkeys(NFES, 40.0)}})
    r = claims.judge_all(claims.CLAIMS, tables.load_results(tmp_path),
                         tables.load_paper_numbers()).set_index("key").loc["t4_gan"]
    assert r.seeds == [0] and r.ours_rhs == 30.0 and r.verdict == NOT_REPRODUCED
    assert r.over == "none" and math.isnan(r.d_lo)  # one unit: the margin rule decides
    md = claims_text.claims_markdown(claims.judge_all(
        claims.CLAIMS, tables.load_results(tmp_path), tables.load_paper_numbers()))
    assert "| 40 vs 30 | +10 (one value; seed 0, the only one common to its rows) |" in md


def test_report_with_seed_replicas(tmp_path):
    _grid(tmp_path, **MINI_LIKE)
    for seed in (1, 2):
        shifted = dict(MINI_LIKE, fid={k: [x + seed for x in v]
                                       for k, v in MINI_LIKE["fid"].items()})
        _grid(tmp_path, **shifted, suffix=f"_s{seed}", seed=seed)
    text = report.build_report("smoke", tmp_path)
    assert "0, 1, 2 for `table3_rectified`, `table4_bi`" in text
    assert "(3 seeds)" in text and text.index("## Summary") < text.index("## Scale")
    # 36.6, 37.6, 38.6: SE 1 / sqrt(3)
    assert "| CD | `table4_cd` | SE over 3 seeds | 37.6 ± 0.58 / 41.34 |" in text
    consistency = text[text.index("## Consistency"):]
    assert "| CD | SE over 3 seeds | 0.97 ± 0 | 1 ± 0 |" in consistency  # std_ratio: equal seeds
    assert "| teacher | - | - |" in consistency  # no run: nothing to be over
    from scflow.repro.report_figures import make_report_figures, table_figure

    assert all((tmp_path / rel).exists() for _, rel in make_report_figures(tmp_path))
    cmp = tables.compare_table(tables.load_results(tmp_path), tables.load_paper_numbers(), "4")
    fig = table_figure(cmp, "Table 4")
    assert len(fig.axes[0].containers) == 4  # one error-bar container per row of ours
    assert "SE over 3 seeds" in fig.axes[0].get_title()


def test_summary_lists_every_claim_under_its_verdict_with_why(tmp_path):
    _grid(tmp_path, **MINI_LIKE)
    results, paper = tables.load_results(tmp_path), tables.load_paper_numbers()
    df = claims.judge_all(claims.CLAIMS, results, paper)
    text = claims_text.summary_markdown(df)
    counts = {v: int((df.verdict == v).sum()) for v in claim_rules.VERDICTS}
    assert text.startswith(f"Of the {len(df)} claims of the paper judged here, "
                           f"**{counts[REPRODUCED]} hold in the miniature**, "
                           f"**{counts[NOT_REPRODUCED]} do not hold**, "
                           f"**{counts[claim_rules.TIE]} are ties**")
    assert f"and **{counts[INCONCLUSIVE]} are undecided**" in text
    assert all(c in text for c in df.claim)
    holds = text[text.index("**What holds**"):text.index("**What does not hold**")]
    assert all(c in holds for c in df[df.verdict == REPRODUCED].claim)
    assert not any(c in holds for c in df[df.verdict != REPRODUCED].claim)
    # why: our numbers, that they are one value each, the direction, the margin; the paper's
    assert ("ours 3.85 vs 1.5 (one value): no interval, the margin decides: the first exceeds "
            "the second, beyond the 0% margin; the paper: 1.11 vs 1.5") in text  # 40 / 10.4
    assert "the paper gives no number for it" in text  # fig6_consistency


def test_a_note_shows_only_beside_the_verdict_it_explains(tmp_path, monkeypatch):
    from scflow.repro import claim_notes

    _grid(tmp_path, **MINI_LIKE)
    df = claims.judge_all(claims.CLAIMS, tables.load_results(tmp_path),
                          tables.load_paper_numbers())
    row = df.iloc[0]
    other = next(v for v in claim_rules.VERDICTS if v != row.verdict)
    monkeypatch.setattr(claim_notes, "NOTES", {(row.key, row.verdict): "because of a reason",
                                               (row.key, other): "a stale reason"})
    text = claims_text.summary_markdown(df)
    line = next(ln for ln in text.splitlines() if ln.startswith(f"- {row.claim} "))
    assert line.endswith("*Why:* because of a reason") and "stale" not in text


def _line(**kw):
    base = dict(claim="c", source="s", op="<", margin=0.05, ours_lhs=10.0, ours_rhs=10.2,
                seeds=[0, 1, 2], n_seeds=3, n_draws=5, n_any_seeds=3, rhs_is_constant=False,
                missing=[], over="seeds", d_mean=-0.2, d_se=0.05, d_lo=-0.4, d_hi=0.0,
                tie_band=0.51, difference="+BI - +GAN @NFE 1", unit="fid", paper_lhs=None,
                paper_rhs=None, paper_verdict="n/a", verdict=INCONCLUSIVE)
    return next(pd.DataFrame([base | kw]).itertuples())


def test_why_gives_the_interval_and_what_it_is_over():
    w = claims_text.why(_line(verdict=claim_rules.TIE, d_lo=-0.4, d_hi=0.3))
    assert w.startswith("+BI - +GAN @NFE 1: -0.2 [-0.4, +0.3] FID, 3 seeds x 5 draws")
    assert "within ±0.51 (5% of 10.2)" in w
    w = claims_text.why(_line(d_lo=-0.8, d_hi=0.6))
    assert "contains 0 and reaches beyond ±0.51" in w
    w = claims_text.why(_line(verdict=REPRODUCED, d_lo=-0.4, d_hi=-0.1))
    assert w.endswith("the interval lies below 0")
    w = claims_text.why(_line(verdict=NOT_REPRODUCED, op=">", d_lo=-0.4, d_hi=-0.1))
    assert "lies below 0: the first is the smaller" in w
    w = claims_text.why(_line(n_seeds=1, seeds=[0], over="draws", d_lo=-0.8, d_hi=0.6))
    assert "5 draws of one seed: evaluation noise only, training noise not measured" in w
    w = claims_text.why(_line(over="none", n_seeds=1, seeds=[0], n_draws=0))
    assert "ours 10 vs 10.2 (one value; seed 0, the only one common to its rows)" in w
    assert "within the 5% margin, so undecided" in w
    assert "missing T4 CD NFE 1" in claims_text.why(_line(missing=["T4 CD NFE 1"]))
    assert claims_text.verdict_label(claim_rules.TIE, 0.05) == "tie (within ±5%)"
