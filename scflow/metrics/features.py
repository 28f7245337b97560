"""Feature extractors for FID and precision/recall: one interface, two backends.

- ``digits``: the penultimate layer (64-d) of a small CNN trained here on the preset's digits
  labels. It stands in for Inception in the CPU miniature, where no weights can be downloaded;
  numbers are therefore comparable between our runs but NOT with the paper's Inception FIDs.
- ``inception``: clean-fid's Inception-V3 pool3 features (2048-d), "clean" mode (Parmar et al.
  2022), the backend of the paper's FIDs. Its weights are never downloaded at run time: a
  missing file raises :class:`WeightsUnavailableError` that says what to fetch and where.

Every extractor maps images in [-1, 1], shape (N, C, H, W), to a float64 numpy array (N, D),
in batches and without gradients.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scflow.cache import cache_root, cached
from scflow.metrics.classifier import (  # noqa: F401 - train_digits_classifier: patched in tests
    DEFAULT_CLASSIFIER_STEPS,
    DigitsCNN,
    classifier_net,
    default_classifier_config,
    prepare_digit_images,
    train_digits_classifier,
)
from scflow.pretrained import WeightsUnavailableError  # the project's one "weights missing" error

BACKENDS = ("digits", "inception")

class FeatureExtractor:
    """Base interface: ``extractor(images) -> (N, D) float64 numpy``; ``name`` and ``config``.

    ``config`` identifies the weights (it keys cached reference statistics).
    """

    name: str = "base"
    dim: int = 0

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 256) -> None:
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.config: dict[str, Any] = {"backend": self.name}

    def _batch(self, images: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, images: Tensor) -> np.ndarray:
        """Features of ``images`` (N, C, H, W) in [-1, 1], computed in batches."""
        out = [self._batch(images[i:i + self.batch_size]).double().cpu()
               for i in range(0, images.shape[0], self.batch_size)]
        if not out:
            return np.zeros((0, self.dim))
        return torch.cat(out).numpy()


class DigitsFeatures(FeatureExtractor):
    """Penultimate features (64-d) and class predictions of the cached digits classifier."""

    name = "digits"
    dim = DigitsCNN.feature_dim

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 256,
                 steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0,
                 dataset: str = "digits") -> None:
        super().__init__(device, batch_size)
        cfg = default_classifier_config(steps, seed, dataset)
        path, self.cache_hit = cached("digits_classifier", cfg.key(),
                                      lambda d: train_digits_classifier(cfg, d))
        self.config = {"backend": self.name, "classifier": cfg.key()}
        self.report: dict[str, Any] = json.loads((path / "report.json").read_text())
        self.net = classifier_net(cfg)
        self.net.load_state_dict(torch.load(path / "classifier.pt", map_location="cpu",
                                            weights_only=True))
        self.net.to(self.device).eval()

    def _batch(self, images: Tensor) -> Tensor:
        return self.net.features(prepare_digit_images(images).to(self.device))

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        """Class logits (N, 10) on the CPU."""
        return torch.cat([self.net(prepare_digit_images(images[i:i + self.batch_size])
                                   .to(self.device)).cpu()
                          for i in range(0, images.shape[0], self.batch_size)])

    def classify(self, images: Tensor) -> Tensor:
        """Predicted digit labels (N,) (used by the class/prompt accuracy metric)."""
        return self.logits(images).argmax(dim=1)


# --- Inception (clean-fid) -----------------------------------------------------------------------

INCEPTION_FILENAME = "inception-2015-12-05.pt"  # cleanfid/inception_torchscript.py
INCEPTION_URL = ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
                 + INCEPTION_FILENAME)  # cleanfid/downloads_helper.py: inception_url
INCEPTION_ENV = "SCFLOW_INCEPTION_WEIGHTS"


def cleanfid_weights_dir() -> Path:
    """The folder clean-fid's ``feature_extractor`` loads (or would download) the weights into."""
    return Path("./" if platform.system() == "Windows" else "/tmp")


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """Locate clean-fid's Inception torchscript file without downloading anything.

    Looks at ``path`` (a file or a folder holding it), ``$SCFLOW_INCEPTION_WEIGHTS``, clean-fid's
    own folder and ``<cache>/inception/``; raises :class:`WeightsUnavailableError` otherwise.
    """
    candidates: list[Path] = []
    for given in (path, os.environ.get(INCEPTION_ENV)):
        if given:
            p = Path(given).expanduser()
            candidates.append(p / INCEPTION_FILENAME if p.is_dir() else p)
    candidates += [cleanfid_weights_dir() / INCEPTION_FILENAME,
                   cache_root() / "inception" / INCEPTION_FILENAME]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    looked = "\n  ".join(str(c) for c in candidates)
    raise WeightsUnavailableError(
        f"Inception weights for FID ({INCEPTION_FILENAME}) are not on this machine and are never "
        f"downloaded at run time.\nDownload {INCEPTION_URL}\nand put it at "
        f"{cleanfid_weights_dir() / INCEPTION_FILENAME} (where clean-fid looks), or anywhere and "
        f"set ${INCEPTION_ENV} to its path.\nLooked at:\n  {looked}\n"
        "Offline, use the 'digits' feature backend instead.")


