"""LoRA fine-tune of the Stable Diffusion UNet on poster/prompt pairs (peft).

``train_lora`` writes weights that a stock diffusers pipeline loads, a loss curve and
resumable checkpoints, built from the shared training pieces (frozen_sd, latent_cache,
diffusion_loss, checkpoints). Why it is faster than diffusers' reference loop, and its
outputs: docs/generation.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..base.folders import ExportFolder
from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from ..curate import near_duplicates
from .buckets import DEFAULT_BUCKETS, DEFAULT_MULTIPLE, batches_per_epoch, bucket_sizes, epoch_batches
from .checkpoints import (
    FINGERPRINT,
    RandomStates,
    fingerprint,
    latest_checkpoint,
    save_checkpoint,
    set_aside_other_runs,
)
from .device import Precision, choose_device, is_cuda, precision_dtype, training_precision
from .diffusion_loss import diffusion_loss
from .frozen_sd import FrozenStableDiffusion, load_frozen_sd
from .latent_cache import LatentCache, cache_latents

LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
DEFAULT_BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
LORA_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")
# Settings a run may change and still resume its checkpoints: how long and how often,
# and where and in what precision it computes. Every other setting changes the result.
RESUMABLE_CHANGES = (
    "max_train_steps",
    "checkpointing_steps",
    "checkpoints_total_limit",
    "resume",
    "cache_latents",
    "device",
    "mixed_precision",
)


@dataclass
class LoraSettings:
    """Everything a LoRA run needs; defaults follow the paper (rank 4, lr 1e-4, 512 px),
    except the aspect buckets (``aspect_buckets=()`` is the paper's square crop)."""

    pretrained_model: str = DEFAULT_BASE_MODEL
    rank: int = setting(4, "LoRA rank of the UNet's attention projections (the paper's 4)")
    learning_rate: float = setting(1e-4, "AdamW learning rate (the paper's 1e-4)")
    resolution: int = setting(512, "training side in px; aspect buckets are scaled to it")
    train_batch_size: int = setting(1, "images per step")
    gradient_accumulation_steps: int = setting(1, "steps whose gradients are summed before one optimizer step")
    max_train_steps: int = setting(15000, "optimizer steps")
    n_pairs: int = setting(2000, "pairs sampled from the export (the paper's 2,000)")
    sample_seed: int = setting(0, "seed of the draw of the training pairs")
    seed: int = setting(42, "seed of data order, noise and timesteps")
    lr_scheduler: str = "constant"  # any diffusers.optimization.get_scheduler name
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    adam_weight_decay: float = 1e-2
    mixed_precision: Precision = setting(
        "auto", "auto: bf16 where the GPU supports it, else fp16; CPU runs train in fp32 (device.py)"
    )
    checkpointing_steps: int = setting(500, "optimizer steps between checkpoints an interrupted run resumes from")
    checkpoints_total_limit: int = 2
    resume: bool = True  # continue from the newest checkpoint in output_dir
    cache_latents: bool = True
    device: str | None = None  # device.py: None or "auto" is cuda when available
    aspect_buckets: tuple[str, ...] = setting(
        DEFAULT_BUCKETS, "WIDTHxHEIGHT at 512 px, scaled to resolution (buckets.py); empty: the paper's square crop"
    )
    bucket_multiple: int = setting(
        DEFAULT_MULTIPLE, "bucket sides are rounded to this (64 for SD1.5), or to resolution/8 if finer"
    )

    def bucket_sizes(self) -> list[tuple[int, int]]:
        return bucket_sizes(self.resolution, self.aspect_buckets, self.bucket_multiple)


@dataclass
class LoraResult:
    """What a run produced; ``metadata()`` is what an asset reports."""

    weights_path: Path
    output_dir: Path
    loss_curve_png: Path
    losses: list[float]  # one per optimizer step of the whole run, resumed part included
    steps_completed: int
    resumed_from_step: int  # 0 for a fresh run
    steps_per_second: float  # over the steps this call ran
    wall_seconds: float
    n_pairs: int
    settings: dict = field(default_factory=dict)
    image_outcomes: dict[Path, str | None] = field(default_factory=dict)  # decode error per image, None: decoded
    superseded_checkpoints: Path | None = None  # checkpoints of other settings or pairs, set aside
    bucket_counts: dict[str, int] = field(default_factory=dict)  # 'WIDTHxHEIGHT' -> training images in it

    @property
    def decode_failures(self) -> int:
        return sum(1 for error in self.image_outcomes.values() if error is not None)

    def metadata(self) -> dict:
        return {
            "weights_path": str(self.weights_path),
            "steps_completed": self.steps_completed,
            "resumed_from_step": self.resumed_from_step,
            "steps_per_second": round(self.steps_per_second, 4),
            "final_loss": self.losses[-1] if self.losses else None,
            "n_pairs": self.n_pairs,
            "decode_failures": self.decode_failures,
            "superseded_checkpoints": str(self.superseded_checkpoints) if self.superseded_checkpoints else None,
            "aspect_buckets": dict(self.bucket_counts),
        }


def run_fingerprint(settings: LoraSettings, pairs: list[tuple[Path, str]]) -> str:
    """What the checkpoints of a run depend on: its result-changing settings and its
    training pairs (file names and texts, so a moved data directory still resumes)."""
    kept = {k: v for k, v in asdict(settings).items() if k not in RESUMABLE_CHANGES}
    data = hashlib.sha256("\n".join(f"{Path(p).name}\t{t}" for p, t in pairs).encode("utf-8")).hexdigest()
    return fingerprint(settings=kept, pairs=data)


class TrainingInterrupted(RuntimeError):
    """Raised by an ``on_step`` callback to stop a run the way a crash would (tests, timeouts)."""


def sample_pairs(
    export_dir: Path,
    n: int,
    seed: int,
    ids: set[int] | None = None,
    one_per_group: bool = False,
    counts: dict | None = None,
) -> list[tuple[Path, str]]:
    """Draw ``n`` (image path, text) pairs from the export's imagefolder ``metadata.jsonl``.

    ``export_dir`` may be the export root (reads ``posters/metadata.jsonl``), the folder
    holding ``metadata.jsonl``, or the file itself. The draw depends only on ``seed`` and
    the file's rows, so the same export gives the same training set. ``ids`` keeps only
    those posters (a subset, ``curate.subsets``); ``one_per_group`` keeps at most one
    poster per ``duplicate_group`` (the export's near-duplicate column; rows without one
    are their own group), so re-releases of one poster do not over-weight its film.
    ``counts`` gets the rows at each stage: exported, in_subset, one_per_group, drawn.
    """
    path = Path(export_dir)
    if path.is_dir():
        export = ExportFolder(path)
        # The posters/ folder itself (its metadata.jsonl), or the export around it.
        inside = path / export.posters_metadata.name
        path = inside if inside.exists() else export.posters_metadata
    rows, groups = [], {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                image = path.parent / record["file_name"]
                rows.append((image, record["text"]))
                if record.get("duplicate_group") is not None and image.stem.isdigit():
                    groups[int(image.stem)] = int(record["duplicate_group"])
    counts = counts if counts is not None else {}
    counts["exported"] = len(rows)
    if ids is not None:
        rows = [row for row in rows if row[0].stem.isdigit() and int(row[0].stem) in ids]
    counts["in_subset"] = len(rows)
    if one_per_group:
        kept = set(near_duplicates.one_per_group([int(p.stem) for p, _ in rows if p.stem.isdigit()], groups, seed))
        rows = [row for row in rows if not row[0].stem.isdigit() or int(row[0].stem) in kept]
        counts["groups_known"] = bool(groups)
    counts["one_per_group"] = len(rows)
    if n < len(rows):
        picked = sorted(random.Random(seed).sample(range(len(rows)), n))
        rows = [rows[i] for i in picked]
    counts["drawn"] = len(rows)
    return rows


def plot_loss_curve(losses: list[float], path: Path) -> Path:
    """Loss per step (and a moving average) as a PNG, with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=0.8, alpha=0.5, label="loss")
    if len(losses) >= 10:
        window = max(5, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=1.5, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE loss")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _batch_rows(bucket_of: list[int], batch_size: int, micro_step: int, seed: int) -> list[int]:
    """Cache rows of micro-batch ``micro_step``, all from one aspect bucket: batch
    ``micro_step`` of the epoch-wise shuffle fixed by (seed, epoch) (``buckets.epoch_batches``).

    A pure function of the step, so a resumed run sees exactly the batches it would have.
    """
    epoch, within = divmod(micro_step, batches_per_epoch(bucket_of, batch_size))
    return _epoch_batches(tuple(bucket_of), batch_size, seed, epoch)[within]


@functools.lru_cache(maxsize=4)
def _epoch_batches(bucket_of: tuple[int, ...], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    return epoch_batches(bucket_of, batch_size, seed, epoch)


class _LoraRun:
    """The trainable state of a run: LoRA adapters on the frozen UNet, the optimizer, lr
    scheduler, gradient scaler (fp16) and random generators; what a checkpoint saves."""

    def __init__(self, sd: FrozenStableDiffusion, settings: LoraSettings, precision: str):
        import torch
        from diffusers.optimization import get_scheduler
        from peft import LoraConfig

        self.sd, self.settings = sd, settings
        sd.unet.add_adapter(
            LoraConfig(
                r=settings.rank,
                lora_alpha=settings.rank,
                init_lora_weights="gaussian",
                target_modules=list(LORA_TARGET_MODULES),
            )
        )
        self.parameters = [p for p in sd.unet.parameters() if p.requires_grad]
        for parameter in self.parameters:  # trainable weights stay fp32 under mixed precision
            parameter.data = parameter.data.float()
        self.optimizer = torch.optim.AdamW(
            self.parameters,
            lr=settings.learning_rate,
            weight_decay=settings.adam_weight_decay,
            fused=is_cuda(sd.device),
        )
        self.lr_scheduler = get_scheduler(
            settings.lr_scheduler,
            optimizer=self.optimizer,
            num_warmup_steps=settings.lr_warmup_steps,
            num_training_steps=settings.max_train_steps,
        )
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.autocast = torch.autocast(device_type="cuda", dtype=sd.weight_dtype, enabled=precision != "fp32")
        self.randomness = RandomStates(settings.seed)
        self.fingerprint: str | None = None  # set once the training pairs are known
        self.superseded: Path | None = None  # where checkpoints of another run were moved

    def lora_state(self) -> dict:
        from peft import get_peft_model_state_dict

        return get_peft_model_state_dict(self.sd.unet)

    def save_checkpoint(self, checkpoints_dir: Path, step: int, losses: list[float]) -> None:
        states = {
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "random_states": self.randomness.state(),
        }
        if self.scaler is not None:
            states["scaler"] = self.scaler.state_dict()
        save_checkpoint(
            checkpoints_dir,
            step,
            {"lora": self.lora_state()},
            states,
            {"losses": losses, FINGERPRINT: self.fingerprint},
            keep=self.settings.checkpoints_total_limit,
        )

    def resume(self, checkpoints_dir: Path, log: ProgressLog | None = None) -> tuple[int, list[float]]:
        """Restore the newest checkpoint of this run: (its step, the losses so far); (0, [])
        without one. Checkpoints of other settings or data are set aside, said in ``log``."""
        from peft import set_peft_model_state_dict

        self.superseded = set_aside_other_runs(checkpoints_dir, self.fingerprint)
        if self.superseded is not None and log is not None:
            log(f"lora_weights: checkpoints of other settings or pairs moved to {self.superseded}; training afresh")
        checkpoint = latest_checkpoint(checkpoints_dir)
        if checkpoint is None:
            return 0, []
        set_peft_model_state_dict(self.sd.unet, checkpoint.weights("lora"))
        self.optimizer.load_state_dict(checkpoint.state("optimizer"))
        self.lr_scheduler.load_state_dict(checkpoint.state("lr_scheduler"))
        self.randomness.restore(checkpoint.state("random_states"))
        if self.scaler is not None and checkpoint.state("scaler") is not None:
            self.scaler.load_state_dict(checkpoint.state("scaler"))
        return checkpoint.step, checkpoint.record["losses"]

    def step(self, latents: LatentCache, captions: _CaptionEmbeddings, step: int) -> float:
        """One optimizer step (its micro-batches, clipping, the update); returns its loss."""
        import torch

        settings, accumulation = self.settings, self.settings.gradient_accumulation_steps
        step_loss = 0.0
        for micro in range(accumulation):
            rows = torch.tensor(
                _batch_rows(latents.bucket_of, settings.train_batch_size, step * accumulation + micro, settings.seed)
            )
            # All draws come from one CPU generator: identical on every device and resumable.
            batch = latents.sample(rows, self.randomness.generator)
            loss = (
                diffusion_loss(
                    self.sd.unet,
                    self.sd.noise_scheduler,
                    batch,
                    captions.of(rows),
                    self.randomness.generator,
                    self.autocast,
                )
                / accumulation
            )
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            step_loss += loss.item()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.parameters, settings.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss


@dataclass
class _CaptionEmbeddings:
    """Each distinct caption encoded once by the frozen text encoder; ``rows[i]`` is pair i's."""

    embeddings: object
    rows: object

    @classmethod
    def encode(cls, sd: FrozenStableDiffusion, texts: list[str]) -> _CaptionEmbeddings:
        import torch

        captions = sorted(set(texts))
        index = {text: i for i, text in enumerate(captions)}
        with torch.no_grad():
            chunks = sd.token_ids(captions).split(32)
            embeddings = torch.cat([sd.text_encoder(chunk.to(sd.device), return_dict=False)[0] for chunk in chunks])
        return cls(embeddings, torch.tensor([index[text] for text in texts]))

    def of(self, rows):
        return self.embeddings[self.rows[rows].to(self.embeddings.device)]


def _encode_training_data(sd: FrozenStableDiffusion, pairs, settings: LoraSettings, log: ProgressLog | None):
    """Latents of the pairs' images (each in its aspect bucket) and embeddings of their
    captions; the frozen VAE and text encoder are dropped afterwards. An image that does
    not decode loses its pair."""
    with Progress("lora_weights: encoding images", len(pairs), log, unit="images") as encoding:
        latents = cache_latents(
            sd.vae, [path for path, _ in pairs], settings.resolution, encoding, settings.bucket_sizes()
        )
    if not latents.decoded:
        raise ValueError(f"none of the {len(pairs)} training images decodes: {next(iter(latents.outcomes.values()))}")
    usable = [pairs[i] for i in latents.decoded]
    captions = _CaptionEmbeddings.encode(sd, [text for _, text in usable])
    sd.vae = sd.text_encoder = None
    return latents, captions, usable


def _train_steps(
    run: _LoraRun,
    latents: LatentCache,
    captions: _CaptionEmbeddings,
    start_step: int,
    losses: list[float],
    checkpoints_dir: Path,
    on_step,
    log: ProgressLog | None,
) -> float:
    """Steps ``start_step`` .. ``max_train_steps`` (``losses`` grows, checkpoints are saved);
    returns the seconds they took."""
    settings = run.settings
    if start_step >= settings.max_train_steps:
        if log is not None:
            log(
                f"lora_weights: the checkpoint of step {start_step:,} already has all "
                f"{settings.max_train_steps:,} steps: nothing to train"
            )
        return 0.0
    run.sd.unet.train()
    resumed = f" (resumed at step {start_step:,})" if start_step else ""
    progress = Progress(f"lora_weights: training{resumed}", settings.max_train_steps - start_step, log, unit="steps")
    started = time.perf_counter()
    for step in range(start_step, settings.max_train_steps):
        losses.append(run.step(latents, captions, step))
        if settings.checkpointing_steps and (step + 1) % settings.checkpointing_steps == 0:
            run.save_checkpoint(checkpoints_dir, step + 1, losses)
        progress.update(**{"loss": losses[-1], "mean of the last 50": float(np.mean(losses[-50:]))})
        if on_step is not None:
            on_step(step + 1, losses[-1])
    progress.close()
    return time.perf_counter() - started


def _save_lora(run: _LoraRun, output_dir: Path) -> Path:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    layers = {
        k: v.detach().float().contiguous().cpu() for k, v in convert_state_dict_to_diffusers(run.lora_state()).items()
    }
    StableDiffusionPipeline.save_lora_weights(output_dir, unet_lora_layers=layers, safe_serialization=True)
    return output_dir / LORA_WEIGHTS_NAME


def train_lora(
    settings: LoraSettings,
    pairs: list[tuple[Path, str]],
    output_dir: Path,
    on_step: Callable[[int, float], None] | None = None,
    log: ProgressLog | None = None,
) -> LoraResult:
    """Fine-tune a LoRA on the UNet of ``settings.pretrained_model`` with ``pairs``.

    ``on_step(step, loss)`` runs after every optimizer step (after any checkpoint of that
    step); raising ``TrainingInterrupted`` from it stops the run like a crash would.
    ``log`` gets progress lines: the images encoded, then step, loss, steps/s and ETA.
    """
    import torch

    if not pairs:
        raise ValueError("train_lora needs at least one (image, text) pair")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = output_dir / "checkpoints"
    device = choose_device(settings.device)
    precision = training_precision(settings.mixed_precision, device)
    torch.manual_seed(settings.seed)
    sd = load_frozen_sd(settings.pretrained_model, device, precision_dtype(precision))
    run = _LoraRun(sd, settings, precision)
    latents, captions, pairs = _encode_training_data(sd, pairs, settings, log)
    run.fingerprint = run_fingerprint(settings, pairs)
    start_step, losses = run.resume(checkpoints_dir, log) if settings.resume else (0, [])

    wall = _train_steps(run, latents, captions, start_step, losses, checkpoints_dir, on_step, log)
    ran = settings.max_train_steps - start_step
    weights_path = _save_lora(run, output_dir)
    record = asdict(settings)
    (output_dir / "training_state.json").write_text(
        json.dumps({"settings": record, "losses": losses, "steps_completed": settings.max_train_steps})
    )
    return LoraResult(
        weights_path=weights_path,
        output_dir=output_dir,
        loss_curve_png=plot_loss_curve(losses, output_dir / "loss_curve.png"),
        losses=losses,
        steps_completed=settings.max_train_steps,
        resumed_from_step=start_step,
        steps_per_second=ran / wall if wall > 0 and ran > 0 else 0.0,
        wall_seconds=wall,
        n_pairs=len(pairs),
        settings=record,
        image_outcomes=latents.outcomes,
        superseded_checkpoints=run.superseded,
        bucket_counts=latents.bucket_counts(),
    )
