"""Parameter declarations, the preset rule of resolve_notebook_params, parameters-cell parsing."""

from __future__ import annotations

import copy

import nbformat
import pytest

from scflow.repro.notebooks import (
    NotebookError,
    parameter_comments,
    parameters_cell,
    parse_parameters_source,
)
from scflow.repro.params import ParameterError, RunParams, resolve_notebook_params
from scflow.repro.presets import PARAMS, PRESET_NAMES, PRESETS, preset_values

MINI = preset_values("mini")


def values(**changes):
    """A notebook's values: a few parameters at their mini defaults, then ``changes``."""
    names = ("preset", "run_name", "seed", "teacher_steps", "guidance", "class_cond", "nfe_list")
    return {**{k: MINI[k] for k in names}, **changes}


# --- declarations -------------------------------------------------------------------------------

def test_mini_declares_every_param_and_presets_only_known_names():
    assert set(PRESETS["mini"]) == set(PARAMS)
    assert set(PRESETS) == set(PRESET_NAMES)
    for preset in PRESET_NAMES:
        assert set(PRESETS[preset]) <= set(PARAMS), preset


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_value_passes_its_check(preset):
    for name, value in preset_values(preset).items():
        assert PARAMS[name].check(name, value) == value


def test_check_rejects_bool_for_int_and_bad_list_items():
    with pytest.raises(ParameterError, match="seed"):
        PARAMS["seed"].check("seed", True)
    with pytest.raises(ParameterError):
        PARAMS["nfe_list"].check("nfe_list", [1, 0])
    assert PARAMS["guidance"].check("guidance", 2) == 2.0


def test_heun_evaluations_must_be_even():
    # Heun spends two evaluations per step: an odd count would fail in notebook 01 after the
    # teacher's Euler evaluation, so it is refused before any compute
    assert PARAMS["teacher_heun_nfe"].check("teacher_heun_nfe", [4, 24]) == [4, 24]
    with pytest.raises(ParameterError, match="multiple of 2"):
        PARAMS["teacher_heun_nfe"].check("teacher_heun_nfe", [24, 25])


# --- the preset rule ----------------------------------------------------------------------------

def test_defaults_follow_the_chosen_preset():
    P = resolve_notebook_params("nb", values(preset="smoke"))
    assert P.teacher_steps == PRESETS["smoke"]["teacher_steps"] != MINI["teacher_steps"]
    assert P.nfe_list == PRESETS["smoke"]["nfe_list"]
    assert P.seed == MINI["seed"]  # not in smoke: stays mini
    assert resolve_notebook_params("nb", values()).teacher_steps == MINI["teacher_steps"]


def test_explicit_override_wins_over_preset():
    P = resolve_notebook_params("nb", values(preset="smoke", teacher_steps=7, nfe_list=[3]))
    assert P.teacher_steps == 7 and P.nfe_list == [3]


def test_explicit_names_keep_a_value_equal_to_mini(monkeypatch):
    monkeypatch.delenv("SCFLOW_EXPLICIT_PARAMS", raising=False)
    v = values(preset="smoke", teacher_steps=MINI["teacher_steps"])
    assert resolve_notebook_params("nb", v).teacher_steps == PRESETS["smoke"]["teacher_steps"]
    P = resolve_notebook_params("nb", v, explicit=["teacher_steps"])
    assert P.teacher_steps == MINI["teacher_steps"]
    assert P.nfe_list == PRESETS["smoke"]["nfe_list"]  # not named: still follows the preset
    monkeypatch.setenv("SCFLOW_EXPLICIT_PARAMS", "teacher_steps, nfe_list")  # the kernel's view
    P = resolve_notebook_params("nb", v)
    assert (P.teacher_steps, P.nfe_list) == (MINI["teacher_steps"], MINI["nfe_list"])
    with pytest.raises(ParameterError, match="teacher_stps"):
        resolve_notebook_params("nb", v, explicit=["teacher_stps"])


