"""Textual-inversion actor embeddings: one learned text-encoder token per actor.

An actor's token is its IMDb person code in angle brackets (``<nm0000206>``), saved in a
file a stock diffusers pipeline loads. Only that token's embedding row trains.
See docs/generation.md.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from ..base.folders import ExportFolder
from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from ..imdb.ids import person_code
from .buckets import DEFAULT_BUCKETS, DEFAULT_MULTIPLE, bucket_sizes
from .device import Precision, choose_device, precision_dtype, training_precision
from .diffusion_loss import diffusion_loss
from .frozen_sd import FrozenStableDiffusion, load_frozen_sd
from .latent_cache import LatentCache, cache_latents
from .lora_training import DEFAULT_BASE_MODEL

# An actor with fewer face crops than ``min_images``: "warn" (train anyway) or "skip".
TooFewImages = Literal["warn", "skip"]

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
    learning_rate: float = setting(5e-4, "learning rate at the first step (the paper's 5e-4)")
    final_learning_rate: float = setting(1e-6, "learning rate the schedule decays to at the last step")
    lr_schedule: str = "cosine"  # "cosine" or "linear" decay from learning_rate to final_learning_rate
    max_train_steps: int = setting(500, "optimizer steps per actor")
    train_batch_size: int = setting(4, "face crops per step")
    resolution: int = setting(512, "training side in px; aspect buckets are scaled to it")
    initializer_token: str = setting("person", "word whose embedding each actor's token starts from")
    templates: tuple[str, ...] = PROMPT_TEMPLATES
    min_images: int = 3  # the paper's 3-5 face crops per actor
    max_images: int = 5  # more are cut to the first max_images (callers pass the best first)
    too_few_images: TooFewImages = setting(
        "warn", "an actor with fewer than min_images face crops: 'warn' (train anyway) or 'skip'"
    )
    seed: int = 0
    mixed_precision: Precision = "auto"  # device.py: bf16/fp16 for the frozen VAE and UNet on CUDA, fp32 on CPU
    device: str | None = None  # device.py: None or "auto" is cuda when available
    # The face crops are square, so they land in the square bucket, but photos of another shape keep theirs.
    aspect_buckets: tuple[str, ...] = setting(
        DEFAULT_BUCKETS, "as lora_weights' (WIDTHxHEIGHT at 512 px, scaled to resolution); empty: square only"
    )
    bucket_multiple: int = setting(DEFAULT_MULTIPLE, "bucket sides are rounded to this (64 for SD1.5)")


TOO_FEW_POLICIES: tuple[TooFewImages, ...] = get_args(TooFewImages)


@dataclass
class TextualInversionResult:
    actor_id: int
    token: str
    embedding_path: Path | None  # None: skipped (too few usable images and too_few_images="skip", or none decoded)
    n_images: int
    losses: list[float]
    steps_per_second: float
    warning: str | None = None
    images: list[Path] = field(default_factory=list)  # the photos it was trained on, in order (skipped: those given)
    image_outcomes: dict[Path, str | None] = field(default_factory=dict)  # decode error per photo read, None: decoded
    bucket_counts: dict[str, int] = field(default_factory=dict)  # aspect bucket -> photos trained on in it

    @property
    def decode_failures(self) -> dict[Path, str]:
        return {path: error for path, error in self.image_outcomes.items() if error is not None}

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
            "decode_failures": len(self.decode_failures),
        }


@dataclass
class TextualInversionModels(FrozenStableDiffusion):
    """The frozen Stable Diffusion parts, loaded once and shared by all actors of a run;
    the text encoder stays fp32 (its new rows are what trains)."""

    trained_tokens: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, settings: TextualInversionSettings) -> TextualInversionModels:
        import torch

        device = choose_device(settings.device)
        weight_dtype = precision_dtype(training_precision(settings.mixed_precision, device))
        frozen = load_frozen_sd(settings.pretrained_model, device, weight_dtype, text_encoder_dtype=torch.float32)
        return cls(**vars(frozen))


def export_actor_photos(export_dir: Path) -> dict[int, list[Path]]:
    """Actor id -> its face crops in the release (``actor_photos.parquet``), best first."""
    import pandas as pd

    table_path = ExportFolder(Path(export_dir)).actor_photos_parquet
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


def _too_few_warning(settings: TextualInversionSettings, actor_id: int, n_images: int, failures: dict) -> str | None:
    """The warning for an actor left with fewer than ``min_images`` usable photos (None: enough)."""
    if n_images >= settings.min_images and n_images:
        return None
    action = "skipped" if settings.too_few_images == "skip" or not n_images else "trained anyway"
    undecodable = (
        f"{len(failures)} face crop(s) did not decode ({'; '.join(f'{p.name}: {e}' for p, e in failures.items())}), "
        if failures
        else ""
    )
    return (
        f"actor {actor_id}: {undecodable}{n_images} image(s), "
        f"fewer than the {settings.min_images} the paper uses ({action})"
    )


def _add_placeholder(models: TextualInversionModels, token: str, initializer_token: str) -> None:
    """Add ``token`` to the tokenizer (once), its embedding row started from
    ``initializer_token``'s, which must be a single token."""
    import torch

    tokenizer, text_encoder = models.tokenizer, models.text_encoder
    initializer_ids = tokenizer.encode(initializer_token, add_special_tokens=False)
    if len(initializer_ids) != 1:
        raise ValueError(f"initializer token {initializer_token!r} must be a single token")
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([token])
        text_encoder.resize_token_embeddings(len(tokenizer))
    token_id = tokenizer.convert_tokens_to_ids(token)
    embeddings = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        embeddings[token_id] = embeddings[initializer_ids[0]].clone()


