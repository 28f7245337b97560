"""Generated sections of README.md and docs/*.md: prose numbers rendered from the results CSVs.

A section is written between two markers naming a preset and a section of :data:`SECTIONS`::

    <!-- generated: mini/table4 -->
    ... (rendered from results/mini/*.csv; never edited by hand)
    <!-- /generated: mini/table4 -->

``python -m scflow.repro.report --preset mini`` rewrites every ``mini/...`` section (and
REPORT.md); ``--check`` lists the sections that differ from what the CSVs give, and
``tests/test_generated.py`` fails on such drift. Outside the markers the prose holds no result
numbers (the same test checks that too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from scflow.cache import REPO_ROOT, atomic_write_bytes
from scflow.repro.claims import CLAIMS, judge_all
from scflow.repro.claims_text import summary_markdown
from scflow.repro.markdown_tables import (
    num,
    seeds_cell,
    t2i_markdown,
    t2i_speed_line,
    table_markdown,
)
from scflow.repro.noise_table import noise_markdown
from scflow.repro.presets import PRESET_NAMES, preset_values
from scflow.repro.results import results_dir
from scflow.repro.tables import (
    STUDY_NOTEBOOK,
    compare_table,
    load_paper_numbers,
    load_paper_t2i,
    load_results,
)
from scflow.repro.teacher_ref import teacher_line
from scflow.repro.timings import timings_markdown

MARKER = re.compile(r"<!-- generated: (?P<name>[^ ]+) -->\n(?P<body>.*?)"
                    r"<!-- /generated: (?P=name) -->", re.S)
OPENING = re.compile(r"<!-- generated: (?P<name>[^ ]+) -->")


class GeneratedSectionError(ValueError):
    """A marker names an unknown preset or section, or is not closed."""


def _table4(preset: str, results: pd.DataFrame) -> str:
    cmp = compare_table(results, load_paper_numbers(), "4")
    return (f"Table 4 in miniature, FID per NFE (digits features; cells: ours / the paper's "
            f"CelebA-HQ Inception FID as printed there). Ours is the mean over the row's seeds "
            f"and draws of the evaluation bank ± the standard error the claims use (column "
            f"`ours: ±`); seeds: {seeds_cell(results, preset_values(preset)['seed'])}.\n\n"
            + table_markdown(cmp))


def _noise(preset: str, results: pd.DataFrame) -> str:
    paper = load_paper_numbers()
    return noise_markdown(results, paper) + "\n\n" + teacher_line(results, paper)


def _t2i(preset: str, results: pd.DataFrame) -> str:
    return t2i_markdown(results, load_paper_t2i(), "1") + "\n\n" + t2i_speed_line(results)


def _claims(preset: str, results: pd.DataFrame) -> str:
    judged = judge_all(CLAIMS, results, load_paper_numbers())
    return (summary_markdown(judged) + f"\nEvery rule, both sides and the paper's own numbers: "
            f"`results/{preset}/REPORT.md`.")


def _timings(preset: str, results: pd.DataFrame) -> str:
    return timings_markdown(results)


def _budget(preset: str, results: pd.DataFrame) -> str:
    """The budget study's table (FID per NFE per method, schedule and updates, means over the
    bank's draws), what its rule chose from every study CSV, and the paired changes it shows."""
    from scflow.repro import budget
    from scflow.repro.presets import preset_values

    rows = budget.study_rows(results)
    if not rows:
        return "(the budget study has not been run)"
    df = pd.DataFrame(rows)
    nfes = sorted(int(n) for n in df.nfe.dropna().unique() if n <= 16)
    keys = ["method", "schedule", "step"]
    fid = df[df.metric == "fid"].pivot_table(index=keys, columns="nfe", values="value")
    std = df[(df.metric == "std_ratio") & (df.nfe == nfes[-1])].groupby(keys).value.mean()
    head = ("| method, schedule | updates | " + " | ".join(f"FID NFE {n}" for n in nfes)
            + f" | max / min | FID{nfes[-1]} / FID2 | std_ratio NFE {nfes[-1]} |")
    lines = [head, "|" + "---|" * (len(nfes) + 5)]
    for (method, schedule, step), row in fid.iterrows():
        vals = [row[n] for n in nfes]
        rise = row[nfes[-1]] / row[2] if 2 in row.index else math.nan
        lines.append(f"| {method}, {schedule} | {step} | " + " | ".join(num(v) for v in vals)
                     + f" | {max(vals) / min(vals):.2f} | {rise:.2f} | "
                     + f"{std.get((method, schedule, step), math.nan):.3f} |")
    study = results[results.notebook == STUDY_NOTEBOOK]
    seeds = sorted({int(s) for s in pd.to_numeric(study.seed, errors="coerce").dropna()})
    out = [f"Seed {', '.join(map(str, seeds))}; every (method, schedule) at every budget, scored "
           f"on the evaluation bank ({df.draw.nunique()} draws; means shown).", "", *lines]
    try:
        rule = budget.select_from_results(results, preset_values(preset))
    except ValueError as err:
        return "\n".join([*out, "", f"(no choice: {err})"])
    out += ["", f"The rule chose the **{rule['schedule']}** schedule, **{rule['updates']} "
                f"updates** and **{rule['table4_seeds']} training seeds** per Table 4 row "
                f"(measured seconds per update: "
                + ", ".join(f"{m} {v:.3f}" for m, v in rule["sec_per_update"].items())
                + f"; one evaluation on the bank {rule['eval_seconds']:.0f} s; estimated grid "
                f"minutes per budget: "
                + ", ".join(f"{k}: {v:.0f}" for k, v in rule["minutes"].items()) + ")."]
    bank = budget.bank_check(rows, rule["schedule"], rule["updates"])
    out += ["", f"The bank's size (rule of docs/METHOD.md §8): at that setting the smallest "
                f"difference the claims test is {bank['difference']}, {bank['mean']:+.2f} ± "
                f"{bank['se']:.2f} FID (paired over {bank['draws']} draws); its standard error "
                f"is {bank['ratio']:.2f} of it, "
                + ("within a third: the bank stays at its size." if bank["enough"] else
                   "beyond a third: the rule asks for more draws.")]
    steps = sorted(df.step.unique())
    changes = []
    for schedule in sorted(df.schedule.unique()):
        for method in sorted(df.method.unique()):
            for a, b in zip(steps[1:], steps[:-1], strict=True):
                m, se, n = budget.paired_gap(rows, dict(method=method, schedule=schedule, step=a,
                                                        nfe=nfes[-1]),
                                             dict(method=method, schedule=schedule, step=b,
                                                  nfe=nfes[-1]))
                changes.append(f"{method} {schedule} {b}->{a}: {m:+.1f} ± {se:.1f}")
    out += ["", f"FID change at NFE {nfes[-1]} from one budget to the next (paired over the "
                f"draws, ± standard error; positive = worse, the drift): " + "; ".join(changes)
            + "."]
    if {"scflow", "gan"} <= set(df.method):
        gaps = [f"{schedule} {step}: {m:+.1f} ± {se:.1f}"
                for schedule in sorted(df.schedule.unique()) for step in steps
                for m, se, _ in [budget.paired_gap(
                    rows, dict(method="scflow", schedule=schedule, step=step, nfe=nfes[0]),
                    dict(method="gan", schedule=schedule, step=step, nfe=nfes[0]))]]
        out += ["", "SCFlow's one-step FID minus +GAN's (paired over the draws): "
                + "; ".join(gaps) + "."]
    return "\n".join(out)


