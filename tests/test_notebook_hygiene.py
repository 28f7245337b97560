"""Every committed notebook is stripped, runs on kernel ``python3`` and has a clean parameters cell.

Generic over ``notebooks/*.ipynb``: a new notebook is checked without touching this file.
"""

from __future__ import annotations

import nbformat
import pytest

from scflow.repro.notebooks import notebooks_dir, parameters_cell, parameters_cell_index
from scflow.repro.presets import PARAMS, preset_values

NOTEBOOKS = sorted(notebooks_dir().glob("*.ipynb"))
pytestmark = pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
IDS = [p.stem for p in NOTEBOOKS]


@pytest.fixture(params=NOTEBOOKS, ids=IDS)
def nb_path(request):
    return request.param


def _read(path):
    return nbformat.read(path, as_version=4)


def test_outputs_stripped(nb_path):
    for i, cell in enumerate(_read(nb_path).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: run nbstripout"
            assert cell.execution_count is None, f"cell {i} has an execution count"


def test_kernel_is_python3_and_no_papermill_metadata(nb_path):
    nb = _read(nb_path)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "papermill" not in nb.metadata, "an executed notebook was committed"
    for i, cell in enumerate(nb.cells):
        assert "papermill" not in cell.metadata, f"cell {i} has papermill metadata"
        assert "injected-parameters" not in cell.metadata.get("tags", []), f"cell {i}"


def test_parameters_cell_follows_the_imports(nb_path):
    """Markdown may come first; of the code cells, the imports come first, then parameters."""
    nb = _read(nb_path)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert parameters_cell_index(nb, str(nb_path)) == code[1]


def test_parameters_declared_with_mini_defaults(nb_path):
    defaults = parameters_cell(nb_path)
    unknown = sorted(set(defaults) - set(PARAMS))
    assert not unknown, f"parameters not declared in scflow.repro.presets.PARAMS: {unknown}"
    mini = preset_values("mini")
    wrong = {k: (v, mini[k]) for k, v in defaults.items() if v != mini[k]
             or type(v) is not type(mini[k])}
    assert not wrong, f"defaults differ from the mini preset (got, mini): {wrong}"
    assert {"preset", "run_name"} <= set(defaults), "the runner injects preset and run_name"


def test_parameters_cell_lines_are_commented(nb_path):
    nb = _read(nb_path)
    source = nb.cells[parameters_cell_index(nb)].source
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"parameter line without a comment: {line!r}"


def test_resolves_its_own_parameters_by_name(nb_path):
    """The name passed to resolve must be the file's, or resume/dedupe hashes disagree."""
    code = "\n".join(c.source for c in _read(nb_path).cells if c.cell_type == "code")
    assert (f'notebook_params("{nb_path.stem}"' in code
            or f'resolve_notebook_params("{nb_path.stem}"' in code)
