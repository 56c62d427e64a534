"""Where the models come from: hub ids or local folders, and the device they run on.

The ``models`` resource of the Dagster code location is derived from these settings; the
demo and the tests point them at tiny random models built in code.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base.settings import setting


@dataclass(frozen=True)
class ModelSources:
    blip2: str = setting("Salesforce/blip2-opt-2.7b", "BLIP-2 model of the captions", env="MPDS_BLIP2_MODEL")
    stable_diffusion: str = setting(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "Stable Diffusion 1.5 the LoRA, the embeddings and the benchmark build on",
        env="MPDS_SD_MODEL",
    )
    controlnet: str = setting(
        "lllyasviel/sd-controlnet-canny", "ControlNet of the caption branch (canny edges)", env="MPDS_CONTROLNET_MODEL"
    )
    clip: str = setting("openai/clip-vit-large-patch14", "CLIP of the CLIP score (100 scale)", env="MPDS_CLIP_MODEL")
    clip_s: str = setting(
        "openai/clip-vit-base-patch32",
        "CLIP-S (2.5 x max(cos, 0)) model; Hessel et al. used ViT-B/32",
        env="MPDS_CLIP_S_MODEL",
    )
    pickscore: str = setting("yuvalkirstain/PickScore_v1", "PickScore model", env="MPDS_PICKSCORE_MODEL")
    pickscore_processor: str = setting(
        "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "PickScore's processor", env="MPDS_PICKSCORE_PROCESSOR"
    )
    fid_features: str = setting(
        "inception",
        "FID features: 'inception' (pytorch-fid's Inception-v3 weights, downloaded once), "
        "a .pth/.pt file or URL of them, 'clip' (CLIP image embeddings), 'inception-random' (offline smoke runs)",
        env="MPDS_FID_FEATURES",
    )
    clip_tokenizer: str = setting(
        "",
        "tokenizer that counts the 77-token window; empty: the SD model's tokenizer if local, else an estimate",
        env="MPDS_CLIP_TOKENIZER",
    )
    device: str = setting("auto", "cuda, cpu, or auto: cuda when available", env="MPDS_DEVICE")
