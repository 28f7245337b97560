"""Claims judged on paired differences over the evaluation bank's draws and the training seeds,
the tables' standard errors, the noise table and the teacher's converged reference, on
synthetic CSVs with a ``draw`` column."""

from __future__ import annotations

import math
import statistics
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from scflow.repro import claim_rules, claims, claims_text, markdown_tables, tables
from scflow.repro.claim_rules import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    TIE,
    Claim,
    Quantity,
    common_units,
)
from scflow.repro.generated import SECTIONS
from scflow.repro.noise_table import noise_markdown
from scflow.repro.paired import Interval
from scflow.repro.results import write_results
from scflow.repro.teacher_ref import converged_cell, scflow_vs_converged, teacher_line

NFES = (1, 2, 4, 8, 16)
OFF = (3.0, -2.0, 0.5, -4.0, 2.5)
"""The bank's draw noise: every row scored on draw k moves by OFF[k] (FID)."""
T4 = {"CD": ("table4_cd", "cd"), "+GAN": ("table4_gan", "cd+trunc+gan"),
      "+RF": ("table4_rf", "cd+trunc+gan+rf"), "+BI": ("table4_bi", "scflow")}


def _write(folder: Path, run: str, rows: list[dict], seed: int = 0) -> None:
    meta = dict(run=run, notebook="nb", preset="smoke", seed=seed, feature_backend="digits",
                git_sha="abc", config_hash=f"h-{run}", device="cpu", wall_time_s=1.0)
    write_results(rows, folder / f"{run}.csv", meta)


def _rows(method: str, metric: str, values: dict[int | None, Sequence[float]],
          draws: bool = True) -> list[dict]:
    return [dict(metric=metric, value=v, method=method, nfe=n, n_samples=100,
                 draw=k if draws else None)
            for n, vs in values.items() for k, v in enumerate(vs)]


def _student(folder: Path, row: str, fid: dict[int, float], seed: int = 0,
             offsets: Sequence[float] = OFF, jitter: float = 0.05, draws: bool = True) -> None:
    """A Table 4 row's CSV for one seed: FID = ``fid[nfe]`` + the draw's offset + a little
    noise of its own; without ``draws``, one value per NFE (the format before the bank)."""
    run, method = T4[row]
    rng = np.random.default_rng(zlib.crc32(f"{row}/{seed}".encode()))
    values = {n: [v + o + jitter * rng.standard_normal() for o in offsets] if draws else [v]
              for n, v in fid.items()}
    _write(folder, run if seed == 0 else f"{run}_s{seed}", _rows(method, "fid", values, draws),
           seed)


def _judged(folder: Path):
    return claims.judge_all(claims.CLAIMS, tables.load_results(folder),
                            tables.load_paper_numbers()).set_index("key")


# --- the rule on intervals ----------------------------------------------------------------------

def _iv(lo: float, hi: float) -> Interval:
    return Interval((lo + hi) / 2, (hi - lo) / 4, lo, hi, 3, 5, "seeds")


@pytest.mark.parametrize("op,lo,hi,expected", [
    ("<", -2.0, -0.5, REPRODUCED), ("<", 0.5, 2.0, NOT_REPRODUCED), ("<", -0.5, 0.5, TIE),
    ("<", -2.0, 0.5, INCONCLUSIVE), ("<", -0.2, -0.1, REPRODUCED),  # a side of 0 decides
    (">", 0.5, 2.0, REPRODUCED), (">", -2.0, -0.5, NOT_REPRODUCED), (">", -0.9, 0.9, TIE),
    ("<~", -2.0, 0.0, REPRODUCED), ("<~", 0.1, 2.0, NOT_REPRODUCED),
    ("<~", -0.1, 0.1, INCONCLUSIVE),  # no tie for "not worse than": only its boundary counts
    (">~", 0.0, 2.0, REPRODUCED), (">~", -2.0, -0.1, NOT_REPRODUCED),
    (">~", -0.1, 0.1, INCONCLUSIVE),
])
def test_interval_verdict(op, lo, hi, expected):
    assert claim_rules.interval_verdict(_iv(lo, hi), op, tie_band=1.0) == expected


