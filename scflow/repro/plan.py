"""Planning a batch: run files -> validated :class:`PlannedRun` objects, before anything runs.

Every file is checked against its notebook (every key a parameter of it, every value of the
declared type and range, a safe run name), the parameters are resolved for the preset, and what
the runs need from outside (GPU, data, weights) is checked once; all problems are reported in one
:class:`RunConfigError`. The YAML format is described in :mod:`scflow.repro.run`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scflow.cache import REPO_ROOT
from scflow.repro.cost import estimate_bytes, folder_images, human_bytes, machine_memory
from scflow.repro.notebooks import NotebookError, notebook_path, notebooks_dir, parameters_cell
from scflow.repro.params import (
    RunParams,
    check_run_name,
    resolve_notebook_params,
    unknown_name_message,
)
from scflow.repro.paramspec import ParameterError, short_repr
from scflow.repro.presets import PARAMS, PRESET_NAMES, batch_overrides, preset_values
from scflow.repro.results import results_path, results_root
from scflow.repro.runfile import RunFileError, load_run_file
from scflow.repro.textfile import FileProblem

SPEC_KEYS = ("notebook", "run_name", "parameters", "barrier", "writes")


class RunConfigError(ValueError):
    """One or more invalid run files (nothing has been executed)."""


@dataclass
class PlannedRun:
    """One validated YAML file, ready to execute."""

    file: Path
    notebook: Path
    params: RunParams
    overrides: dict[str, Any]
    comment: str
    csv: Path
    output: Path
    log: Path
    notes: list[str] = field(default_factory=list)
    barrier: bool = False  # starts only after every earlier run of the batch has finished
    writes: Path | None = None  # the file it writes in place of a CSV (the report: REPORT.md)

    @property
    def name(self) -> str:
        return self.params.run_name

    def injected(self) -> dict[str, Any]:
        """What papermill injects: preset, run_name and the file's overrides."""
        return {"preset": self.params.preset, "run_name": self.name, **self.overrides}


def runs_root() -> Path:
    """``$SCFLOW_RUNS`` if set, else ``<repo>/runs`` (git-ignored executed notebooks + logs)."""
    return Path(os.environ.get("SCFLOW_RUNS", REPO_ROOT / "runs"))


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """YAML files named directly or found (recursively, sorted) under folders.

    A folder named ``*.yaml`` is searched, not read; anything else named ``*.yaml`` (a FIFO
    included) is listed, so that reading it says what is wrong with it instead of hanging.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*")
                            if q.suffix in (".yaml", ".yml") and not q.is_dir())
        elif os.path.lexists(p):
            files.append(p)
        else:
            raise RunConfigError(f"{p}: no such file or folder")
    return files


def _first_comment(text: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith("#"):
            return line.strip().lstrip("#").strip()
    return ""


def _value_hint(key: str, value: Any) -> str:
    """Explain YAML's habit of reading ``1e-4`` as a string."""
    if PARAMS[key].type is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            float(value)
            return f" (YAML reads {value!r} as text: write it with a dot, e.g. 1.0e-4)"
    return ""


