"""What the runner (:mod:`scflow.repro.run`) prints about a plan, and the environment it runs in.

``--list`` / ``--dry-run`` show each run's status (done, to run, alias, or why its CSV would
be replaced), ``--dry-run`` adds its file, injected values and cost estimate; ``--verify-data``
rehashes the folder datasets; :func:`runner_environment` resolves the folders given by
environment once and applies ``--set``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scflow.repro.cost import describe
from scflow.repro.plan import PlannedRun
from scflow.repro.presets import overrides_applied, preset_values
from scflow.repro.results_read import results_state

PATH_ENVS = ("SCFLOW_RESULTS", "SCFLOW_RUNS", "SCFLOW_CACHE", "SCFLOW_ARTIFACTS",
             "SCFLOW_NOTEBOOKS")
"""Folders given by environment: resolved once here, as the kernels (run in the repository
root) must see the same folders as the runner."""


def _status(run: PlannedRun, force: bool, seen: dict[str, str]) -> str:
    h, state = run.params.config_hash, results_state(run.csv)
    if state.problem:
        status = "MODIFIED" if "modified after its run" in state.problem else "unreadable"
    elif not force and state.config_hash == h:
        status = "done"
    elif h in seen:
        status = f"alias of {seen[h]}"
    elif state.exists:
        status = "replaces CSV"
    else:
        status = "to run"
    seen.setdefault(h, run.name)
    return status


def describe_runs(runs: Sequence[PlannedRun], force: bool, detail: bool, out: Any) -> None:
    seen: dict[str, str] = {}
    for run in runs:
        status = _status(run, force, seen)
        print(f"{run.name:32s} {run.notebook.stem:28s} {status:16s} # {run.comment}", file=out)
        if detail:
            print(f"    file {run.file}\n    inject {run.injected()}\n    -> {run.output}, "
                  f"{run.csv}", file=out)
            if "device" in run.params:
                p = {**preset_values(run.params.preset), **run.params}
                print(f"    estimate {describe(run.notebook.stem, p)}", file=out)
            for note in run.notes:
                print(f"    note: {note}", file=out)


def verify_data(runs: Sequence[PlannedRun], out: Any) -> None:
    """Rehash the images of every folder dataset the runs read; say what changed unnoticed."""
    from scflow.data import verify_folder

    folders = {(p["data_dir"], p.get("data_limit") or None)
               for p in ({**preset_values(r.params.preset), **r.params} for r in runs
                         if "device" in r.params) if p.get("dataset") == "folder"}
    for folder, limit in sorted(folders, key=str):
        changed = verify_folder(folder, limit)
        names = ", ".join(str(f) for f in changed[:5]) + (" ..." if len(changed) > 5 else "")
        print(f"--verify-data {folder}: " + (f"{len(changed)} image(s) changed with the same "
              f"size, mtime and inode: {names}; the runs reading them are out of date"
              if changed else "every image matches its recorded sha256"), file=out)
    if not folders:
        print("--verify-data: no folder dataset in these runs (the digits are hashed from "
              "the loaded arrays every time)", file=out)


@contextlib.contextmanager
def runner_environment(sets: dict[str, Any]) -> Iterator[None]:
    """The runner's environment: absolute folders (:data:`PATH_ENVS`) and the ``--set`` values."""
    saved = {k: os.environ.get(k) for k in PATH_ENVS}
    for k, v in saved.items():
        if v:
            os.environ[k] = str(Path(v).expanduser().absolute())
    try:
        with overrides_applied(sets):
            yield
    finally:
        for k, v in saved.items():
            if v is not None:
                os.environ[k] = v
