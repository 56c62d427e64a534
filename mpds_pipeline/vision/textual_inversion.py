"""Textual-inversion actor embeddings: one learned text-encoder token per actor.

Placeholder-token naming: an actor's token is its IMDb person code in angle brackets,
``<nm0000206>`` (``placeholder_token(206)``), and its file is ``nm0000206.safetensors``
holding ``{"<nm0000206>": embedding[None]}``, which a stock diffusers pipeline loads with
``pipe.load_textual_inversion(path, token="<nm0000206>")``. The codes are unique, ASCII,
and never split by the CLIP tokenizer once added, so prompts can carry several actors.

Only the new token's row of the embedding matrix moves: gradients of every other row are
masked to zero and AdamW runs without weight decay, so those rows stay bit-identical.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from mpds_pipeline.imdb.ids import person_code
from mpds_pipeline.progress import Progress, ProgressLog
from mpds_pipeline.vision.lora_training import DEFAULT_BASE_MODEL, load_image_tensor, resolve_precision

PROMPT_TEMPLATES = (
    "a photo of {}",
    "a portrait of {}",
    "a close-up photo of {}",
    "a movie still of {}",
    "a good photo of {}",
    "a cropped photo of {}",
)


def placeholder_token(actor_id: int) -> str:
    """``<nm0000206>`` for IMDb person 206: the token an actor's embedding is saved under."""
    return f"<{person_code(actor_id)}>"


def embedding_file_name(actor_id: int) -> str:
    return f"{person_code(actor_id)}.safetensors"


@dataclass
class TextualInversionSettings:
    """Defaults follow the paper: 512 px, lr 5e-4 decaying to 1e-6, 500 steps, batch 4."""

    pretrained_model: str = DEFAULT_BASE_MODEL
    learning_rate: float = 5e-4
    final_learning_rate: float = 1e-6
    lr_schedule: str = "cosine"  # "cosine" or "linear" decay from learning_rate to final_learning_rate
    max_train_steps: int = 500
    train_batch_size: int = 4
    resolution: int = 512
    initializer_token: str = "person"
    templates: tuple[str, ...] = PROMPT_TEMPLATES
    min_images: int = 3  # the paper's 3-5 face crops per actor
    max_images: int = 5  # more are cut to the first max_images (callers pass the best first)
    too_few_images: str = "warn"  # fewer than min_images: "warn" (train anyway) or "skip"
    seed: int = 0
    mixed_precision: str = "auto"
    device: str | None = None


TOO_FEW_POLICIES = ("warn", "skip")


@dataclass
class TextualInversionResult:
    actor_id: int
    token: str
    embedding_path: Path | None  # None: skipped (too few images and too_few_images="skip")
    n_images: int
    losses: list[float]
    steps_per_second: float
    warning: str | None = None
    images: list[Path] = field(default_factory=list)  # the photos it was trained on, in order

    @property
    def skipped(self) -> bool:
        return self.embedding_path is None

    def metadata(self) -> dict:
        return {
            "actor_id": self.actor_id,
            "token": self.token,
            "embedding_path": str(self.embedding_path) if self.embedding_path else None,
            "n_images": self.n_images,
            "final_loss": self.losses[-1] if self.losses else None,
            "steps_per_second": round(self.steps_per_second, 3),
            "warning": self.warning,
        }


@dataclass
class TextualInversionModels:
    """The frozen Stable Diffusion parts, loaded once and shared by all actors of a run."""

    tokenizer: object
    text_encoder: object
    vae: object
    unet: object
    noise_scheduler: object
    device: str
    weight_dtype: object = None
    trained_tokens: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, settings: TextualInversionSettings) -> "TextualInversionModels":
        import torch
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        precision = resolve_precision(settings.mixed_precision, device)
        weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
        model = settings.pretrained_model
        text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder").to(device)
        vae = AutoencoderKL.from_pretrained(model, subfolder="vae").to(device, dtype=weight_dtype)
        unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet").to(device, dtype=weight_dtype)
        for module in (text_encoder, vae, unet):
            module.requires_grad_(False)
        return cls(
            tokenizer=CLIPTokenizer.from_pretrained(model, subfolder="tokenizer"),
            text_encoder=text_encoder,
            vae=vae,
            unet=unet,
            noise_scheduler=DDPMScheduler.from_pretrained(model, subfolder="scheduler"),
            device=device,
            weight_dtype=weight_dtype,
        )


def export_actor_photos(export_dir: Path) -> dict[int, list[Path]]:
    """Actor id -> its face crops in the release (``actor_photos.parquet``), best first."""
    import pandas as pd

    table_path = Path(export_dir) / "actor_photos.parquet"
    if not table_path.exists():
        raise FileNotFoundError(f"{table_path} does not exist: materialise actor_photos, then export")
    table = pd.read_parquet(table_path, columns=["actor_id", "rank", "file_name"]).sort_values(["actor_id", "rank"])
    photos: dict[int, list[Path]] = {}
    for actor_id, file_name in zip(table["actor_id"], table["file_name"]):
        photos.setdefault(int(actor_id), []).append(Path(export_dir) / file_name)
    return photos


def _learning_rate(step: int, settings: TextualInversionSettings) -> float:
    start, end = settings.learning_rate, settings.final_learning_rate
    progress = step / max(1, settings.max_train_steps - 1)
    if settings.lr_schedule == "linear":
        return start + (end - start) * progress
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))