def plan_one(file: Path, preset: str, nb_dir: Path, runs_dir: Path) -> PlannedRun:
    """Validate one YAML file against its notebook; raise :class:`RunConfigError` if invalid."""
    try:
        spec, text = load_run_file(file)
    except RunFileError as err:
        raise RunConfigError(str(err)) from None
    return plan_spec(spec, file, preset, nb_dir, runs_dir, _first_comment(text))


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` items -> ``{key: value}``, validated like a run file's parameters.

    The value is read as YAML (``0.2``, ``[1, 2]``, ``weights/sd-vae-ft-mse``); the key must be a
    parameter (:data:`~scflow.repro.presets.PARAMS`, close matches suggested). Raises one
    :class:`RunConfigError` listing every problem.
    """
    values: dict[str, Any] = {}
    errors = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(f"--set {item[:80]!r}: expected key=value, e.g. --set seed=1")
            continue
        if key in ("preset", "run_name"):
            errors.append(f"--set {key}: use {'--preset' if key == 'preset' else 'run files'}")
            continue
        if key not in PARAMS:
            errors.append("--set: " + unknown_name_message(key, PARAMS))
            continue
        if key in values:
            errors.append(f"--set {key}: given twice")
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else ""
            values[key] = PARAMS[key].check(key, value)
        except yaml.YAMLError:
            errors.append(f"--set {key}: cannot read {text[:80]!r} as a value")
        except ParameterError as err:
            errors.append(f"--set: {err}{_value_hint(key, value)}")
    if errors:
        raise RunConfigError("\n".join(errors))
    return values


def plan_spec(spec: Any, file: Path, preset: str, nb_dir: Path, runs_dir: Path,
              comment: str = "") -> PlannedRun:
    """Validate one run description (the YAML's mapping); ``file`` names it in errors."""
    if not isinstance(spec, dict) or "notebook" not in spec:
        raise RunConfigError(f"{file}: expected a mapping with at least `notebook:`")
    if not isinstance(spec["notebook"], str) or not spec["notebook"].strip():
        raise RunConfigError(f"{file}: `notebook:` must name a notebook (e.g. "
                             f"05_bidirectional_loss), not {spec['notebook']!r}")
    errors = [f"{file}: unknown key {k!r}; allowed: {', '.join(SPEC_KEYS)}"
              for k in spec if k not in SPEC_KEYS]
    run_name = str(spec.get("run_name") or file.stem)
    bad_name = check_run_name(run_name)
    if bad_name:
        errors.append(f"{file}: {bad_name}")
    overrides = spec.get("parameters") or {}
    if not isinstance(overrides, dict):
        raise RunConfigError(f"{file}: `parameters:` must be a mapping")
    try:
        nb = notebook_path(spec["notebook"], nb_dir)
        defaults = parameters_cell(nb)
    except NotebookError as err:
        raise RunConfigError(f"{file}: {err}") from err
    for key in ("preset", "run_name"):
        if key in overrides:
            errors.append(f"{file}: set {key!r} with "
                          f"{'--preset' if key == 'preset' else 'the top-level run_name:'}, "
                          f"not under parameters")
        if key not in defaults:
            errors.append(f"{file}: notebook {nb.stem} has no {key!r} parameter, so the runner "
                          f"cannot run it")
    for key in overrides:
        if key not in defaults:
            errors.append(f"{file}: " + unknown_name_message(key, defaults, f"notebook {nb.stem}"))
        elif key in PARAMS and key not in ("preset", "run_name"):
            try:
                PARAMS[key].check(key, overrides[key])
            except ParameterError as err:
                errors.append(f"{file}: {err}{_value_hint(key, overrides[key])}")
    if errors:
        raise RunConfigError("\n".join(errors))
    values = {**defaults, **overrides, "preset": preset, "run_name": run_name}
    try:
        params = resolve_notebook_params(nb.stem, values, explicit=overrides)
    except ParameterError as err:
        raise RunConfigError("\n".join(f"{file}: {e}" for e in str(err).splitlines())) from err
    output = runs_dir / preset / f"{run_name}.ipynb"
    if nb_dir.resolve() in output.resolve().parents:
        raise RunConfigError(f"{file}: executed notebooks must not be written into {nb_dir}")
    barrier = spec.get("barrier", False)
    if not isinstance(barrier, bool):
        raise RunConfigError(f"{file}: `barrier:` must be true or false, not {barrier!r}")
    writes = spec.get("writes")
    if writes is not None and (not isinstance(writes, str) or Path(writes).name != writes
                               or writes in (".", "..") or writes.endswith(".csv")):
        raise RunConfigError(f"{file}: `writes:` names the one file the run writes in "
                             f"results/<preset>/ instead of a CSV (e.g. REPORT.md), not {writes!r}")
    csv = results_path(preset, run_name)
    run = PlannedRun(file, nb, params, overrides, comment, csv, output, output.with_suffix(".log"),
                     barrier=barrier, writes=csv.parent / writes if writes else None)
    run.notes += [f"--set {k} does not apply: the run file sets {k}: {short_repr(overrides[k])}"
                  for k in batch_overrides() if k in overrides]
    return run


def plan(paths: Sequence[str | Path], preset: str = "mini", nb_dir: Path | None = None,
         runs_dir: Path | None = None, machine: bool = True) -> list[PlannedRun]:
    """Validate every run file; raise one :class:`RunConfigError` listing every problem.

    ``machine=False`` leaves out what this machine must provide (GPU, data, weights, memory,
    writable folders): enough to list the runs and their status anywhere.
    """
    if preset not in PRESET_NAMES:
        raise RunConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    nb_dir = notebooks_dir() if nb_dir is None else Path(nb_dir)
    runs_dir = runs_root() if runs_dir is None else Path(runs_dir)
    try:
        results_root()
    except FileProblem as err:
        raise RunConfigError(str(err)) from None
    runs, errors = [], []
    for file in collect_files(paths):
        try:
            runs.append(plan_one(file, preset, nb_dir, runs_dir))
        except RunConfigError as err:
            errors.append(str(err))
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            errors.append(f"{run.file}: run_name {run.name!r} already used by {seen[run.name]}")
        seen[run.name] = run.file
    if errors:
        raise RunConfigError("\n".join(errors))
    missing = _missing(runs, preset) if machine else ""
    if missing:
        raise RunConfigError(missing)
    return runs


def _missing(runs: Sequence[PlannedRun], preset: str) -> str:
    """Everything the runs need from outside and lack (GPU, data, weights, memory, writable
    folders), each listed once with the runs that need it; ``""`` when nothing is missing."""
    # imported here, not above: experiment imports torch, which validating run files never
    # needs (a plan without a computing notebook, or --list, stays light)
    from scflow.repro.experiment import preflight

    needed_by: dict[str, list[str]] = {}
    memory = machine_memory()
    for run in runs:
        if "device" in run.params:  # a notebook without a device computes nothing
            p = {**preset_values(preset), **run.params}
            problems, _ = preflight(p)
            need = estimate_bytes(run.notebook.stem, p, folder_images(p))
            if memory and need > memory:
                problems.append(f"memory: {run.name} must hold about {human_bytes(need)} at "
                                f"once (scflow.repro.cost), this machine has "
                                f"{human_bytes(memory)}: lower n_eval, nfe_list or the "
                                f"number of updates")
            for problem in problems:
                needed_by.setdefault(problem, []).append(run.name)
    lines = []
    for problem, names in needed_by.items():
        who = "every run" if len(names) == len(runs) or len(names) > 3 else ", ".join(names)
        lines.append(f"- {problem}\n  (needed by {who})")
    if not lines:
        return ""
    return (f"preset {preset!r}: {len(lines)} things missing on this machine:\n"
            + "\n".join(lines))
