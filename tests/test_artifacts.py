"""Shipped artefacts: exported from a cache, verified by sha256 on load, refused when tampered."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from scflow.cache import MANIFEST, ArtifactError, cached, entry_dir, sha256_file
from scflow.repro.artifacts import export_artifacts
from scflow.repro.experiment import prepare
from scflow.repro.presets import preset_values


def _toy(path):
    (path / "weights.bin").write_bytes(bytes(range(256)) * 4)


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SCFLOW_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path


def _ship(dirs, config):
    """Build a toy entry, ship it by hand as the exporter does, and empty the cache."""
    src, hit = cached("toy", config, _toy)
    assert not hit
    dest = dirs / "artifacts" / "smoke" / src.name
    shutil.copytree(src, dest)
    files = {f.name: sha256_file(f) for f in dest.iterdir()}
    (dest.parent / MANIFEST).write_text(json.dumps({"entries": {src.name: files}}))
    shutil.rmtree(dirs / "cache")
    return dest


def test_shipped_entry_restores_without_building(dirs):
    dest = _ship(dirs, {"a": 1})

    def never(_):
        raise AssertionError("a shipped artefact must not be rebuilt")

    path, hit = cached("toy", {"a": 1}, never)
    assert hit and path == entry_dir("toy", {"a": 1})
    assert (path / "weights.bin").read_bytes() == (dest / "weights.bin").read_bytes()
    path2, hit2 = cached("toy", {"a": 2}, _toy)  # another config is not shipped: built
    assert not hit2 and path2 != path


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_tampered_artefact_is_refused(dirs, damage):
    dest = _ship(dirs, {"a": 1})
    f = dest / "weights.bin"
    data = bytearray(f.read_bytes())
    if damage == "flip":
        data[17] ^= 1
        f.write_bytes(bytes(data))
    elif damage == "truncate":
        f.write_bytes(bytes(data[:-1]))
    else:
        f.unlink()
    with pytest.raises(ArtifactError, match="weights.bin"):
        cached("toy", {"a": 1}, _toy)
    assert not (entry_dir("toy", {"a": 1}) / "config.json").exists(), "nothing was published"


def test_config_not_matching_its_name_is_refused(dirs):
    dest = _ship(dirs, {"a": 1})
    (dest / "config.json").write_text(json.dumps({"a": 3}))
    files = {f.name: sha256_file(f) for f in dest.iterdir()}
    (dest.parent / MANIFEST).write_text(json.dumps({"entries": {dest.name: files}}))
    with pytest.raises(ArtifactError, match="config.json"):
        cached("toy", {"a": 1}, _toy)


@pytest.mark.slow
def test_smoke_artefacts_round_trip(dirs, monkeypatch):
    """Export the smoke preset's shared artefacts, then a fresh cache gets them without training."""
    p = preset_values("smoke")
    before = prepare(p, progress=False)
    manifest = export_artifacts("smoke")
    entries = json.loads(manifest.read_text())["entries"]
    kinds = {name.rsplit("-", 1)[0] for name in entries}
    assert {"autoencoder", "latents", "teacher", "digits_classifier"} <= kinds
    monkeypatch.setenv("SCFLOW_CACHE", str(dirs / "fresh-cache"))
    after = prepare(p, progress=False)
    assert all(after.cache_hits.values()), after.cache_hits  # nothing trained
    assert torch.equal(before.latents, after.latents)
    for a, b in zip(before.teacher.state_dict().values(), after.teacher.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
