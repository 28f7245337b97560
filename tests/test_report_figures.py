"""Samples files (what a run drew) and the report's sample figures drawn from them."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from scflow.cache import atomic_write_bytes
from scflow.repro import report_figures
from scflow.repro.sample_figures import FONT, GridRow, mosaic, nfe_grid, prompt_grid
from scflow.repro.samples import (
    SAMPLE_KEYS,
    Samples,
    load_samples,
    samples_path,
    save_samples,
    to_uint8,
)

matplotlib.use("Agg")


def _images(n: int = 6, c: int = 1, side: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, side, side, generator=g) * 2 - 1


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


# --- the file ---------------------------------------------------------------------------------

def test_to_uint8_maps_the_image_range_and_clamps():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5)
    assert to_uint8(x).reshape(-1).tolist() == [0, 0, 128, 255, 255]
    assert to_uint8(_images(2, c=3)).shape == (2, 8, 8, 3)  # channels last
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        to_uint8(torch.zeros(3, 8, 8))


def test_from_tensors_keeps_the_first_samples_of_each_row_in_order():
    a, b = _images(seed=1), _images(seed=2)
    s = Samples.from_tensors("run", [("cd", 1, a), ("cd", 4, b)], n=3,
                             prompts=[f"p{i}" for i in range(6)])
    assert s.images.shape == (2, 3, 8, 8, 1) and s.nfe == (1, 4) and s.method == ("cd", "cd")
    np.testing.assert_array_equal(s.get(4), to_uint8(b[:3]))
    assert s.prompts == ("p0", "p1", "p2")
    assert s.get(8) is None and s.get(1, method="scflow") is None
    # fewer samples than asked: every row keeps what the smallest has
    assert Samples.from_tensors("run", [("cd", 1, a[:2])], n=5).images.shape[1] == 2


@pytest.mark.parametrize("rows,n,prompts,match", [
    ([], 4, (), "no sample rows"),
    ([("cd", 1, _images())], 0, (), "n must be"),
])
def test_from_tensors_rejects_bad_input(rows, n, prompts, match):
    with pytest.raises(ValueError, match=match):
        Samples.from_tensors("run", rows, n, prompts)


def test_samples_refuse_inconsistent_arrays():
    imgs = np.zeros((2, 3, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match="2 image rows but 1 methods"):
        Samples("r", imgs, ("cd",), (1,))
    with pytest.raises(ValueError, match="2 prompts for 3 columns"):
        Samples("r", imgs, ("cd", "cd"), (1, 2), ("a", "b"))
    with pytest.raises(ValueError, match="uint8"):
        Samples("r", imgs.astype(np.float32), ("cd", "cd"), (1, 2))


def test_save_and_load_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path))
    s = Samples.from_tensors("t2i", [("2-rf", 25, _images()), ("scflow", 1, _images(seed=3))], 4,
                             prompts=[f"a digit {i}" for i in range(6)])
    path = save_samples(s, "smoke")
    assert path == tmp_path / "smoke" / "samples" / "t2i.npz"
    with np.load(path, allow_pickle=False) as f:  # plain arrays, no pickle needed
        assert set(f.files) == set(SAMPLE_KEYS)
    back = load_samples(tmp_path / "smoke", "t2i")
    np.testing.assert_array_equal(back.images, s.images)
    assert (back.run, back.method, back.nfe, back.prompts) == (s.run, s.method, s.nfe, s.prompts)
    assert load_samples(tmp_path / "smoke", "table4_cd") is None
    np.savez(tmp_path / "other.npz", x=np.zeros(1))
    with pytest.raises(ValueError, match="not a samples file"):
        Samples.load(tmp_path / "other.npz")


# --- the figures -------------------------------------------------------------------------------

def test_mosaic_tiles_near_square_with_a_gap():
    imgs = np.stack([np.full((2, 2, 1), 255 * (i + 1) // 4, np.uint8) for i in range(4)])
    m = mosaic(imgs, 4, pad=1, fill=-1.0)
    assert m.shape == (5, 5)
    assert m[0, 0] == pytest.approx(63 / 255) and m[4, 4] == pytest.approx(1.0)
    assert m[2, 0] == -1.0 and m[0, 2] == -1.0  # the gaps
    assert mosaic(imgs, 2).shape == (2, 5)  # two images: one row of two
    assert mosaic(np.zeros((1, 4, 4, 3), np.uint8), 1).shape == (4, 4, 3)


def _row(label, run, nfes, scale=lambda k: 1.0, method="m"):
    base = _images(4)
    return GridRow(label, run, Samples.from_tensors(
        run, [(method, k, (base * scale(k)).clamp(-1, 1)) for k in nfes], 4))


def test_nfe_grid_rows_are_methods_columns_are_nfe_and_missing_says_so():
    rows = [_row("CD", "table4_cd", (1, 2, 4)), GridRow("+ RF", "table4_rf", None),
            _row("SCFlow", "table4_bi", (1, 4))]
    fig = nfe_grid(rows, (1, 2, 4, 8, 16), "Fig. 6 test")
    texts = _texts(fig)
    # NFE 8 and 16 were evaluated by no run: no empty columns
    assert [t for t in texts if t.startswith("NFE")] == ["NFE 1", "NFE 2", "NFE 4"]
    assert "missing: table4_rf" in texts and "no NFE 2" in texts  # SCFlow skipped NFE 2
    assert {"CD", "+ RF", "SCFlow"} <= set(texts)
    assert texts.count("Fig. 6 test") == 1  # one title, no nested ones
    assert min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()) >= 9
    assert len(fig.axes) == 3 * 3


def test_nfe_grid_difference_row_shows_drift_and_not_consistency():
    rows = [_row("CD", "table4_cd", (1, 2, 16), scale=lambda k: 1.0 + 0.05 * k),
            _row("SCFlow", "table4_bi", (1, 2, 16))]
    fig = nfe_grid(rows, (1, 2, 16), "t", diff=True)
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid) == 4 * 3  # every method: a sample row and a difference row
    diffs = {r: [np.abs(ax.get_images()[0].get_array()).max() for ax in grid[(2 * r + 1) * 3:
                                                                              (2 * r + 2) * 3]]
             for r in (0, 1)}
    assert diffs[1] == [0.0, 0.0, 0.0]  # self-consistent: the same sample at every NFE
    assert diffs[0][0] == 0.0 and 0 < diffs[0][1] < diffs[0][2]  # drift grows with NFE
    assert any("difference to NFE 1" in t for t in _texts(fig))


def test_prompt_grid_labels_every_column_with_its_prompt():
    prompts = [f"a handwritten digit {i} in ink" for i in range(5)]
    s = Samples.from_tensors("t2i", [("2-rf", 25, _images()), ("scflow", 1, _images())], 5,
                             prompts=prompts)
    fig = prompt_grid(s, "T2I")
    texts = [t.replace("\n", " ") for t in _texts(fig)]
    assert all(p in texts for p in prompts)
    assert "2-rf NFE 25" in texts and "scflow NFE 1" in texts
    assert min(t.get_fontsize() for t in fig.findobj(matplotlib.text.Text)
               if t.get_text()) >= FONT - 1 >= 9


def test_report_draws_sample_figures_from_files_and_tolerates_missing(tmp_path):
    s = Samples.from_tensors("table4_bi", [("scflow", k, _images()) for k in (1, 2, 4)], 4)
    atomic_write_bytes(samples_path(tmp_path, "table4_bi"), s.to_bytes())
    fig = report_figures.sample_figure(tmp_path, report_figures.PAPER_FIGURES["fig6"])
    texts = _texts(fig)
    assert {"missing: table4_cd", "missing: table4_gan", "missing: table4_rf"} <= set(texts)
    assert "missing: table4_bi" not in texts
    out = dict((rel, cap) for cap, rel in report_figures.make_report_figures(tmp_path))
    for name in ("fig1", "fig5", "fig6"):
        assert (tmp_path / f"figures/report_{name}.png").exists()
    assert "figures/report_t2i_samples.png" not in out  # notebook 08 has not run
    t2i = Samples.from_tensors("t2i", [("scflow", 1, _images())], 3, prompts=["a", "b", "c"])
    atomic_write_bytes(samples_path(tmp_path, "t2i"), t2i.to_bytes())
    out = dict((rel, cap) for cap, rel in report_figures.make_report_figures(tmp_path))
    assert out["figures/report_t2i_samples.png"].startswith("Table 1")  # placed under Table 1
