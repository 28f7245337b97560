"""The digits classifier whose penultimate layer is the miniature's FID feature space.

A small CNN trained here, deterministically, on the preset's labelled digits: scikit-learn's
8 x 8 scans upsampled to 32 px, or the shipped 28 x 28 MNIST digits padded to 32 px
(:func:`scflow.data.load_mnist_images`). Its 64 penultimate activations stand in for Inception's
pool3 features where no weights can be downloaded (:class:`scflow.metrics.features.DigitsFeatures`);
its held-out accuracy is kept beside its weights (``report.json``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scflow.data import load_digits_images

CLASSIFIER_RESOLUTION = 32
DEFAULT_CLASSIFIER_STEPS = 1500


CLASSIFIER_DATASETS = ("digits", "mnist")


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines the trained digits classifier (its cache key: :meth:`key`).

    ``dataset`` is the preset's digits: scikit-learn's 8 x 8 scans (arch ``DigitsCNN-v2``,
    which pools the upsampled scans 2x first) or the shipped 28 x 28 MNIST digits
    (``DigitsCNN-v3``, no first pool: the features see the real resolution).
    """

    arch: str = "DigitsCNN-v2"
    resolution: int = CLASSIFIER_RESOLUTION
    steps: int = DEFAULT_CLASSIFIER_STEPS
    batch: int = 64
    lr: float = 2e-3
    max_shift: int = 2  # random translation augmentation, pixels
    holdout_fraction: float = 0.2
    seed: int = 0
    dataset: str = "digits"

    def __post_init__(self) -> None:
        if self.dataset not in CLASSIFIER_DATASETS:
            raise ValueError(f"digits classifier: unknown dataset {self.dataset!r}; "
                             f"choose one of {CLASSIFIER_DATASETS}")

    def key(self) -> dict[str, Any]:
        """The cache key: the fields by name (without ``dataset`` for scikit-learn's digits,
        so that the shipped classifier's key stays what it was)."""
        key = asdict(self)
        if self.dataset == "digits":
            del key["dataset"]
        return key


def default_classifier_config(steps: int = DEFAULT_CLASSIFIER_STEPS, seed: int = 0,
                              dataset: str = "digits") -> ClassifierConfig:
    """The classifier of ``dataset`` trained for ``steps`` updates from ``seed`` (the rest fixed)."""
    return ClassifierConfig(arch="DigitsCNN-v2" if dataset == "digits" else "DigitsCNN-v3",
                            steps=int(steps), seed=int(seed), dataset=dataset)


class DigitsCNN(nn.Module):
    """Input (N, 1, 32, 32) in [-1, 1] -> [2x average pool] -> three conv blocks -> 64-d -> 10.

    ``first_pool`` (arch ``DigitsCNN-v2``): the 8 x 8 scans upsampled to 32 carry no detail a
    2x average pool removes, and it makes training ~3x cheaper. Without it (``DigitsCNN-v3``, for
    MNIST's real 28 x 28 strokes) the convolutions see every pixel.
    """

    feature_dim = 64

    def __init__(self, first_pool: bool = True) -> None:
        super().__init__()
        side = 2 if first_pool else 4  # spatial side after the three conv blocks
        self.body = nn.Sequential(
            nn.AvgPool2d(2) if first_pool else nn.Identity(),             # 16 | 32
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8 | 16
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4 | 8
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 2 | 4
            nn.Flatten(),
            nn.Linear(64 * side * side, self.feature_dim), nn.ReLU(),
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


def classifier_images(config: ClassifierConfig) -> Any:
    """The labelled images the classifier of ``config`` is trained and held out on."""
    if config.dataset == "mnist":
        from scflow.data import load_mnist_images

        return load_mnist_images(config.resolution)
    return load_digits_images(config.resolution)


def classifier_net(config: ClassifierConfig) -> DigitsCNN:
    """An untrained :class:`DigitsCNN` of ``config.arch``."""
    return DigitsCNN(first_pool=config.arch == "DigitsCNN-v2")


def train_digits_classifier(config: ClassifierConfig, out_dir: Path) -> None:
    """Train :class:`DigitsCNN` deterministically; write ``classifier.pt`` and ``report.json``.

    Adam on cross-entropy for ``config.steps`` steps, batches drawn with a seeded generator
    from the training split; the report holds the held-out accuracy and the training time.
    """
    if config.steps < 1:
        raise ValueError(f"classifier steps must be >= 1, got {config.steps}")
    t0, cpu0 = time.perf_counter(), time.process_time()
    data = classifier_images(config)
    train_idx, test_idx = _split(len(data), config.holdout_fraction, config.seed)
    x_train, y_train = data.images[train_idx], data.labels[train_idx]
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(config.seed)
        net = classifier_net(config)
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


