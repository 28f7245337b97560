"""Export the trained shared artefacts of a preset from the cache into ``artifacts/<preset>/``.

The autoencoder, the latents, the teacher and the digits classifier are what every student
notebook needs before its first figure; on the 2-core CPU they take notebook 01's time at the
``mini`` preset (README, Timings). Shipped in the repository with a manifest of their cache names and
sha256 (a few MB), :func:`scflow.cache.cached` verifies them and copies them into the cache on a
miss, so a fresh clone trains only the student. Usage, after ``mini`` has been trained::

    python -m scflow.repro.artifacts --preset mini        # writes artifacts/mini/ + manifest.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from scflow.cache import MANIFEST, artifacts_root, record_entries, sha256_file
from scflow.repro.experiment import make_extractor, prepare
from scflow.repro.presets import PRESET_NAMES, preset_values


def export_artifacts(preset: str, dest: Path | None = None) -> Path:
    """Copy the cache entries notebook 01 builds for ``preset`` into ``dest`` with a manifest.

    The entries are the ones :func:`scflow.repro.experiment.prepare` and the FID feature extractor
    look up (recorded, not guessed, so a changed cache key is exported as it is used); what is
    not cached yet is trained first. Returns the manifest's path.
    """
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    dest = Path(dest) if dest is not None else artifacts_root() / preset
    p = preset_values(preset)
    with record_entries() as used:
        s = prepare(p, progress=False)
        make_extractor(p, s.device)
    entries: dict[str, dict[str, str]] = {}
    dest.mkdir(parents=True, exist_ok=True)
    for src in dict.fromkeys(used):  # in order, once each
        target = dest / src.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src, target)
        entries[src.name] = {str(f.relative_to(target)): sha256_file(f)
                             for f in sorted(target.rglob("*")) if f.is_file()}
    manifest = dest / MANIFEST
    manifest.write_text(json.dumps({"preset": preset, "entries": entries}, indent=1,
                                   sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    """``python -m scflow.repro.artifacts --preset mini [--dest DIR]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mini", choices=PRESET_NAMES)
    ap.add_argument("--dest", type=Path, default=None,
                    help="folder to write (default: artifacts/<preset>/)")
    args = ap.parse_args(argv)
    manifest = export_artifacts(args.preset, args.dest)
    entries = json.loads(manifest.read_text())["entries"]
    size = sum(f.stat().st_size for f in manifest.parent.rglob("*") if f.is_file())
    print(f"wrote {manifest}: {', '.join(entries)} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