def _learn_row(
    models: TextualInversionModels,
    settings: TextualInversionSettings,
    token: str,
    latents: LatentCache,
    progress: Progress | None,
) -> list[float]:
    """Train the token's embedding row (every other row's gradient masked to zero) on the
    cached latents with the prompt templates; returns the loss per step."""
    import torch

    text_encoder, device, batch = models.text_encoder, models.device, settings.train_batch_size
    embeddings = text_encoder.get_input_embeddings().weight
    row_mask = torch.zeros(embeddings.shape[0], 1, device=embeddings.device)
    row_mask[models.tokenizer.convert_tokens_to_ids(token)] = 1.0
    embeddings.requires_grad_(True)
    hook = embeddings.register_hook(lambda grad: grad * row_mask)
    optimizer = torch.optim.AdamW([embeddings], lr=settings.learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(settings.seed)
    prompt_ids = models.token_ids([template.format(token) for template in settings.templates]).to(device)
    losses: list[float] = []
    text_encoder.train()
    try:
        for step in range(settings.max_train_steps):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, settings)
            picks = _one_bucket_picks(latents, batch, generator)
            prompt_picks = torch.randint(0, len(prompt_ids), (batch,), generator=generator)
            batch_latents = latents.sample(picks, generator)
            hidden = text_encoder(prompt_ids[prompt_picks.to(device)], return_dict=False)[0].to(models.weight_dtype)
            loss = diffusion_loss(models.unet, models.noise_scheduler, batch_latents, hidden, generator)
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
    return losses


def _one_bucket_picks(latents: LatentCache, batch: int, generator):
    """``batch`` random cache rows of one bucket: the bucket of a first uniform draw (so a
    bucket is chosen in proportion to its images), then rows within it."""
    import torch

    groups = latents.rows_by_bucket()
    if len(groups) == 1:
        return torch.randint(0, len(latents.decoded), (batch,), generator=generator)
    anchor = int(torch.randint(0, len(latents.decoded), (1,), generator=generator))
    rows = torch.tensor(groups[[i for i, g in enumerate(groups) if anchor in g][0]])
    return rows[torch.randint(0, len(rows), (batch,), generator=generator)]


def _save_embedding(models: TextualInversionModels, token: str, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    row = models.text_encoder.get_input_embeddings().weight[models.tokenizer.convert_tokens_to_ids(token)]
    save_file({token: row.detach().float().cpu().clone()[None]}, path)
    models.trained_tokens.append(token)
    return path


def train_actor_embedding(
    settings: TextualInversionSettings,
    images: list[Path],
    actor_id: int,
    output_dir: Path,
    models: TextualInversionModels | None = None,
    progress: Progress | None = None,
) -> TextualInversionResult:
    """Learn ``placeholder_token(actor_id)`` from the actor's photos (best first); write
    its safetensors file. A photo that does not decode is left out (``image_outcomes``).
    With fewer than ``min_images`` usable photos it warns and trains, or skips
    (``too_few_images="skip"``, or none decodes: the result has no embedding). ``progress`` counts steps."""
    if not images:
        raise ValueError(f"actor {actor_id}: no images to learn an embedding from")
    if settings.too_few_images not in TOO_FEW_POLICIES:
        raise ValueError(f"too_few_images must be one of {TOO_FEW_POLICIES}, got {settings.too_few_images!r}")
    token, images = placeholder_token(actor_id), [Path(p) for p in images][: settings.max_images]
    if settings.too_few_images == "skip" and len(images) < settings.min_images:  # no model needed to know
        warning = _too_few_warning(settings, actor_id, len(images), {})
        return _skipped(
            TextualInversionResult(actor_id, token, None, len(images), [], 0.0, warning, images), settings, progress
        )
    models = models or TextualInversionModels.load(settings)
    latents = cache_latents(
        models.vae,
        images,
        settings.resolution,
        buckets=bucket_sizes(settings.resolution, settings.aspect_buckets, settings.bucket_multiple),
    )
    used = [images[i] for i in latents.decoded]
    warning = _too_few_warning(settings, actor_id, len(used), latents.decode_failures)
    if not used or (warning and settings.too_few_images == "skip"):
        result = TextualInversionResult(actor_id, token, None, len(used), [], 0.0, warning, images, latents.outcomes)
        return _skipped(result, settings, progress)
    if warning:
        warnings.warn(warning, stacklevel=2)
    _add_placeholder(models, token, settings.initializer_token)
    started = time.perf_counter()
    losses = _learn_row(models, settings, token, latents, progress)
    wall = time.perf_counter() - started
    path = _save_embedding(models, token, Path(output_dir) / embedding_file_name(actor_id))
    return TextualInversionResult(
        actor_id,
        token,
        path,
        len(used),
        losses,
        len(losses) / wall if wall > 0 else 0.0,
        warning,
        used,
        latents.outcomes,
        latents.bucket_counts(),
    )


def _skipped(result: TextualInversionResult, settings: TextualInversionSettings, progress: Progress | None):
    """A skipped actor: its warning raised, its steps counted as done."""
    warnings.warn(result.warning, stacklevel=3)
    if progress is not None:
        progress.update(settings.max_train_steps, status="skipped")
    return result


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