class InceptionFeatures(FeatureExtractor):
    """clean-fid Inception-V3 pool3 features (2048-d), "clean" preprocessing.

    Images -> uint8 [0, 255] (grey repeated to RGB) -> PIL bicubic resize to 299 x 299 on float
    values, exactly clean-fid's ``build_resizer('clean')`` -> Inception torchscript. This is
    ``cleanfid.features.build_feature_extractor('clean')`` minus its two side effects: the
    download attempt and the hard-wired folder (``/tmp``); no DataParallel wrapper.
    """

    name = "inception"
    dim = 2048

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 64,
                 weights: str | os.PathLike | None = None) -> None:
        super().__init__(device, batch_size)
        file = find_inception_weights(weights)  # raises before clean-fid could try a download
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import build_resizer

        if file.name == INCEPTION_FILENAME:
            folder = file.parent
        else:  # clean-fid only loads <folder>/inception-2015-12-05.pt: link the file there
            folder = cache_root() / "inception"
            folder.mkdir(parents=True, exist_ok=True)
            link = folder / INCEPTION_FILENAME
            if link.is_symlink() or link.exists():
                if link.resolve() != file:
                    link.unlink()
            if not link.exists():
                link.symlink_to(file)
        # download=False: clean-fid's own loader, minus its network fallback
        self.model = InceptionV3W(str(folder), download=False, resize_inside=False)
        self.model.to(self.device).eval()
        self.resize = build_resizer("clean")
        self.config = {"backend": self.name, "mode": "clean", "weights": INCEPTION_FILENAME}

    def _batch(self, images: Tensor) -> Tensor:
        from scflow.data import to_uint8

        x = to_uint8(images)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        hwc = x.permute(0, 2, 3, 1).numpy()
        resized = np.stack([self.resize(im) for im in hwc]).transpose(0, 3, 1, 2)
        return self.model(torch.from_numpy(resized).to(self.device))


def get_feature_extractor(backend: str, device: str | torch.device = "cpu",
                          **kw: Any) -> FeatureExtractor:
    """``'digits'`` -> :class:`DigitsFeatures`, ``'inception'`` -> :class:`InceptionFeatures`.

    Extra keywords go to the class (``steps``/``seed`` for digits, ``weights`` for inception,
    ``batch_size`` for both).
    """
    if backend == "digits":
        return DigitsFeatures(device, **kw)
    if backend == "inception":
        return InceptionFeatures(device, **kw)
    raise ValueError(f"unknown feature backend {backend!r}; choose one of {BACKENDS}")
