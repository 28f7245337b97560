"""The executed notebook as published beside the results: no machine path, progress bars in their
final state, no widget leftovers; kernels over IPC; the report run's declared output."""

from __future__ import annotations

import nbformat
import pytest

from scflow.cache import REPO_ROOT
from scflow.repro import plan as planner
from scflow.repro import publish
from scflow.repro import run as runner
from scflow.repro.publish import clean_outputs, relative_paths, terminal_text

ROOTS = [("/srv/co/results", "results"), ("/srv/shared/cache", "cache"), ("/srv/co", "."),
         ("/opt/env", "<python>")]


@pytest.mark.parametrize("text,expected", [
    ("wrote /srv/co/results/mini/table4_cd.csv\n", "wrote results/mini/table4_cd.csv\n"),
    ("resumed (checkpoint /srv/shared/cache/distill-9b30/last.pt)",
     "resumed (checkpoint cache/distill-9b30/last.pt)"),
    ("cwd /srv/co/notebooks/05.ipynb and /srv/co", "cwd notebooks/05.ipynb and ."),
    ("'/srv/co/results'", "'results'"),
    ("/opt/env/lib/python3.11/site-packages/x.py:46: Warning",
     "<python>/lib/python3.11/site-packages/x.py:46: Warning"),
    ("/srv/co2/x and /srv/colour stay", "/srv/co2/x and /srv/colour stay"),
])
def test_machine_paths_become_repository_relative(text, expected):
    assert relative_paths(text, ROOTS) == expected


def test_machine_roots_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "elsewhere" / "c"))
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "r"))
    roots = dict(publish.machine_roots())
    assert roots[str(tmp_path / "elsewhere" / "c")] == "cache"
    assert roots[str(tmp_path / "r")] == "results"
    assert roots[str(REPO_ROOT)] == "."
    assert "/" not in roots  # never the file system's root
    lengths = [len(k) for k, _ in publish.machine_roots()]
    assert lengths == sorted(lengths, reverse=True)  # the most specific folder wins


def test_a_progress_bar_keeps_its_final_state():
    frames = "\rtrain:   0%| 0/100\rtrain:  35%| 35/100\rtrain: 100%| 100/100\n"
    assert terminal_text(frames) == "train: 100%| 100/100\n"
    assert terminal_text("a\nb\r") == "a\nb"
    assert terminal_text("plain\ntext\n") == "plain\ntext\n"


def _stream(name, text):
    return nbformat.v4.new_output("stream", name=name, text=text)


def test_clean_outputs_joins_streams_and_drops_widgets():
    widget = nbformat.v4.new_output("display_data", data={
        "text/plain": "  0%|          | 0/100", publish.WIDGET_VIEW: {"model_id": "x"}})
    figure = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure /srv/co/a>",
                                                          "image/png": "iVBOR/srv/co"})
    outputs = [_stream("stdout", "cache hits\n"), _stream("stderr", "\rbar 0%"),
               _stream("stderr", "\rbar 50%"), _stream("stderr", "\rbar 100%"),
               _stream("stderr", "\n"), widget, figure, _stream("stdout", "wrote /srv/co/x\n")]
    out = clean_outputs(outputs, ROOTS)
    assert [(o.output_type, o.get("name")) for o in out] == [
        ("stream", "stdout"), ("stream", "stderr"), ("display_data", None), ("stream", "stdout")]
    assert out[1].text == "bar 100%\n"
    assert out[2].data["text/plain"] == "<Figure a>"
    assert out[2].data["image/png"] == "iVBOR/srv/co"  # binary payloads are left alone
    assert out[3].text == "wrote x\n"


# --- through the runner: a real kernel -----------------------------------------------------------

