"""Typed configs: the core never reads the notebooks' parameter dict, the Table 4 methods are
defined once and merged explicitly, the fidelity switches follow ``fidelity``, and the configs
built from the mini preset find the shipped artefacts (same cache keys as before)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from scflow.autoencoder import AutoencoderConfig, ae_cache_config, latent_space_key
from scflow.baselines import BaselineConfig
from scflow.cache import REPO_ROOT, config_hash
from scflow.data import DataConfig
from scflow.fidelity import make_fidelity
from scflow.repro.configs import (
    FIDELITY_FIELDS,
    autoencoder_config,
    data_config,
    distill_config,
    teacher_config,
)
from scflow.repro.methods import TABLE4, table4_method
from scflow.repro.notebooks import notebook_path, parameters_cell
from scflow.repro.params import ParameterError, resolve_notebook_params
from scflow.repro.presets import FIDELITY_SWITCHES, PARAMS, preset_values
from scflow.teacher import TeacherConfig, teacher_cache_config

PACKAGE = REPO_ROOT / "scflow"
CORE = sorted(p for p in PACKAGE.rglob("*.py") if "repro" not in p.relative_to(PACKAGE).parts)


def run_params(notebook: str, explicit: dict | None = None, preset: str = "mini"):
    """A notebook's resolved parameters, as the runner resolves a run file setting ``explicit``."""
    values = {**parameters_cell(notebook_path(notebook)), "preset": preset, **(explicit or {})}
    return resolve_notebook_params(notebook, values, explicit=set(explicit or {}))


# --- the core reads typed configs, never the parameter dict -------------------------------------
def parameter_reads(path: Path) -> list[str]:
    """Where a function of ``path`` reads a notebook parameter by name from one of its own or
    its enclosing functions' arguments (``p["t_trunc"]``, ``p.get("seed")``)."""
    found: list[str] = []

    def read(node: ast.AST, args: set[str], name: str) -> None:
        key = owner = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key, owner = node.slice.value, node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant)):
            key, owner = node.args[0].value, node.func.value
        if key in PARAMS and isinstance(owner, ast.Name) and owner.id in args:
            found.append(f"{path.name}:{node.lineno} {name}({owner.id}[{key!r}])")

    def scan(node: ast.AST, args: set[str], name: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                a = child.args
                own = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
                scan(child, args | own, getattr(child, "name", "lambda"))
                continue
            read(child, args, name)
            scan(child, args, name)

    scan(ast.parse(path.read_text(), str(path)), set(), "<module>")
    return found


def test_no_core_function_reads_a_parameter_dict():
    assert len(CORE) > 30  # the walk found the core
    found = [hit for path in CORE for hit in parameter_reads(path)]
    assert not found, "core functions reading notebook parameters by name (take a config): " \
        + "; ".join(found)


def test_the_parameter_dict_check_catches_what_it_guards(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def key(p, cfg):\n    return p['t_trunc'], cfg.t_trunc\n\n"
                       "def build(q):\n    def inner():\n        return q.get('lambda_rf')\n"
                       "    return inner\n\n"
                       "def fine(saved):\n    local = {'seed': 1}\n    return local['seed']\n")
    assert parameter_reads(planted) == ["planted.py:2 key(p['t_trunc'])",
                                        "planted.py:6 inner(q['lambda_rf'])"]


# --- configs validate on construction -----------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: DataConfig(dataset="imagenet"), "dataset"),
    (lambda: DataConfig(dataset="folder"), "data_dir"),
    (lambda: DataConfig(limit=-1), "data_limit"),
    (lambda: AutoencoderConfig(arch="huge"), "vae_config"),
    (lambda: AutoencoderConfig(steps=0), "vae_steps"),
    (lambda: TeacherConfig(arch="unet_enormous"), "teacher_arch"),
    (lambda: TeacherConfig(ema_decay=1.0), "teacher_ema"),
    (lambda: TeacherConfig(checkpoint="m.pth", class_cond=True), "class_cond"),
    (lambda: BaselineConfig(batch_size=0), "rectified_batch"),
])
def test_configs_refuse_bad_values_naming_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mini_configs_find_the_shipped_artefacts():
    """The keys the configs compute are the ones the shipped autoencoder, latents and teacher
    were exported under (a changed key would retrain them instead of loading them)."""
    shipped = json.loads((REPO_ROOT / "artifacts" / "mini" / "manifest.json").read_text())
    p = preset_values("mini")
    data, ae = data_config(p), autoencoder_config(p)
    space = latent_space_key(ae, data)
    names = {f"autoencoder-{config_hash(ae_cache_config(ae, data))}",
             f"latents-{config_hash({'kind': 'latents', 'codec': space, 'latent_scale': 0.0, 'n': 10_000})}",
             f"teacher-{config_hash(teacher_cache_config(teacher_config(p), space))}"}
    assert names <= set(shipped["entries"])


