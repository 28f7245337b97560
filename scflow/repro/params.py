"""Typed, range-checked notebook parameters (nanoGPT-style: unknown keys are errors).

Every parameter any notebook exposes is declared ONCE in :data:`scflow.repro.presets.PARAMS` as a
:class:`Param`; the same name means the same thing in every notebook. A notebook's
``parameters`` cell lists the subset it uses, with the ``mini`` preset's values as literals.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from scflow.cache import config_hash
from scflow.repro.notebooks import notebook_path, parameters_cell
from scflow.repro.paramspec import NO_NEUTRAL, ParameterError, short_repr
from scflow.repro.presets import (
    FIDELITY_SWITCHES,
    PARAMS,
    PRESET_KEYS_NOT_READ,
    PRESET_NAMES,
    PRESETS,
    preset_values,
)
from scflow.repro.results import RUNNER_ENV

# A run's name becomes a file name (results/<preset>/<run_name>.csv, runs/<preset>/...): no
# folders, no leading dot, so that no parameter can write outside those folders.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RUN_NAME_RULE = "must be letters, digits, '_', '-', '.' (not starting with '.', '_' or '-')"

# Names IPython binds in a kernel's namespace (besides the ``_``-prefixed ones).
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "display"})
# What papermill can inject: the parameter values it writes as Python literals.
LITERAL_TYPES = (str, int, float, bool, list, tuple, dict, type(None))

EXPLICIT_ENV = "SCFLOW_EXPLICIT_PARAMS"
"""Comma-separated names that a run sets explicitly; the runner sets it for the notebook's kernel."""


