"""Content-addressed cache for trained artefacts (autoencoder, teacher, classifier, latents).

A cached object lives in ``<cache_root>/<kind>-<hash>/`` where the hash is taken over the JSON
of its configuration: a changed config is a cache miss (retrain), the same config a hit.
Directories are written to a temporary sibling first and renamed, so a killed run never leaves
a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    """``$SCFLOW_CACHE`` if set, else ``<repo>/cache`` (git-ignored)."""
    return Path(os.environ.get("SCFLOW_CACHE", REPO_ROOT / "cache"))


def config_hash(config: Any, length: int = 12) -> str:
    """Stable short hash of a JSON-serialisable config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def entry_dir(kind: str, config: Any) -> Path:
    """Where the artefact of ``kind`` trained with ``config`` lives (may not exist yet)."""
    return cache_root() / f"{kind}-{config_hash(config)}"


def cached(kind: str, config: Any, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Return ``(dir, hit)``; on a miss call ``build(tmp_dir)`` and publish it atomically.

    ``build`` writes everything it needs into the directory it is given; ``config.json`` is
    added here so every entry says how it was made.
    """
    final = entry_dir(kind, config)
    if (final / "config.json").exists():
        return final, True
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        (tmp / "config.json").write_text(json.dumps(config, sort_keys=True, indent=1, default=str))
        if final.exists():  # a concurrent or earlier broken build: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final, False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + rename (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
