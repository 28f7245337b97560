"""Image data: the embedded digits miniature and any folder of images (CelebA-HQ or your own).

Images are float tensors (N, C, H, W) in [-1, 1], the range the autoencoders expect. Which
images a run trains on is a :class:`DataConfig`; :func:`load_images` reads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scflow.checks import choice, integer, text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DATASETS = ("digits", "folder")


@dataclass(frozen=True)
class DataConfig:
    """The training images: the embedded digits or a folder of images; validated on construction."""

    dataset: str = "digits"  # "digits" (scikit-learn's, embedded) | "folder" (images under data_dir)
    data_dir: str = ""  # the folder of a "folder" dataset (e.g. CelebA-HQ 256)
    limit: int = 0  # use at most this many images (0: all)
    resolution: int = 32  # image side in pixels

    def __post_init__(self) -> None:
        choice("dataset", self.dataset, DATASETS)
        text("data_dir", self.data_dir)
        integer("data_limit", self.limit, ge=0)
        integer("resolution", self.resolution, ge=8)
        if self.dataset == "folder" and not self.data_dir:
            raise ValueError("dataset='folder' needs data_dir (a folder of images, e.g. CelebA-HQ)")


@dataclass
class ImageSet:
    """Images in [-1, 1] with optional integer labels and their source."""

    images: Tensor
    labels: Tensor | None
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]


def load_digits_images(resolution: int = 32) -> ImageSet:
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 scans, labels 0-9).

    Upsampled bilinearly to ``resolution`` and mapped from [0, 16] to [-1, 1]; one channel.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N,1,8,8) in [0,1]
    if resolution != 8:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 2 - 1).contiguous()
    return ImageSet(x, torch.tensor(d.target, dtype=torch.long), "sklearn.datasets.load_digits")


def image_files(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The image files :func:`load_image_folder` reads (recursive, sorted, at most ``limit``).

    Raises ``FileNotFoundError`` naming the folder when it is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files[:limit] if limit is not None else files


def folder_fingerprint(folder: str | Path, limit: int | None = None) -> str:
    """Hash of the names, sizes and modification times of the images a folder dataset reads.

    Part of the cache keys of everything trained on the folder, so replacing, adding or
    editing images (under the same path) retrains the autoencoder, latents and teacher.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    for f in image_files(folder, limit):
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def data_cache_key(cfg: DataConfig) -> dict[str, Any]:
    """What cache keys add for the data's content: nothing for the embedded digits (fixed by
    the installed scikit-learn, and their keys must stay those of the shipped artefacts), the
    :func:`folder_fingerprint` for a folder."""
    if cfg.dataset != "folder":
        return {}
    return {"data_content": folder_fingerprint(cfg.data_dir, cfg.limit or None)}


def load_images(cfg: DataConfig) -> ImageSet:
    """The training images of ``cfg``: the embedded digits or a folder, at most ``cfg.limit``."""
    if cfg.dataset == "digits":
        data = load_digits_images(cfg.resolution)
    else:
        data = load_image_folder(cfg.data_dir, cfg.resolution, limit=cfg.limit or None)
    if cfg.limit and len(data) > cfg.limit:
        labels = None if data.labels is None else data.labels[: cfg.limit]
        data = ImageSet(data.images[: cfg.limit], labels, data.source)
    return data


def load_image_folder(folder: str | Path, resolution: int, limit: int | None = None) -> ImageSet:
    """Every image under ``folder`` (recursively, sorted), resized (short side) and centre-cropped.

    Raises with the folder or file name when the folder is missing, empty or holds an image
    that cannot be read.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = image_files(folder, limit)
    out = np.empty((len(files), 3, resolution, resolution), dtype=np.float32)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                s = resolution / min(w, h)
                im = im.resize((max(resolution, round(w * s)), max(resolution, round(h * s))),
                               Image.BICUBIC)
                w, h = im.size
                left, top = (w - resolution) // 2, (h - resolution) // 2
                im = im.crop((left, top, left + resolution, top + resolution))
                out[i] = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"cannot read image {path}: {e}") from e
    return ImageSet(torch.from_numpy(out), None, str(folder))


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8 in [0, 255] (clipped), the form FID code and PNGs expect."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
