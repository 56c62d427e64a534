"""The denoising loss every training run here minimises (diffusers' training scripts' loss).

The target follows the scheduler's ``prediction_type`` and any other type raises; noise
and timesteps come from the caller's CPU generator, so a run is the same on every device
and can be resumed exactly. See docs/generation.md.
"""

from __future__ import annotations

import contextlib

PREDICTION_TYPES = ("epsilon", "v_prediction")


def check_prediction_type(noise_scheduler) -> str:
    """The scheduler's prediction type, or a ValueError for one the loss does not know."""
    prediction_type = noise_scheduler.config.prediction_type
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"Unknown prediction type {prediction_type!r} in the noise scheduler: "
            f"training supports {', '.join(PREDICTION_TYPES)}"
        )
    return prediction_type


def training_target(noise_scheduler, latents, noise, timesteps):
    """What the UNet should predict for ``latents`` noised with ``noise`` at ``timesteps``."""
    if check_prediction_type(noise_scheduler) == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    return noise


def diffusion_loss(unet, noise_scheduler, latents, hidden_states, generator, autocast=None):
    """MSE between the UNet's prediction and the training target, for one batch of
    (scaled) ``latents`` and their text ``hidden_states``; ``autocast`` wraps the UNet call."""
    import torch
    import torch.nn.functional as F

    noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator
    ).to(latents.device)
    noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
    target = training_target(noise_scheduler, latents, noise, timesteps)
    with autocast or contextlib.nullcontext():
        prediction = unet(noisy_latents, timesteps, hidden_states, return_dict=False)[0]
    return F.mse_loss(prediction.float(), target.float(), reduction="mean")
