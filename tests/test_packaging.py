"""environment.yml and pyproject.toml list the same dependencies; CI calls the README's command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py = _names(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _names([p for p in pip if not p.startswith("-")])
    assert py == conda, f"only in pyproject: {py - conda}; only in environment.yml: {conda - py}"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.strip().startswith("#")]
    assert ci[-1] == "make test"


SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")


def _env_python_spec() -> str:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pins) == 1, pins
    return pins[0][len("python"):].strip()


def test_python_range_311_to_313_without_upper_cap():
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = SpecifierSet(project["requires-python"])
    for v in SUPPORTED_PYTHONS:
        assert spec.contains(f"{v}.0") and spec.contains(f"{v}.9"), (v, str(spec))
    assert not spec.contains("3.10.14")
    assert spec.contains("3.14.0"), "no upper cap without a measured reason"
    classifiers = {c.rsplit(" :: ", 1)[-1] for c in project["classifiers"]
                   if c.startswith("Programming Language :: Python :: 3.")}
    assert classifiers == set(SUPPORTED_PYTHONS)
    # environment.yml asks conda for the same range (conda spells ">=3.11" the same way)
    assert SpecifierSet(_env_python_spec()) == spec
