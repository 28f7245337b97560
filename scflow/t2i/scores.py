"""Text alignment: prompt accuracy (the miniature's stand-in) and CLIP score (the real scale).

- ``prompt_accuracy``: share of samples the digits classifier assigns to the prompted digit.
  open_clip weights cannot be downloaded here, and a CLIP model knows nothing about 32-pixel
  digit scans anyway, so the miniature reports this under its OWN metric name, never as
  ``clip_score``.
- ``clip_score``: mean cosine similarity x 100 of open_clip image and text embeddings
  (torchmetrics' definition without the clamp). The paper reports the plain cosine (0.31 ~ 31
  here) and does not name its CLIP model; the model and pretrained tag are parameters
  (default ``ViT-B-32`` / ``laion2b_s34b_b79k``; say which one the report uses). Weights are
  never downloaded at run time: :func:`resolve_open_clip_weights` fails in seconds with the
  command that fetches them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from scflow.pretrained import WeightsUnavailableError

DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def prompt_accuracy(images: Tensor, digits: Sequence[int] | Tensor, classifier: Any) -> float:
    """Share of ``images`` that ``classifier.classify`` labels as the prompted ``digits``."""
    digits = torch.as_tensor(list(digits) if not isinstance(digits, Tensor) else digits)
    if images.shape[0] != digits.shape[0] or images.shape[0] == 0:
        raise ValueError(f"need one prompted digit per image (got {images.shape[0]} images, "
                         f"{digits.shape[0]} digits)")
    pred = classifier.classify(images).cpu()
    return float((pred == digits.cpu()).float().mean())


def resolve_open_clip_weights(model: str = DEFAULT_CLIP_MODEL,
                              pretrained: str = DEFAULT_CLIP_PRETRAINED) -> str:
    """Local file of open_clip ``model`` / ``pretrained`` weights, without any download.

    ``pretrained`` may be a file path (used as is) or an open_clip tag, looked up in the local
    Hugging Face cache only. Raises :class:`WeightsUnavailableError` naming what to download.
    """
    if Path(pretrained).expanduser().is_file():
        return str(Path(pretrained).expanduser())
    import open_clip
    from huggingface_hub import hf_hub_download

    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        raise ValueError(f"open_clip has no weights {model!r} / {pretrained!r}; see "
                         "open_clip.list_pretrained() for valid (model, tag) pairs")
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, name = os.path.split(hub)  # "org/model/" (default file names) or "org/model/file"
        names = (name,) if name else OPEN_CLIP_FILES
        for fname in names:
            try:
                return hf_hub_download(repo, fname, local_files_only=True)
            except Exception:  # noqa: BLE001 - any miss means "not cached"
                continue
        how = (f"    hf download {repo} {names[-1]} --local-dir weights/{repo.replace('/', '--')}"
               f"\nthen pass clip_pretrained=weights/{repo.replace('/', '--')}/{names[-1]}")
    else:
        how = f"    download {cfg.get('url')}\nthen pass its path as clip_pretrained"
    raise WeightsUnavailableError(
        f"open_clip weights {model} / {pretrained} are not on this machine (never downloaded at "
        f"run time). On a machine with network:\n{how}\n(or fill the HF cache). Offline, the "
        "miniature reports prompt_accuracy instead of clip_score.")


class ClipScorer:
    """open_clip image/text towers; :meth:`__call__` gives the mean CLIP score x 100."""

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, pretrained: str = DEFAULT_CLIP_PRETRAINED,
                 device: str | torch.device = "cpu") -> None:
        weights = resolve_open_clip_weights(model, pretrained)  # fails fast, before any load
        import open_clip

        self.model = open_clip.create_model(model, pretrained=weights, device=device).eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        pp = self.model.visual.preprocess_cfg
        self.size = pp["size"] if isinstance(pp["size"], int) else pp["size"][0]
        self.mean = torch.tensor(pp["mean"]).reshape(1, 3, 1, 1)
        self.std = torch.tensor(pp["std"]).reshape(1, 3, 1, 1)
        self.device = torch.device(device)
        self.name = f"{model}/{pretrained}"

    @torch.no_grad()
    def __call__(self, images: Tensor, prompts: Sequence[str], batch_size: int = 64) -> float:
        """Mean over pairs of 100 * cos(image embedding, text embedding); images in [-1, 1]."""
        if images.shape[0] != len(prompts) or not prompts:
            raise ValueError("need one prompt per image")
        sims = []
        for i in range(0, len(prompts), batch_size):
            x = (images[i:i + batch_size].float().clamp(-1, 1) + 1) / 2
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
            x = ((x - self.mean) / self.std).to(self.device)
            img = F.normalize(self.model.encode_image(x).float(), dim=-1)
            txt = self.tokenizer(list(prompts[i:i + batch_size])).to(self.device)
            txt = F.normalize(self.model.encode_text(txt).float(), dim=-1)
            sims.append((img * txt).sum(-1).cpu())
        return float(100 * torch.cat(sims).mean())
