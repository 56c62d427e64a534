"""GPU benchmark of the vision stages (no dagster).

1. LoRA training steps/s at 512 px, batch 4: our ``train_lora`` against a faithful
   re-implementation of diffusers' reference loop
   (examples/text_to_image/train_text_to_image_lora.py: accelerate, frozen fp16 VAE and
   text encoder run every step, fp32 LoRA params, AdamW, constant lr), same model, same
   data, same precision, same run. Goal: ours >= 1.0x.
2. Multi-condition sampling (four branches + ControlNet, one batched UNet call per step)
   against plain classifier-free guidance at the same number of steps. Goal: <= 2.2x.
3. The same with the localized attention constraint on (hard masks on every ``attn2``,
   caption layout and an actor token) against plain CFG. Goal: <= 2.4x.

Models are SD1.5-size with random weights (configs written here from the real SD1.5
ones); no download. Without CUDA it runs the tiny models instead (a smoke run only).

    python benchmarks/bench_gpu.py [--steps 30] [--sample-steps 30] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mpds_pipeline.vision.device import choose_device, choose_dtype, is_cuda, training_precision
from mpds_pipeline.vision.latent_cache import load_image_tensor
from mpds_pipeline.vision.lora_training import LORA_TARGET_MODULES, LoraSettings, train_lora
from mpds_pipeline.vision.tiny_sd import (
    SD15_SCHEDULER,
    build_tiny_controlnet,
    build_tiny_sd_pipeline,
    build_tiny_tokenizer,
)

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
)
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    sample_size=512,
)
SD15_TEXT = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    projection_dim=768,
    hidden_act="quick_gelu",
)


def build_sd15_size_pipeline(work: Path):
    """SD1.5-shaped random pipeline (the tokenizer is tiny: token ids stay below its vocab)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tiny_tokenizer(work / "tok")
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=max(len(tokenizer), 49408), bos_token_id=0, eos_token_id=1, pad_token_id=1, **SD15_TEXT
        )
    )
    return StableDiffusionPipeline(
        vae=AutoencoderKL(**SD15_VAE),
        text_encoder=text,
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**SD15_UNET),
        scheduler=DDIMScheduler(**SD15_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def reference_lora_loop(model_dir: Path, pairs, resolution, batch_size, steps, mixed_precision, seed=0) -> float:
    """diffusers' train_text_to_image_lora.py training loop, re-implemented; returns steps/s."""
    from accelerate import Accelerator
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig
    from transformers import CLIPTextModel, CLIPTokenizer

    # accelerate calls fp32 "no"
    accelerator = Accelerator(
        mixed_precision="no" if mixed_precision == "fp32" else mixed_precision, gradient_accumulation_steps=1
    )
    torch.manual_seed(seed)
    noise_scheduler = DDPMScheduler.from_pretrained(model_dir, subfolder="scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(model_dir, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(model_dir, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=list(LORA_TARGET_MODULES))
    )
    unet.to(accelerator.device, dtype=weight_dtype)
    vae.to(accelerator.device, dtype=weight_dtype)
    text_encoder.to(accelerator.device, dtype=weight_dtype)
    if mixed_precision == "fp16":
        cast_training_params(unet, dtype=torch.float32)
    lora_layers = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(lora_layers, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return len(pairs)

        def __getitem__(self, i):
            path, text = pairs[i]
            ids = tokenizer(
                text, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
            ).input_ids[0]
            return {"pixel_values": load_image_tensor(path, resolution), "input_ids": ids}

    loader = torch.utils.data.DataLoader(Pairs(), shuffle=True, batch_size=batch_size, num_workers=0, drop_last=True)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer, num_warmup_steps=0, num_training_steps=steps)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader, lr_scheduler)
    unet.train()
    done, started = 0, None
    while done < steps + 1:
        for batch in loader:
            with accelerator.accumulate(unet):
                latents = vae.encode(batch["pixel_values"].to(dtype=weight_dtype)).latent_dist.sample()
                latents = latents * vae.config.scaling_factor
                noise = torch.randn_like(latents)
                timesteps = torch.randint(
                    0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device
                ).long()
                noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
                encoder_hidden_states = text_encoder(batch["input_ids"], return_dict=False)[0]
                model_pred = unet(noisy_latents, timesteps, encoder_hidden_states, return_dict=False)[0]
                loss = torch.nn.functional.mse_loss(model_pred.float(), noise.float(), reduction="mean")
                avg_loss = accelerator.gather(loss.repeat(batch_size)).mean()
                _ = avg_loss.item()
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(lora_layers, 1.0)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            done += 1
            if done == 1:  # the first step (allocation, autotuning) is not timed
                _sync()
                started = time.perf_counter()
            if done >= steps + 1:
                break
    _sync()
    return steps / (time.perf_counter() - started)


def _sync():
    if torch.cuda.is_initialized():  # only a run that used the GPU has work to wait for
        torch.cuda.synchronize()


