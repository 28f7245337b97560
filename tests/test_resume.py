"""Checkpoints: exact resume (GAN on), teacher never touched, strict configs, atomic writes."""

import random

import numpy as np
import pytest
import torch

from scflow.checkpoint import atomic_save, capture_rng, load_teacher, restore_rng
from scflow.distill import DistillConfig, LatentData
from scflow.fidelity import make_fidelity
from scflow.nets import build_velocity_net
from scflow.trainer import Distiller

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "teacher"
    build_velocity_net("unet_tiny", sample_size=8).save(path)
    return path


def _cfg(**kw):
    # RF/BI switch on at update 3: the resumed half crosses the warm-up boundary
    fidelity = make_fidelity("code", student_lr=1e-3, disc_lr=1e-3, eval_decay=0.5)
    return DistillConfig(fidelity=fidelity, batch_size=4, disc_width=8, warmup_rf=3, warmup_bi=3, **kw)


def _data():
    return LatentData(torch.randn(32, 4, 8, 8, generator=torch.Generator().manual_seed(1)))


def _distiller(teacher_dir, cfg=None, ckpt_dir=None):
    expected = build_velocity_net("unet_tiny", sample_size=8).wrapper_config()
    teacher = load_teacher(teacher_dir, expected=expected)
    return Distiller(teacher, _data(), cfg or _cfg(), device="cpu", ckpt_dir=ckpt_dir)


def _state(d):
    sd = {}
    for name in ("student", "target", "eval_ema", "disc"):
        sd.update({f"{name}.{k}": v for k, v in getattr(d, name).state_dict().items()})
    for name in ("opt", "d_opt"):
        for pid, st in getattr(d, name).state_dict()["state"].items():
            sd.update({f"{name}.{pid}.{k}": v for k, v in st.items()})
    return sd


def test_resume_equals_straight_run(teacher_dir, tmp_path):
    n, k = 4, 2
    straight = _distiller(teacher_dir)
    logs_straight = straight.train(n)

    first = _distiller(teacher_dir, ckpt_dir=str(tmp_path))
    first.train(k)  # writes last.pt at the end
    del first
    resumed = _distiller(teacher_dir)
    assert resumed.resume(str(tmp_path / "last.pt")) == k
    logs_resumed = resumed.train(n - k)

    assert logs_resumed == logs_straight[k:]  # bitwise-equal losses, incl. RF/BI switching on
    assert set(logs_resumed[-1]) >= {"cd", "gan", "rf", "bi", "d_real", "d_fake", "r1"}
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    bad = [key for key in a if not torch.equal(a[key], b[key])]
    assert not bad, bad[:5]
    assert resumed.step_count == straight.step_count == n


def test_resume_leaves_teacher_alone(teacher_dir, tmp_path):
    d = _distiller(teacher_dir, ckpt_dir=str(tmp_path))
    d.train(2)
    fresh = _distiller(teacher_dir)
    saved_teacher = {k: v.clone() for k, v in fresh.teacher.state_dict().items()}
    fresh.resume(str(tmp_path / "last.pt"))
    for key, v in fresh.teacher.state_dict().items():
        assert torch.equal(v, saved_teacher[key]), key
    student = fresh.student.state_dict()
    assert any(not torch.equal(student[key], v) for key, v in saved_teacher.items())
    # the target EMA was restored, not re-initialised from the student
    assert any(not torch.equal(fresh.target.state_dict()[key], v) for key, v in student.items())
    assert not any(p.requires_grad for p in fresh.teacher.parameters())


def test_resume_refuses_other_architecture(teacher_dir, tmp_path):
    d = _distiller(teacher_dir, ckpt_dir=str(tmp_path))
    d.train(1)
    other = Distiller(build_velocity_net("unet_tiny", sample_size=8, layers_per_block=2),
                      _data(), _cfg(), device="cpu")
    with pytest.raises(ValueError, match="does not match"):
        other.resume(str(tmp_path / "last.pt"))


def test_resume_refuses_other_config(teacher_dir, tmp_path):
    d = _distiller(teacher_dir, ckpt_dir=str(tmp_path))
    d.train(1)
    other = _distiller(teacher_dir, cfg=_cfg(lambda_rf=0.5))
    with pytest.raises(ValueError, match="lambda_rf"):
        other.resume(str(tmp_path / "last.pt"))


def test_teacher_loaded_strictly(teacher_dir):
    wrong = build_velocity_net("unet_tiny", sample_size=16).wrapper_config()
    with pytest.raises(ValueError, match="sample_size"):
        load_teacher(teacher_dir, expected=wrong)


def test_rng_states_round_trip():
    state = capture_rng()
    a = (torch.rand(3), random.random(), np.random.rand(2))
    restore_rng(state)
    b = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"step": 1}, path)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_train_resumable_continues_a_killed_run(teacher_dir, tmp_path):
    """The notebooks' training call: killed after update 5, rerun, it continues from the last
    checkpoint (update 4) and returns the history and weights of an uninterrupted run."""
    from scflow.repro.experiment import train_resumable

    cfg = _cfg(ckpt_every=2)
    straight = _distiller(teacher_dir, cfg, ckpt_dir=str(tmp_path / "straight"))
    (tmp_path / "straight").mkdir()
    expected = train_resumable(straight, 6, progress=False)

    folder = tmp_path / "killed"
    folder.mkdir()
    first = _distiller(teacher_dir, cfg, ckpt_dir=str(folder))
    real_step = first.train_step

    def dies_at_update_6():
        if first.step_count == 5:
            raise KeyboardInterrupt  # killed between two checkpoints
        return real_step()

    first.train_step = dies_at_update_6
    with pytest.raises(KeyboardInterrupt):
        train_resumable(first, 6, progress=False)
    again = _distiller(teacher_dir, cfg, ckpt_dir=str(folder))
    history = train_resumable(again, 6, progress=False)
    assert history == expected and [h["step"] for h in history] == [1, 2, 3, 4, 5, 6]
    a, b = _state(straight), _state(again)
    assert all(torch.equal(a[k], b[k]) for k in a)
    done = _distiller(teacher_dir, cfg, ckpt_dir=str(folder))
    assert train_resumable(done, 6, progress=False) == expected and done.step_count == 6
