"""Text conditioning: CLIP captions -> embeddings ``(B, L, D)`` for ``UNet2DConditionModel``.

:class:`TextEncoder` wraps a ``transformers`` ``CLIPTokenizer`` + ``CLIPTextModel`` exactly as
SD 1.5 / InstaFlow use them (pad to the tokenizer's max length, 77; take the last hidden
state). The empty prompt ``""`` is the null condition of classifier-free guidance (Eq. 3).

:func:`tiny_clip_text_encoder` builds a small random-initialised ``CLIPTextModel`` with the REAL
CLIP tokenizer, offline (see :func:`offline_clip_tokenizer` for how).
"""

from __future__ import annotations

import gzip
import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

CLIP_VOCAB_SIZE = 49408
CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table (the BPE's 256 base symbols, in id order)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clip_vocab_from_open_clip() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's ``vocab`` (token -> id) and ``merges`` from the BPE file shipped in open_clip.

    ``open_clip/bpe_simple_vocab_16e6.txt.gz`` is OpenAI's merge list (the first line is a
    header). The vocabulary is defined by it: 256 byte symbols, the same with ``</w>``, one
    token per merge (the first 48,894 merges), then the two special tokens -- 49,408 ids,
    the layout of ``openai/clip-vit-large-patch14``'s ``vocab.json``.
    """
    spec = importlib.util.find_spec("open_clip")  # locate the package without importing it (slow)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("open_clip_torch is needed for the offline CLIP vocabulary")
    bpe = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not bpe.is_file():
        raise FileNotFoundError(f"open_clip's BPE file is missing ({bpe}); reinstall open_clip_torch")
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    n_merges = CLIP_VOCAB_SIZE - 2 * 256 - 2
    merges = [tuple(m.split()) for m in lines[1 : n_merges + 1]]
    base = list(_bytes_to_unicode().values())
    tokens = base + [b + "</w>" for b in base] + [a + b for a, b in merges]
    tokens += [CLIP_BOS, CLIP_EOS]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def offline_clip_tokenizer(model_max_length: int = 77) -> Any:
    """The real CLIP BPE tokenizer as a ``transformers.CLIPTokenizer``, built with no download.

    How: open_clip ships OpenAI's BPE merge list inside its package; the vocabulary follows
    from the merges (:func:`clip_vocab_from_open_clip`), and ``CLIPTokenizer`` accepts them
    directly (``vocab=``, ``merges=``). Why this way rather than an adapter around open_clip's
    ``SimpleTokenizer``: the result is the same class the real SD pipelines use, so
    ``save_pretrained`` / ``from_pretrained``, padding, truncation and special-token handling
    are transformers' own, and ids match open_clip's (checked in the tests).
    """
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_from_open_clip()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def tiny_clip_text_encoder(hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                           max_length: int = 77, seed: int = 0,
                           device: str | torch.device = "cpu") -> TextEncoder:
    """A random-initialised small ``CLIPTextModel`` (same class as SD's) with the real tokenizer.

    For tests and the miniature text-to-image notebook: its embeddings carry no meaning beyond
    distinguishing captions, but every code path (tokenise, pad, encode, cache, CFG null) is
    the one used with ``openai/clip-vit-large-patch14`` (hidden size 768).
    """
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = offline_clip_tokenizer(max_length)
    cfg = CLIPTextConfig(vocab_size=CLIP_VOCAB_SIZE, hidden_size=hidden_size,
                         intermediate_size=4 * hidden_size, num_hidden_layers=num_layers,
                         num_attention_heads=num_heads, max_position_embeddings=max_length,
                         projection_dim=hidden_size, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIPTextModel(cfg)
    return TextEncoder(tok, model, device=device)


class TextEncoder:
    """Captions -> CLIP last hidden states ``(B, L, D)``, cached per caption.

    Captions longer than the tokenizer's max length are truncated (as SD does); the first
    time it happens a warning is issued, and :attr:`n_truncated` counts distinct truncated
    captions. :meth:`null` is the embedding of the empty prompt (CFG null condition).
    """

    def __init__(self, tokenizer: Any, text_model: nn.Module, *,
                 device: str | torch.device = "cpu", cache: bool = True) -> None:
        self.tokenizer = tokenizer
        self.model = text_model.to(device).eval().requires_grad_(False)
        self.device = torch.device(device)
        self.max_length = int(tokenizer.model_max_length)
        self.use_cache = cache
        self._cache: dict[str, Tensor] = {}
        self.n_truncated = 0
        self._warned = False

    @property
    def width(self) -> int:
        """Embedding width D (must equal the UNet's ``cross_attention_dim``)."""
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, captions: Sequence[str]) -> Tensor:
        """Embeddings of ``captions`` as one tensor ``(len(captions), max_length, width)``."""
        if isinstance(captions, str):
            raise TypeError("pass a list of captions, not a single string")
        todo = list(dict.fromkeys(c for c in captions if c not in self._cache))
        new = dict(zip(todo, self._encode(todo), strict=True)) if todo else {}
        if self.use_cache:
            self._cache.update(new)
        return torch.stack([self._cache[c] if c in self._cache else new[c] for c in captions])

    def null(self, batch: int = 1) -> Tensor:
        """The empty-prompt embedding repeated ``batch`` times (classifier-free guidance null)."""
        return self([""]).expand(batch, -1, -1)

    def clear_cache(self) -> None:
        """Forget all cached embeddings."""
        self._cache.clear()

    def _encode(self, captions: list[str]) -> Tensor:
        lengths = [len(ids) for ids in self.tokenizer(captions, truncation=False)["input_ids"]]
        n_long = sum(n > self.max_length for n in lengths)
        if n_long:
            self.n_truncated += n_long
            if not self._warned:
                warnings.warn(f"{n_long} caption(s) exceed {self.max_length} tokens and are "
                              "truncated (counted in TextEncoder.n_truncated)", stacklevel=3)
                self._warned = True
        ids = self.tokenizer(captions, padding="max_length", max_length=self.max_length,
                             truncation=True, return_tensors="pt")["input_ids"].to(self.device)
        return self.model(input_ids=ids).last_hidden_state


def check_text_width(text_width: int, unet: Any) -> None:
    """Refuse a text encoder whose width differs from the UNet's ``cross_attention_dim``.

    ``unet`` may be a ``UNet2DConditionModel``, a :class:`~scflow.nets.VelocityNet` around one,
    or the integer width itself.
    """
    if isinstance(unet, int):
        cad = unet
    else:
        model = getattr(unet, "model", unet)
        cad = getattr(getattr(model, "config", None), "cross_attention_dim", None)
        if cad is None:
            raise TypeError(f"{type(model).__name__} has no cross_attention_dim (not text-conditional)")
    if int(text_width) != int(cad):
        raise ValueError(f"text embedding width {text_width} != UNet cross_attention_dim {cad}: "
                         "the text encoder and the UNet do not belong together")