def test_common_units_pair_draws_share_the_teacher_and_fall_back_to_seeds():
    s3 = frozenset((s, k) for s in range(3) for k in range(5))
    assert common_units([s3, frozenset((s, k) for s in (0, 2) for k in range(3))]) == [
        (0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2)]
    teacher = frozenset((None, k) for k in range(5))  # one net for every seed
    assert len(common_units([s3, teacher])) == 15
    assert common_units([teacher, teacher]) == [(None, k) for k in range(5)]
    old = frozenset((s, None) for s in range(3))  # a CSV without draws: one unit per seed
    assert common_units([s3, old]) == [(0, None), (1, None), (2, None)]
    assert common_units([s3, frozenset()]) == []


def _get(values: dict[str, dict[tuple, float]]):
    """A unit getter over rows "A", "B" of table 4 at NFE 1, and their units."""
    def get_unit(table, row, nfe, metric, unit):
        return values[row].get(unit)

    def units_of(table, row, metric):
        return frozenset(values[row])

    return get_unit, units_of


def _mean_get(values):
    def get(table, row, nfe, metric):
        vs = list(values[row].values())
        return sum(vs) / len(vs)
    return get


CLAIM = Claim("k", "A beats B", "test", Quantity("4", ("A",), (1,)), "<",
              Quantity("4", ("B",), (1,)))


def test_one_unit_falls_back_to_the_margin_rule():
    """9.7 vs 10 is within the 5% margin: undecided with one value each; on five draws whose
    noise both rows share, the difference -0.3 is measured: reproduced."""
    one = {"A": {(0, None): 9.7}, "B": {(0, None): 10.0}}
    r = claim_rules.judge(CLAIM, _mean_get(one), _get(one))
    assert r["over"] == "none" and r["verdict"] == INCONCLUSIVE and math.isnan(r["d_lo"])
    five = {"A": {(0, k): 9.7 + o + 0.01 * k for k, o in enumerate(OFF)},
            "B": {(0, k): 10.0 + o for k, o in enumerate(OFF)}}
    r = claim_rules.judge(CLAIM, _mean_get(five), _get(five))
    assert r["over"] == "draws" and r["n_draws"] == 5 and r["n_seeds"] == 1
    assert r["d_mean"] == pytest.approx(-0.28) and r["d_hi"] < 0
    assert r["verdict"] == REPRODUCED


def test_constant_rhs_difference_and_the_tie_band():
    c = Claim("k", "flat", "test", Quantity("4", ("A",), (1,)), "<", 1.5)
    vals = {"A": {(s, 0): 1.5 + d for s, d in enumerate((0.01, -0.01, 0.02))}}
    r = claim_rules.judge(c, _mean_get(vals), _get(vals))
    assert r["d_mean"] == pytest.approx(0.02 / 3) and r["tie_band"] == pytest.approx(0.075)
    assert r["verdict"] == TIE


def test_scale_is_a_factor_on_a_side():
    """"Under a fifth of the teacher's time" compares with 0.2 x the teacher's time."""
    q = Quantity("2", ("T",), (25,), metric="sec_per_image", scale=0.2)
    assert claim_rules.quantity_value(q, lambda *a: 10.0) == (2.0, [])
    assert q.describe() == "0.2 x sec_per_image T2 T @NFE 25"
    speed = next(c for c in claims.CLAIMS if c.key == "t2_speed")
    assert claim_rules.difference_label(speed) == "Ours-0.9B @NFE 1 - 0.2 x 2-RF @NFE 25"


# --- on CSVs: pairing, verdicts, formats --------------------------------------------------------

def test_a_shared_draw_offset_cancels(tmp_path):
    """+GAN is 1 FID better than CD on every draw while the draws move both by up to 7: the
    paired interval is tight. The same numbers with +GAN's draws shuffled (noise not shared)
    leave the claim undecided."""
    _student(tmp_path, "CD", {1: 20.0})
    _student(tmp_path, "+GAN", {1: 19.0})
    r = _judged(tmp_path).loc["t4_gan"]
    assert r.verdict == REPRODUCED and r.over == "draws" and r.n_draws == 5
    assert r.d_mean == pytest.approx(-1.0, abs=0.1) and r.d_hi - r.d_lo < 0.5
    shuffled = OFF[1:] + OFF[:1]
    _student(tmp_path, "+GAN", {1: 19.0}, offsets=shuffled)
    r = _judged(tmp_path).loc["t4_gan"]
    assert r.verdict == INCONCLUSIVE and r.d_hi - r.d_lo > 5


