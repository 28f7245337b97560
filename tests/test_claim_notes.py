"""Every claim the committed results do not reproduce says why in words (scflow/repro/claim_notes.py)."""

from __future__ import annotations

import re

import pytest

from scflow.repro import claims, tables
from scflow.repro.claim_notes import NOTES, note_for
from scflow.repro.claim_rules import REPRODUCED
from scflow.repro.results import results_dir

DECIMAL = r"(?<![§\d])\d+\.\d"
"""A decimal number; a section of docs/METHOD.md ("§7.2") is a reference, not a result."""


def test_every_claim_not_reproduced_has_a_note_for_its_verdict():
    folder = results_dir("mini")
    if not (folder / "table4_bi.csv").exists():
        pytest.skip("no committed mini results")
    judged = claims.judge_all(claims.CLAIMS, tables.load_results(folder),
                              tables.load_paper_numbers())
    missing = [f"{r.key} ({r.verdict})" for r in judged.itertuples()
               if r.verdict != REPRODUCED and note_for(r.key, r.verdict) is None]
    assert not missing, f"claims without a note for their verdict: {', '.join(missing)}"


def test_notes_name_known_claims_and_verdicts_and_hold_no_result_numbers():
    from scflow.repro.claim_rules import VERDICTS

    keys = {c.key for c in claims.CLAIMS}
    for (key, verdict), text in NOTES.items():
        assert key in keys and verdict in VERDICTS, (key, verdict)
        assert not re.search(DECIMAL, text), f"{key}: a decimal number in a note"


def test_the_decimal_check_tells_results_from_section_references():
    assert re.search(DECIMAL, "its FID rose by 4.6")
    assert not re.search(DECIMAL, "a short schedule (docs/METHOD.md §7.2)")
