"""Bad input gets one line naming the file or parameter and what to do, before any compute:
run files (duplicate keys, encodings, folders, FIFOs, alias bombs), values, damaged files, full
disks, too small or too large runs, unwritable or misplaced results folders."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
import torch

from scflow.repro import run as runner
from scflow.repro.notebooks import notebook_path, parameters_cell

ROOT = Path(__file__).resolve().parents[1]
NB = "05_bidirectional_loss"


@pytest.fixture
def env(tmp_path, monkeypatch):
    (tmp_path / "yml").mkdir()
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCFLOW_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("SCFLOW_SET", raising=False)
    return tmp_path


def main(*args) -> int:
    return runner.main([str(a) for a in args])


def one_line_error(capsys, *needles: str) -> str:
    """stderr of a refused command: every needle, on a line that names them, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if all(n in ln for n in needles)]
    assert lines, (needles, err)
    return err


# --- run files ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, key, lines", [
    (f"notebook: {NB}\nparameters: {{t_trunc: 0.2}}\nnotebook: 02_naive_consistency_distillation\n",
     "'notebook'", "lines 1 and 3"),
    (f"notebook: {NB}\nparameters:\n  t_trunc: 0.2\n  seed: 1\n  t_trunc: 0.5\n",
     "'t_trunc'", "lines 3 and 5"),
])
def test_a_key_given_twice_is_refused_naming_both_lines(text, key, lines, env, capsys):
    (env / "yml" / "r.yaml").write_text(text)
    assert main(env / "yml" / "r.yaml", "--list") == 2
    one_line_error(capsys, "r.yaml", key, lines)


def test_a_run_file_that_is_not_utf8_is_named(env, capsys):
    (env / "yml" / "r.yaml").write_bytes(f"# caf\xe9\nnotebook: {NB}\n".encode("latin-1"))
    assert main(env / "yml", "--list") == 2
    one_line_error(capsys, "r.yaml", "not UTF-8", "save it as UTF-8")


def test_a_folder_named_yaml_is_searched_not_read(env, capsys):
    (env / "yml" / "more.yaml").mkdir()
    (env / "yml" / "more.yaml" / "r.yaml").write_text(f"notebook: {NB}\n")
    assert main(env / "yml", "--list") == 0
    assert "r  " in capsys.readouterr().out


def test_a_fifo_is_refused_without_blocking(env, capsys):
    os.mkfifo(env / "yml" / "pipe.yaml")
    code: list[int] = []
    t = threading.Thread(target=lambda: code.append(main(env / "yml", "--list")), daemon=True)
    t.start()
    t.join(60)
    assert code == [2], "the runner blocked on a FIFO"
    one_line_error(capsys, "pipe.yaml", "not a regular file")


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(env, capsys):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    (env / "yml" / "bomb.yaml").write_text("\n".join(lines) + f"\nnotebook: {NB}\n"
                                           "parameters: {nfe_list: *j}\n")
    assert main(env / "yml", "--list") == 2
    err = one_line_error(capsys, "bomb.yaml", "aliases expand to more than")
    assert len(err) < 2000


@pytest.mark.parametrize("params, needles", [
    ("{seed: 100000000000000000000000}", ("'seed'", "<= 4294967295")),
    ("{nfe_list: []}", ("'nfe_list'", "at least 1 item")),
    ("{n_eval: 2}", ("'n_eval'", ">= 4")),
    ("{nfe_list: '[1, 2]'}", ("'nfe_list'", "-y nfe_list")),
])
def test_values_that_would_fail_after_training_fail_in_validation(params, needles, env, capsys):
    (env / "yml" / "r.yaml").write_text(f"notebook: {NB}\nparameters: {params}\n")
    assert main(env / "yml", "--list") == 2
    one_line_error(capsys, "r.yaml", *needles)


def test_papermill_text_for_a_list_hints_at_y():
    from scflow.repro.paramspec import ParameterError
    from scflow.repro.presets import PARAMS

    with pytest.raises(ParameterError, match=r"-y nfe_list '\[1, 2\]'"):
        PARAMS["nfe_list"].check("nfe_list", "[1,2]")


def test_plain_papermill_says_which_values_follow_the_preset(capsys, monkeypatch):
    from scflow.repro.params import notebook_params

    monkeypatch.delenv("SCFLOW_RUNNER", raising=False)
    monkeypatch.delenv("SCFLOW_EXPLICIT_PARAMS", raising=False)
    ns = {**parameters_cell(notebook_path(NB)), "preset": "smoke"}
    literal = ns["distill_steps"]  # the notebook's own value (the mini preset's)
    assert literal != 4
    P = notebook_params(NB, ns)
    out = capsys.readouterr().out
    assert P.distill_steps == 4 and f"distill_steps {literal} -> 4" in out
    assert "SCFLOW_EXPLICIT_PARAMS" in out
    monkeypatch.setenv("SCFLOW_EXPLICIT_PARAMS", "distill_steps")
    assert notebook_params(NB, ns).distill_steps == literal
    assert "distill_steps" not in capsys.readouterr().out


# --- results folder ---------------------------------------------------------------------------
def test_results_env_naming_a_file_is_a_message(env, capsys, monkeypatch):
    (env / "afile").write_text("x")
    monkeypatch.setenv("SCFLOW_RESULTS", str(env / "afile"))
    (env / "yml" / "r.yaml").write_text(f"notebook: {NB}\n")
    assert main(env / "yml", "--list") == 2
    one_line_error(capsys, "SCFLOW_RESULTS", "is not a folder")