@pytest.mark.parametrize("gan,expected", [
    ({0: 19.0, 1: 18.8, 2: 19.3}, REPRODUCED), ({0: 22.0, 1: 22.3, 2: 21.8}, NOT_REPRODUCED),
    ({0: 20.1, 1: 19.9, 2: 20.05}, TIE), ({0: 18.5, 1: 20.5, 2: 21.5}, INCONCLUSIVE),
])
def test_verdicts_over_three_seeds_and_five_draws(tmp_path, gan, expected):
    for seed in range(3):
        _student(tmp_path, "CD", {1: 20.0}, seed=seed)
        _student(tmp_path, "+GAN", {1: gan[seed]}, seed=seed)
    df = _judged(tmp_path)
    r = df.loc["t4_gan"]
    assert r.verdict == expected
    assert (r.over, r.n_seeds, r.n_draws) == ("seeds", 3, 5)
    assert r.tie_band == pytest.approx(0.05 * r.ours_rhs)
    why = claims_text.why(next(df.reset_index().query("key == 't4_gan'").itertuples()))
    assert why.startswith(f"+GAN - CD @NFE 1: {r.d_mean:+.3g} [") and "3 seeds x 5 draws" in why
    md = claims_text.claims_markdown(df.reset_index())
    assert f"**{claims_text.verdict_label(expected, 0.05)}**" in md


def test_old_format_beside_draws_compares_seed_means(tmp_path):
    for seed in range(3):
        _student(tmp_path, "CD", {1: 20.0 + seed}, seed=seed, draws=False)
        _student(tmp_path, "+GAN", {1: 18.0 + seed}, seed=seed)
    r = _judged(tmp_path).loc["t4_gan"]
    assert (r.over, r.n_seeds, r.n_draws) == ("seeds", 3, 0)
    # each +GAN seed: 18 + seed + mean(OFF) + its noise; CD: 20 + seed
    assert r.d_mean == pytest.approx(-2.0 + statistics.fmean(OFF), abs=0.1)
    assert r.verdict == REPRODUCED


def _teacher(folder: Path, heun: dict[int, list[float]] | None = None, floors: bool = True):
    """01_teacher.csv: Euler at NFE 1 and 25, Heun at ``heun``, the floors, per draw."""
    rows = _rows("teacher", "fid", {1: [900.0 + o for o in OFF], 25: [8.0 + o for o in OFF]})
    rows += _rows("teacher_heun", "fid", heun or {24: [7.0 + o for o in OFF],
                                                  100: [6.0 + o for o in OFF]})
    if floors:
        rows += _rows("memoriser", "fid", {None: [2.0, 3.0, 4.0, 3.0, 3.0]})
        rows += _rows("novel_real", "fid", {None: [5.0, 6.0, 5.5, 5.5, 5.5]})
    _write(folder, "01_teacher", rows)


def test_the_teacher_pairs_with_every_seed(tmp_path):
    _teacher(tmp_path)
    for seed in range(3):
        _student(tmp_path, "+BI", {1: 12.0, 16: 10.0}, seed=seed)
    r = _judged(tmp_path).loc["t3_teacher"]
    assert (r.n_seeds, r.n_draws, r.verdict) == (3, 5, REPRODUCED)
    assert r.d_mean == pytest.approx(12.0 - 900.0, abs=0.1)


def test_tables_show_the_standard_error_and_what_it_is_over(tmp_path):
    _student(tmp_path, "CD", {1: 20.0, 2: 9.0}, jitter=0.0)
    for seed in range(3):
        _student(tmp_path, "+GAN", {1: 19.0 + seed, 2: 8.0}, seed=seed)
    cmp = tables.compare_table(tables.load_results(tmp_path), tables.load_paper_numbers(), "4")
    cd = cmp[(cmp.row == "CD") & (cmp.nfe == 1)].iloc[0]
    assert cd.ours == pytest.approx(20.0 + statistics.fmean(OFF))
    assert cd.ours_se == pytest.approx(statistics.stdev(OFF) / math.sqrt(5))
    assert cd.over == "5 draws of one seed"
    gan = cmp[(cmp.row == "+GAN") & (cmp.nfe == 1)].iloc[0]
    assert gan.over == "3 seeds x 5 draws"
    assert gan.ours_se == pytest.approx(1.0 / math.sqrt(3), abs=0.05)  # seed means 19, 20, 21
    md = markdown_tables.table_markdown(cmp)
    assert "| CD | `table4_cd` | SE over 5 draws of one seed | 20 ± 1.3 / 41.34 |" in md
    assert "| +GAN | `table4_gan` | SE over 3 seeds x 5 draws |" in md