def bench_training(model_dir: Path, work: Path, resolution: int, batch: int, steps: int, precision: str) -> dict:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(16):
        path = work / "data" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8)).save(path)
        pairs.append((path, f"a poster of film number {i}"))
    reference = reference_lora_loop(model_dir, pairs, resolution, batch, steps, precision)
    # ours: time from step 2 on via the callback (the same warm-up exclusion)
    marks = {}

    def mark(step, loss):
        if step in (1, steps + 1):
            _sync()
            marks[step] = time.perf_counter()

    settings = LoraSettings(
        pretrained_model=str(model_dir),
        resolution=resolution,
        train_batch_size=batch,
        max_train_steps=steps + 1,
        checkpointing_steps=0,
        mixed_precision=precision,
        resume=False,
    )
    train_lora(settings, pairs, work / "ours", on_step=mark)
    ours = steps / (marks[steps + 1] - marks[1])  # the loop only, not the final save and plot
    return {"reference_steps_per_s": reference, "ours_steps_per_s": ours, "speedup": ours / reference}


def bench_sampling(pipe, controlnet, steps: int, size: int, repeats: int = 2) -> dict:
    from mpds_pipeline.vision.caption_control import canny_edges, render_caption_layout
    from mpds_pipeline.vision.localized_attention import LocalizedAttentionSettings
    from mpds_pipeline.vision.multicondition import MultiConditionPipeline
    from mpds_pipeline.vision.sampling_settings import GuidanceScales

    multi = MultiConditionPipeline(pipe, controlnet)
    multi.set_progress_bar_config(disable=True)
    sketch, layout = render_caption_layout("The Long Night", ["Jane Doe", "John Roe"], size=max(size, 64))
    control = canny_edges(sketch)
    prompt = "the long night, a poster of a film starring jane doe and john roe"
    actor = "<nm0000001>"

    def timed(**kwargs):
        best = float("inf")
        for _ in range(repeats + 1):  # the first call warms up
            _sync()
            started = time.perf_counter()
            multi(
                prompt,
                num_inference_steps=steps,
                height=size,
                width=size,
                output_type="latent",
                generator=torch.Generator().manual_seed(0),
                **kwargs,
            )
            _sync()
            best = min(best, time.perf_counter() - started)
        return best

    both = dict(
        actor_prompt=prompt.replace("jane doe", actor), control_image=control, scales=GuidanceScales(7.5, 2.0, 2.0)
    )
    cfg = timed(scales=GuidanceScales(7.5))
    full = timed(**both)
    constrained = timed(
        **both, caption_layout=layout, actor_tokens=[actor], attention=LocalizedAttentionSettings(mode="hard")
    )
    rows = multi.last_constraint.rows if multi.last_constraint else []
    return {
        "cfg_seconds": cfg,
        "multicondition_seconds": full,
        "ratio": full / cfg,
        "constrained_seconds": constrained,
        "constrained_ratio": constrained / cfg,
        "constrained_tokens_per_row": [sum(len(c.positions) for c in row.constraints) for row in rows],
    }


def add_actor_token(pipe, work: Path, token: str = "<nm0000001>") -> None:
    """A random textual-inversion embedding, loaded the stock way (the actor branch's token)."""
    from safetensors.torch import save_file

    path = work / "actor.safetensors"
    save_file({token: torch.randn(1, pipe.text_encoder.config.hidden_size)}, str(path))
    pipe.load_textual_inversion(str(path), token=token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed LoRA steps per loop")
    parser.add_argument("--sample-steps", type=int, default=30, help="denoising steps per image")
    parser.add_argument("--tiny", action="store_true", help="tiny models (default without CUDA)")
    args = parser.parse_args()
    device = choose_device("auto")
    tiny = args.tiny or not is_cuda(device)
    with tempfile.TemporaryDirectory(prefix="mpds-bench-") as tmp:
        work = Path(tmp)
        pipe = build_tiny_sd_pipeline(work) if tiny else build_sd15_size_pipeline(work)
        model_dir = work / "model"
        pipe.save_pretrained(model_dir)
        resolution = 32 if tiny else 512
        precision = training_precision("auto", device)  # both loops train in it
        training = bench_training(model_dir, work, resolution, 4, args.steps, precision)
        controlnet = (
            build_tiny_controlnet(pipe.unet) if tiny else __import__("diffusers").ControlNetModel.from_unet(pipe.unet)
        )
        dtype = choose_dtype("auto", device)
        add_actor_token(pipe, work)
        pipe.to(device, dtype=dtype)
        controlnet.to(device, dtype=dtype)
        sampling = bench_sampling(pipe, controlnet, args.sample_steps, resolution)
    report = {
        "device": torch.cuda.get_device_name() if is_cuda(device) else "cpu",
        "precision": {"training": precision, "sampling": str(dtype).removeprefix("torch.")},
        "models": "tiny" if tiny else "sd15-size random",
        "resolution": resolution,
        "batch": 4,
        "training": training,
        "sampling": sampling,
        "goals": {
            "training_speedup >= 1.0": training["speedup"] >= 1.0,
            "sampling_ratio <= 2.2": sampling["ratio"] <= 2.2,
            "constrained_sampling_ratio <= 2.4": sampling["constrained_ratio"] <= 2.4,
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
