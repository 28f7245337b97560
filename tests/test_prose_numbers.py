"""No hand-typed result number in the prose: README.md, docs/*.md and the notebooks' Markdown
cells hold decimal numbers only inside generated sections (rendered from the CSVs,
scflow/repro/generated.py), or where the number is not a result of ours.

A *decimal literal* is a number written with a decimal point (``12.5``, ``0.979``, ``4.4-5.1``)
in prose: outside generated sections, fenced code and inline code. It is allowed when it is
- the paper's: a number of ``scflow/repro/data/*.csv`` (at the precision written) on a line, or
  in a Markdown table whose header, that says "paper";
- a configuration value: one that a preset or a run file sets (a hyperparameter, e.g. 0.9);
- a version or a size: right after a software or model name (Python 3.11-3.13, SD 1.5), or
  with a size suffix (0.7M parameters, 0.9B, 5.8 MB);
- one of :data:`KNOWN_CONSTANTS`, each with the reason it is not a result;
- in a document of :data:`MEASURED_BY_HAND` only: a number on a line, or in a Markdown table
  whose header, that says "measured".
Everything else is a result typed by hand: render it from the CSVs instead (a generated section,
or a notebook cell that prints the committed value).
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
import yaml

from scflow.cache import REPO_ROOT
from scflow.repro.generated import generated_spans
from scflow.repro.presets import PRESETS

KNOWN_CONSTANTS = {
    "6.25": "the LAION aesthetic-score threshold of the paper's text-to-image training data",
    "5.67": "the FID LFM's authors publish for their CelebA-HQ 256 model (the teacher's weights)",
}
MEASURED_BY_HAND = {
    "docs/GPU.md": "GPU timings, FLOP counts and CPU benchmark ratios taken by hand with a named "
                   "command, machine and commit; no run writes them to a CSV, so no generated "
                   "section can render them, and each is labelled as measured where it stands",
}
"""The only documents where a hand-measured number may stand, each with the reason; README.md
and the rest keep the strict rule (their times come from the generated timings section)."""
VERSIONED = re.compile(r"(?:Python|python|SD|Diffusion|torch|scipy|numpy|CUDA|cu|driver|"
                       r"clean-fid|version|v)\s?(?:\d+\.\d+[-–])?$")
LITERAL = re.compile(r"(?<![\w.§])(\d+\.\d+)(?![.\d])")
SIZE = re.compile(r"(?:[MB](?![a-z])|\s?[KMGT]i?B\b)")


def _floats(value, out: set[float]) -> set[float]:
    if isinstance(value, (list, tuple)):
        for v in value:
            _floats(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _floats(v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.add(float(value))
    return out


def configuration_values() -> set[float]:
    """Every number a preset or a committed run file sets."""
    out: set[float] = set()
    for preset in PRESETS.values():
        _floats(preset, out)
    for f in (REPO_ROOT / "papermill_runs").glob("*.yaml"):
        _floats((yaml.safe_load(f.read_text()) or {}).get("parameters", {}), out)
    return out


def paper_values() -> set[float]:
    """Every number of the paper's tables as the data files hold them."""
    out: set[float] = set()
    for f in (REPO_ROOT / "scflow" / "repro" / "data").glob("*.csv"):
        df = pd.read_csv(f, comment="#")
        for col in df.select_dtypes("number").columns:
            if col != "nfe":
                out |= {float(v) for v in df[col].dropna()}
    return out


def _is_paper_number(literal: str, paper: set[float]) -> bool:
    digits = len(literal.split(".")[1])
    return any(math.isclose(round(p, digits), float(literal)) for p in paper)


def prose_lines(text: str) -> list[str]:
    """``text`` without generated sections, fenced code and inline code (line numbers kept)."""
    for a, b in reversed(generated_spans(text)):
        text = text[:a] + "\n" * text[a:b].count("\n") + text[b:]
    out, fence = [], False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            fence = not fence
            out.append("")
            continue
        out.append("" if fence else re.sub(r"`[^`]*`", "", line))
    return out


def result_literals(text: str, config: set[float], paper: set[float],
                    measured_ok: bool = False) -> list[tuple[int, str]]:
    """(line number, literal) of every decimal literal of ``text`` that is not allowed;
    ``measured_ok``: ``text`` is a document of :data:`MEASURED_BY_HAND`."""
    found, header = [], ""
    for i, line in enumerate(prose_lines(text), 1):
        if line.lstrip().startswith("|"):
            header = header or line
        else:
            header = ""
        labelled = "paper" in line.lower() or "paper" in header.lower()
        measured = measured_ok and ("measured" in line.lower() or "measured" in header.lower())
        for m in LITERAL.finditer(line):
            lit = m.group(1)
            if (SIZE.match(line, m.end()) or VERSIONED.search(line[:m.start()])
                    or lit in KNOWN_CONSTANTS or float(lit) in config or measured
                    or (labelled and _is_paper_number(lit, paper))):
                continue
            found.append((i, lit))
    return found


def _documents() -> list[tuple[str, str]]:
    docs = [("README.md", (REPO_ROOT / "README.md").read_text())]
    docs += [(f"docs/{p.name}", p.read_text()) for p in sorted((REPO_ROOT / "docs").glob("*.md"))]
    for nb in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        for k, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] == "markdown":
                docs.append((f"notebooks/{nb.name} cell {k}", "".join(cell["source"])))
    return docs


DOCUMENTS = _documents()


@pytest.fixture(scope="module")
def known():
    return configuration_values(), paper_values()


@pytest.mark.parametrize("where,text", DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_prose_holds_no_hand_typed_result(where, text, known):
    found = result_literals(text, *known, measured_ok=where in MEASURED_BY_HAND)
    assert not found, (f"{where}: result numbers typed by hand (line: number) "
                       f"{found[:12]}{' ...' if len(found) > 12 else ''}; render them from the "
                       "CSVs (a generated section) or say it in words")


def test_the_check_flags_results_and_allows_the_rest(known):
    config, paper = known
    text = """Intro: CD reaches FID 17.2 at NFE 1 (ours).
The paper: CD 41.34 at NFE 1; its 23.56 at NFE 2.
Ours 41.34 on a line that does not say whose.
Target EMA 0.9, guidance 1.5; Python 3.11-3.13 and SD 1.5; a 0.7M-parameter net of 2.8 MB.
Inline `17.2` and code are not prose.

| row | paper FID |
|---|---|
| CD | 41.34 |

```
fid = 13.3
```
<!-- generated: mini/table4 -->
| CD | 19.5 ± 2.5 / 41.34 |
<!-- /generated: mini/table4 -->
After the section: 9.36 by hand."""
    assert result_literals(text, config, paper) == [(1, "17.2"), (3, "41.34"), (17, "9.36")]


def test_hand_measured_numbers_only_where_allowed_and_labelled(known):
    config, paper = known
    text = """Measured on one H100: 7.5 s per student.
A full update takes 92.7 ms.

| net | update (measured, H100) |
|---|---|
| mini | 41.0 ms |"""
    assert result_literals(text, config, paper) == [(1, "7.5"), (2, "92.7"), (6, "41.0")]
    assert result_literals(text, config, paper, measured_ok=True) == [(2, "92.7")]
    assert "README.md" not in MEASURED_BY_HAND  # its times come from the generated section