def test_noise_table_on_a_synthetic_teacher_csv(tmp_path):
    _teacher(tmp_path)
    for seed in range(3):
        _student(tmp_path, "CD", dict.fromkeys(NFES, 20.0), seed=seed)
        _student(tmp_path, "+GAN", dict.fromkeys(NFES, 18.0), seed=seed)
    md = noise_markdown(tables.load_results(tmp_path), tables.load_paper_numbers())
    sd = statistics.stdev(OFF)
    assert "same 5 draws of 100 samples each of the evaluation bank" in md
    assert "| memoriser floor: n_eval training images against all of them | 3 ± 0.71 (mean ± " \
           "sd) | 5 draws |" in md
    assert "| novel-real floor: n_eval real images against the other images | 5.5 ± 0.35 (mean " \
           "± sd) | 5 draws |" in md
    assert f"| teacher, Euler at NFE 25: sd over draws | sd {sd:.2g} (mean 8) |" in md
    assert f"| teacher, converged (Heun, NFE 100): sd over draws | sd {sd:.2g} (mean 6) |" in md
    # every student's draws carry OFF (sd 2.98) and a little noise of their own
    assert "over Table 4's rows, seeds and NFEs | 3 (range 2.9-3) | 30 cells |" in md
    line = next(x for x in md.splitlines() if x.startswith("| +GAN - CD |"))
    assert line.startswith("| +GAN - CD | 3 seeds x 5 draws | ")
    mean, se = (float(x) for x in line.split(" | ")[2].split(" ± "))
    assert mean == pytest.approx(-2.0, abs=0.05) and se < 0.05  # the draws' noise cancelled
    assert next(x for x in md.splitlines() if x.startswith("| +RF - +GAN |")).endswith(
        "| missing | missing | missing | missing | missing |")


def test_noise_table_says_what_is_missing_in_old_csvs(tmp_path):
    _write(tmp_path, "01_teacher", _rows("teacher", "fid", {25: [10.9]}, draws=False))
    md = noise_markdown(tables.load_results(tmp_path), tables.load_paper_numbers())
    assert "hold no draws of the evaluation bank yet" in md
    assert "| memoriser floor: n_eval training images against all of them | missing | - |" in md
    assert "| teacher, Euler at NFE 25: sd over draws | one value (10.9), no draws | - |" in md
    assert "| teacher, converged (Heun): sd over draws | missing | - |" in md
    assert "noise" in SECTIONS


def test_teacher_row_shows_its_converged_fid_and_scflow_against_it(tmp_path):
    heun = [6.0 + o / 4 for o in OFF]
    _teacher(tmp_path, heun={24: [7.0] * 5, 100: heun})
    for seed in range(3):  # one-step SCFlow 1.4 times the converged teacher, draw by draw
        run = "table4_bi" if seed == 0 else f"table4_bi_s{seed}"
        _write(tmp_path, run, _rows("scflow", "fid", {1: [1.4 * h * (1 + 0.01 * seed)
                                                           for h in heun]}), seed)
    results, paper = tables.load_results(tmp_path), tables.load_paper_numbers()
    cell = converged_cell(results)
    assert cell.startswith(f"{statistics.fmean(heun):.3g} ± ")
    assert "(Heun, NFE 100; SE over 5 draws of one seed) / 5.67 (dopri5)" in cell
    iv = scflow_vs_converged(results, paper)
    assert iv.over == "seeds" and iv.n_seeds == 3 and iv.n_draws == 5
    assert iv.mean == pytest.approx(1.4 * 1.01)
    line = teacher_line(results, paper)
    assert f"ours {iv.mean:.2f} [{iv.lo:.2f}, {iv.hi:.2f}]" in line
    assert "3 seeds x 5 draws" in line and "paper 8.06 / 5.67 = 1.42" in line
    from scflow.repro.report import build_report

    t3 = build_report("smoke", tmp_path)
    t3 = t3[t3.index("## Table 3"):t3.index("## Table 4")]
    assert "| converged: ours / paper |" in t3 and cell in t3 and line in t3


def test_teacher_line_without_a_converged_reference(tmp_path):
    _write(tmp_path, "01_teacher", _rows("teacher", "fid", {25: [10.9]}, draws=False))
    results, paper = tables.load_results(tmp_path), tables.load_paper_numbers()
    assert converged_cell(results) == "missing / 5.67 (dopri5)"
    assert scflow_vs_converged(results, paper) is None
    assert "ours missing" in teacher_line(results, paper)
