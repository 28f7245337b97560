"""A parameter reaches the loss it sets in a few hops.

``t_trunc`` and ``lambda_rf`` are traced while notebook 05 runs (its own code cells, in this
process, on the smoke preset) from its parameters cell to the function of Algorithm 1 that uses
them: ``scflow.losses.late_mask`` (Eq. 8's truncation) and ``scflow.distill.loss_weights`` (the
weight of L_RF). A *hop* is a function or class of ``scflow`` that holds the value on its way:

- every frame on the call stack, from the notebook's cell down to the loss, whose arguments or
  locals reach the value (directly, in a mapping, or as a field of a config or of an object);
- every object built on the way that holds it (``DistillConfig``, the ``Distiller``), with the
  frames that built it.

Methods of one class count as one hop; the parameters cell's own resolution and validation
(``notebook_params``) is the start, not a hop. A layer that passes the parameter dict on, copies
it into another holder, or wraps the trainer adds a hop; the test fails above six.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import nbformat
import pytest

from scflow.cache import REPO_ROOT
from scflow.repro.notebooks import notebook_path, parameters_cell_index

PACKAGE = str(REPO_ROOT / "scflow")
MAX_HOPS = 6
ROUTES = {  # parameter -> (a value no other code uses, the function that turns it into the loss)
    "t_trunc": (0.3046875, "scflow.losses.late_mask"),
    "lambda_rf": (0.0859375, "scflow.distill.loss_weights"),
}


def reaches(obj: Any, value: float, depth: int = 3, seen: set[int] | None = None) -> bool:
    """Whether ``value`` is ``obj`` or inside it: mapping values, sequence items, dataclass fields
    and attributes of project objects, ``depth`` levels deep."""
    if isinstance(obj, float):
        return obj == value
    seen = set() if seen is None else seen
    if depth == 0 or id(obj) in seen or isinstance(obj, (str, bytes, int, bool, type(None))):
        return False
    seen.add(id(obj))
    if isinstance(obj, Mapping):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)) and len(obj) < 64:
        children = list(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        children = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    elif type(obj).__module__.startswith("scflow") and hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        return False
    return any(reaches(child, value, depth - 1, seen) for child in children)


def frame_label(frame: FrameType) -> str:
    """``module.function``, or ``module.Class`` for a method (one hop per class)."""
    code = frame.f_code
    if "self" in frame.f_locals and code.co_varnames[:1] == ("self",):
        cls = type(frame.f_locals["self"])
        return f"{cls.__module__}.{cls.__qualname__}"
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{code.co_qualname}"


class RouteTracer:
    """Records the hops of ``value`` (see the module docstring) until ``loss`` receives it."""

    def __init__(self, value: float, loss: str, is_project: Callable[[FrameType], bool],
                 is_root: Callable[[FrameType], bool], start: str) -> None:
        self.value, self.loss, self.start = value, loss, start
        self.is_project, self.is_root = is_project, is_root
        self.hops: dict[str, str] = {}  # label -> why it is one
        self.arrived: Any = None

    def _chain(self, frame: FrameType | None) -> list[FrameType] | None:
        """Project frames from ``frame`` up to the root cell; None under the start function."""
        chain = []
        while frame is not None and not self.is_root(frame):
            if frame.f_code.co_name == self.start:
                return None
            if self.is_project(frame):
                chain.append(frame)
            frame = frame.f_back
        return chain if frame is not None else None

    def _holds(self, frame: FrameType) -> bool:
        return any(reaches(v, self.value) for k, v in frame.f_locals.items()
                   if not k.startswith("__"))

    def _record(self, frame: FrameType, why: str) -> None:
        chain = self._chain(frame)
        for f in chain or ():
            if self._holds(f):
                self.hops.setdefault(frame_label(f), why)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code.co_name == "__init__" and "self" in frame.f_locals:
            obj = frame.f_locals["self"]
            if type(obj).__module__.startswith("scflow") and reaches(obj, self.value):
                self._record(frame, f"builds a {type(obj).__name__} holding it")
        elif event == "call" and self.arrived is None and self.is_project(frame) \
                and f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}" == self.loss:
            self.arrived = [v for v in frame.f_locals.values() if reaches(v, self.value)]
            self._record(frame, "on the stack when the loss gets it")


def in_package(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(PACKAGE) or (
        frame.f_code.co_name == "__init__" and "self" in frame.f_locals
        and type(frame.f_locals["self"]).__module__.startswith("scflow"))


def trace_notebook(name: str, parameter: str, value: float, loss: str,
                   monkeypatch: pytest.MonkeyPatch) -> RouteTracer:
    """Run ``name``'s code cells on the smoke preset with ``parameter = value`` injected after
    its parameters cell (as papermill does), tracing until the student has been trained."""
    nb = nbformat.read(notebook_path(name), as_version=4)
    cells = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = parameters_cell_index(nb)
    tracer = RouteTracer(value, loss, in_package,
                         lambda f: f.f_code.co_filename.startswith(f"<{name} cell"),
                         start="notebook_params")
    ns: dict[str, Any] = {"__name__": "__main__"}
    monkeypatch.setenv("SCFLOW_EXPLICIT_PARAMS", parameter)
    sys.setprofile(tracer)
    try:
        for i, source in cells:
            exec(compile(source, f"<{name} cell {i}>", "exec"), ns)  # noqa: S102
            if i == tagged:
                ns.update(preset="smoke", **{parameter: value})
            if "history" in ns:  # trained: the loss has seen the value
                break
    finally:
        sys.setprofile(None)
    import matplotlib.pyplot as plt

    plt.close("all")
    return tracer


@pytest.fixture
def smoke_dirs(tmp_path, monkeypatch, one_thread):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    from scflow.repro.experiment import make_extractor, prepare
    from scflow.repro.presets import preset_values

    p = preset_values("smoke")
    make_extractor(p, prepare(p, progress=False).device)  # cached before the trace: fewer events


@pytest.mark.slow
@pytest.mark.parametrize("parameter", sorted(ROUTES))
def test_parameter_reaches_its_loss_in_at_most_six_hops(parameter, smoke_dirs, monkeypatch):
    value, loss = ROUTES[parameter]
    tracer = trace_notebook("05_bidirectional_loss", parameter, value, loss, monkeypatch)
    route = "\n".join(f"  {hop}: {why}" for hop, why in tracer.hops.items())
    assert tracer.arrived, f"{loss} never received {parameter} = {value}; hops so far:\n{route}"
    assert loss in tracer.hops and "scflow.trainer.Distiller" in tracer.hops, route
    assert len(tracer.hops) <= MAX_HOPS, f"{parameter} takes {len(tracer.hops)} hops:\n{route}"


def test_the_tracer_counts_every_layer(tmp_path):
    """The guard itself: a route through one more pass-through function is one hop longer, and a
    function that only sees other values is no hop."""
    code = tmp_path / "route.py"
    code.write_text(
        "def loss(x, other):\n    return x\n"
        "def use(p):\n    return loss(p['t'], unrelated(p['n']))\n"
        "def unrelated(n):\n    return n + 1\n"
        "def passing(p):\n    return use(p)\n")
    ns: dict[str, Any] = {"__name__": "route"}
    exec(compile(code.read_text(), str(code), "exec"), ns)  # noqa: S102

    def hops(entry: str) -> list[str]:
        tracer = RouteTracer(0.3046875, "route.loss", lambda f: f.f_code.co_filename == str(code),
                             lambda f: f.f_code.co_filename == "<root>", start="none")
        root = compile(f"{entry}({{'t': 0.3046875, 'n': 1}})", "<root>", "exec")
        sys.setprofile(tracer)
        try:
            exec(root, ns)  # noqa: S102
        finally:
            sys.setprofile(None)
        assert tracer.arrived == [0.3046875]
        return sorted(tracer.hops)

    assert hops("use") == ["route.loss", "route.use"]
    assert hops("passing") == ["route.loss", "route.passing", "route.use"]