def _verify(preset: str, results: pd.DataFrame) -> str:
    from scflow.repro.verify_record import RECORD_NAME, read_record, verify_markdown

    folder = Path(results.attrs.get("folder") or results_dir(preset))
    return verify_markdown(read_record(folder / RECORD_NAME))


SECTIONS: dict[str, Callable[[str, pd.DataFrame], str]] = {
    "table4": _table4, "noise": _noise, "t2i": _t2i, "claims": _claims, "timings": _timings,
    "budget": _budget, "verify": _verify}
"""Section name -> its renderer (preset, that preset's results) -> Markdown."""


def prose_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files that may hold generated sections: README.md and docs/*.md."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def _split(name: str, where: str) -> tuple[str, str]:
    preset, _, section = name.partition("/")
    if preset not in PRESET_NAMES or section not in SECTIONS:
        raise GeneratedSectionError(
            f"{where}: marker 'generated: {name}' must name <preset>/<section>, preset one of "
            f"{', '.join(PRESET_NAMES)}, section one of {', '.join(SECTIONS)}")
    return preset, section


def _check_markers(text: str, where: str) -> None:
    closed = {m.start() for m in MARKER.finditer(text)}
    for m in OPENING.finditer(text):
        if m.start() not in closed:
            raise GeneratedSectionError(f"{where}: marker 'generated: {m['name']}' has no "
                                        f"closing '<!-- /generated: {m['name']} -->'")
        _split(m["name"], where)


def refresh_text(text: str, where: str, presets: tuple[str, ...] | None = None,
                 folders: dict[str, Path] | None = None) -> str:
    """``text`` with every generated section (of ``presets``; all if None) rendered anew from
    ``folders[preset]`` (default ``results/<preset>/``)."""
    _check_markers(text, where)
    cache: dict[str, pd.DataFrame] = {}

    def render(m: re.Match[str]) -> str:
        preset, section = _split(m["name"], where)
        if presets is not None and preset not in presets:
            return m.group(0)
        if preset not in cache:
            folder = (folders or {}).get(preset) or results_dir(preset)
            cache[preset] = load_results(folder)
        body = SECTIONS[section](preset, cache[preset]).strip()
        return f"<!-- generated: {m['name']} -->\n{body}\n<!-- /generated: {m['name']} -->"

    return MARKER.sub(render, text)


def refresh_files(preset: str, root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite the ``preset``'s generated sections of :func:`prose_files`; the changed files."""
    changed = []
    for path in prose_files(root):
        text = path.read_text()
        new = refresh_text(text, str(path.relative_to(root)), (preset,))
        if new != text:
            atomic_write_bytes(path, new.encode())
            changed.append(path)
    return changed


def stale_sections(root: Path = REPO_ROOT) -> list[str]:
    """``<file>: <preset>/<section>`` of every generated section that differs from what the
    committed CSVs render (empty: the prose and the results agree)."""
    stale = []
    for path in prose_files(root):
        text, where = path.read_text(), str(path.relative_to(root))
        fresh = {m["name"]: m.group(0) for m in MARKER.finditer(refresh_text(text, where))}
        stale += [f"{where}: {m['name']}" for m in MARKER.finditer(text)
                  if fresh.get(m["name"]) != m.group(0)]
    return stale


def generated_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every generated section of ``text``, markers included."""
    return [m.span() for m in MARKER.finditer(text)]
