"""Why the miniature gives a claim its verdict, in words: one note per (claim, verdict).

The report's numbers say *what* the miniature shows; a note says *why* in words (no numbers:
those are generated), drawing on the budget study, the noise table and the method. A note is
keyed by the verdict it explains, so it is shown only while the committed results still give
that verdict: if a regeneration changes the verdict, the note disappears instead of explaining
a result that is no longer there (``tests/test_claim_notes.py`` asks for a note for every claim
the committed results do not reproduce, and refuses a decimal number in a note).
"""

from __future__ import annotations

NOTES: dict[tuple[str, str], str] = {}
"""``(claim key, verdict) -> why``, claim keys of :data:`scflow.repro.claims.CLAIMS`, verdicts
of :mod:`scflow.repro.claim_rules`."""


def note_for(key: str, verdict: str, notes: dict[tuple[str, str], str] | None = None) -> str | None:
    """The note explaining ``verdict`` for the claim ``key``, or None."""
    return (NOTES if notes is None else notes).get((key, verdict))