class RunParams(dict):
    """The resolved, validated parameters of one notebook run: a dict with attribute access.

    ``P.seed`` and ``P["seed"]`` are the same value. ``P.notebook`` names the notebook and
    ``P.config_hash`` identifies the configuration (every value except ``run_name``); the
    runner and :mod:`scflow.repro.results` use it to skip runs whose results already exist.
    """

    def __init__(self, notebook: str, values: Mapping[str, Any],
                 explicit: Iterable[str] = ()) -> None:
        super().__init__(values)
        self.notebook = notebook
        self.explicit = frozenset(explicit)
        """The names the run sets on purpose (a run file's keys); see :func:`resolve_notebook_params`."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("notebook", "explicit"):  # copy/pickle probe
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r} in notebook {self.notebook!r}; "
                                 f"it has: {', '.join(self)}") from None

    @property
    def config_hash(self) -> str:
        """Hash over (notebook name, every resolved value but ``run_name``, the preset's values,
        the content of the data).

        The preset's values are included because notebooks take what they share (data,
        autoencoder, teacher, feature classifier) from the preset, not from their own
        parameters: a changed preset must not leave stale results looking finished. Left out:
        the preset keys a notebook provably never reads (``presets.PRESET_KEYS_NOT_READ``).
        A notebook that computes (it has a ``device``) also hashes the content fingerprint of
        its training data (:func:`scflow.data.data_fingerprint`), so changed images make its
        results stale even where every value is the same.
        """
        values = hashed_values({k: v for k, v in self.items() if k != "run_name"})
        preset = values.get("preset")
        upstream, merged = None, dict(self)
        if preset in PRESET_NAMES:
            unread = PRESET_KEYS_NOT_READ.get(self.notebook, ())
            merged = {**preset_values(preset), **self}
            upstream = hashed_values({k: v for k, v in preset_values(preset).items()
                                      if k not in unread})
        key = {"notebook": self.notebook, "params": values, "preset": upstream}
        if "device" in self and "dataset" in merged:
            key["data"] = self._data_fingerprint(merged)
        return config_hash(key)

    def _data_fingerprint(self, merged: Mapping[str, Any]) -> str:
        """:func:`scflow.data.data_fingerprint`, computed once per data selection (a folder
        dataset's files are looked at once, however often the hash is asked for)."""
        from scflow.data import data_fingerprint  # imports torch: only once a hash is needed

        spec = tuple(merged.get(k) for k in ("dataset", "data_dir", "data_limit"))
        memo = self.__dict__.setdefault("_data_fingerprints", {})
        if spec not in memo:
            memo[spec] = data_fingerprint(spec[0], spec[1] or "", spec[2] or 0)
        return memo[spec]


def hashed_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the parameters set to their declared ``neutral`` value (see Param)."""
    def neutral(k: str, v: Any) -> bool:
        n = PARAMS[k].neutral if k in PARAMS else NO_NEUTRAL
        return n is not NO_NEUTRAL and _same(v, n)

    return {k: v for k, v in values.items() if not neutral(k, v)}


def _same(a: Any, b: Any) -> bool:
    """Equal value AND equal type (so ``0`` is not mistaken for the default ``False``)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def explicit_from_env() -> frozenset[str]:
    """The names listed in ``$SCFLOW_EXPLICIT_PARAMS`` (empty when unset)."""
    return frozenset(n.strip() for n in os.environ.get(EXPLICIT_ENV, "").split(",") if n.strip())


def resolve_notebook_params(notebook: str, values: Mapping[str, Any],
                            explicit: Iterable[str] | None = None) -> RunParams:
    """Resolve and validate a notebook's parameters: defaults (= mini) <- preset <- overrides.

    ``values`` holds every name of the notebook's ``parameters`` cell as it is after papermill's
    injection. A name in ``explicit`` keeps its value whatever the preset. For the other names,
    papermill cannot tell an injected value from a default, hence the rule:

    - a value equal (same type and value) to the ``mini`` preset's follows the chosen preset
      (``values["preset"]``, ``"mini"`` when absent);
    - any other value is an explicit override and is kept.

    The paper-vs-code switches (:data:`scflow.repro.presets.FIDELITY_SWITCHES`) follow
    ``fidelity``: a run whose ``fidelity`` is not the preset's gets the "from fidelity" value,
    hence the chosen side's, of every switch that follows the preset.

    The runner knows which keys a run file sets and passes them as ``explicit`` (to the kernel
    through ``$SCFLOW_EXPLICIT_PARAMS``, read when ``explicit`` is None), so under the runner
    every override is honoured. With plain papermill, list the names in that variable to keep a
    value equal to the mini one under another preset. An empty ``run_name`` becomes the
    notebook's name. Every value is checked against :data:`scflow.repro.presets.PARAMS`; all problems
    are reported in one :class:`ParameterError`.

    Args:
        notebook: the notebook's file stem, e.g. ``"01_latent_flow_matching"``.
        values: name -> value for every name in its ``parameters`` cell.
        explicit: names set on purpose; None = :func:`explicit_from_env`.

    Returns:
        A :class:`RunParams` with the same names, resolved and validated.
    """
    explicit = explicit_from_env() if explicit is None else frozenset(explicit)
    errors = [unknown_name_message(name, PARAMS) for name in values if name not in PARAMS]
    errors += [f"explicitly set parameter {name!r} is not a parameter of {notebook}"
               for name in sorted(explicit - set(values))]
    preset = values.get("preset", "mini")
    if preset not in PRESET_NAMES:
        errors.append(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    if errors:
        raise ParameterError("\n".join(errors))
    mini, chosen = PRESETS["mini"], preset_values(preset)
    follows_preset = {name for name, value in values.items()
                      if name != "preset" and name not in explicit and name in mini
                      and _same(value, mini[name])}
    other_side = "fidelity" in values and values["fidelity"] != chosen["fidelity"]
    resolved: dict[str, Any] = {}
    for name, value in values.items():
        if name in follows_preset:
            value = chosen[name]
            if other_side and name in FIDELITY_SWITCHES:
                value = FIDELITY_SWITCHES[name]
        try:
            resolved[name] = PARAMS[name].check(name, value)
        except ParameterError as err:
            errors.append(str(err))
    if errors:
        raise ParameterError("\n".join(errors))
    if resolved.get("run_name") == "":
        resolved["run_name"] = notebook
    return RunParams(notebook, resolved, explicit)


def unknown_name_message(name: str, valid: Iterable[str], where: str = "PARAMS") -> str:
    """Error text for an unknown parameter: close matches first, then every valid name."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"unknown parameter {name!r} (not in {where});{hint} valid: {', '.join(valid)}"


def check_run_name(run_name: str) -> str | None:
    """The error text for an unsafe run name (see :data:`RUN_NAME`), ``None`` if it is fine."""
    if RUN_NAME.match(run_name):
        return None
    return f"run_name {run_name!r} {RUN_NAME_RULE}"


def bound_names(sources: Iterable[str]) -> set[str]:
    """Every name a cell source binds (assignments, imports, def/class, for/with targets).

    Lines starting with ``%`` or ``!`` (IPython magics) are skipped; a cell that still does not
    parse contributes nothing.
    """
    names: set[str] = set()
    for source in sources:
        code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln
                         for ln in source.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
    return names


def injected_unknown(notebook_file: Any, namespace: Mapping[str, Any]) -> list[str]:
    """Names in ``namespace`` that papermill (``-p NAME VALUE``) injected but the notebook
    never defines: not in its parameters cell nor bound by any of its cells.

    Only literal values count (papermill injects nothing else), so a module or function a
    user created interactively is never mistaken for a parameter.
    """
    import nbformat

    nb = nbformat.read(notebook_file, as_version=4)
    known = bound_names(c.source for c in nb.cells if c.cell_type == "code") | IPYTHON_NAMES
    return sorted(k for k, v in namespace.items()
                  if not k.startswith("_") and k not in known and isinstance(v, LITERAL_TYPES))


def notebook_params(notebook: str, namespace: Mapping[str, Any]) -> RunParams:
    """:func:`resolve_notebook_params` for the names of the notebook's own ``parameters`` cell.

    The names are read from the notebook file (``notebooks/<notebook>.ipynb``), their values
    from ``namespace``; in a notebook: ``P = notebook_params("01_latent_flow_matching", globals())``.
    Plain papermill gets the runner's checks: a name injected with ``-p`` that the notebook
    does not define (a typo such as ``t_truncc``) and an unsafe ``run_name`` are errors; then
    :func:`scflow.repro.experiment.check_ready` lists every missing GPU, data folder and weights file.
    """
    path = notebook_path(notebook)
    names = parameters_cell(path)
    missing = [k for k in names if k not in namespace]
    if missing:
        raise ParameterError(f"{notebook}: parameters {missing} are not defined; run the "
                             f"parameters cell first")
    errors = [f"{notebook}: injected " + unknown_name_message(k, names, f"notebook {notebook}")
              for k in injected_unknown(path, namespace)]
    run_name = namespace.get("run_name")
    bad_name = check_run_name(run_name) if isinstance(run_name, str) and run_name else None
    if bad_name:
        errors.append(f"{notebook}: {bad_name}")
    if errors:
        raise ParameterError("\n".join(errors))
    params = resolve_notebook_params(notebook, {k: namespace[k] for k in names})
    followed = [f"{k} {short_repr(namespace[k], 30)} -> {short_repr(params[k], 30)}"
                for k in names if k not in ("preset", "run_name") and namespace[k] != params[k]]
    if followed and not os.environ.get(RUNNER_ENV):  # plain papermill / JupyterLab
        print(f"preset {params['preset']!r}: these values follow the preset: "
              f"{', '.join(followed)}. A value equal to the mini default (the notebook's) "
              f"follows the preset even when injected with -p: to keep it, list its name in "
              f"{EXPLICIT_ENV} (comma-separated).")
    if "device" in params:  # a notebook that computes: are its GPU, data and weights here?
        # imported here, not above: experiment imports torch, which resolving and hashing
        # parameters (the runner's planning) never needs
        from scflow.repro.experiment import check_ready

        check_ready({**preset_values(params["preset"]), **params}, notebook)
    return params
