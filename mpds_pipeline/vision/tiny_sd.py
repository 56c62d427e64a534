"""Tiny randomly initialised models shaped like the real ones, built in code.

Tests and the CPU demo cannot download weights, so they use these: a Stable Diffusion
1.5-shaped pipeline (two-block UNet and VAE, 2-layer CLIP text encoder, a BPE tokenizer
from a tiny vocabulary, DDIM scheduler), a ControlNet made from that UNet, and a tiny
CLIP model used both for CLIP score and as a stand-in for PickScore.

``ensure_tiny_models(root)`` builds them once into ``root`` and returns their paths; a
second call with the same root reuses them (a ``complete`` marker guards half-written
directories).
"""
from __future__ import annotations

import json
import shutil
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

TINY_IMAGE_SIZE = 32  # pixels; the two-block VAE makes 16x16 latents
TINY_HIDDEN = 32
_MARKER = "complete"


@dataclass(frozen=True)
class TinyModelPaths:
    """Where ``ensure_tiny_models`` put each tiny model (all loadable with from_pretrained)."""

    root: Path
    sd: Path  # StableDiffusionPipeline directory
    controlnet: Path  # ControlNetModel directory
    clip: Path  # CLIPModel + processor files (CLIP score and PickScore stand-in)


def _tiny_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary: printable ASCII symbols, each also as word end, and a few merges."""
    symbols = [c for c in string.ascii_lowercase + string.digits + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    tokens += symbols + [s + "</w>" for s in symbols]
    merges = [("t", "h"), ("th", "e</w>"), ("e", "r"), ("o", "n"), ("a", "n"), ("i", "n")]
    for left, right in merges:
        merged = left + right
        if merged not in tokens:  # every merge result must be in the vocabulary
            tokens.append(merged)
    return {token: index for index, token in enumerate(tokens)}, merges


def build_tiny_tokenizer(directory: Path):
    """Write vocab.json/merges.txt to ``directory`` and load a CLIPTokenizer from them."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = _tiny_vocab()
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    # from_pretrained on the folder, not the constructor: in transformers 5 the
    # constructor's file arguments are ignored and the vocabulary ends up empty.
    return CLIPTokenizer.from_pretrained(str(directory), model_max_length=77)


def _text_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TINY_HIDDEN,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def build_tiny_sd_pipeline(work_dir: Path, seed: int = 0):
    """A working StableDiffusionPipeline with tiny random weights (32x32 images)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(work_dir / "tokenizer_src")
    unet = UNet2DConditionModel(
        sample_size=TINY_IMAGE_SIZE // 2,
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TINY_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=TINY_IMAGE_SIZE,
    )
    text_encoder = CLIPTextModel(_text_config(len(tokenizer)))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_controlnet(unet):
    """A ControlNet copied from ``unet``; its conditioning encoder downsamples x2 like the tiny VAE."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))


def build_tiny_clip(directory: Path, seed: int = 0):
    """Save a tiny CLIPModel with a tokenizer and a Pillow image processor to ``directory``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPVisionConfig

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(directory / "tokenizer_src")
    vision = CLIPVisionConfig(
        hidden_size=TINY_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=TINY_IMAGE_SIZE,
        patch_size=8,
        projection_dim=TINY_HIDDEN,
    )
    config = CLIPConfig(
        text_config=_text_config(len(tokenizer)).to_dict(),
        vision_config=vision.to_dict(),
        projection_dim=TINY_HIDDEN,
    )
    model = CLIPModel(config)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    image_processor.save_pretrained(directory)
    shutil.rmtree(directory / "tokenizer_src", ignore_errors=True)
    return model


def ensure_tiny_models(root: Path | None = None) -> TinyModelPaths:
    """Build the tiny models under ``root`` (default: a fixed temp dir) unless already there."""
    root = Path(root) if root is not None else Path(tempfile.gettempdir()) / "mpds-tiny-models-v1"
    paths = TinyModelPaths(root=root, sd=root / "sd", controlnet=root / "controlnet", clip=root / "clip")
    if (root / _MARKER).exists():
        return paths
    staging = Path(tempfile.mkdtemp(prefix="tiny-build-", dir=root.parent if root.parent.exists() else None))
    pipe = build_tiny_sd_pipeline(staging)
    pipe.save_pretrained(staging / "sd")
    build_tiny_controlnet(pipe.unet).save_pretrained(staging / "controlnet")
    build_tiny_clip(staging / "clip")
    shutil.rmtree(staging / "tokenizer_src", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    for name in ("sd", "controlnet", "clip"):
        if not (root / name).exists():
            shutil.move(str(staging / name), str(root / name))
    shutil.rmtree(staging, ignore_errors=True)
    (root / _MARKER).write_text("ok\n")
    return paths