def test_same_value_other_type_is_an_override_and_checked():
    # 0 is not the default False: it is an explicit (wrong) value, not "follow the preset"
    with pytest.raises(ParameterError, match="class_cond"):
        resolve_notebook_params("nb", values(class_cond=0))
    assert resolve_notebook_params("nb", values(guidance=2)).guidance == 2.0


def test_empty_run_name_becomes_notebook_name():
    assert resolve_notebook_params("01_x", values()).run_name == "01_x"
    assert resolve_notebook_params("01_x", values(run_name="r1")).run_name == "r1"


def test_all_errors_reported_at_once_with_suggestion():
    with pytest.raises(ParameterError) as err:
        resolve_notebook_params("nb", values(seed=-1, teacher_step=5))
    msg = str(err.value)
    assert "'teacher_step'" in msg and "did you mean 'teacher_steps'" in msg
    assert "valid:" in msg
    with pytest.raises(ParameterError, match="seed"):
        resolve_notebook_params("nb", values(seed=-1))


def test_unknown_preset_rejected():
    with pytest.raises(ParameterError, match="unknown preset 'huge'"):
        resolve_notebook_params("nb", values(preset="huge"))


def test_config_hash_ignores_run_name_only():
    a = resolve_notebook_params("nb", values(run_name="a"))
    assert a.config_hash == resolve_notebook_params("nb", values(run_name="b")).config_hash
    assert a.config_hash != resolve_notebook_params("nb", values(seed=1)).config_hash
    assert a.config_hash != resolve_notebook_params("other", values()).config_hash
    assert a.config_hash != resolve_notebook_params("nb", values(preset="smoke")).config_hash


def test_run_params_attribute_access_and_copy():
    P = resolve_notebook_params("nb", values())
    assert isinstance(P, RunParams) and P.seed == P["seed"]
    with pytest.raises(AttributeError, match="no parameter 'lr'"):
        _ = P.lr
    assert copy.deepcopy(P) == P


# --- parameters cell parsing -------------------------------------------------------------------

def test_parse_parameters_source_literals_only():
    src = 'seed = 0  # the seed\nnfe_list = [1, 2]\nlatent_scale = -1.5\nvae = ""\n'
    assert parse_parameters_source(src) == {"seed": 0, "nfe_list": [1, 2],
                                            "latent_scale": -1.5, "vae": ""}
    for bad in ("seed = 1 + x", "import os", "a, b = 1, 2", "seed = 0\nseed = 1", "seed ="):
        with pytest.raises(NotebookError):
            parse_parameters_source(bad)


def _write_nb(path, tags_per_cell):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('seed = 0  # random seed\nrun_name = ""  # name',
                                          metadata={"tags": tags}) for tags in tags_per_cell]
    nbformat.write(nb, path)
    return path


def test_parameters_cell_requires_exactly_one_tagged_cell(tmp_path):
    ok = _write_nb(tmp_path / "ok.ipynb", [[], ["parameters"]])
    assert parameters_cell(ok) == {"seed": 0, "run_name": ""}
    assert parameter_comments(ok) == {"seed": "random seed", "run_name": "name"}
    for name, tags in (("none", [[]]), ("two", [["parameters"], ["parameters"]])):
        with pytest.raises(NotebookError, match="exactly one"):
            parameters_cell(_write_nb(tmp_path / f"{name}.ipynb", tags))


def test_config_hash_follows_the_preset_values(monkeypatch):
    """Notebooks take the autoencoder / teacher from the preset: changing the preset (not the
    notebook's parameters) must change the hash, or resume would keep stale results."""
    from scflow.repro import presets

    before = resolve_notebook_params("nb", values()).config_hash
    monkeypatch.setitem(presets.PRESETS["mini"], "teacher_steps", 12345)
    assert resolve_notebook_params("nb", values()).config_hash != before
