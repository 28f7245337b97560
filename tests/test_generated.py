"""Generated prose: the README's and docs' result sections are what the committed CSVs render."""

from __future__ import annotations

import pytest

from scflow.cache import REPO_ROOT
from scflow.repro import generated
from scflow.repro.generated import GeneratedSectionError, refresh_text
from scflow.repro.results import write_results


def test_generated_sections_equal_what_the_committed_csvs_render():
    stale = generated.stale_sections()
    assert not stale, ("generated sections differ from the committed results: "
                       f"{stale}; run python -m scflow.repro.report --preset mini")


def test_the_readme_generates_its_results_claims_and_timings():
    text = (REPO_ROOT / "README.md").read_text()
    for name in ("mini/table4", "mini/noise", "mini/t2i", "mini/claims", "mini/timings"):
        assert f"<!-- generated: {name} -->" in text, name
    assert text.count("<!-- generated: mini/timings -->") == 1  # one timings table


def _results(folder, wall: float) -> None:
    rows = [dict(metric="fid", value=v, method="cd", nfe=n) for n, v in ((1, 20.0), (2, 9.0))]
    write_results(rows, folder / "smoke" / "table4_cd.csv",
                  dict(run="table4_cd", notebook="02_naive_consistency_distillation",
                       preset="smoke", seed=0, config_hash="h", device="cpu",
                       wall_time_s=wall, timestamp="2020-01-01T00:10:00+00:00"))


DOC = ("# doc\n\nintro\n\n<!-- generated: smoke/timings -->\nold text\n"
       "<!-- /generated: smoke/timings -->\n\n<!-- generated: mini/table4 -->\nkept\n"
       "<!-- /generated: mini/table4 -->\nend\n")


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "X.md").write_text(DOC)
    (tmp_path / "README.md").write_text("no sections\n")
    _results(tmp_path / "results", 120.0)
    return tmp_path


def test_refresh_renders_one_presets_sections_and_keeps_the_rest(root):
    assert generated.refresh_files("smoke", root) == [root / "docs" / "X.md"]
    text = (root / "docs" / "X.md").read_text()
    assert "old text" not in text and "| `02_naive_consistency_distillation` | 1 | 2.0 |" in text
    assert "<!-- generated: mini/table4 -->\nkept\n" in text  # another preset: untouched
    assert text.startswith("# doc\n\nintro\n\n") and text.endswith("end\n")
    assert generated.refresh_files("smoke", root) == []  # rendering again changes nothing


def test_a_changed_csv_makes_its_section_stale(root):
    generated.refresh_files("smoke", root)
    assert [s for s in generated.stale_sections(root) if "smoke" in s] == []
    _results(root / "results", 600.0)  # the run took longer: the prose must follow
    assert "docs/X.md: smoke/timings" in generated.stale_sections(root)


@pytest.mark.parametrize("text,match", [
    ("<!-- generated: smoke/nosuch -->\n<!-- /generated: smoke/nosuch -->\n", "section one of"),
    ("<!-- generated: huge/table4 -->\n<!-- /generated: huge/table4 -->\n", "preset one of"),
    ("<!-- generated: smoke/table4 -->\nno end\n", "no closing"),
])
def test_bad_markers_are_refused_naming_the_file(text, match):
    with pytest.raises(GeneratedSectionError, match=match) as err:
        refresh_text(text, "docs/Y.md")
    assert "docs/Y.md" in str(err.value)
