"""Why the miniature gives a claim its verdict, in words: one note per (claim, verdict).

The report's numbers say *what* the miniature shows; a note says *why* in words (no numbers:
those are generated), drawing on the budget study, the noise table and the method. A note is
keyed by the verdict it explains, so it is shown only while the committed results still give
that verdict: if a regeneration changes the verdict, the note disappears instead of explaining
a result that is no longer there (``tests/test_claim_notes.py`` asks for a note for every claim
the committed results do not reproduce, and refuses a decimal number in a note).
"""

from __future__ import annotations

_SHORT = ("The students train for a thousand updates, a small fraction of the paper's schedule "
          "(docs/METHOD.md §7.2); ")

NOTES: dict[tuple[str, str], str] = {
    ("t3_rectified", "not reproduced"): (
        "The baseline has one training seed, so this comparison uses the full method's seed 0, "
        "the worst of the five seeds Table 4 trains; the mean of those five seeds is level with "
        "the baseline rather than behind it. " + _SHORT + "the baseline's reflow stage regresses "
        "onto the teacher's own (noise, sample) pairs, a supervised target that a short run "
        "learns quickly, while SCFlow's one-step sample is still improving steeply at this "
        "budget: in the budget study full SCFlow's one-step FID keeps falling steeply from one "
        "to four thousand updates (notebook 09)."),
    ("t4_cd_degrades", "not reproduced"): (
        _SHORT + "CD's student is still far from the teacher's one-step map: its FID falls from "
        "NFE 1 to 4 and then stays level instead of rising; the rise with NFE that the paper "
        "shows comes from errors that a long CD run compounds. In the budget study CD's FID "
        "falls at every NFE up to four times this budget, and a shallow rise from NFE 4 to 16 "
        "appears from twice this budget on."),
    ("t4_cd_u_shape", "not reproduced"): (
        "The same cause as 'CD gets worse with more steps': at this budget CD's FID is lower "
        "at NFE 16 than at NFE 2, so there is no U-shape to measure."),
    ("t4_rf_one_step", "not reproduced"): (
        _SHORT + "the reflow term (Eq. 9) pulls the student's velocity toward the teacher's "
        "straight-line targets at every time, and in a short run that competes with the GAN "
        "term, the only term aimed at the one-step sample; +RF trades one-step quality for "
        "flatness over NFE, which it does reproduce (the reflow claim on FID16 / FID1)."),
    ("t4_bi_one_step", "not reproduced"): (
        _SHORT + "the bidirectional term (Eq. 10) adds a second consistency target that the "
        "student must also satisfy; at this budget it slows the one-step sample further, as the "
        "reflow term does. The budget study shows full SCFlow's one-step FID still above +GAN's "
        "at four times the budget, the gap narrowing."),
    ("t4_bi", "not reproduced"): (
        _SHORT + "the bidirectional term costs the student at every NFE here instead of helping "
        "it; the miniature does not measure whether it pays off with longer training (the "
        "budget study trained CD, +GAN and full SCFlow, not +RF)."),
    ("t4_flat_max_min", "not reproduced"): (
        _SHORT + "SCFlow's few-step samples are already good while its one-step sample is not, "
        "so its curve over NFE is not yet flat; in the budget study the one-step FID is the one "
        "that improves fastest with more updates, so the ratio shrinks with training. The "
        "looser form of the claim (NFE 16 not worse than NFE 1) holds."),
    ("fig6_consistency", "not reproduced"): (
        "The rectified-flow baselines are the closest: they are trained on the teacher's own "
        "(noise, sample) pairs, whose paths are nearly straight by construction, so their "
        "few-step samples stay near their one-step sample. Among Table 4's consistency-"
        "distilled rows the reflow-trained students (+RF and full SCFlow) are the most "
        "consistent."),
    ("t5_weights", "not reproduced"): (
        "A larger GAN weight helps here: the row with the GAN weight at one and the other two at "
        "a tenth is the best, in line with Table 4, where the GAN term alone gives the best "
        "one-step sample at this budget; raising the reflow and bidirectional weights hurts at "
        "every setting, as in the paper. Each Table 5 row is one training seed, seed 0, and seed "
        "0 of the default weights is the worst of the five seeds Table 4 trains: the interval "
        "over the evaluation draws does not include that spread."),
    ("t6_skip", "not reproduced"): (
        "Each Table 6 row is one training seed, seed 0, and seed 0 of the default setting (t_skip "
        "a tenth) is the worst of the five seeds Table 4 trains; the larger skip's mean FID lies "
        "within the range of those five seeds, so the miniature cannot tell the two skips apart "
        "once the training seed's spread is counted, which the interval over the evaluation "
        "draws does not include."),
}
"""``(claim key, verdict) -> why``, claim keys of :data:`scflow.repro.claims.CLAIMS`, verdicts
of :mod:`scflow.repro.claim_rules`."""


def note_for(key: str, verdict: str) -> str | None:
    """The note explaining ``verdict`` for the claim ``key``, or None."""
    return NOTES.get((key, verdict))
