"""Results you can trust: sealed results CSVs, no silent overwrite, content-hashed data, and the
batch-wide ``--set`` of the runner."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from scflow.repro import run as runner
from scflow.repro.notebooks import parameters_cell
from scflow.repro.params import resolve_notebook_params
from scflow.repro.results import ResultsWriter

PARAMS_CELL = 'preset = "mini"  # preset\nrun_name = ""  # run\nseed = 0  # seed\nn_eval = 1000  # n\n'
MODIFIED = "modified after its run: rerun with --force or restore it"


def make_notebook(path: Path) -> Path:
    """A tiny notebook with the runner's parameters (simulated by :func:`fake_papermill`)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]})]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Notebooks ``nb_a`` and ``nb_b``, run files, results and executed notebooks in tmp_path."""
    for d in ("nbs", "yml"):
        (tmp_path / d).mkdir()
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCFLOW_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SCFLOW_NOTEBOOKS", str(tmp_path / "nbs"))
    monkeypatch.delenv("SCFLOW_SET", raising=False)
    make_notebook(tmp_path / "nbs" / "nb_a.ipynb")
    make_notebook(tmp_path / "nbs" / "nb_b.ipynb")
    return tmp_path


@pytest.fixture
def ran(monkeypatch):
    """papermill replaced by an in-process run that writes the CSV (value = n_eval)."""
    calls: list[str] = []

    def execute_notebook(input_path, output_path, parameters, **kwargs):
        values = {**parameters_cell(input_path), **parameters}
        P = resolve_notebook_params(Path(input_path).stem, values)
        with ResultsWriter(P, device="cpu") as r:
            r.add("loss", float(P.n_eval), method="teacher", step=1)
            r.add("loss", float(P.seed), method="teacher", step=2)
        nbformat.write(nbformat.v4.new_notebook(), output_path)
        calls.append(parameters["run_name"])

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls


def main(*args) -> int:
    return runner.main([str(a) for a in args])


def yml(env: Path, name: str, text: str) -> Path:
    (env / "yml" / name).write_text(text)
    return env / "yml" / name


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue())


# --- 1. a results CSV is sealed: edits are detected by the runner, --list and the report ------
def test_digest_is_the_documented_sha256_and_pandas_reads_the_file(env, ran):
    yml(env, "a.yaml", "notebook: nb_a\n")
    assert main(env / "yml") == 0
    path = env / "results" / "mini" / "a.csv"
    rows = rows_of(path)
    assert rows[0][-1] == "digest"
    body = [r[:-1] for r in rows[1:]]
    expected = hashlib.sha256(json.dumps([rows[0][:-1], *body]).encode()).hexdigest()[:16]
    assert {r[-1] for r in rows[1:]} == {expected}
    df = pd.read_csv(path)  # no options: a plain CSV
    assert list(df.value) == [1000.0, 0.0] and df.digest.nunique() == 1


@pytest.mark.parametrize("edit", ["value", "duplicate", "drop", "abc"])
def test_an_edited_results_csv_is_refused_by_runner_list_and_report(edit, env, ran, capsys,
                                                                    monkeypatch):
    from scflow.repro import report, tables
    from scflow.repro.csvfile import CsvFileError

    yml(env, "a.yaml", "notebook: nb_a\n")
    assert main(env / "yml") == 0
    path = env / "results" / "mini" / "a.csv"
    rows = rows_of(path)
    col = rows[0].index("value")
    if edit == "value":
        rows[1][col] = "999.0"
    elif edit == "abc":
        rows[1][col] = "abc"
    elif edit == "duplicate":
        rows.append(rows[1])
    else:
        del rows[2]
    write_rows(path, rows)
    capsys.readouterr()
    assert main(env / "yml") == 2  # not "done", not rerun, not overwritten
    err = capsys.readouterr().err
    assert f"{path}: {MODIFIED}" in err and "Traceback" not in err
    assert ran == ["a"]
    assert main(env / "yml", "--list") == 0
    out, err = capsys.readouterr()
    assert "MODIFIED" in out and str(path) in err
    with pytest.raises(CsvFileError, match=MODIFIED):
        tables.load_results(path.parent)
    monkeypatch.setattr(report, "report_figures", lambda preset: [])  # none in tiny CSVs
    assert report.main(["--preset", "mini"]) == 2
    assert MODIFIED in capsys.readouterr().err and not (path.parent / "REPORT.md").exists()
    if edit != "abc":  # built knowingly from edited numbers, and it says so
        assert report.main(["--preset", "mini", "--allow-modified"]) == 0
        assert "Built from modified CSVs" in (path.parent / "REPORT.md").read_text()
    assert main(env / "yml", "--force") == 0  # the remedy: rerun
    assert ran == ["a", "a"] and tables.load_results(path.parent).value.tolist() == [1000.0, 0.0]


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe binary", b"a,b\n1,2\n"])
def test_a_bad_csv_is_a_message_in_the_report_list_and_runner(content, env, ran, capsys,
                                                              monkeypatch):
    from scflow.repro import report

    yml(env, "a.yaml", "notebook: nb_a\n")
    bad = env / "results" / "mini" / "a.csv"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(content)
    assert main(env / "yml", "--list") == 0
    out, err = capsys.readouterr()
    assert "unreadable" in out or "MODIFIED" in out
    assert str(bad) in err
    assert main(env / "yml") == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err and ran == []
    monkeypatch.setattr(report, "report_figures", lambda preset: [])
    assert report.main(["--preset", "mini"]) == 2
    assert str(bad) in capsys.readouterr().err


