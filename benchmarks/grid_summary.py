"""Markdown summary of one ``gpu_grid.sh`` run: the grid's wall time, what the box cut short,
and the FIDs it computed beside the committed ones.

Reads ``ROOT/results/<preset>/*.csv`` (verified by their digests, as the report reads them),
``ROOT/runs/<preset>/<run>.log`` (the last progress bar of a run the box cut short) and the
runner's output (``--runner``: one ``[i/n] run (...): ...`` line per event). Missing pieces are
said, not guessed.

    python benchmarks/grid_summary.py ROOT [--preset mini] [--runner F] [--box S] [--jobs N]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from scflow.repro.publish import terminal_text  # noqa: E402
from scflow.repro.tables import load_results  # noqa: E402
from scflow.repro.timings import timings_markdown  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EVENT = re.compile(r"^\[(\d+)/(\d+)\] (\S+) \([^)]*\): (.*)$")
BAR = re.compile(r"\d+/\d+ \[[^\]]*\]")  # tqdm's "k/N [elapsed<left, rate]"
TQDM = re.compile(r"^(.*?):?\s*(\d+%)\|[^|]*\|\s*(.*)$")  # "desc: 45%|####   | 450/1000 [...]"


def runner_events(text: str) -> tuple[int | None, dict[str, str]]:
    """The plan's size and each run's last event (``running ...``, ``ok in ...``, ...)."""
    total, last = None, {}
    for line in text.splitlines():
        m = EVENT.match(line.strip())
        if m:
            total = int(m.group(2))
            last[m.group(3)] = m.group(4)
    return total, last


def last_bar(log: Path) -> str:
    """The last progress-bar state written to a run's log ('-' if none)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "-"
    states = [s.strip() for s in terminal_text(text).splitlines() if BAR.search(s)]
    if not states:
        return "-"
    m = TQDM.match(states[-1])  # without the bar's own '|' (a markdown table's separator)
    return " ".join(x for x in m.groups() if x) if m else states[-1].replace("|", "/")


def fid_beside(ours: pd.DataFrame, committed: pd.DataFrame) -> list[str]:
    """FID (mean over seeds and draws) at NFE 1 and the largest NFE, ours beside committed."""
    def means(df: pd.DataFrame) -> pd.Series:
        f = df[df.metric == "fid"].copy()
        f["nfe"] = pd.to_numeric(f.nfe, errors="coerce")
        f["value"] = pd.to_numeric(f.value, errors="coerce")
        return f.dropna(subset=["nfe"]).groupby(["run", "method", "nfe"]).value.mean()

    a = means(ours)
    if a.empty:
        return ["No FID was computed in the box."]
    b = means(committed) if not committed.empty else pd.Series(dtype=float)
    out = ["| run | method | NFE | FID, this run | FID, committed |", "|---|---|---|---|---|"]
    for (run, method), grp in a.groupby(level=["run", "method"], sort=True):
        nfes = sorted(grp.index.get_level_values("nfe"))
        for nfe in sorted({nfes[0], nfes[-1]}):
            key = (run, method, nfe)
            theirs = f"{b[key]:.4g}" if key in b.index else "-"
            out.append(f"| `{run}` | {method} | {nfe:g} | {a[key]:.4g} | {theirs} |")
    return out


def summary(root: Path, preset: str, runner: str, box: float | None, jobs: int | None,
            exit_code: int | None, elapsed: float | None, device_name: str,
            committed: Path) -> str:
    """The markdown of the module docstring."""
    results = load_results(root / "results" / preset)
    total, events = runner_events(runner)
    finished = sorted(r for r, e in events.items()  # a copy of an identical run's CSV counts
                      if e.startswith(("ok in", "same configuration", "skipped")))
    failed = sorted(r for r, e in events.items() if "FAILED" in e or e.startswith("not run"))
    cut = sorted(r for r, e in events.items() if e.startswith("running"))
    where = f" on {device_name}" if device_name else ""
    setup = ", ".join(x for x in (f"`--jobs {jobs}`" if jobs else "",
                                  f"a box of {box:g} s" if box else "") if x)
    lines = [f"# The `{preset}` grid{where}" + (f" ({setup})" if setup else ""), ""]
    if total is None:
        lines.append("The runner printed no event (see log.txt).")
    elif exit_code == 0 and not cut:
        lines.append(f"The runner finished all {total} runs of the plan.")
    else:
        ended = "the box stopped the runner" if exit_code in (124, 137) else \
            f"the runner ended with exit code {exit_code}"
        lines.append(f"Not the whole grid: {ended}. Of the plan's {total} runs, "
                     f"{len(finished)} finished, {len(failed)} failed, {len(cut)} were cut "
                     "short; the others had not started.")
    if elapsed is not None:
        lines += ["", f"The runner's wall time, from its start to its exit: "
                      f"{elapsed / 60:.1f} min."]
    lines += ["", "The runs that finished, from their CSVs:", "",
              timings_markdown(results) if len(results) else "(no run finished)"]
    if failed:
        lines += ["", "Failed: " + ", ".join(f"`{r}` ({events[r]})" for r in failed) + "."]
    if cut:
        lines += ["", "## Cut short by the box: the last progress bar of each log", "",
                  "| run | last progress bar |", "|---|---|"]
        lines += [f"| `{r}` | `{last_bar(root / 'runs' / preset / f'{r}.log')}` |" for r in cut]
    reference = load_results(committed) if committed.is_dir() else pd.DataFrame()
    lines += ["", "## FID of this run beside the committed one (same configuration, other "
                  "device: training is chaotic, so only the order of magnitude compares)", ""]
    lines += fid_beside(results, reference) if len(results) else ["No run finished."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="the scratch folder of gpu_grid.sh")
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--runner", type=Path, help="the runner's output")
    ap.add_argument("--box", type=float)
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--exit-code", type=int)
    ap.add_argument("--elapsed", type=float, help="the runner's wall seconds")
    ap.add_argument("--device-name", default="")
    ap.add_argument("--committed", type=Path, help="default: results/<preset> of this checkout")
    a = ap.parse_args(argv)
    runner = a.runner.read_text(errors="replace") if a.runner and a.runner.exists() else ""
    print(summary(a.root, a.preset, runner, a.box, a.jobs, a.exit_code, a.elapsed,
                  a.device_name,
                  a.committed or REPO / "results" / a.preset))


if __name__ == "__main__":
    main()
