"""Bad input and faults: every accepted parameter takes effect, stale caches, unsafe names,
early and complete errors, runner edge cases, resume messages, foreign data, file modes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import numpy as np
import pytest
import torch

import scflow.repro.params
from scflow.repro.notebooks import notebook_path, parameters_cell_index
from scflow.repro.params import RunParams

matplotlib.use("Agg")

# Reads from these modules label or hash a run; they are not an effect on what is computed.
LABEL_MODULES = ("scflow.repro.results", "scflow.repro.params")


class TracingParams(RunParams):
    """A RunParams that records which parameters are read, and from where (not labels)."""

    def __init__(self, notebook: str, values: Any) -> None:
        super().__init__(notebook, values)
        self.reads: set[str] = set()

    def _record(self, key: str) -> None:
        caller = sys._getframe(2).f_globals.get("__name__", "")
        if caller not in LABEL_MODULES:
            self.reads.add(key)

    def __getitem__(self, key: str) -> Any:
        self._record(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._record(key)
        return dict.get(self, key, default)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("notebook", "reads"):
            raise AttributeError(name)
        self._record(name)
        try:
            return dict.__getitem__(self, name)
        except KeyError:
            raise AttributeError(name) from None


def exec_notebook(name: str, overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                  stop_after: str | None = None) -> dict[str, Any]:
    """Run a notebook's code cells in this process, with ``overrides`` injected after its
    parameters cell (as papermill does) and ``P`` a :class:`TracingParams`.

    Stops after the first cell that binds ``stop_after``. Returns the namespace.
    """
    real = scflow.repro.params.notebook_params
    monkeypatch.setattr(scflow.repro.params, "notebook_params",
                        lambda nb, ns: TracingParams(nb, real(nb, ns)))
    nb = nbformat.read(notebook_path(name), as_version=4)
    ns: dict[str, Any] = {"__name__": "__main__"}
    tagged = parameters_cell_index(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, f"<{name} cell {i}>", "exec"), ns)  # noqa: S102
        if i == tagged:
            ns.update(overrides)
        if stop_after is not None and stop_after in ns:
            break
    import matplotlib.pyplot as plt

    plt.close("all")
    return ns


@pytest.fixture
def smoke_env(tmp_path_factory, monkeypatch, one_thread):
    """Results and executed notebooks in a private folder; one cache for the module."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("SCFLOW_RESULTS", str(root / "fault-results"))
    monkeypatch.setenv("SCFLOW_RUNS", str(root / "fault-runs"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    return root


# --- 1. every accepted parameter takes effect ---------------------------------------------------
@pytest.mark.parametrize("notebook", ["02_naive_consistency_distillation", "03_truncation_and_gan",
                                      "04_reflow_loss", "05_bidirectional_loss", "06_baselines",
                                      "09_training_budget"])
def test_fid_backend_of_the_run_is_the_one_used(notebook, smoke_env, monkeypatch):
    """``fid_backend: inception`` must reach the feature extractor, not the preset's digits."""
    import scflow.metrics

    asked: list[str] = []

    class Asked(Exception):
        """Stops the notebook once it has asked for its extractor (nothing more to check)."""

    def fake(backend: str, device: str = "cpu", **kw: Any) -> str:
        asked.append(backend)
        raise Asked

    monkeypatch.setattr(scflow.metrics, "get_feature_extractor", fake)
    weights = smoke_env / "inception-2015-12-05.pt"  # the pre-flight check only needs the file
    weights.touch()
    monkeypatch.setenv("SCFLOW_INCEPTION_WEIGHTS", str(weights))
    with pytest.raises(Asked):
        exec_notebook(notebook, {"preset": "smoke", "fid_backend": "inception"}, monkeypatch)
    assert asked == ["inception"]


# Parameters a notebook declares without computing anything from them, and why.
NOT_COMPUTED = {
    "07_tables_and_figures": {"run_name": "required by the runner; the report has no CSV"},
}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", ["01_latent_flow_matching",
                                      "02_naive_consistency_distillation",
                                      "03_truncation_and_gan", "04_reflow_loss",
                                      "05_bidirectional_loss", "06_baselines",
                                      "07_tables_and_figures", "09_training_budget"])
