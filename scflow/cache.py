"""Content-addressed cache for trained artefacts (autoencoder, teacher, classifier, latents).

A cached object lives in ``<cache_root>/<kind>-<hash>/`` where the hash is taken over the JSON
of its configuration: a changed config is a cache miss (retrain), the same config a hit.
Directories are written to a temporary sibling first and renamed, so a killed run never leaves
a half-written entry that a later run would trust. Builders hold an advisory lock
(``<entry>.lock``, :func:`entry_lock`) so that parallel runs of the batch runner needing the same
artefact build it once: the second waits, then finds it built.

A miss is first looked up among the shipped artefacts (``artifacts/<preset>/``, each listed
in its ``manifest.json`` with the sha256 of every file): a listed entry is verified and copied
into the cache instead of being trained, so a fresh clone starts from the trained miniature.
A file whose hash differs is refused (:class:`ArtifactError`), never loaded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "manifest.json"
_recording: list[list[Path]] = []  # open record_entries() blocks


class ArtifactError(RuntimeError):
    """A shipped artefact does not match its manifest (tampered with, truncated, or stale)."""


def cache_root() -> Path:
    """``$SCFLOW_CACHE`` if set, else ``<repo>/cache`` (git-ignored)."""
    return Path(os.environ.get("SCFLOW_CACHE", REPO_ROOT / "cache"))


def artifacts_root() -> Path:
    """``$SCFLOW_ARTIFACTS`` if set, else ``<repo>/artifacts`` (shipped trained artefacts)."""
    return Path(os.environ.get("SCFLOW_ARTIFACTS", REPO_ROOT / "artifacts"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_entries(manifest: Path) -> dict[str, dict[str, str]]:
    """The ``entries`` of a shipped manifest; :class:`ArtifactError` naming it if damaged."""
    try:
        entries = json.loads(manifest.read_text())["entries"]
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise ArtifactError(f"{manifest} is damaged (truncated or edited: not the JSON that "
                            f"`python -m scflow.repro.artifacts` writes): restore it with "
                            f"`git checkout -- {manifest}`, or move its folder away to train "
                            f"those artefacts here") from None
    return entries


def shipped_manifest_problems() -> list[str]:
    """One line per damaged shipped manifest (checked before a run starts)."""
    problems = []
    for manifest in sorted(artifacts_root().glob(f"*/{MANIFEST}")):
        try:
            _manifest_entries(manifest)
        except ArtifactError as err:
            problems.append(f"shipped artefacts: {err}")
    return problems


def shipped_entry(name: str) -> tuple[Path, dict[str, str]] | None:
    """``(folder, {file: sha256})`` of the shipped artefact named ``name`` (``<kind>-<hash>``)."""
    for manifest in sorted(artifacts_root().glob(f"*/{MANIFEST}")):
        entries = _manifest_entries(manifest)
        if name in entries:
            return manifest.parent / name, entries[name]
    return None


def unwritable(folder: str | Path) -> str | None:
    """Why files could not be created in ``folder`` (or, if it does not exist yet, in its
    nearest existing parent, where it would be made); ``None`` if they can."""
    folder = Path(folder).absolute()
    p = folder
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    if not p.is_dir():
        return f"{p} is not a folder: move it away or choose another location"
    if not os.access(p, os.W_OK | os.X_OK):
        return (f"{p} is not writable by this user, so {folder} cannot be written: make it "
                f"writable or choose another location (SCFLOW_RESULTS / SCFLOW_CACHE)")
    return None


class DiskFullError(OSError):
    """A write failed because the disk (or the user's quota) is full."""


def disk_full(err: BaseException, path: Path) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``path`` if ``err`` is a full disk, else ``None``.

    Besides ``ENOSPC`` / ``EDQUOT``, torch's zip writer reports a full disk as a RuntimeError
    ("unexpected pos ..."), recognised here by its text and the free space left.
    """
    if isinstance(err, DiskFullError):
        return err
    full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full and isinstance(err, RuntimeError) and "unexpected pos" in str(err):
        full = True
    if not full:
        return None
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        left = f"{shutil.disk_usage(p).free / 2**20:.0f} MiB free on its disk"
    except OSError:
        left = "its disk"
    return DiskFullError(errno.ENOSPC, f"disk full while writing {path} ({left}): free space "
                                       f"and rerun (nothing half-written was kept; a killed "
                                       f"run resumes)")


@contextlib.contextmanager
def naming_a_full_disk(path: Path) -> Iterator[None]:
    """Re-raise a full disk met inside the block as the :class:`DiskFullError` of
    :func:`disk_full`, naming ``path``; any other error passes unchanged."""
    try:
        yield
    except BaseException as err:
        full = disk_full(err, path)
        if full is None or full is err:  # not a full disk, or already named
            raise
        raise full from err


def restore_shipped(final: Path) -> bool:
    """Copy the shipped artefact for cache entry ``final`` into the cache, verified; False if none.

    Every file is checked against the manifest's sha256 and ``config.json`` against the hash
    in the entry's name before anything is copied; a mismatch raises :class:`ArtifactError`.
    """
    found = shipped_entry(final.name)
    if found is None:
        return False
    src, files = found
    for rel, digest in sorted(files.items()):
        f = src / rel
        if not f.is_file():
            raise ArtifactError(f"shipped artefact {src.name}: {rel} is missing")
        if sha256_file(f) != digest:
            raise ArtifactError(f"shipped artefact {f} does not match the sha256 of "
                                f"{src.parent / MANIFEST}; refusing to load it (restore the file "
                                f"with git, or delete the entry from the manifest to retrain)")
    config = json.loads((src / "config.json").read_text())
    if f"{final.name.rsplit('-', 1)[0]}-{config_hash(config)}" != final.name:
        raise ArtifactError(f"shipped artefact {src.name}: config.json does not hash to its name")
    tmp = _fresh_sibling(final)
    tmp.mkdir(0o777)  # the umask decides, as for built entries
    try:
        for rel in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, tmp / rel)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return True


@contextlib.contextmanager
def record_entries() -> Iterator[list[Path]]:
    """Collect the cache entries :func:`cached` returns inside the block (for exporting them)."""
    used: list[Path] = []
    _recording.append(used)
    try:
        yield used
    finally:
        _recording.remove(used)


def config_hash(config: Any, length: int = 12) -> str:
    """Stable short hash of a JSON-serialisable config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def entry_dir(kind: str, config: Any) -> Path:
    """Where the artefact of ``kind`` trained with ``config`` lives (may not exist yet)."""
    return cache_root() / f"{kind}-{config_hash(config)}"


@contextlib.contextmanager
def entry_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``final`` (a cache entry) across processes.

    The lock dies with its process, so a killed builder never blocks the next run.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f"{final.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached(kind: str, config: Any, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Return ``(dir, hit)``; on a miss call ``build(tmp_dir)`` and publish it atomically.

    ``build`` writes everything it needs into the directory it is given; ``config.json`` is
    added here so every entry says how it was made. A shipped artefact (:func:`restore_shipped`)
    counts as a hit: nothing is trained.
    """
    final = entry_dir(kind, config)
    for used in _recording:
        used.append(final)
    if (final / "config.json").exists():
        return final, True
    with entry_lock(final):
        if (final / "config.json").exists():  # built by a parallel run while we waited
            return final, True
        if restore_shipped(final):
            return final, True
        tmp = _fresh_sibling(final)
        tmp.mkdir(0o777)  # the umask decides (mkdtemp would make it owner-only, 0700)
        try:
            with naming_a_full_disk(tmp):
                build(tmp)
                (tmp / "config.json").write_text(json.dumps(config, sort_keys=True, indent=1,
                                                            default=str))
            if final.exists():  # an earlier broken build: replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final, False


def _fresh_sibling(path: Path, suffix: str = "") -> Path:
    """An unused hidden name beside ``path`` for a file or folder published by rename."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}{suffix}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + rename (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(_fresh_sibling(path, ".tmp"))
    # O_EXCL on a fresh name as mkstemp does, but with the umask's mode (mkstemp: 0600), so
    # that a shared results folder stays readable by its group
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with naming_a_full_disk(path):
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # left only by a failed write
            os.unlink(tmp)
