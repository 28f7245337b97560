"""Which code, and how many torch threads, computed something: recorded in checkpoints and CSVs.

Training is chaotic: the same configuration trained by other code, or with another torch thread
count for part of its run, ends at measurably different numbers. So every distillation
checkpoint keeps its *lineage*, the segments of updates trained by one code version with one
thread count (:func:`extend_lineage`), and a resume by other code is refused unless allowed
(:data:`ALLOW_OTHER_CODE_ENV`, :mod:`scflow.checkpoint`).

A code version is a fingerprint of the ``scflow`` package sources (:func:`source_fingerprint`:
works in a copy without ``.git``); the git commit (:func:`git_revision`) is kept beside it for
people, but only the fingerprint decides whether two versions are the same.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent

ALLOW_OTHER_CODE_ENV = "SCFLOW_ALLOW_OTHER_CODE"
"""Set to ``1`` to resume a checkpoint written by other code (the runner's
``--allow-resume-other-code`` sets it); the results then list every code version."""

Segment = dict[str, Any]
"""One part of a run: ``{"code", "git", "threads", "first", "last"}`` (updates first..last)."""


def tree_fingerprint(folder: Path) -> str:
    """sha256 (16 hex digits) over the sorted relative paths and bytes of ``folder/**/*.py``."""
    h = hashlib.sha256()
    files = {p.relative_to(folder).as_posix(): p for p in Path(folder).rglob("*.py")}
    for rel in sorted(files):
        data = files[rel].read_bytes()
        # length-prefixed, so that no two different trees hash the same byte stream
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


@functools.cache
def source_fingerprint() -> str:
    """:func:`tree_fingerprint` of the ``scflow`` package: the code version (no git needed).

    Computed once per process, when this module is first imported (with the modules that
    train and write results): sources edited later, while the process runs, are not the code
    it runs.
    """
    return tree_fingerprint(PACKAGE_DIR)


def git_revision(root: Path = REPO_ROOT) -> str:
    """Short HEAD sha, ``+dirty`` if tracked files (outside results/) changed; else ``unknown``.

    ``SCFLOW_GIT_SHA`` overrides it, for a copy of a checkout without its ``.git`` (e.g. the
    working tree sent to a GPU machine).
    """
    if os.environ.get("SCFLOW_GIT_SHA"):
        return os.environ["SCFLOW_GIT_SHA"]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        sha = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


@functools.cache
def _git_at_start() -> str:
    return git_revision()


def current_segment(first: int, last: int) -> Segment:
    """A segment of updates ``first..last`` trained by this process (code, git, torch threads)."""
    return {"code": source_fingerprint(), "git": _git_at_start(),
            "threads": torch.get_num_threads(), "first": int(first), "last": int(last)}


def extend_lineage(lineage: list[Segment], step: int) -> None:
    """Record that this process trained update ``step``: extend the last segment or start one."""
    now = current_segment(step, step)
    last = lineage[-1] if lineage else None
    if (last is not None and last["last"] == step - 1
            and all(last[k] == now[k] for k in ("code", "git", "threads"))):
        last["last"] = step
    else:
        lineage.append(now)


def describe(seg: Segment) -> str:
    """``sources <fingerprint> (git <sha>)``, for messages."""
    return f"sources {seg.get('code')} (git {seg.get('git') or 'unknown'})"


def allowed_other_code() -> bool:
    """True when :data:`ALLOW_OTHER_CODE_ENV` is set to a true value (1, true, yes)."""
    return os.environ.get(ALLOW_OTHER_CODE_ENV, "").strip().lower() in ("1", "true", "yes")


# --- what computed the results of this process -----------------------------------------------
_seen: list[Segment] = []  # segments of every lineage trained or resumed in this process


def note_lineage(lineage: Sequence[Segment]) -> None:
    """Remember a trained or resumed lineage, for the results written later (:func:`seen_since`)."""
    _seen.extend(dict(s) for s in lineage)


def mark() -> int:
    """A position in the record of :func:`note_lineage`; see :func:`seen_since`."""
    return len(_seen)


def seen_since(position: int) -> list[Segment]:
    """Segments noted after :func:`mark` returned ``position``."""
    return list(_seen[position:])


def join_unique(values: Iterable[Any]) -> str:
    """Distinct values in first-seen order, joined by ``+`` (``abc+def``, ``1+2``)."""
    return "+".join(dict.fromkeys(str(v) for v in values))


source_fingerprint()  # now, see its docstring
