"""Headless batch runner: ``python -m scflow.repro.run papermill_runs/ [--preset P] [--dry-run]``.

Every YAML file describes one run (see ``papermill_runs/README.md``)::

    # Table 6, row "t_trunc 0.2"
    notebook: 05_bidirectional_loss
    run_name: table6_trunc0.2        # optional, defaults to the file stem
    parameters: {t_trunc: 0.2}

All files are validated BEFORE anything runs: the notebook exists, every key is a parameter of
that notebook (close matches are suggested), every value has the declared type and range, the
preset is known. Then each run is executed by papermill (kernel ``python3``, cwd = repository
root) into ``runs/<preset>/<run_name>.ipynb`` with its log beside it; the notebook itself writes
``results/<preset>/<run_name>.csv``.

Resume and dedupe use the config hash of (notebook, resolved parameters but run_name, the
preset's values, the data's content): identical configurations in one batch run once and the
others receive a copy of its CSV (an alias, noted in their log); a run whose CSV already carries
the same hash is skipped unless ``--force``. A CSV of another notebook or configuration, or one
modified after its run (its digest, :mod:`scflow.repro.results`), is never replaced without
``--force``: the plan names it and nothing runs. ``--set key=value`` changes a value for every
run of the batch (as if the preset had it; a run file's own key still wins), validated like a
run file's keys and part of each configuration hash. ``--verify-data`` rehashes every image of
a folder dataset instead of trusting the remembered digests of unchanged files. A failed run
does not stop the batch; failures are listed at the end and the exit code is 1 (2 for invalid
or no run files, CSVs that would be replaced, or a GPU, data or weights missing here).
``--jobs N`` runs N notebooks at once, each in its own process (see
:func:`scflow.repro.batch.run_batch`); a run file with ``barrier: true`` starts after all earlier
ones. Planning is :mod:`scflow.repro.plan`, execution :mod:`scflow.repro.execute`. ``--verify``
reruns committed runs from scratch and compares every value (:mod:`scflow.repro.verify`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from scflow.cache import REPO_ROOT
from scflow.provenance import ALLOW_OTHER_CODE_ENV
from scflow.repro.batch import replacements, run_batch
from scflow.repro.execute import execute_job
from scflow.repro.listing import describe_runs, runner_environment, verify_data
from scflow.repro.plan import RunConfigError, parse_sets, plan
from scflow.repro.presets import PRESET_NAMES


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code (0 ok, 1 failed runs, 2 nothing run)."""
    ap = argparse.ArgumentParser(prog="python -m scflow.repro.run", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=[str(REPO_ROOT / "papermill_runs")],
                    help="YAML files or folders of them (default: papermill_runs/)")
    ap.add_argument("--preset", default="mini", help=f"one of {', '.join(PRESET_NAMES)}")
    ap.add_argument("--dry-run", action="store_true", help="validate and show the plan only")
    ap.add_argument("--list", action="store_true",
                    help="list the runs and their status (no check of this machine)")
    ap.add_argument("--force", action="store_true",
                    help="rerun even if results exist; replace CSVs of other configurations")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a parameter value for every run of the batch, as if the preset had "
                         "it (repeatable), e.g. --set vae=weights/sd-vae-ft-mse")
    ap.add_argument("--verify-data", action="store_true",
                    help="rehash every image of a folder dataset (not only changed files)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks executed at once, each in its own process with "
                         "cpu_count/jobs threads (default 1)")
    ap.add_argument("--allow-resume-other-code", action="store_true",
                    help=f"resume distillation checkpoints written by other code (sets "
                         f"{ALLOW_OTHER_CODE_ENV}=1; the CSV's code_version lists every version)")
    ap.add_argument("--verify", action="store_true",
                    help="rerun the named committed runs from scratch in temporary folders and "
                         "compare every value with the committed CSVs (exit 1 on a difference)")
    ap.add_argument("--record", action="store_true",
                    help="--verify: write the outcome to results/<preset>/verify.json (the "
                         "README's 'When regeneration is exact' is rendered from it)")
    ap.add_argument("--tolerance", type=float, default=0.0,
                    help="--verify: largest relative difference accepted (default 0: bit-identical)")
    ap.add_argument("--execute-job", default=None, help=argparse.SUPPRESS)  # child of --jobs
    ap.add_argument("--notebooks-dir", type=Path, default=None,
                    help="where notebooks are looked up (default: $SCFLOW_NOTEBOOKS or notebooks/)")
    args = ap.parse_args(argv)
    if args.execute_job is not None:  # one notebook, in a child process of a parallel batch
        execute_job(json.loads(args.execute_job))
        return 0
    if args.jobs < 1:
        print(f"--jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.verify:
        from scflow.repro.verify import verify

        return verify(args.paths, args.preset, args.jobs, args.tolerance, args.notebooks_dir,
                      record=args.record)
    if args.allow_resume_other_code:
        os.environ[ALLOW_OTHER_CODE_ENV] = "1"  # the kernels inherit it
    try:
        sets = parse_sets(args.set)
    except RunConfigError as err:
        print(f"invalid --set, nothing was run:\n{err}", file=sys.stderr)
        return 2
    with runner_environment(sets):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        runs = plan(args.paths, args.preset, args.notebooks_dir, machine=not args.list)
    except RunConfigError as err:
        print(f"invalid run files or missing inputs, nothing was run:\n{err}", file=sys.stderr)
        return 2
    if not runs:
        print(f"no run files (*.yaml) in {' '.join(args.paths)}", file=sys.stderr)
        return 2
    if args.verify_data:
        verify_data(runs, sys.stdout)
    problems, notes = replacements(runs, args.force)
    if args.list or args.dry_run:
        describe_runs(runs, args.force, detail=args.dry_run, out=sys.stdout)
        for line in notes:
            print(f"note: {line}", file=sys.stdout)
        if problems:
            print("\n".join(problems), file=sys.stderr)
        return 2 if problems and args.dry_run else 0
    if problems:
        print("results that would be replaced, nothing was run:\n" + "\n".join(problems),
              file=sys.stderr)
        return 2
    for line in notes:
        print(f"note: {line}", file=sys.stdout)
    failures = run_batch(runs, force=args.force, jobs=args.jobs)
    if failures:
        print(f"\n{len(failures)} of {len(runs)} runs failed:", file=sys.stderr)
        for run, reason in failures:
            print(f"  {run.name}: {reason}\n    log: {run.log}", file=sys.stderr)
        return 1
    print(f"all {len(runs)} runs ok", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
