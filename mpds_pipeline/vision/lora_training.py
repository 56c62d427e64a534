"""LoRA fine-tune of the Stable Diffusion UNet on poster/prompt pairs (peft).

``train_lora(settings, pairs, output_dir)`` writes ``pytorch_lora_weights.safetensors``
that a stock ``StableDiffusionPipeline.load_lora_weights(output_dir)`` loads, a loss
curve PNG, and resumable checkpoints under ``output_dir/checkpoints/checkpoint-<step>``
(LoRA weights, optimizer, lr scheduler, step, losses and every random state), so a run
that dies resumes from its last checkpoint and ends with the same weights as an
uninterrupted one on a deterministic device.

Why it is faster than diffusers' reference loop: the VAE and text encoder are frozen,
so each image's latent distribution and each caption's embedding are computed once and
cached (the latent is still re-sampled every step, as the reference does), and the
optimizer is fused on CUDA. Images are read with Pillow and turned into tensors with
numpy (torchvision does not import beside the CPU torch here).

Caching the latents decodes every training image in full: an image that does not
decode is left out of training and reported in ``LoraResult.image_outcomes`` (path ->
error, None when it decoded), which the asset records in the download manifests.
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..curate.image_checks import DECODE_ERRORS
from ..progress import Progress, ProgressLog

LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
DEFAULT_BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
LORA_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")


@dataclass
class LoraSettings:
    """Everything a LoRA run needs; defaults follow the paper (rank 4, lr 1e-4, 512 px)."""

    pretrained_model: str = DEFAULT_BASE_MODEL
    rank: int = 4
    learning_rate: float = 1e-4
    resolution: int = 512
    train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_train_steps: int = 15000  # optimizer steps
    n_pairs: int = 2000  # how many pairs sample_pairs draws from the export
    sample_seed: int = 0  # seed of that draw
    seed: int = 42  # seed of data order, noise and timesteps
    lr_scheduler: str = "constant"  # any diffusers.optimization.get_scheduler name
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    adam_weight_decay: float = 1e-2
    mixed_precision: str = "auto"  # "auto" (bf16/fp16 on CUDA, none on CPU), "no", "fp16", "bf16"
    checkpointing_steps: int = 500
    checkpoints_total_limit: int = 2
    resume: bool = True  # continue from the newest checkpoint in output_dir
    cache_latents: bool = True
    device: str | None = None  # None: cuda when available


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
        }


class TrainingInterrupted(RuntimeError):
    """Raised by an ``on_step`` callback to stop a run the way a crash would (tests, timeouts)."""


def sample_pairs(export_dir: Path, n: int, seed: int) -> list[tuple[Path, str]]:
    """Draw ``n`` (image path, text) pairs from the export's imagefolder ``metadata.jsonl``.

    ``export_dir`` may be the export root (reads ``posters/metadata.jsonl``), the folder
    holding ``metadata.jsonl``, or the file itself. The draw depends only on ``seed`` and
    the file's rows, so the same export gives the same training set.
    """
    path = Path(export_dir)
    if path.is_dir():
        path = path / "metadata.jsonl" if (path / "metadata.jsonl").exists() else path / "posters" / "metadata.jsonl"
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                rows.append((path.parent / record["file_name"], record["text"]))
    if n >= len(rows):
        return rows
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]


def load_image_tensor(path: Path, resolution: int):
    """Pillow -> RGB, short side resized to ``resolution``, centre crop, CHW float in [-1, 1]."""
    import torch
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = resolution / min(image.size)
        size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
        left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
        image = image.crop((left, top, left + resolution, top + resolution))
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def resolve_precision(mixed_precision: str, device: str) -> str:
    if not device.startswith("cuda"):
        return "no"
    if mixed_precision == "auto":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return mixed_precision


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


def _latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    found = [p for p in checkpoints_dir.glob("checkpoint-*") if (p / "state.json").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None


class _RandomStates:
    """The generators a run draws from, so that a checkpoint can freeze and restore them."""

    def __init__(self, seed: int):
        import torch

        self.noise = torch.Generator().manual_seed(seed)

    def state(self) -> dict:
        import torch

        return {"noise": self.noise.get_state(), "torch": torch.get_rng_state()}

    def restore(self, state: dict) -> None:
        import torch

        self.noise.set_state(state["noise"])
        torch.set_rng_state(state["torch"])


def _batch_indices(n_items: int, batch_size: int, micro_step: int, seed: int) -> list[int]:
    """Items of micro-batch ``micro_step``: an epoch-wise permutation fixed by (seed, epoch).

    A pure function of the step, so a resumed run sees exactly the batches it would have.
    """
    import torch

    indices = []
    position = micro_step * batch_size
    for offset in range(batch_size):
        epoch, within = divmod(position + offset, n_items)
        order = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        indices.append(int(order[within]))
    return indices


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
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.optimization import get_scheduler
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import CLIPTextModel, CLIPTokenizer

    if not pairs:
        raise ValueError("train_lora needs at least one (image, text) pair")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = output_dir / "checkpoints"
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(settings.mixed_precision, device)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    torch.manual_seed(settings.seed)

    model = settings.pretrained_model
    tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
    noise_scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    for module in (text_encoder, vae, unet):
        module.requires_grad_(False)
        module.to(device, dtype=weight_dtype)
    unet.add_adapter(
        LoraConfig(
            r=settings.rank,
            lora_alpha=settings.rank,
            init_lora_weights="gaussian",
            target_modules=list(LORA_TARGET_MODULES),
        )
    )
    lora_parameters = [p for p in unet.parameters() if p.requires_grad]
    for parameter in lora_parameters:  # trainable weights stay fp32 under mixed precision
        parameter.data = parameter.data.float()

    optimizer = torch.optim.AdamW(
        lora_parameters,
        lr=settings.learning_rate,
        weight_decay=settings.adam_weight_decay,
        fused=device.startswith("cuda"),
    )
    lr_scheduler = get_scheduler(
        settings.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=settings.lr_warmup_steps,
        num_training_steps=settings.max_train_steps,
    )
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    randomness = _RandomStates(settings.seed)

    # Frozen encoders: encode every image and caption once. An image that does not decode
    # is dropped here, before anything depends on the pair list.
    image_outcomes: dict[Path, str | None] = {}
    usable: list[tuple[Path, str]] = []
    latent_means, latent_stds = [], []
    encoding = Progress("lora_weights: encoding images", len(pairs), log, unit="images")
    with torch.no_grad(), encoding:
        for start in range(0, len(pairs), 8):
            tensors = []
            for path, text in pairs[start : start + 8]:
                try:
                    tensors.append(load_image_tensor(path, settings.resolution))
                except DECODE_ERRORS as error:
                    image_outcomes[Path(path)] = f"{type(error).__name__}: {error}"
                    continue
                image_outcomes[Path(path)] = None
                usable.append((path, text))
            if tensors:
                distribution = vae.encode(torch.stack(tensors).to(device, dtype=weight_dtype)).latent_dist
                latent_means.append(distribution.mean)
                latent_stds.append(distribution.std)
            encoding.update(len(pairs[start : start + 8]))
    if not usable:
        raise ValueError(f"none of the {len(pairs)} training images decodes: {next(iter(image_outcomes.values()))}")
    pairs = usable
    latent_means, latent_stds = torch.cat(latent_means), torch.cat(latent_stds)
    scaling_factor = vae.config.scaling_factor
    del vae
    captions = sorted({text for _, text in pairs})
    caption_index = {text: i for i, text in enumerate(captions)}
    with torch.no_grad():
        token_ids = tokenizer(
            captions, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
        ).input_ids
        text_embeddings = torch.cat(
            [text_encoder(chunk.to(device), return_dict=False)[0] for chunk in token_ids.split(32)]
        )
        del text_encoder
    pair_captions = torch.tensor([caption_index[text] for _, text in pairs])

    losses: list[float] = []
    start_step = 0
    latest = _latest_checkpoint(checkpoints_dir) if settings.resume else None
    if latest is not None:
        from safetensors.torch import load_file

        state = json.loads((latest / "state.json").read_text())
        set_peft_model_state_dict(unet, load_file(latest / "lora.safetensors"))
        optimizer.load_state_dict(torch.load(latest / "optimizer.pt", weights_only=False))
        lr_scheduler.load_state_dict(torch.load(latest / "lr_scheduler.pt", weights_only=False))
        randomness.restore(torch.load(latest / "random_states.pt", weights_only=False))
        if scaler is not None and (latest / "scaler.pt").exists():
            scaler.load_state_dict(torch.load(latest / "scaler.pt", weights_only=False))
        start_step, losses = state["step"], state["losses"]

    def save_checkpoint(step: int) -> None:
        from safetensors.torch import save_file

        target = checkpoints_dir / f"checkpoint-{step}"
        staging = checkpoints_dir / f".tmp-checkpoint-{step}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        lora_state = {k: v.detach().float().contiguous().cpu() for k, v in get_peft_model_state_dict(unet).items()}
        save_file(lora_state, staging / "lora.safetensors")
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        torch.save(lr_scheduler.state_dict(), staging / "lr_scheduler.pt")
        torch.save(randomness.state(), staging / "random_states.pt")
        if scaler is not None:
            torch.save(scaler.state_dict(), staging / "scaler.pt")
        (staging / "state.json").write_text(json.dumps({"step": step, "losses": losses}))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # a checkpoint is visible only once complete
        older = sorted(
            (p for p in checkpoints_dir.glob("checkpoint-*") if p != target), key=lambda p: int(p.name.split("-")[1])
        )
        for stale in older[: max(0, len(older) - settings.checkpoints_total_limit + 1)]:
            shutil.rmtree(stale, ignore_errors=True)

    unet.train()
    autocast = torch.autocast(device_type="cuda", dtype=weight_dtype, enabled=precision != "no")
    accumulation = settings.gradient_accumulation_steps
    resumed = f" (resumed at step {start_step:,})" if start_step else ""
    progress = Progress(f"lora_weights: training{resumed}", settings.max_train_steps - start_step, log, unit="steps")
    started = time.perf_counter()
    for step in range(start_step, settings.max_train_steps):
        step_loss = 0.0
        for micro in range(accumulation):
            batch = _batch_indices(len(pairs), settings.train_batch_size, step * accumulation + micro, settings.seed)
            batch_tensor = torch.tensor(batch)
            mean, std = latent_means[batch_tensor], latent_stds[batch_tensor]
            # All draws come from one CPU generator: identical on every device and resumable.
            sample_noise = torch.randn(mean.shape, generator=randomness.noise).to(device, mean.dtype)
            latents = (mean + std * sample_noise) * scaling_factor
            noise = torch.randn(latents.shape, generator=randomness.noise).to(device, latents.dtype)
            timesteps = torch.randint(
                0, noise_scheduler.config.num_train_timesteps, (len(batch),), generator=randomness.noise
            ).to(device)
            noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
            if noise_scheduler.config.prediction_type == "v_prediction":
                target = noise_scheduler.get_velocity(latents, noise, timesteps)
            else:
                target = noise
            hidden_states = text_embeddings[pair_captions[batch_tensor].to(text_embeddings.device)]
            with autocast:
                prediction = unet(noisy_latents, timesteps, hidden_states, return_dict=False)[0]
            loss = F.mse_loss(prediction.float(), target.float(), reduction="mean") / accumulation
            (scaler.scale(loss) if scaler is not None else loss).backward()
            step_loss += loss.item()
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(lora_parameters, settings.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        done = step + 1
        if settings.checkpointing_steps and done % settings.checkpointing_steps == 0:
            save_checkpoint(done)
        progress.update(**{"loss": step_loss, "mean of the last 50": float(np.mean(losses[-50:]))})
        if on_step is not None:
            on_step(done, step_loss)
    progress.close()
    wall = time.perf_counter() - started
    ran = settings.max_train_steps - start_step

    lora_layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    lora_layers = {k: v.detach().float().contiguous().cpu() for k, v in lora_layers.items()}
    StableDiffusionPipeline.save_lora_weights(output_dir, unet_lora_layers=lora_layers, safe_serialization=True)
    curve = plot_loss_curve(losses, output_dir / "loss_curve.png")
    record = {k: v for k, v in asdict(settings).items()}
    (output_dir / "training_state.json").write_text(
        json.dumps({"settings": record, "losses": losses, "steps_completed": settings.max_train_steps})
    )
    return LoraResult(
        weights_path=output_dir / LORA_WEIGHTS_NAME,
        output_dir=output_dir,
        loss_curve_png=curve,
        losses=losses,
        steps_completed=settings.max_train_steps,
        resumed_from_step=start_step,
        steps_per_second=ran / wall if wall > 0 and ran > 0 else 0.0,
        wall_seconds=wall,
        n_pairs=len(pairs),
        settings=record,
        image_outcomes=image_outcomes,
    )
