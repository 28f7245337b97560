"""Tests of scflow.metrics: FID, improved precision/recall, consistency, saturation, backends."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from scflow.metrics import METRIC_DOCS, evaluate_samples
from scflow.metrics import features as feat_mod
from scflow.metrics.features import WeightsUnavailableError, get_feature_extractor
from scflow.metrics.fid import (
    compute_fid,
    digits_reference_stats,
    feature_stats,
    fid_from_features,
)
from scflow.metrics.image_stats import clip_fraction, consistency, saturation_stats
from scflow.metrics.prdc import knn_radii, precision_recall

torch.set_num_threads(2)
TINY_STEPS = 10  # classifier steps in tests: seconds, not a useful classifier


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def digits_extractor(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SCFLOW_CACHE", str(tmp_path_factory.mktemp("cache")))
    ex = get_feature_extractor("digits", steps=TINY_STEPS)
    mp.undo()
    return ex


# --- FID ---------------------------------------------------------------------------------------

def test_fid_zero_for_identical_and_monotone_in_mean_shift():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 8))
    assert abs(fid_from_features(f, f)) < 1e-6
    fids = [fid_from_features(f, f + s) for s in (0.5, 1.0, 2.0)]
    # a pure mean shift by s in every one of 8 dims adds exactly 8 s^2
    np.testing.assert_allclose(fids, [8 * 0.25, 8 * 1.0, 8 * 4.0], rtol=1e-6, atol=1e-6)
    assert fids[0] < fids[1] < fids[2]


def test_feature_stats_shapes_and_values():
    f = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    mu, sigma = feature_stats(f)
    np.testing.assert_allclose(mu, [2.0, 3.0])
    np.testing.assert_allclose(sigma, [[4.0, 4.0], [4.0, 4.0]])
    with pytest.raises(ValueError):
        feature_stats(f[:1])


def test_digits_fid_real_vs_real_and_vs_noise(digits_extractor, tmp_path, monkeypatch):
    from scflow.data import load_digits_images

    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path))
    real = load_digits_images(16).images  # any resolution is accepted (resized to 32)
    ref = digits_reference_stats(digits_extractor, resolution=16)
    assert abs(compute_fid(real, ref, digits_extractor)) < 1e-6
    assert next(tmp_path.glob("fid_ref_stats-*/stats.npz")).exists()  # cached for later runs
    noise = torch.rand(200, 1, 16, 16) * 2 - 1
    fid_noise = compute_fid(noise, ref, digits_extractor)
    fid_half = compute_fid(real[:400], real[400:800], digits_extractor)
    assert fid_noise > 10 * max(fid_half, 1e-3)


# --- precision / recall -------------------------------------------------------------------------

def test_precision_recall_identical_sets_is_one():
    f = torch.randn(200, 5, generator=torch.Generator().manual_seed(0))
    assert precision_recall(f, f.clone()) == {"precision": 1.0, "recall": 1.0}


def test_precision_drops_when_fakes_move_away():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(300, 4, generator=g)
    fake = torch.randn(300, 4, generator=g)
    near = precision_recall(real, fake)
    far = precision_recall(real, fake + 10.0)
    assert near["precision"] > 0.8 and near["recall"] > 0.8
    assert far["precision"] == 0.0 and far["recall"] == 0.0


def test_precision_recall_hand_computed_1d():
    # real = {0, 1, 2, 3, 10}, k = 1: radii 1, 1, 1, 1, 7 (10's nearest is 3)
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    # fake = {0.5, 2.5, 5, 20}, k = 1: radii 2 (to 2.5), 2 (to 0.5), 2.5 (to 2.5), 15 (to 5)
    fake = np.array([[0.5], [2.5], [5.0], [20.0]])
    np.testing.assert_allclose(knn_radii(torch.tensor(real), k=1).numpy(), [1, 1, 1, 1, 7])
    np.testing.assert_allclose(knn_radii(torch.tensor(fake), k=1).numpy(), [2, 2, 2.5, 15])
    # precision: 0.5 (ball of 0), 2.5 (ball of 2), 5 (ball [3, 17] of 10) in; 20 out -> 3/4
    # recall: 0..3 lie within 0.5 of the fakes 0.5 / 2.5; 10 in ball [5, 35] of 20 -> 5/5
    pr = precision_recall(real, fake, k=1)
    assert pr == {"precision": 0.75, "recall": 1.0}
    # k = 2: real radii 2, 1, 1, 2, 8; fake radii 4.5, 2.5, 4.5, 17.5
    # precision: 0.5, 2.5, 5 (|5 - 10| = 5 <= 8) in; 20 (10 from 10 > 8) out -> 3/4
    # recall: 0..3 as before; 10 in ball [2.5, 37.5] of 20 -> 5/5
    assert precision_recall(real, fake, k=2) == {"precision": 0.75, "recall": 1.0}
    # drop the far fake: fake radii (k=1) 2, 2, 2.5 -> 10 is 5 from 5 > 2.5: recall 4/5
    assert precision_recall(real, fake[:3], k=1) == {"precision": 1.0, "recall": 0.8}
    # a ball includes its boundary: 17 is exactly 7 (= radius) from 10, 17.5 is outside
    edge = precision_recall(real, np.array([[17.0], [17.5]]), k=1)
    assert edge == {"precision": 0.5, "recall": 0.0}


def test_precision_recall_chunking_matches_single_chunk():
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(257, 3, generator=g), torch.randn(131, 3, generator=g) * 1.5
    assert precision_recall(real, fake, chunk=16) == precision_recall(real, fake, chunk=4096)


# --- consistency and saturation ------------------------------------------------------------------

def test_consistency_zero_and_hand_rmse(digits_extractor):
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    same = consistency(x, x.clone(), digits_extractor)
    assert same == {"consistency_rmse": 0.0, "consistency_feat": 0.0}
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]).reshape(2, 1, 2, 2)
    # mean squared difference = (4 * 0.25 + 4 * 1) / 8 = 0.625
    assert consistency(a, b)["consistency_rmse"] == pytest.approx(math.sqrt(0.625))
    assert "consistency_feat" not in consistency(a, b)
    assert consistency(x, -x, digits_extractor)["consistency_feat"] > 0


def test_std_ratio_equals_scale():
    real = torch.randn(10, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.3
    for scale in (0.5, 1.0, 2.5):
        assert saturation_stats(real * scale, real)["std_ratio"] == pytest.approx(scale)


def test_clip_fraction_hand_built():
    x = torch.tensor([-1.2, -0.98, -0.5, 0.0, 0.5, 0.97, 0.99, 3.0]).reshape(1, 2, 2, 2)
    assert clip_fraction(x) == pytest.approx(4 / 8)  # -1.2, -0.98, 0.99, 3.0
    grey = saturation_stats(x, torch.zeros(1, 2, 2, 2))
    assert grey["clip_fraction"] == 0.5 and grey["clip_fraction_real"] == 0.0
    assert "colour_saturation_ratio" not in grey


def test_colour_saturation_ratio_rgb():
    real = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1).repeat(1, 1, 2, 2)  # rgb (1, .5, .5)
    # HSV saturation of real: (1 - 0.5) / 1 = 0.5; grey images have saturation 0
    assert saturation_stats(real, real)["colour_saturation_ratio"] == pytest.approx(1.0)
    grey = torch.zeros(1, 3, 2, 2)
    assert saturation_stats(grey, real)["colour_saturation_ratio"] == pytest.approx(0.0)
    vivid = torch.tensor([1.0, -1.0, -1.0]).reshape(1, 3, 1, 1).repeat(1, 1, 2, 2)  # saturation 1
    assert saturation_stats(vivid, real)["colour_saturation_ratio"] == pytest.approx(2.0)


def test_evaluate_samples_keys_are_documented(digits_extractor):
    from scflow.data import load_digits_images

    real = load_digits_images(8).images[:120]
    out = evaluate_samples(real * 1.5, real, digits_extractor)
    assert set(out) <= set(METRIC_DOCS)
    assert {"fid", "precision", "recall", "std_ratio", "clip_fraction"} <= set(out)
    assert out["std_ratio"] == pytest.approx(1.5)
    colour = torch.cat([real, real * 0.5, -real.abs()], dim=1)  # channels differ: has colour
    rgb = evaluate_samples(colour, colour, digits_extractor)
    assert rgb["fid"] == pytest.approx(0.0, abs=1e-6) and rgb["precision"] == 1.0
    assert rgb["colour_saturation_ratio"] == pytest.approx(1.0)
    grey = evaluate_samples(real.repeat(1, 3, 1, 1), real.repeat(1, 3, 1, 1), digits_extractor)
    assert "colour_saturation_ratio" not in grey  # undefined for grey data (0 / 0)
    # given reference statistics are used for FID instead of the features of ``real``
    noise_stats = feature_stats(digits_extractor(torch.rand(120, 1, 8, 8) * 2 - 1))
    vs_noise = evaluate_samples(real, real, digits_extractor, ref_stats=noise_stats)
    assert vs_noise["fid"] > 1e-3 and vs_noise["precision"] == 1.0


# --- backends -----------------------------------------------------------------------------------

def test_digits_extractor_shapes_and_classify(digits_extractor):
    x = torch.rand(5, 3, 20, 20) * 2 - 1  # RGB, odd size: averaged and resized
    f = digits_extractor(x)
    assert f.shape == (5, 64) and f.dtype == np.float64
    labels = digits_extractor.classify(x)
    assert labels.shape == (5,) and labels.dtype == torch.long
    assert 0 <= int(labels.min()) and int(labels.max()) <= 9
    assert digits_extractor.name == "digits"


def test_classifier_cache_hit_and_miss(cache_dir, monkeypatch):
    calls = []
    real_train = feat_mod.train_digits_classifier

    def counting(config, out_dir):
        calls.append(config.steps)
        real_train(config, out_dir)

    monkeypatch.setattr(feat_mod, "train_digits_classifier", counting)
    first = get_feature_extractor("digits", steps=3)
    second = get_feature_extractor("digits", steps=3)
    assert calls == [3] and not first.cache_hit and second.cache_hit
    report = json.loads(next(cache_dir.glob("digits_classifier-*/report.json")).read_text())
    assert 0.0 <= report["heldout_accuracy"] <= 1.0
    x = torch.rand(4, 1, 32, 32)
    np.testing.assert_array_equal(first(x), second(x))  # same weights from the cache
    get_feature_extractor("digits", steps=4)  # changed config: a miss
    assert calls == [3, 4]


def test_inception_without_weights_raises_fast(tmp_path, monkeypatch):
    monkeypatch.delenv(feat_mod.INCEPTION_ENV, raising=False)
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(feat_mod, "cleanfid_weights_dir", lambda: tmp_path / "cleanfid")
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        get_feature_extractor("inception")
    assert time.perf_counter() - t0 < 5
    msg = str(err.value)
    assert feat_mod.INCEPTION_FILENAME in msg and feat_mod.INCEPTION_URL in msg
    assert str(tmp_path / "cleanfid") in msg and feat_mod.INCEPTION_ENV in msg


def test_inception_env_path_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(feat_mod, "cleanfid_weights_dir", lambda: tmp_path / "cleanfid")
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "weights" / "my-inception.pt"
    monkeypatch.setenv(feat_mod.INCEPTION_ENV, str(fake))
    with pytest.raises(WeightsUnavailableError):
        feat_mod.find_inception_weights()
    fake.parent.mkdir()
    fake.write_bytes(b"not really weights")
    assert feat_mod.find_inception_weights() == fake.resolve()


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown feature backend"):
        get_feature_extractor("vgg")


class _FakeInceptionLayers(torch.nn.Module):
    """Stands in for the Inception trunk: (N, 3, 299, 299) -> (N, 2048, 1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Conv2d(3, 2048, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.nn.functional.adaptive_avg_pool2d(x, 1))


class _FakeInception(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = _FakeInceptionLayers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_inception_backend_runs_clean_fid_path_with_local_weights(tmp_path, monkeypatch):
    # a tiny torchscript file with the interface clean-fid's InceptionV3W loads (no download)
    weights = tmp_path / "elsewhere.pt"
    torch.jit.save(torch.jit.script(_FakeInception()), str(weights))
    monkeypatch.setattr(feat_mod, "cleanfid_weights_dir", lambda: tmp_path / "cleanfid")
    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(feat_mod.INCEPTION_ENV, str(weights))
    ex = get_feature_extractor("inception", batch_size=2)
    grey = torch.linspace(-1, 1, 3 * 16 * 16).reshape(3, 1, 16, 16)
    f = ex(grey)
    assert f.shape == (3, 2048) and f.dtype == np.float64
    # grey is repeated to RGB, so it equals the features of the RGB image
    np.testing.assert_allclose(f, ex(grey.repeat(1, 3, 1, 1)), rtol=1e-6)
    # the trunk sees (uint8 - 128) / 128: a mid-grey image (0 -> 127.5 -> 128) gives the bias
    mid = ex(torch.zeros(1, 3, 8, 8))
    bias = ex.model.layers.proj.bias.detach().double().numpy()
    np.testing.assert_allclose(mid[0], bias, atol=1e-5)


def test_classifier_training_is_deterministic(tmp_path):
    cfg = feat_mod.default_classifier_config(steps=2, seed=7)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        feat_mod.train_digits_classifier(cfg, tmp_path / name)
    a, b = (torch.load(tmp_path / n / "classifier.pt", weights_only=True) for n in ("a", "b"))
    assert all(torch.equal(a[key], b[key]) for key in a)
    other = tmp_path / "c"
    other.mkdir()
    feat_mod.train_digits_classifier(feat_mod.default_classifier_config(steps=2, seed=8), other)
    c = torch.load(other / "classifier.pt", weights_only=True)
    assert not torch.equal(a["head.weight"], c["head.weight"])