PARAMS_CELL = 'preset = "mini"  # preset\nrun_name = ""  # run\n'
BODY = """import scflow.repro.params, scflow.repro.results, sys
from scflow.cache import REPO_ROOT, cache_root
from scflow.repro.results import results_path
from scflow.progress import progress
P = scflow.repro.params.notebook_params({name!r}, globals())
print("checkout", REPO_ROOT, "cache", cache_root() / "distill-1" / "last.pt")
for _ in progress(50, desc='train'):
    pass
with scflow.repro.results.ResultsWriter(P, device="cpu") as r:
    r.add("loss", 1.0, method="teacher")
print("wrote", results_path(P.preset, P.run_name))
"""
REPORT_BODY = """import scflow.repro.params, pathlib, os
P = scflow.repro.params.notebook_params({name!r}, globals())
if {write}:
    folder = pathlib.Path(os.environ["SCFLOW_RESULTS"]) / P.preset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "REPORT.md").write_text("report")
"""


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture
def env(tmp_path, monkeypatch):
    for var, sub in (("SCFLOW_RESULTS", "results"), ("SCFLOW_RUNS", "runs"),
                     ("SCFLOW_NOTEBOOKS", "nbs"), ("SCFLOW_CACHE", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    (tmp_path / "nbs").mkdir()
    (tmp_path / "yaml").mkdir()
    return tmp_path


@pytest.mark.slow
def test_published_copy_has_no_machine_path_and_one_bar_line(env, capfd):
    _notebook(env / "nbs" / "nb_paths.ipynb", BODY.format(name="nb_paths"))
    (env / "yaml" / "a.yaml").write_text("notebook: nb_paths\n")
    assert runner.main([str(env / "yaml" / "a.yaml"), "--preset", "smoke"]) == 0
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err  # the kernel talks over IPC
    executed = (env / "runs" / "smoke" / "a.ipynb").read_text()
    assert str(env) in executed  # the planted paths are there before publishing
    text = (env / "results" / "smoke" / "notebooks" / "a.ipynb").read_text()
    assert str(env) not in text and str(REPO_ROOT) not in text
    nb = nbformat.reads(text, as_version=4)
    streams = [o for o in nb.cells[-1].outputs if o.output_type == "stream"]
    assert [o.name for o in streams] == ["stdout", "stderr", "stdout"]
    assert "checkout . cache cache/distill-1/last.pt" in streams[0].text
    assert streams[1].text.count("\n") <= 1 and "50/50" in streams[1].text
    assert streams[2].text == "wrote results/smoke/a.csv\n"


@pytest.mark.slow
@pytest.mark.parametrize("write", [True, False])
def test_the_report_run_checks_its_declared_output(env, capsys, write):
    _notebook(env / "nbs" / "nb_report.ipynb", REPORT_BODY.format(name="nb_report", write=write))
    (env / "yaml" / "zz.yaml").write_text("notebook: nb_report\nwrites: REPORT.md\n")
    assert runner.main([str(env / "yaml" / "zz.yaml"), "--preset", "smoke"]) == 0
    out = capsys.readouterr().out
    assert ("wrote no" in out) is not write
    if not write:
        assert "REPORT.md" in out and "zz.csv" not in out


@pytest.mark.parametrize("value", ["../REPORT.md", "sub/REPORT.md", "x.csv", 3, ".."])
def test_writes_must_name_one_file_of_the_results_folder(env, value):
    _notebook(env / "nbs" / "nb_report.ipynb", REPORT_BODY.format(name="nb_report", write=True))
    (env / "yaml" / "zz.yaml").write_text(f"notebook: nb_report\nwrites: {value!r}\n"
                                          if isinstance(value, str) else
                                          f"notebook: nb_report\nwrites: {value}\n")
    with pytest.raises(planner.RunConfigError, match="writes"):
        planner.plan([env / "yaml"], "smoke")


def test_the_committed_report_run_declares_report_md():
    (run,) = planner.plan([REPO_ROOT / "papermill_runs" / "zz_report.yaml"], "mini")
    assert run.writes is not None and run.writes.name == "REPORT.md"