def test_a_relative_results_env_means_one_folder_for_runner_and_kernels(env, monkeypatch):
    from scflow.repro.listing import runner_environment
    from scflow.repro.results import results_root

    monkeypatch.chdir(env)
    monkeypatch.setenv("SCFLOW_RESULTS", "rel/results")
    assert results_root() == env / "rel" / "results"
    with runner_environment({}):  # what the kernels (cwd: the repository root) inherit
        assert os.environ["SCFLOW_RESULTS"] == str(env / "rel" / "results")
        monkeypatch.chdir(ROOT)
        assert results_root() == env / "rel" / "results"


def test_an_unwritable_results_folder_is_found_before_training(env, monkeypatch, capsys):
    real = os.access
    blocked = env / "results"
    blocked.mkdir()

    def access(path, mode, **kw):  # as if the folder were read-only (root writes anyway)
        return False if Path(path) == blocked and mode & os.W_OK else real(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    (env / "yml" / "r.yaml").write_text(f"notebook: {NB}\nparameters: {{device: cpu}}\n")
    assert main(env / "yml", "--preset", "smoke", "--dry-run") == 2
    one_line_error(capsys, "results folder", "not writable", str(blocked))


# --- sizes: estimates, memory, too few images ---------------------------------------------------
@pytest.mark.parametrize("params", ["{distill_steps: 1000000000000}", "{n_eval: 1000000000}"])
def test_absurd_sizes_are_estimated_and_refused(params, env, capsys):
    (env / "yml" / "r.yaml").write_text(f"notebook: {NB}\nparameters: {params}\n")
    assert main(env / "yml", "--list") == 0  # status only
    assert main(env / "yml", "--dry-run") == 2
    one_line_error(capsys, "memory:", "r must hold about", "lower n_eval")


def test_the_plan_states_each_runs_estimate(env, capsys):
    from scflow.repro.cost import estimate_seconds
    from scflow.repro.presets import preset_values

    (env / "yml" / "r.yaml").write_text(f"notebook: {NB}\n")
    assert main(env / "yml", "--dry-run") == 0
    assert "estimate ~" in capsys.readouterr().out
    p = preset_values("mini")

    def estimate(**changes):
        return estimate_seconds(NB, {**p, **changes})

    assert 60 < estimate() < 3600  # the preset's updates plus an evaluation on the bank
    per_2000 = estimate(distill_steps=4000) - estimate(distill_steps=2000)
    assert per_2000 > 300  # the updates' share: linear in their number
    assert estimate(distill_steps=6000) - estimate(distill_steps=4000) == pytest.approx(per_2000)
    assert estimate(eval_draws=10) > estimate(eval_draws=5)  # each draw is scored


def test_a_folder_of_one_image_is_refused_before_training(tmp_path):
    from PIL import Image

    from scflow.repro.experiment import preflight
    from scflow.repro.presets import preset_values

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "only.png")
    p = {**preset_values("smoke"), "dataset": "folder", "data_dir": str(tmp_path / "imgs"),
         "fid_backend": "inception"}
    problems, _ = preflight(p)
    assert any("1 image(s)" in x and "at least 4" in x for x in problems), problems


@pytest.mark.parametrize("preset", ["gpu", "celebahq256"])
def test_list_works_without_the_presets_machine(preset, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(ROOT / "papermill_runs", "--preset", preset, "--list") == 0
    assert "table4_bi" in capsys.readouterr().out


# --- damaged files, full disks ----------------------------------------------------------------
def test_a_truncated_shipped_manifest_is_one_message(tmp_path, monkeypatch, env, capsys):
    (tmp_path / "art" / "mini").mkdir(parents=True)
    text = (ROOT / "artifacts" / "mini" / "manifest.json").read_text()
    (tmp_path / "art" / "mini" / "manifest.json").write_text(text[: len(text) // 2])
    monkeypatch.setenv("SCFLOW_ARTIFACTS", str(tmp_path / "art"))
    (env / "yml" / "r.yaml").write_text(f"notebook: {NB}\nparameters: {{device: cpu}}\n")
    assert main(env / "yml", "--preset", "smoke", "--dry-run") == 2
    one_line_error(capsys, "manifest.json is damaged", "git checkout")


def test_a_truncated_cached_tensor_names_the_file(tmp_path):
    from scflow.repro.experiment import load_cached_tensor

    path = tmp_path / "latents-x" / "latents.pt"
    path.parent.mkdir()
    torch.save(torch.zeros(64, 4, 8, 8), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match=r"latents\.pt is truncated or corrupt.*delete the "
                                           r"cache entry .*latents-x"):
        load_cached_tensor(path)


def test_a_full_disk_is_named_not_unexpected_pos(tmp_path, monkeypatch):
    from scflow.cache import DiskFullError, atomic_write_bytes, cached

    def full(d: Path) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed; unexpected pos 64")

    with pytest.raises(DiskFullError, match=r"disk full while writing .*thing-.*free space"):
        cached("thing", {"k": 2}, full)
    real = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    with pytest.raises(DiskFullError, match=r"disk full while writing .*r\.csv"):
        atomic_write_bytes(tmp_path / "r.csv", b"x")
    assert not list(tmp_path.glob(".r.csv*"))  # no temp file left behind


def test_a_full_disk_while_checkpointing_is_named(tmp_path, monkeypatch):
    """torch's zip writer reports a full disk as "unexpected pos": the checkpoint names its file
    and leaves no temporary file behind."""
    import torch

    from scflow.cache import DiskFullError
    from scflow.checkpoint import atomic_save

    def full(obj, fh):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed; unexpected pos 64")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError, match=r"disk full while writing .*last\.pt"):
        atomic_save({"w": 1}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []
