"""CLIP score (torchmetrics' 100 x max(cos, 0)) and CLIP-S (Hessel et al.'s 2.5 x max(cos, 0)).

Both come from ``CLIPModel`` features rather than torchmetrics' ``CLIPScore``, which breaks
on transformers 5. CLIP-S uses ViT-B/32 by default, as in Hessel et al., which is the
scale the MPDS paper reports on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .clip_models import clip_embeddings, normalise

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
DEFAULT_CLIP_S_MODEL = "openai/clip-vit-base-patch32"  # Hessel et al. 2021
CLIP_SCORE_SCALE = 100.0  # torchmetrics CLIPScore
CLIP_S_SCALE = 2.5  # CLIP-S


def clip_score_from_embeddings(
    image_embeds: np.ndarray, text_embeds: np.ndarray, scale: float = CLIP_SCORE_SCALE
) -> np.ndarray:
    """``scale`` x max(cos, 0) row by row: 100 for CLIPScore, 2.5 for CLIP-S."""
    cos = np.sum(normalise(image_embeds) * normalise(text_embeds), axis=-1)
    return scale * np.maximum(cos, 0.0)


def clip_score(
    images: Sequence[Image.Image],
    texts: Sequence[str],
    model,
    processor,
    batch_size: int = 32,
    scale: float = CLIP_SCORE_SCALE,
) -> np.ndarray:
    """Per-image CLIP score of image i against text i (``scale`` 2.5 gives CLIP-S)."""
    if len(images) != len(texts):
        raise ValueError("clip_score needs one text per image")
    scores = []
    for start in range(0, len(images), batch_size):
        image, text = clip_embeddings(
            images[start : start + batch_size], texts[start : start + batch_size], model, processor
        )
        scores.append(clip_score_from_embeddings(image, text, scale))
    return np.concatenate(scores) if scores else np.zeros(0)
