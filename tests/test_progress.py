"""Progress bars (scflow.progress): sparse in headless runs, live when someone watches."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from scflow import progress as prog


def _refreshes(text: str, desc: str) -> int:
    return text.count(f"{desc}:")


@pytest.mark.parametrize("flag,expected", [("1", True), ("0", False), ("false", False)])
def test_env_flag_decides_first(monkeypatch, flag, expected):
    monkeypatch.setenv(prog.HEADLESS_ENV, flag)
    monkeypatch.setattr(prog, "_ipykernel", lambda: SimpleNamespace(_allow_stdin=expected))
    assert prog.is_headless() is expected


@pytest.mark.parametrize("allow_stdin,expected", [(False, True), (True, False)])
def test_kernel_without_stdin_is_headless(monkeypatch, allow_stdin, expected):
    # papermill / nbclient execute cells with allow_stdin=False; JupyterLab allows stdin
    monkeypatch.delenv(prog.HEADLESS_ENV, raising=False)
    monkeypatch.setattr(prog, "_ipykernel", lambda: SimpleNamespace(_allow_stdin=allow_stdin))
    assert prog.is_headless() is expected


def test_headless_bar_refreshes_rarely(monkeypatch, capsys):
    monkeypatch.setenv(prog.HEADLESS_ENV, "1")
    bar = prog.progress(300, desc="headless")
    assert bar.mininterval >= 10
    for _ in bar:
        time.sleep(0.002)  # 0.6 s: dozens of refreshes at tqdm's default 0.1 s
    err = capsys.readouterr().err
    assert 1 <= _refreshes(err, "headless") <= 3, err  # first, (monitor,) last state


def test_live_bar_keeps_tqdm_defaults(monkeypatch):
    monkeypatch.setenv(prog.HEADLESS_ENV, "0")
    bar = prog.progress(range(5), desc="live")
    assert bar.mininterval < 1 and bar.total == 5
    assert list(bar) == list(range(5))


def test_a_bar_can_count_part_of_a_longer_job(monkeypatch, capsys):
    """A resumed training: updates 8-10 of 10 on one bar that reads "k / 10"."""
    monkeypatch.setenv(prog.HEADLESS_ENV, "1")
    bar = prog.progress(3, desc="resumed", initial=7, total=10)
    assert (bar.n, bar.total) == (7, 10)
    assert list(bar) == [0, 1, 2] and bar.n == 10
    assert "10/10" in capsys.readouterr().err


def test_disable_hides_the_bar(monkeypatch, capsys):
    monkeypatch.setenv(prog.HEADLESS_ENV, "1")
    assert list(prog.progress(3, desc="hidden", disable=True)) == [0, 1, 2]
    assert "hidden" not in capsys.readouterr().err


@pytest.mark.slow
def test_headless_runner_log_and_notebook_stay_small(tmp_path, monkeypatch):
    """A runner-executed distillation of 300 updates writes a handful of bar refreshes."""
    from scflow.repro.batch import run_notebook

    for k in ("CACHE", "RESULTS", "RUNS"):
        monkeypatch.setenv(f"SCFLOW_{k}", str(tmp_path / k.lower()))
    monkeypatch.delenv(prog.HEADLESS_ENV, raising=False)
    t0 = time.perf_counter()
    run_notebook("02_naive_consistency_distillation", {"distill_steps": 300, "ckpt_every": 0},
                 run_name="quiet")
    wall = time.perf_counter() - t0
    log = next((tmp_path / "runs").rglob("quiet.log")).read_text()
    nb = json.loads(next((tmp_path / "runs").rglob("quiet.ipynb")).read_text())
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    # at most one refresh per 10 s of the whole run, plus first and last, per bar
    bound = 2 * 3 + wall / prog.HEADLESS_MININTERVAL
    for text in (log, outputs):
        assert 1 <= _refreshes(text, "distill") <= bound, text[-2000:]
        assert "300/300" in text and "/100" not in text  # ONE bar over all updates