def test_every_parameter_is_read(notebook, smoke_env, monkeypatch):
    """Each name of the parameters cell is read by the notebook or the library (not only as a
    CSV label or for the hash): a parameter nobody reads would be silently ignored."""
    ns = exec_notebook(notebook, {"preset": "smoke"}, monkeypatch)
    P = ns["P"]
    unread = set(P) - P.reads - set(NOT_COMPUTED.get(notebook, {}))
    assert not unread, f"{notebook}: parameters never read: {sorted(unread)}"


def test_tracer_catches_an_unread_parameter(smoke_env, monkeypatch):
    """The guard itself: a parameter read only by the CSV writer counts as unread."""
    from scflow.repro.results import ResultsWriter

    P = TracingParams("x", {"preset": "smoke", "run_name": "x", "seed": 0,
                            "fid_backend": "digits", "device": "cpu"})
    ResultsWriter(P)
    assert P.reads == set()
    _ = P.seed
    assert P.reads == {"seed"}


# --- 3. plain papermill is validated like the runner --------------------------------------------
def test_notebook_params_rejects_an_injected_unknown_name():
    from scflow.repro.notebooks import parameters_cell
    from scflow.repro.params import ParameterError, notebook_params

    ns = dict(parameters_cell(notebook_path("05_bidirectional_loss")), t_truncc=0.2)
    with pytest.raises(ParameterError, match=r"'t_truncc'.*did you mean 't_trunc'"):
        notebook_params("05_bidirectional_loss", ns)
    ns.pop("t_truncc")
    ns.update(np=sys, helper=lambda: 0)  # interactive imports and functions are no parameters
    assert notebook_params("05_bidirectional_loss", ns).t_trunc == 0.4


@pytest.mark.parametrize("bad", ["../../x", "/tmp/x", ".hidden", "a/b"])
def test_run_name_rule_is_shared(bad):
    from scflow.repro.notebooks import parameters_cell
    from scflow.repro.params import ParameterError, notebook_params

    ns = dict(parameters_cell(notebook_path("02_naive_consistency_distillation")), run_name=bad)
    with pytest.raises(ParameterError, match="run_name"):
        notebook_params("02_naive_consistency_distillation", ns)
    from scflow.repro import plan as planner

    nb = notebook_path("02_naive_consistency_distillation")
    with pytest.raises(planner.RunConfigError, match="run_name"):
        planner.plan_spec({"notebook": nb.stem, "run_name": bad}, Path("x.yaml"), "smoke",
                         nb.parent, Path("runs"))


@pytest.mark.slow
@pytest.mark.parametrize("injected,message", [({"t_truncc": 0.2}, "did you mean 't_trunc'"),
                                               ({"run_name": "../../x"}, "run_name '../../x'")])
def test_plain_papermill_fails_in_the_validation_cell(injected, message, tmp_path, monkeypatch):
    import papermill

    from scflow.repro import execute

    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    nb = notebook_path("05_bidirectional_loss")
    with execute._kernel_env(nb.parent), pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   parameters={"preset": "smoke", **injected},
                                   progress_bar=False, cwd=str(execute.REPO_ROOT))
    assert message in str(err.value)
    assert "notebook_params" in str(err.value)  # the validation cell, before any compute
    assert not (tmp_path / "results").exists()


# --- 2. cache keys cover a folder dataset's content ---------------------------------------------
def _write_images(folder: Path, n: int, shade: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 10), (shade, 10 * i, 0)).save(folder / f"img{i}.png")