def test_distill_config_from_the_mini_preset():
    p = preset_values("mini")
    cfg = distill_config({**p, "seed": 3})
    f = cfg.fidelity
    assert (f.distance, f.time_sampling, f.trunc_rule, f.d_head) == ("l2", "grid", "t", "logit")
    assert (f.student_lr, f.disc_lr, f.eval_decay) == (2e-5, 2e-5, 0.99)  # the study's choice
    assert distill_config({**p, "disc_lr": 0.0}).fidelity.disc_lr == 1e-5  # 0: the fidelity's
    assert (cfg.warmup_rf, cfg.batch_size) == (p["warmup_rf"], p["distill_batch"])
    assert (cfg.t_trunc, cfg.t_skip, cfg.target_decay) == (p["t_trunc"], p["t_skip"],
                                                           p["target_ema_decay"])
    assert (cfg.seed, cfg.lambda_bi) == (3, 0.1)
    code = distill_config({**p, "fidelity": "code", "distance": "l2", "disc_lr": 0.0})
    assert (code.fidelity.distance, code.fidelity.trunc_rule, code.fidelity.disc_lr) == (
        "l2", "t_s", 1e-4)


# --- fidelity = "code" sets every switch the README lists ---------------------------------------
def readme_switches() -> set[str]:
    """The parameters named in the first column of the README's table of fidelity switches."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("### Paper vs. the authors' code: fidelity switches", 1)[1]
    table = section.split("\n\n")[2]
    return {name for line in table.splitlines()[2:]
            for name in re.findall(r"`(\w+)`", line.split("|")[1])}


def test_the_readme_lists_exactly_the_switches_that_follow_fidelity():
    assert readme_switches() == set(FIDELITY_SWITCHES) == set(FIDELITY_FIELDS)


@pytest.mark.parametrize("notebook,t2i", [("05_bidirectional_loss", False),
                                          ("08_text_to_image", True)])
def test_fidelity_code_sets_every_switch(notebook, t2i):
    P = run_params(notebook, {"fidelity": "code"})
    cfg = distill_config(P, TABLE4["scflow"], t2i=t2i).fidelity
    code = make_fidelity("code", t2i=t2i)
    for name, field in FIDELITY_FIELDS.items():
        if name in P:  # the switches this notebook exposes
            assert getattr(cfg, field) == getattr(code, field), name
    assert cfg.eval_decay == 0.9999 and cfg.disc_lr == 1e-4  # the switches mini sets itself
    assert run_params(notebook, {"fidelity": "code"}).config_hash != run_params(notebook).config_hash


def test_a_switch_the_run_sets_itself_is_kept_and_the_preset_side_is_unchanged():
    P = run_params("05_bidirectional_loss", {"fidelity": "code", "eval_ema_decay": 0.99})
    assert distill_config(P).fidelity.eval_decay == 0.99
    assert distill_config(P).fidelity.disc_lr == 1e-4
    paper = run_params("05_bidirectional_loss", {"fidelity": "paper"})  # the preset's own side
    assert paper.config_hash == run_params("05_bidirectional_loss").config_hash
    assert distill_config(paper).fidelity.eval_decay == 0.99  # mini's run-length value


# --- the Table 4 methods: defined once, merged explicitly ---------------------------------------
def test_a_method_switch_contradicting_an_explicit_value_is_refused():
    P = run_params("08_text_to_image", {"t_trunc": 0.2})
    assert distill_config(P, TABLE4["scflow"], t2i=True).t_trunc == 0.2
    with pytest.raises(ParameterError, match=r"method 'cd'.*t_trunc = 0.2 \(the method fixes 0.0\)"):
        distill_config(P, TABLE4["cd"], t2i=True)
    same = run_params("08_text_to_image", {"lambda_rf": 0.0})  # agreeing with the switch: fine
    assert distill_config(same, TABLE4["cd"], t2i=True).lambda_rf == 0.0
    # a value that only follows the preset is not the run's: the method's switch applies
    assert distill_config(run_params("08_text_to_image"), TABLE4["cd"], t2i=True).t_trunc == 0.0


def test_a_method_switch_beats_the_preset_and_the_notebook_value():
    P = run_params("04_reflow_loss")  # lambda_bi is no parameter of 04: the preset's 0.1
    cfg = distill_config(P, table4_method("rf"))
    assert (cfg.lambda_bi, cfg.lambda_rf, cfg.lambda_gan) == (0.0, 0.1, 0.1)
    assert distill_config(P).lambda_bi == 0.1
    with pytest.raises(ValueError, match="unknown method 'lcm'"):
        table4_method("lcm")


def switch_dicts(source: str) -> list[int]:
    """Lines of ``source`` holding a dict literal that switches loss terms off (a method)."""
    keys = {"t_trunc", "lambda_gan", "lambda_rf", "lambda_bi"}
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Dict) and node.keys
            and all(isinstance(k, ast.Constant) and k.value in keys for k in node.keys)]


def test_the_table4_methods_are_defined_once():
    """Only scflow/repro/methods.py writes the rows' switches; notebooks 02-05 use its rows."""
    import nbformat

    where = {str(p.relative_to(REPO_ROOT)): switch_dicts(p.read_text())
             for p in PACKAGE.rglob("*.py")}
    assert {k for k, v in where.items() if v} == {"scflow/repro/methods.py"}
    for method in TABLE4.values():
        nb = nbformat.read(notebook_path(method.notebook), as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert any(f'TABLE4["{method.key}"]' in c for c in code), method.notebook
        assert not any(switch_dicts(c) for c in code), method.notebook
        assert (REPO_ROOT / "papermill_runs" / f"{method.run}.yaml").exists()
