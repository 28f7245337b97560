"""Image data: the embedded digits miniature and any folder of images (CelebA-HQ or your own).

Images are float tensors (N, C, H, W) in [-1, 1], the range the autoencoders expect. Which
images a run trains on is a :class:`DataConfig`; :func:`load_images` reads them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scflow.checks import choice, integer, text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DATASETS = ("mnist", "digits", "folder")


@dataclass(frozen=True)
class DataConfig:
    """The training images: the shipped MNIST digits, scikit-learn's digits or a folder of images;
    validated on construction."""

    dataset: str = "digits"  # "mnist" (shipped) | "digits" (scikit-learn's) | "folder" (data_dir)
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


def load_mnist_images(resolution: int = 32) -> ImageSet:
    """The shipped MNIST digits (:mod:`scflow.mnist`) as an :class:`ImageSet` in [-1, 1], labels 0-9.

    28 x 28 is padded with background to 32 x 32 (no resampling: the real resolution is kept);
    other resolutions resample that 32 x 32 image bilinearly.
    """
    from scflow.mnist import SOURCE, load_mnist_arrays

    images, labels = load_mnist_arrays()
    x = torch.from_numpy(images).float().div_(255).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    x = F.pad(x, (2, 2, 2, 2))  # 32 x 32, the background (0) is the data's own
    if resolution != 32:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=resolution < 32)
    x = (x.clamp(0, 1) * 2 - 1).contiguous()
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)), SOURCE)


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


DIGESTS_FILE = "data-digests.json"
"""File in the cache folder remembering each data file's sha256 with its size, mtime and inode."""


def array_fingerprint(*arrays: np.ndarray) -> str:
    """Hash of arrays' dtypes, shapes and bytes: the content fingerprint a loader supplies for
    the raw data it reads (before any resizing, whose floats may differ across machines)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def digits_fingerprint() -> str:
    """Content fingerprint of scikit-learn's digits (integer pixels 0-16 and labels)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return array_fingerprint(d.images.astype(np.uint8), d.target.astype(np.int64))


def mnist_fingerprint() -> str:
    """Content fingerprint of the shipped MNIST digits (their arrays' sha256, checked on load)."""
    from scflow.mnist import CONTENT_SHA256

    return CONTENT_SHA256


def _digest_cache() -> tuple[Path, dict[str, list]]:
    from scflow.cache import cache_root

    path = cache_root() / DIGESTS_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}  # missing or damaged: every file is hashed again
    return path, known if isinstance(known, dict) else {}


def file_digests(files: Sequence[Path], verify: bool = False) -> tuple[list[str], list[Path]]:
    """The sha256 of each file's bytes, and the files whose content changed unnoticed.

    A file whose (size, mtime, inode) equal the remembered ones keeps its remembered digest
    (hashing 30k images on every plan would cost minutes); ``verify=True`` rehashes every
    file and returns, second, those whose bytes changed while size, mtime and inode did not.
    """
    from scflow.cache import atomic_write_bytes, sha256_file

    cache_file, known = _digest_cache()
    digests, unnoticed, changed = [], [], False
    for f in files:
        st = f.stat()
        key, sig = str(f.resolve()), [st.st_size, st.st_mtime_ns, st.st_ino]
        entry = known.get(key)
        if entry and entry[:3] == sig and not verify:
            digests.append(entry[3])
            continue
        digest = sha256_file(f)
        if entry and entry[:3] == sig and entry[3] != digest:
            unnoticed.append(f)
        if entry != [*sig, digest]:
            known[key], changed = [*sig, digest], True
        digests.append(digest)
    if changed:
        with contextlib.suppress(OSError):  # a read-only cache only costs the hashing again
            atomic_write_bytes(cache_file, json.dumps(known).encode())
    return digests, unnoticed


def folder_fingerprint(folder: str | Path, limit: int | None = None,
                       verify: bool = False) -> str:
    """Hash of the names and contents (sha256) of the images a folder dataset reads.

    Part of the cache keys of everything trained on the folder and of the runs' configuration
    hashes, so replacing, adding or editing images (under the same path) retrains the
    autoencoder, latents and teacher. Contents come from :func:`file_digests`.
    """
    folder = Path(folder)
    files = image_files(folder, limit)
    digests, _ = file_digests(files, verify)
    h = hashlib.sha256()
    for f, digest in zip(files, digests, strict=True):
        h.update(f"{f.relative_to(folder).as_posix()}\0{digest}\n".encode())
    return h.hexdigest()[:16]


def verify_folder(folder: str | Path, limit: int | None = None) -> list[Path]:
    """Rehash every image of a folder dataset; the files whose content changed although their
    size, mtime and inode did not (their remembered digests are corrected)."""
    return file_digests(image_files(folder, limit), verify=True)[1]


DATA_FINGERPRINTS: dict[str, Callable[[str, int], str]] = {
    "digits": lambda data_dir, limit: digits_fingerprint(),
    "mnist": lambda data_dir, limit: mnist_fingerprint(),
    "folder": lambda data_dir, limit: folder_fingerprint(data_dir, limit or None),
}
"""``dataset`` -> ``(data_dir, limit) ->`` the content fingerprint of what its loader reads;
a new dataset adds one."""


def data_fingerprint(dataset: str, data_dir: str = "", limit: int = 0) -> str:
    """Content fingerprint of the training data a run selects; ``"missing"`` for a folder that
    is not there (nothing can run on it, and the pre-flight check says so)."""
    try:
        return DATA_FINGERPRINTS[dataset](data_dir, limit)
    except FileNotFoundError:
        return "missing"


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
    elif cfg.dataset == "mnist":
        data = load_mnist_images(cfg.resolution)
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