def test_replacing_folder_images_changes_every_cache_key(tmp_path):
    import os

    from scflow.autoencoder import ae_cache_config, latent_space_key
    from scflow.cache import config_hash
    from scflow.repro.configs import autoencoder_config, data_config, teacher_config
    from scflow.repro.presets import preset_values
    from scflow.teacher import teacher_cache_config

    _write_images(tmp_path / "imgs", 3, shade=0)
    p = {**preset_values("smoke"), "dataset": "folder", "data_dir": str(tmp_path / "imgs")}
    data, teacher = data_config(p), teacher_config(p)
    trained = autoencoder_config(p)
    pretrained = autoencoder_config({**p, "vae": str(tmp_path / "some-vae")})  # keyed by data too

    def keys() -> list[str]:
        return [config_hash(k) for k in (
            ae_cache_config(trained, data),
            teacher_cache_config(teacher, latent_space_key(trained, data)),
            latent_space_key(pretrained, data),
            teacher_cache_config(teacher, latent_space_key(pretrained, data)))]

    before = keys()
    _write_images(tmp_path / "imgs", 3, shade=200)  # same names, same count, new pixels
    for f in (tmp_path / "imgs").iterdir():  # a coarse clock must not hide the change
        os.utime(f, ns=(f.stat().st_mtime_ns + 10**9,) * 2)
    after = keys()
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert keys() == after  # unchanged data: the same keys (cache hits)


def test_digits_cache_keys_have_no_data_field():
    """The digits keep the keys of the artefacts trained before folders were keyed."""
    from scflow.autoencoder import ae_cache_config, latent_space_key
    from scflow.data import data_cache_key
    from scflow.repro.configs import autoencoder_config, data_config
    from scflow.repro.presets import preset_values

    p = preset_values("mini")
    data = data_config(p)
    assert data_cache_key(data) == {}
    assert "data_content" not in ae_cache_config(autoencoder_config(p), data)
    sd_vae = autoencoder_config({**p, "vae": "stabilityai/sd-vae-ft-mse"})
    assert latent_space_key(sd_vae, data) == "stabilityai/sd-vae-ft-mse"