# --- 2. a run file never overwrites another notebook's or configuration's CSV ----------------
def test_a_run_named_like_another_notebooks_csv_does_not_overwrite_it(env, ran, capsys):
    yml(env, "table4_bi.yaml", "notebook: nb_a\n")
    assert main(env / "yml") == 0
    before = (env / "results" / "mini" / "table4_bi.csv").read_bytes()
    other = yml(env, "x.yaml", "notebook: nb_b\nrun_name: table4_bi\n")
    capsys.readouterr()
    assert main(other, "--dry-run") == 2
    out, err = capsys.readouterr()
    assert "replaces CSV" in out
    assert "table4_bi.csv holds the results of notebook nb_a" in err and "--force" in err
    assert main(other) == 2
    assert (env / "results" / "mini" / "table4_bi.csv").read_bytes() == before
    assert ran == ["table4_bi"]
    assert main(other, "--dry-run", "--force") == 0
    assert "note: table4_bi: replaces" in capsys.readouterr().out
    assert main(other, "--force") == 0
    assert ran == ["table4_bi", "table4_bi"]
    assert rows_of(env / "results" / "mini" / "table4_bi.csv")[1][1] == "nb_b"


def test_an_alias_is_resealed(env, ran):
    from scflow.repro.results_read import results_state

    yml(env, "a.yaml", "notebook: nb_a\n")
    yml(env, "b.yaml", "notebook: nb_a\n")
    assert main(env / "yml") == 0
    assert ran == ["a"]
    state = results_state(env / "results" / "mini" / "b.csv")
    assert state.problem is None and rows_of(env / "results" / "mini" / "b.csv")[1][0] == "b"


# --- 3. the data's content is in the configuration hash and the cache keys -------------------
def _images(folder: Path, shade: int, n: int = 4) -> None:
    """``n`` BMP images (uncompressed: the same size whatever their pixels)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (12, 10), (shade, 10 * i, 0)).save(folder / f"img{i}.bmp")


def _same_stat_new_bytes(f: Path, data: bytes, new_inode: bool) -> None:
    """Replace ``f``'s bytes keeping its size and mtime (and its inode unless ``new_inode``)."""
    st = f.stat()
    assert len(data) == st.st_size
    if new_inode:  # written beside it, then renamed over it: a new inode for sure
        tmp = f.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, f)
        assert f.stat().st_ino != st.st_ino
    else:
        with open(f, "r+b") as fh:
            fh.write(data)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def _folder_params(folder: Path) -> object:
    from scflow.repro.presets import preset_values

    values = {**{k: preset_values("smoke")[k] for k in ("seed", "device", "dataset",
                                                         "data_dir", "data_limit")},
              "preset": "smoke", "run_name": "r", "dataset": "folder", "data_dir": str(folder)}
    return resolve_notebook_params("01_latent_flow_matching", values,
                                   explicit=["dataset", "data_dir"])


def test_changed_images_change_the_configuration_hash(tmp_path):
    from scflow.data import verify_folder

    _images(tmp_path / "imgs", shade=0)
    _images(tmp_path / "new", shade=200)
    before = _folder_params(tmp_path / "imgs").config_hash
    assert _folder_params(tmp_path / "imgs").config_hash == before  # same data: same hash
    first = tmp_path / "imgs" / "img0.bmp"
    _same_stat_new_bytes(first, (tmp_path / "new" / "img0.bmp").read_bytes(), new_inode=True)
    after = _folder_params(tmp_path / "imgs").config_hash
    assert after != before  # size and mtime kept, but a new file
    # edited in place with size, mtime and inode kept: trusted until --verify-data looks
    _same_stat_new_bytes(first, (tmp_path / "new" / "img1.bmp").read_bytes(), new_inode=False)
    assert _folder_params(tmp_path / "imgs").config_hash == after
    assert verify_folder(tmp_path / "imgs") == [first]
    assert _folder_params(tmp_path / "imgs").config_hash != after


def test_the_datas_fingerprint_is_in_the_configuration_hash(monkeypatch):
    import scflow.data
    from scflow.repro.presets import preset_values

    values = {**parameters_cell(Path(__file__).parents[1] / "notebooks"
                                / "02_naive_consistency_distillation.ipynb")}
    before = resolve_notebook_params("02_naive_consistency_distillation", values).config_hash
    dataset = preset_values("mini")["dataset"]
    monkeypatch.setitem(scflow.data.DATA_FINGERPRINTS, dataset, lambda d, n: "other digits")
    after = resolve_notebook_params("02_naive_consistency_distillation", values).config_hash
    assert after != before


