"""Loading a CLIP-family model and embedding images and texts with it.

CLIP score, CLIP-S, PickScore and the CLIP-FID features all read the same
``CLIPModel`` embeddings; this module owns how they are computed (a Pillow image
processor, texts padded to the full window) so every metric agrees.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..device import choose_device


def load_clip(model_id: str, processor_id: str | None = None, device: str | None = None):
    """A ``CLIPModel`` and ``CLIPProcessor`` (Pillow image processor: no torchvision)."""
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    device = choose_device(device)
    processor_id = processor_id or model_id
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil.from_pretrained(processor_id),
        tokenizer=CLIPTokenizer.from_pretrained(processor_id),
    )
    return CLIPModel.from_pretrained(model_id).to(device).eval(), processor


def pooled_output(output):
    """``get_*_features`` returns a tensor in transformers 4 and a ModelOutput in 5."""
    if hasattr(output, "pooler_output"):
        return output.pooler_output
    return output


def text_embeddings(texts: Sequence[str], model, processor) -> np.ndarray:
    """Padded to the full window, so a text's embedding does not depend on its batch-mates."""
    import torch

    device = next(model.parameters()).device
    inputs = processor(text=list(texts), return_tensors="pt", padding="max_length", truncation=True)
    with torch.no_grad():
        text = pooled_output(
            model.get_text_features(
                input_ids=inputs["input_ids"].to(device), attention_mask=inputs["attention_mask"].to(device)
            )
        )
    return text.float().cpu().numpy()


def image_embeddings(images: Sequence[Image.Image], model, processor) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    inputs = processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
    with torch.no_grad():
        image = pooled_output(model.get_image_features(pixel_values=inputs["pixel_values"].to(device, model.dtype)))
    return image.float().cpu().numpy()


def clip_embeddings(images: Sequence[Image.Image], texts: Sequence[str], model, processor):
    return image_embeddings(images, model, processor), text_embeddings(texts, model, processor)


def batched(function, items: Sequence, batch_size: int, *args) -> np.ndarray:
    return np.concatenate([function(items[i : i + batch_size], *args) for i in range(0, len(items), batch_size)])


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