# --- 4. everything missing, at once, before any compute -----------------------------------------
def test_celebahq_dry_run_lists_everything_missing(tmp_path, monkeypatch, capsys):
    import time

    import torch

    from scflow.repro import execute
    from scflow.repro import run as runner

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("SCFLOW_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr("scflow.metrics.features.cleanfid_weights_dir", lambda: tmp_path)
    t0 = time.perf_counter()
    code = runner.main([str(execute.REPO_ROOT / "papermill_runs"), "--preset", "celebahq256",
                        "--dry-run"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2
    wanted = ["data: image folder not found", "hf download stabilityai/sd-vae-ft-mse",
              "Inception weights", "SCFLOW_INCEPTION_WEIGHTS", "teacher weights"]
    if not torch.cuda.is_available():
        wanted.append("CUDA GPU")
    for item in wanted:
        assert item in err, (item, err)
    assert err.count("- ") >= len(wanted) - 1  # each problem once, not once per run
    assert "gdown" in err and "model_480.pth" in err  # the teacher's download command
    assert elapsed < 60


def test_folder_dataset_problems_are_found_before_training(tmp_path, monkeypatch):
    from scflow.repro.experiment import NotReadyError, check_ready, preflight
    from scflow.repro.presets import preset_values

    p = {**preset_values("smoke"), "dataset": "folder", "data_dir": str(tmp_path / "none"),
         "class_cond": True}
    problems, _ = preflight(p)
    assert any("image folder not found" in x for x in problems)
    assert any("class_cond" in x for x in problems)
    _write_images(tmp_path / "imgs", 2, shade=50)
    with pytest.warns(UserWarning, match="digits"), pytest.raises(NotReadyError, match="class_cond"):
        check_ready({**p, "data_dir": str(tmp_path / "imgs")})


def test_inception_without_weights_fails_in_the_validation_step(tmp_path, monkeypatch):
    from scflow.repro.experiment import NotReadyError
    from scflow.repro.notebooks import parameters_cell
    from scflow.repro.params import notebook_params

    monkeypatch.delenv("SCFLOW_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr("scflow.metrics.features.cleanfid_weights_dir", lambda: tmp_path)
    ns = {**parameters_cell(notebook_path("04_reflow_loss")), "fid_backend": "inception"}
    with pytest.raises(NotReadyError, match="Inception weights"):
        notebook_params("04_reflow_loss", ns)


# --- 5. runner edge cases -----------------------------------------------------------------------
def test_folder_without_run_files_is_an_error(tmp_path, capsys):
    from scflow.repro import run as runner

    assert runner.main([str(tmp_path)]) == 2
    assert "no run files" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["notebook: 5\n", "notebook:\n", "notebook: ''\n"])
def test_bad_notebook_value_is_a_message(text, tmp_path, capsys):
    from scflow.repro import run as runner

    (tmp_path / "r.yaml").write_text(text)
    assert runner.main([str(tmp_path / "r.yaml")]) == 2
    err = capsys.readouterr().err
    assert "`notebook:` must name a notebook" in err and "Traceback" not in err


def test_two_executions_of_one_run_do_not_interleave_its_log(tmp_path, monkeypatch):
    import threading
    import time

    import papermill

    from scflow.repro import execute

    def slow(notebook, output, *, stdout_file, **kw):
        for i in range(5):
            stdout_file.write(f"{threading.current_thread().name} line {i}\n")
            stdout_file.flush()
            time.sleep(0.05)

    monkeypatch.setattr(papermill, "execute_notebook", slow)
    job = {"notebook": str(tmp_path / "nb.ipynb"), "output": str(tmp_path / "o.ipynb"),
           "log": str(tmp_path / "o.log"), "parameters": {}, "header": "# header"}
    threads = [threading.Thread(target=execute.execute_job, args=(job,), name=n) for n in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "o.log").read_text().splitlines()
    assert lines[0] == "# header" and len(lines) == 6
    assert len({ln.split()[0] for ln in lines[1:]}) == 1, lines  # one execution's lines only


# --- 6. say what happened -----------------------------------------------------------------------
def test_resume_says_so_and_a_truncated_checkpoint_names_its_file(tmp_path, capsys, one_thread):
    from scflow.distill import DistillConfig, LatentData
    from scflow.fidelity import make_fidelity
    from scflow.nets import build_velocity_net
    from scflow.trainer import Distiller

    def distiller() -> Distiller:
        torch.manual_seed(0)
        teacher = build_velocity_net("unet_tiny", sample_size=8).eval().requires_grad_(False)
        cfg = DistillConfig(fidelity=make_fidelity("code"), batch_size=4, disc_width=8)
        return Distiller(teacher, LatentData(torch.randn(16, 4, 8, 8)), cfg, device="cpu",
                         ckpt_dir=str(tmp_path))

    d = distiller()
    d.train(2)
    path = d.save()
    capsys.readouterr()
    assert distiller().resume(path) == 2
    assert f"resumed from update 2 (checkpoint {path})" in capsys.readouterr().out
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])  # a copy cut short
    with pytest.raises(ValueError, match=r"last\.pt is truncated or corrupt.*delete it"):
        distiller().resume(path)


# --- 7. data that are not the digits ------------------------------------------------------------
def test_colour_saturation_is_left_out_for_grey_images():
    from scflow.metrics.image_stats import saturation_stats

    g = torch.Generator().manual_seed(0)
    grey = torch.rand(8, 1, 6, 6, generator=g).mul(2).sub(1).expand(8, 3, 6, 6)
    fake = torch.rand(8, 3, 6, 6, generator=g).mul(2).sub(1)
    stats = saturation_stats(fake, grey)
    assert "colour_saturation_ratio" not in stats
    assert all(np.isfinite(v) for v in stats.values())
    colour = saturation_stats(fake, fake.flip(0))
    assert colour["colour_saturation_ratio"] == pytest.approx(1.0)


# --- 8. files keep the umask's modes ------------------------------------------------------------
def test_results_checkpoints_and_cache_entries_respect_the_umask(tmp_path, monkeypatch):
    import os
    import stat

    from scflow.cache import atomic_write_bytes, cached
    from scflow.checkpoint import atomic_save

    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "r.csv", b"a,b\n")
        atomic_save({"x": torch.ones(1)}, tmp_path / "last.pt")
        entry, _ = cached("thing", {"k": 1}, lambda d: (d / "w.bin").write_bytes(b"w"))
    finally:
        os.umask(old)

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(tmp_path / "r.csv") == 0o644
    assert mode(tmp_path / "last.pt") == 0o644
    assert mode(entry) == 0o755
    assert mode(entry / "w.bin") == 0o644 and mode(entry / "config.json") == 0o644