def test_runner_verify_data_names_images_changed_unnoticed(env, tmp_path, capsys):
    from scflow.data import folder_fingerprint

    _images(tmp_path / "imgs", shade=0)
    folder_fingerprint(tmp_path / "imgs")  # digests remembered
    f = tmp_path / "imgs" / "img2.bmp"
    data = f.read_bytes()
    _same_stat_new_bytes(f, data[:-1] + bytes([data[-1] ^ 1]), new_inode=False)
    nb = Path(__file__).parents[1] / "notebooks"
    (env / "yml" / "t.yaml").write_text(f"notebook: 01_latent_flow_matching\nparameters: "
                                        f"{{dataset: folder, data_dir: '{tmp_path / 'imgs'}', "
                                        f"fid_backend: digits, device: cpu}}\n")
    assert main(env / "yml", "--preset", "smoke", "--list", "--verify-data",
                "--notebooks-dir", nb) == 0
    out = capsys.readouterr().out
    assert "1 image(s) changed with the same size, mtime and inode" in out and str(f) in out


# --- 7. --set: one value for every run of a batch ----------------------------------------------
def test_set_applies_to_every_run_and_enters_the_hash(env, ran, capsys):
    from scflow.repro.results_read import read_config_hash

    yml(env, "a.yaml", "notebook: nb_a\n")
    yml(env, "b.yaml", "notebook: nb_b\nparameters: {n_eval: 5}\n")
    assert main(env / "yml", "--set", "n_eval=7", "--set", "seed=3") == 0
    res = env / "results" / "mini"
    assert rows_of(res / "a.csv")[1][7] == "7.0" and rows_of(res / "a.csv")[2][7] == "3.0"
    assert rows_of(res / "b.csv")[1][7] == "5.0"  # the run file's own key wins ...
    assert rows_of(res / "b.csv")[2][7] == "3.0"
    assert main(env / "yml", "--dry-run", "--set", "n_eval=7", "--set", "seed=3") == 0
    assert "--set n_eval does not apply: the run file sets n_eval" in capsys.readouterr().out
    hashed = read_config_hash(res / "a.csv")
    assert main(env / "yml", "--set", "n_eval=7", "--set", "seed=3") == 0  # resumes: done
    assert ran == ["a", "b"]
    assert main(env / "yml" / "a.yaml", "--force") == 0  # without --set: another hash
    assert read_config_hash(res / "a.csv") != hashed
    assert "SCFLOW_SET" not in os.environ  # the batch's values do not leak out of it


def test_set_of_a_preset_level_value_reaches_the_hash(env, ran):
    from scflow.repro.plan import plan
    from scflow.repro.presets import overrides_applied

    yml(env, "a.yaml", "notebook: nb_a\n")
    before = plan([env / "yml"])[0].params.config_hash
    with overrides_applied({"teacher_steps": 7}):  # not a parameter of nb_a: the preset's
        assert plan([env / "yml"])[0].params.config_hash != before
    assert plan([env / "yml"])[0].params.config_hash == before


@pytest.mark.parametrize("item, message", [
    ("n_evl=5", "did you mean 'n_eval'"), ("seed=-1", "'seed'"), ("seed", "key=value"),
    ("preset=smoke", "--preset"), ("teacher_lr=1e-4", "write it with a dot"),
])
def test_set_is_validated_like_a_run_file(item, message, env, ran, capsys):
    yml(env, "a.yaml", "notebook: nb_a\n")
    assert main(env / "yml", "--set", item) == 2
    assert message in capsys.readouterr().err and ran == []


def test_one_spelling_of_each_weights_folder(tmp_path, monkeypatch):
    from scflow.pretrained import LFM_MODEL_480_PATH, LOCAL_WEIGHTS, SD_VAE_ID, resolve_pretrained
    from scflow.pretrained import WeightsUnavailableError as Missing
    from scflow.repro.presets import preset_values

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for hub_id, local in LOCAL_WEIGHTS.items():
        assert f"{hub_id}" in readme and f"--local-dir {local}" in readme, local
    assert f"-O {LFM_MODEL_480_PATH}" in readme
    p = preset_values("celebahq256")
    assert p["vae"] == LOCAL_WEIGHTS[SD_VAE_ID] and p["teacher_checkpoint"] == LFM_MODEL_480_PATH
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Missing) as err:
        resolve_pretrained(p["vae"], what="the SD VAE", param="vae")
    text = str(err.value)
    assert f"hf download {SD_VAE_ID} --local-dir {LOCAL_WEIGHTS[SD_VAE_ID]}" in text
    assert f"`vae: {LOCAL_WEIGHTS[SD_VAE_ID]}`" in text and "--" + "sd-vae" not in text
