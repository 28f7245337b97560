"""What FID the instrument gives to real images: the floors below which no sampler can go.

FID of n samples against a reference is biased upwards by the finite n (and noisy): a perfect
generator does not score 0. Two floors bracket what a good sampler can reach on a preset's
features, with the evaluation's own n and reference:

- :func:`memoriser_fid`: ``n`` training images drawn from the reference itself, scored against
  the full reference statistics -- a sampler that reproduces training images.
- :func:`novel_fid`: ``n`` real images scored against the statistics of the *other* N - n
  images -- a sampler that makes new images exactly as good as real ones (its reference is
  smaller by n; with 10,000 references and n = 1,000 that is 9,000).

And one floor of the latent space itself, :func:`reconstruction_fid`: the autoencoder's
reconstructions ``D(E(x))`` of the memoriser's images, scored against the full reference -- no
sampler of latents decoded by that autoencoder can beat it by much.

Each is drawn ``draws`` times from its own seeded generator; the spread over draws is the FID's
evaluation noise at this n for real images.
"""

from __future__ import annotations

import numpy as np

from scflow.metrics.fid import feature_stats, fid_from_stats

FLOOR_SEED = 20_000


def _subsets(n_total: int, n: int, draws: int) -> list[np.ndarray]:
    if not 2 <= n < n_total:
        raise ValueError(f"floors need 2 <= n < N (n={n}, N={n_total} reference images)")
    rng = np.random.default_rng(FLOOR_SEED)
    return [rng.permutation(n_total)[:n] for _ in range(draws)]


def memoriser_fid(real_feats: np.ndarray, n: int, draws: int) -> list[float]:
    """FID of ``n`` reference images (a random subset per draw) against all of them."""
    ref = feature_stats(real_feats)
    return [fid_from_stats(feature_stats(real_feats[idx]), ref)
            for idx in _subsets(len(real_feats), n, draws)]


def novel_fid(real_feats: np.ndarray, n: int, draws: int) -> list[float]:
    """FID of ``n`` reference images against the statistics of the remaining ``N - n``."""
    out = []
    for idx in _subsets(len(real_feats), n, draws):
        rest = np.ones(len(real_feats), dtype=bool)
        rest[idx] = False
        out.append(fid_from_stats(feature_stats(real_feats[idx]),
                                  feature_stats(real_feats[rest])))
    return out


def reconstruction_fid(real_feats: np.ndarray, recon_feats: np.ndarray, n: int,
                       draws: int) -> list[float]:
    """FID of the reconstructions of the memoriser's ``n`` images (the same subsets, so the two
    pair up draw by draw) against the full reference; ``recon_feats[i]`` is the features of the
    reconstruction of image ``i``."""
    if recon_feats.shape != real_feats.shape:
        raise ValueError(f"one reconstruction per reference image: features {recon_feats.shape} "
                         f"vs {real_feats.shape}")
    ref = feature_stats(real_feats)
    return [fid_from_stats(feature_stats(recon_feats[idx]), ref)
            for idx in _subsets(len(real_feats), n, draws)]
