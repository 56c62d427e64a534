"""The frozen parts of Stable Diffusion a training run starts from.

``load_frozen_sd`` loads the tokenizer, text encoder, VAE, UNet and noise scheduler with
every weight frozen, on the run's device and precision, and refuses a ``prediction_type``
the loss does not know before any image is encoded. See docs/generation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from .diffusion_loss import check_prediction_type


@dataclass
class FrozenStableDiffusion:
    tokenizer: object
    text_encoder: object
    vae: object
    unet: object
    noise_scheduler: object
    device: str
    weight_dtype: object  # of the VAE and UNet (the text encoder may differ: see load_frozen_sd)

    def token_ids(self, texts: list[str]):
        """Token ids padded and cut to the text encoder's window, as the pipelines encode prompts."""
        tokenizer = self.tokenizer
        return tokenizer(
            texts, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
        ).input_ids


def load_frozen_sd(model: str, device: str, weight_dtype, text_encoder_dtype=None) -> FrozenStableDiffusion:
    """Every part of ``model`` frozen on ``device``; the text encoder in ``text_encoder_dtype``
    (default ``weight_dtype``): a run that trains an embedding row keeps it in fp32."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
    noise_scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    check_prediction_type(noise_scheduler)
    for module, dtype in (
        (text_encoder, text_encoder_dtype or weight_dtype),
        (vae, weight_dtype),
        (unet, weight_dtype),
    ):
        module.requires_grad_(False)
        module.to(device, dtype=dtype)
    return FrozenStableDiffusion(tokenizer, text_encoder, vae, unet, noise_scheduler, device, weight_dtype)
