"""Prompts: captions for the digits miniature, and COCO caption files for the real scale.

- :func:`digit_captions`: several templates per digit ("a handwritten digit seven",
  "the number 7", ...), one caption per image, drawn with a seeded generator.
- :func:`load_coco_captions`: the paper's evaluation prompts (Tables 1-2): the first N captions
  of a COCO ``captions_val2014.json`` / ``captions_val2017.json``, ONE per image (the first
  annotation of each image, images in the file's annotation order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

TEMPLATES: tuple[str, ...] = (
    "a handwritten digit {word}",
    "the number {digit}",
    "a scan of a handwritten {word}",
    "digit {digit}, written by hand",
    "a photo of the number {word}",
)
"""Caption templates; ``{word}`` is the digit's English name, ``{digit}`` the numeral."""


def digit_caption(digit: int, template: int = 0) -> str:
    """Caption of ``digit`` (0-9) with template number ``template`` (cycled)."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be in 0..9 (got {digit})")
    tpl = TEMPLATES[int(template) % len(TEMPLATES)]
    return tpl.format(word=DIGIT_WORDS[int(digit)], digit=int(digit))


def digit_captions(labels: Sequence[int] | torch.Tensor, n_templates: int = len(TEMPLATES),
                   seed: int = 0) -> list[str]:
    """One caption per label, the template drawn uniformly from the first ``n_templates``."""
    labels = [int(x) for x in labels]
    if not labels:
        raise ValueError("no labels: cannot make an empty caption list")
    if not 1 <= n_templates <= len(TEMPLATES):
        raise ValueError(f"n_templates must be in 1..{len(TEMPLATES)} (got {n_templates})")
    g = torch.Generator().manual_seed(seed)
    tpl = torch.randint(n_templates, (len(labels),), generator=g).tolist()
    return [digit_caption(d, k) for d, k in zip(labels, tpl, strict=True)]


def eval_digit_prompts(n: int, n_templates: int = len(TEMPLATES)) -> tuple[list[str], list[int]]:
    """The miniature's evaluation prompts: digit ``i % 10`` with template ``(i // 10) % k``.

    Returns ``(prompts, digits)``; every digit appears equally often (prompt accuracy's
    reference labels are ``digits``).
    """
    if n < 1:
        raise ValueError(f"need at least one prompt (got n={n})")
    digits = [i % 10 for i in range(n)]
    return [digit_caption(d, (i // 10) % n_templates) for i, d in enumerate(digits)], digits


def load_coco_captions(path: str | Path, n: int = 0) -> list[str]:
    """The first ``n`` captions (0 = all) of a COCO caption annotation file, one per image.

    The paper evaluates on "the first 30k prompts" of COCO 2014 val and "the first 5k" of
    COCO 2017 val. Here an image's caption is the first annotation of that image, and images
    are taken in the order their first annotation appears in ``annotations``. Whitespace is
    normalised (COCO captions carry stray newlines and trailing spaces).

    Raises:
        FileNotFoundError: the file does not exist (with where to get it).
        ValueError: not COCO caption format, no captions, or fewer than ``n``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"COCO captions file not found: {path}. Download "
            "http://images.cocodataset.org/annotations/annotations_trainval2014.zip (or ..2017) "
            "and pass annotations/captions_val2014.json (or captions_val2017.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON: {err}") from None
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(anns, list):
        raise ValueError(f"{path} is not a COCO caption file (no 'annotations' list)")
    seen: dict[object, str] = {}
    for a in anns:
        if not isinstance(a, dict) or "image_id" not in a or "caption" not in a:
            raise ValueError(f"{path}: annotation without image_id/caption: {a!r:.100}")
        if a["image_id"] not in seen:
            text = " ".join(str(a["caption"]).split())
            if text:
                seen[a["image_id"]] = text
        if n and len(seen) >= n:
            break
    captions = list(seen.values())
    if not captions:
        raise ValueError(f"{path} holds no captions")
    if n and len(captions) < n:
        raise ValueError(f"{path} has captions for {len(captions)} images, fewer than n={n}")
    return captions
