"""PickScore (``logit_scale.exp() x cos(text, image)``) and a method's preference against a baseline.

Preference is judged per prompt over one method-baseline pair only (win share, ties
half, and the mean two-way softmax), so adding a method changes no other row; a softmax
over all methods of a prompt would make every row depend on the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .clip_models import clip_embeddings, normalise

DEFAULT_PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
DEFAULT_PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


def pickscore_from_embeddings(image_embeds: np.ndarray, text_embeds: np.ndarray, logit_scale: float) -> np.ndarray:
    """PickScore per image: logit_scale x cos(text_i, image_i) (raw, not a probability)."""
    return logit_scale * np.sum(normalise(image_embeds) * normalise(text_embeds), axis=-1)


def pick_probabilities_from_embeddings(
    image_embeds: np.ndarray, text_embed: np.ndarray, logit_scale: float
) -> np.ndarray:
    """softmax_i(logit_scale * cos(text, image_i)): preference among the given candidates."""
    logits = logit_scale * (normalise(image_embeds) @ normalise(text_embed.reshape(-1)))
    logits = logits - logits.max()
    return np.exp(logits) / np.exp(logits).sum()


def pick_scores(images: Sequence[Image.Image], text: str, model, processor) -> np.ndarray:
    """Raw PickScore of each of ``images`` for one prompt."""
    image, text_embed = clip_embeddings(images, [text], model, processor)
    return pickscore_from_embeddings(
        image, np.repeat(text_embed, len(image), axis=0), float(model.logit_scale.exp().item())
    )


def pairwise_preference(scores: np.ndarray, baseline_scores: np.ndarray) -> dict:
    """A method against a baseline, prompt by prompt (aligned arrays of PickScores).

    win_share: share of prompts where the method scores higher (a tie counts half);
    mean_probability: mean of the two-way softmax exp(s) / (exp(s) + exp(s_baseline)).
    """
    scores, baseline_scores = np.asarray(scores, np.float64), np.asarray(baseline_scores, np.float64)
    if len(scores) != len(baseline_scores):
        raise ValueError("pairwise_preference needs one baseline score per score")
    if len(scores) == 0:
        return {"n_prompts": 0, "win_share": float("nan"), "mean_probability": float("nan")}
    wins = (scores > baseline_scores) + 0.5 * (scores == baseline_scores)
    probability = 1.0 / (1.0 + np.exp(baseline_scores - scores))
    return {
        "n_prompts": int(len(scores)),
        "win_share": float(wins.mean()),
        "mean_probability": float(probability.mean()),
    }
