"""Cache hit/miss by config, atomic publication, locks, and the cached teacher (and its EMA)."""

import pytest
import torch

from scflow.cache import atomic_write_bytes, cached, config_hash, entry_dir


def test_config_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_hit_and_miss(tmp_path):
    calls = []

    def build(d):
        calls.append(d)
        (d / "x.txt").write_text("hello")

    d1, hit1 = cached("thing", {"n": 1}, build)
    d2, hit2 = cached("thing", {"n": 1}, build)
    d3, hit3 = cached("thing", {"n": 2}, build)
    assert (hit1, hit2, hit3) == (False, True, False)
    assert d1 == d2 != d3 and len(calls) == 2
    assert (d1 / "x.txt").read_text() == "hello" and (d1 / "config.json").exists()


def test_failed_build_leaves_nothing(tmp_path):
    def build(d):
        (d / "half.txt").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached("thing", {"n": 3}, build)
    final = entry_dir("thing", {"n": 3})
    assert not final.exists()
    assert not [p for p in final.parent.iterdir() if p.name.startswith(f".{final.name}")]


BUILD_ONCE = """
import sys, time
from pathlib import Path
from scflow.cache import cached
def build(d):
    with open(sys.argv[1], "a") as fh:
        fh.write("built\\n")
    time.sleep(1.5)
    (d / "x.txt").write_text("ok")
path, hit = cached("shared", {"n": 7}, build)
print(hit, (path / "x.txt").read_text())
"""


def test_parallel_processes_build_a_shared_entry_once(tmp_path):
    """The runner's --jobs: two processes needing the same artefact; one builds, one waits."""
    import subprocess
    import sys

    log = tmp_path / "builds.txt"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_ONCE, str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].split() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert log.read_text().splitlines() == ["built"]
    assert outs == [["False", "ok"], ["True", "ok"]]


def test_atomic_write_bytes(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "f.bin", b"123")
    assert (tmp_path / "a" / "f.bin").read_bytes() == b"123"


def test_teacher_cached_by_config(monkeypatch, tmp_path):
    from dataclasses import replace

    import scflow.teacher as teacher_mod
    from scflow.repro.configs import teacher_config
    from scflow.repro.presets import preset_values

    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path))  # other tests train smoke teachers too

    cfg, space = teacher_config(preset_values("smoke")), "latents of a test"
    latents, labels = torch.randn(32, 4, 8, 8), torch.randint(0, 10, (32,))
    calls = []
    real = teacher_mod.train_teacher

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(teacher_mod, "train_teacher", counting)
    t1, d1, hit1 = teacher_mod.get_teacher(cfg, latents, labels, space)
    t2, d2, hit2 = teacher_mod.get_teacher(cfg, latents, labels, space)
    t3, d3, hit3 = teacher_mod.get_teacher(replace(cfg, steps=cfg.steps + 1), latents, labels,
                                           space)
    assert (hit1, hit2, hit3) == (False, True, False) and len(calls) == 2 and d1 == d2 != d3
    assert not any(q.requires_grad for q in t1.parameters())
    z = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(t1(z, torch.rand(2) * 0 + 0.5), t2(z, torch.rand(2) * 0 + 0.5))


def test_teacher_training_lowers_loss():
    from scflow.teacher import train_teacher

    z0 = torch.randn(64, 4, 8, 8) * 0.3 + 1.0  # a shifted blob: easy to learn
    _, losses = train_teacher(z0, None, arch="unet_tiny", steps=40, batch_size=32, lr=2e-3,
                              ema_decay=0.0)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_ema_warmup_schedule():
    from scflow.ema import warmup_decay

    assert warmup_decay(1, 0.999) == pytest.approx(2 / 11)
    assert warmup_decay(90, 0.999) == pytest.approx(91 / 100)
    assert warmup_decay(100_000, 0.999) == 0.999  # the cap
    with pytest.raises(ValueError, match="from 1"):
        warmup_decay(0, 0.999)


def test_teacher_ema_forgets_its_random_init(one_thread):
    """One update: EMA = d1 * init + (1 - d1) * trained with d1 = 2/11, not 0.999 * init."""
    from scflow.nets import build_velocity_net
    from scflow.teacher import fit_flow

    torch.manual_seed(0)
    net = build_velocity_net("unet_tiny", sample_size=8, channels=4)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    ema, _ = fit_flow(net, torch.randn(16, 4, 8, 8), steps=1, batch_size=8, lr=1e-2,
                      ema_decay=0.999, generator=torch.Generator().manual_seed(0))
    trained, averaged = net.state_dict(), ema.state_dict()
    for name, _ in net.named_parameters():
        expected = 2 / 11 * init[name] + 9 / 11 * trained[name]
        torch.testing.assert_close(averaged[name], expected, rtol=1e-5, atol=1e-6)
