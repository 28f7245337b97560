"""Feature extractors for FID and precision/recall: one interface, two backends.

- ``digits``: the penultimate layer (64-d) of a small CNN trained here on scikit-learn's digits
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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scflow.cache import cache_root, cached
from scflow.data import load_digits_images
from scflow.pretrained import WeightsUnavailableError  # the project's one "weights missing" error

BACKENDS = ("digits", "inception")

# --- digits classifier ---------------------------------------------------------------------------

CLASSIFIER_RESOLUTION = 32
DEFAULT_CLASSIFIER_STEPS = 1500


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines the trained digits classifier (its cache key: :meth:`key`)."""

    arch: str = "DigitsCNN-v2"
    resolution: int = CLASSIFIER_RESOLUTION
    steps: int = DEFAULT_CLASSIFIER_STEPS
    batch: int = 64
    lr: float = 2e-3
    max_shift: int = 2  # random translation augmentation, pixels
    holdout_fraction: float = 0.2
    seed: int = 0

    def key(self) -> dict[str, Any]:
        """The cache key (the shipped classifier's: the fields by name)."""
        return asdict(self)


def default_classifier_config(steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0) -> ClassifierConfig:
    """The classifier trained for ``steps`` updates from ``seed`` (every other field fixed)."""
    return ClassifierConfig(steps=int(steps), seed=int(seed))


class DigitsCNN(nn.Module):
    """Input (N, 1, 32, 32) in [-1, 1] -> 2x average pool -> three conv blocks -> 64-d -> 10.

    The average pool (the digits are 8 x 8 scans upsampled) makes it ~3x cheaper to train.
    """

    feature_dim = 64

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AvgPool2d(2),                                              # 16 x 16
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8 x 8
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4 x 4
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 2 x 2
            nn.Flatten(),
            nn.Linear(64 * 2 * 2, self.feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer activations (N, 64)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, 10)."""
        return self.head(self.body(x))


def _split(n: int, holdout_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded train / held-out index split of ``n`` examples."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(n * holdout_fraction))
    return perm[n_test:], perm[:n_test]


def _random_shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels (background -1 fills the border)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0).permute(0, 2, 3, 1)  # (N, H+2s, W+2s, C)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (N, 1, W)
    return padded[torch.arange(n)[:, None, None], rows, cols].permute(0, 3, 1, 2).contiguous()


def train_digits_classifier(config: ClassifierConfig, out_dir: Path) -> None:
    """Train :class:`DigitsCNN` deterministically; write ``classifier.pt`` and ``report.json``.

    Adam on cross-entropy for ``config.steps`` steps, batches drawn with a seeded generator
    from the training split; the report holds the held-out accuracy and the training time.
    """
    if config.steps < 1:
        raise ValueError(f"classifier steps must be >= 1, got {config.steps}")
    t0, cpu0 = time.perf_counter(), time.process_time()
    data = load_digits_images(config.resolution)
    train_idx, test_idx = _split(len(data), config.holdout_fraction, config.seed)
    x_train, y_train = data.images[train_idx], data.labels[train_idx]
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(config.seed)
        net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
    gen = torch.Generator().manual_seed(config.seed + 1)
    net.train()
    for _ in range(config.steps):
        idx = torch.randint(0, len(x_train), (config.batch,), generator=gen)
        xb = _random_shift(x_train[idx], config.max_shift, gen)
        loss = F.cross_entropy(net(xb), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        pred = net(data.images[test_idx]).argmax(1)
    report = {
        "heldout_accuracy": float((pred == data.labels[test_idx]).float().mean()),
        "n_train": len(train_idx),
        "n_heldout": len(test_idx),
        "final_train_loss": float(loss.detach()),
        "train_seconds": round(time.perf_counter() - t0, 2),
        "train_cpu_seconds": round(time.process_time() - cpu0, 2),
        "torch_threads": torch.get_num_threads(),
    }
    torch.save(net.state_dict(), out_dir / "classifier.pt")
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))


def prepare_digit_images(images: Tensor, resolution: int = CLASSIFIER_RESOLUTION) -> Tensor:
    """Any (N, C, H, W) in [-1, 1] -> (N, 1, resolution, resolution), RGB averaged, clipped."""
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
    x = images.float().clamp(-1, 1)
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                          align_corners=False, antialias=x.shape[-1] > resolution)
    return x


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
                 steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0) -> None:
        super().__init__(device, batch_size)
        cfg = default_classifier_config(steps, seed)
        path, self.cache_hit = cached("digits_classifier", cfg.key(),
                                      lambda d: train_digits_classifier(cfg, d))
        self.config = {"backend": self.name, "classifier": cfg.key()}
        self.report: dict[str, Any] = json.loads((path / "report.json").read_text())
        self.net = DigitsCNN()
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
