"""Checkpoints know the code and thread count that trained them, and hold their loss history."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest
import torch

from scflow import provenance
from scflow.checkpoint import OtherCodeError, atomic_save
from scflow.distill import DistillConfig, LatentData
from scflow.fidelity import make_fidelity
from scflow.nets import build_velocity_net
from scflow.trainer import Distiller

pytestmark = pytest.mark.usefixtures("one_thread")


def _distiller(ckpt_dir=None) -> Distiller:
    torch.manual_seed(0)
    teacher = build_velocity_net("unet_tiny", sample_size=8).eval().requires_grad_(False)
    cfg = DistillConfig(fidelity=make_fidelity("code"), batch_size=4, disc_width=8)
    data = LatentData(torch.randn(16, 4, 8, 8, generator=torch.Generator().manual_seed(1)))
    return Distiller(teacher, data, cfg, device="cpu", ckpt_dir=ckpt_dir)


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A checkpoint of 2 updates written by code version ``old0000`` (git ``aaa1111``)."""
    monkeypatch.delenv(provenance.ALLOW_OTHER_CODE_ENV, raising=False)
    monkeypatch.setattr(provenance, "source_fingerprint", lambda: "old0000")
    monkeypatch.setattr(provenance, "_git_at_start", lambda: "aaa1111")
    d = _distiller(str(tmp_path))
    d.train(2)
    monkeypatch.setattr(provenance, "source_fingerprint", lambda: "new1111")
    monkeypatch.setattr(provenance, "_git_at_start", lambda: "bbb2222+dirty")
    return tmp_path / "last.pt"