def train_actor_embedding(
    settings: TextualInversionSettings,
    images: list[Path],
    actor_id: int,
    output_dir: Path,
    models: TextualInversionModels | None = None,
    progress: Progress | None = None,
) -> TextualInversionResult:
    """Learn ``placeholder_token(actor_id)`` from the actor's photos (best first); write
    its safetensors file. With fewer than ``min_images`` it warns and trains, or skips
    (``too_few_images="skip"``: the result has no embedding). ``progress`` counts steps."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    if not images:
        raise ValueError(f"actor {actor_id}: no images to learn an embedding from")
    if settings.too_few_images not in TOO_FEW_POLICIES:
        raise ValueError(f"too_few_images must be one of {TOO_FEW_POLICIES}, got {settings.too_few_images!r}")
    warning = None
    images = [Path(p) for p in images][: settings.max_images]
    if len(images) < settings.min_images:
        action = "skipped" if settings.too_few_images == "skip" else "trained anyway"
        warning = f"actor {actor_id}: {len(images)} image(s), fewer than the {settings.min_images} the paper uses ({action})"
        warnings.warn(warning, stacklevel=2)
        if settings.too_few_images == "skip":
            if progress is not None:
                progress.update(settings.max_train_steps, status="skipped")
            return TextualInversionResult(actor_id, placeholder_token(actor_id), None, len(images), [], 0.0, warning, images)
    models = models or TextualInversionModels.load(settings)
    tokenizer, text_encoder, device = models.tokenizer, models.text_encoder, models.device
    token = placeholder_token(actor_id)

    initializer_ids = tokenizer.encode(settings.initializer_token, add_special_tokens=False)
    if len(initializer_ids) != 1:
        raise ValueError(f"initializer token {settings.initializer_token!r} must be a single token")
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([token])
        text_encoder.resize_token_embeddings(len(tokenizer))
    token_id = tokenizer.convert_tokens_to_ids(token)
    embeddings = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        embeddings[token_id] = embeddings[initializer_ids[0]].clone()
    embeddings.requires_grad_(True)
    row_mask = torch.zeros(embeddings.shape[0], 1, device=embeddings.device)
    row_mask[token_id] = 1.0
    hook = embeddings.register_hook(lambda grad: grad * row_mask)
    optimizer = torch.optim.AdamW([embeddings], lr=settings.learning_rate, weight_decay=0.0)

    generator = torch.Generator().manual_seed(settings.seed)
    dtype = models.weight_dtype
    with torch.no_grad():
        pixels = torch.stack([load_image_tensor(p, settings.resolution) for p in images]).to(device, dtype=dtype)
        distribution = models.vae.encode(pixels).latent_dist
        latent_mean, latent_std = distribution.mean, distribution.std
    prompts = [template.format(token) for template in settings.templates]
    prompt_ids = tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)
    scaling = models.vae.config.scaling_factor
    scheduler = models.noise_scheduler
    losses: list[float] = []
    text_encoder.train()
    started = time.perf_counter()
    try:
        for step in range(settings.max_train_steps):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, settings)
            picks = torch.randint(0, len(images), (settings.train_batch_size,), generator=generator)
            prompt_picks = torch.randint(0, len(prompts), (settings.train_batch_size,), generator=generator)
            sample = torch.randn(latent_mean[picks].shape, generator=generator).to(device, dtype)
            latents = (latent_mean[picks] + latent_std[picks] * sample) * scaling
            noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
            timesteps = torch.randint(
                0, scheduler.config.num_train_timesteps, (settings.train_batch_size,), generator=generator
            ).to(device)
            noisy = scheduler.add_noise(latents, noise, timesteps)
            hidden = text_encoder(prompt_ids[prompt_picks.to(device)], return_dict=False)[0].to(dtype)
            prediction = models.unet(noisy, timesteps, hidden, return_dict=False)[0]
            target = scheduler.get_velocity(latents, noise, timesteps) if (
                scheduler.config.prediction_type == "v_prediction"
            ) else noise
            loss = F.mse_loss(prediction.float(), target.float())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if progress is not None:
                progress.update(loss=round(losses[-1], 4))
    finally:
        hook.remove()
        embeddings.requires_grad_(False)
        text_encoder.eval()
    wall = time.perf_counter() - started

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / embedding_file_name(actor_id)
    learned = embeddings[token_id].detach().float().cpu().clone()
    save_file({token: learned[None]}, path)
    models.trained_tokens.append(token)
    return TextualInversionResult(
        actor_id=actor_id,
        token=token,
        embedding_path=path,
        n_images=len(images),
        losses=losses,
        steps_per_second=len(losses) / wall if wall > 0 else 0.0,
        warning=warning,
        images=images,
    )


def train_actor_embeddings(
    settings: TextualInversionSettings,
    actor_images: dict[int, list[Path]],
    output_dir: Path,
    log: ProgressLog | None = None,
) -> list[TextualInversionResult]:
    """Train every actor in ``actor_images`` (id -> photos, best first), loading the
    models once; ``log`` gets progress lines (steps over all actors, the latest loss)."""
    models = TextualInversionModels.load(settings)
    total = settings.max_train_steps * len(actor_images)
    with Progress("actor_embeddings", total, log, unit="steps") as progress:
        return [
            train_actor_embedding(settings, paths, actor_id, output_dir, models=models, progress=progress)
            for actor_id, paths in sorted(actor_images.items())
        ]