def test_tree_fingerprint_covers_paths_and_bytes_only(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("x = 1\n")
    (tmp_path / "y.py").write_text("y = 2\n")
    first = provenance.tree_fingerprint(tmp_path)
    (tmp_path / "notes.txt").write_text("not code")
    assert provenance.tree_fingerprint(tmp_path) == first
    (tmp_path / "a" / "x.py").write_text("x = 3\n")
    assert provenance.tree_fingerprint(tmp_path) != first
    (tmp_path / "a" / "x.py").write_text("x = 1\n")
    (tmp_path / "y.py").rename(tmp_path / "z.py")  # same bytes, another path
    assert provenance.tree_fingerprint(tmp_path) != first
    assert provenance.source_fingerprint() == provenance.tree_fingerprint(provenance.PACKAGE_DIR)


def test_checkpoint_of_other_code_is_refused_naming_both(trained):
    fresh = _distiller()
    with pytest.raises(OtherCodeError) as err:
        fresh.resume(str(trained))
    msg = str(err.value)
    for part in ("old0000", "aaa1111", "new1111", "bbb2222+dirty", "updates 1-2",
                 str(trained.parent), "SCFLOW_ALLOW_OTHER_CODE=1", "--allow-resume-other-code"):
        assert part in msg, part
    assert "\n" not in msg  # the runner reports an error's last line
    assert fresh.step_count == 0 and fresh.history == []  # nothing was loaded


def test_allowed_resume_records_both_versions(trained, monkeypatch):
    from scflow.repro.params import resolve_notebook_params
    from scflow.repro.results import ResultsWriter

    results = ResultsWriter(resolve_notebook_params("02_naive_consistency_distillation", {}))
    monkeypatch.setenv(provenance.ALLOW_OTHER_CODE_ENV, "1")
    d = _distiller(str(trained.parent))
    with pytest.warns(UserWarning, match="old0000.*new1111"):
        assert d.resume(str(trained)) == 2
    d.train(2)
    assert [(s["code"], s["first"], s["last"]) for s in d.lineage] == [("old0000", 1, 2),
                                                                       ("new1111", 3, 4)]
    assert results.code_meta() == {"code_version": "old0000+new1111", "torch_threads": "1"}
    # the mix was allowed once: the same (new) code resumes it without being allowed again
    monkeypatch.delenv(provenance.ALLOW_OTHER_CODE_ENV)
    assert _distiller().resume(str(trained)) == 4
    with pytest.raises(OtherCodeError):  # an explicit refusal wins over nothing
        monkeypatch.setattr(provenance, "source_fingerprint", lambda: "third22")
        _distiller().resume(str(trained), allow_other_code=False)


def test_other_thread_count_is_warned_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_git_at_start", lambda: "aaa1111")
    d = _distiller(str(tmp_path))
    d.train(2)
    torch.set_num_threads(2)  # the one_thread fixture restores the count
    fresh = _distiller(str(tmp_path))
    with pytest.warns(UserWarning, match="1 torch threads, this process has 2"):
        assert fresh.resume(str(tmp_path / "last.pt")) == 2
    fresh.train(1)
    assert [(s["threads"], s["first"], s["last"]) for s in fresh.lineage] == [(1, 1, 2), (2, 3, 3)]


def test_same_code_and_threads_resume_silently(tmp_path):
    d = _distiller(str(tmp_path))
    d.train(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _distiller().resume(str(tmp_path / "last.pt")) == 2


def test_history_lives_in_the_checkpoint(tmp_path):
    d = _distiller(str(tmp_path))
    logs = d.train(3)
    assert [h["step"] for h in d.history] == [1, 2, 3] and logs == d.history
    fresh = _distiller()
    fresh.resume(str(tmp_path / "last.pt"))
    assert fresh.history == d.history  # bit-equal floats
    fresh.train(1)
    assert [h["step"] for h in fresh.history] == [1, 2, 3, 4]


@pytest.mark.parametrize("cut", ["history", "lineage"])
def test_checkpoint_whose_history_does_not_cover_its_updates_is_refused(tmp_path, cut):
    d = _distiller(str(tmp_path))
    d.train(3)
    path = tmp_path / "last.pt"
    ck = torch.load(path, weights_only=True)
    ck[cut] = ck[cut][:1] if cut == "history" else [dict(ck[cut][0], last=2)]
    atomic_save(ck, path)
    with pytest.raises(ValueError, match=rf"{path} has 3 updates but its loss history does not "
                                         rf"cover them.*delete {tmp_path} to retrain"):
        _distiller().resume(str(path))


def test_checkpoint_without_code_version_is_refused(tmp_path):
    d = _distiller(str(tmp_path))
    d.train(1)
    path = tmp_path / "last.pt"
    ck = torch.load(path, weights_only=True)
    old = {k: v for k, v in ck.items() if k not in ("history", "lineage")} | {"format": 1}
    atomic_save(old, path)
    with pytest.raises(ValueError, match=rf"written before checkpoints recorded their code.*"
                                         rf"delete {tmp_path}"):
        _distiller().resume(str(path))


def test_results_carry_code_version_and_threads(tmp_path):
    from scflow.repro.params import resolve_notebook_params
    from scflow.repro.results import ResultsWriter

    P = resolve_notebook_params("02_naive_consistency_distillation", {"preset": "smoke"})
    with ResultsWriter(P, path=tmp_path / "r.csv") as r:
        r.add("fid", 1.5, method="cd", nfe=1)
    with open(tmp_path / "r.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["code_version"] == provenance.source_fingerprint()
    assert row["torch_threads"] == str(torch.get_num_threads())


def test_results_written_before_the_new_columns_are_still_read(tmp_path):
    from scflow.repro.csvfile import sealed_csv
    from scflow.repro.results import COLUMNS, DATA_COLUMNS, LATER_COLUMNS, is_results_header
    from scflow.repro.tables import load_results

    old = [c for c in DATA_COLUMNS if c not in LATER_COLUMNS]
    assert is_results_header(old) and is_results_header(DATA_COLUMNS)
    assert not is_results_header([*old, "extra"]) and not is_results_header(old[1:])
    row = {c: "" for c in old} | {"metric": "fid", "value": "2.5", "method": "cd"}
    (tmp_path / "old.csv").write_bytes(sealed_csv(old, [[row[c] for c in old]]))
    df = load_results(tmp_path)
    assert list(df.columns) == list(COLUMNS) and df.value.tolist() == [2.5]


@pytest.mark.slow
def test_distill_trusts_the_checkpoint_not_history_json():
    from scflow.repro.configs import distill_config
    from scflow.repro.experiment import distill, prepare
    from scflow.repro.presets import preset_values

    p = preset_values("smoke")
    s = prepare(p, progress=False)
    cfg = distill_config({**p, "ckpt_every": 2, "lambda_gan": 0.0})
    d, history = distill(s, cfg, 4, progress=False)
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    copy = Path(d.ckpt_dir) / "history.json"
    assert json.loads(copy.read_text()) == history  # the convenience copy
    copy.write_text(json.dumps(history[:2]))  # as if killed between checkpoint and copy
    _, again = distill(s, cfg, 4, progress=False)  # finished: loaded, not retrained
    assert again == history
    copy.unlink()
    assert distill(s, cfg, 4, progress=False)[1] == history
