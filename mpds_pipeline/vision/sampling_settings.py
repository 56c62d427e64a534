"""The sampling settings of the generation stages (guidance scales, localized attention,
benchmark images, swap grids), apart from the modules that run them: those import torch,
and the Dagster code location reads these settings when it loads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..base.settings import setting
from .choices import ATTENTION_MODES, GUIDANCE_BRANCHES, AttentionMode, GuidanceBranch


@dataclass
class GuidanceScales:
    """s1 (prompt), s2 (actor), s3 (caption control)."""

    prompt: float = setting(7.5, "prompt guidance (the CFG scale of every method)", config_name="s1")
    actor: float = setting(2.0, "actor guidance", config_name="s2")
    caption: float = setting(2.0, "caption-control guidance", config_name="s3")


@dataclass
class LocalizedAttentionSettings:
    """``enabled`` off: no processor is installed (bitwise the stock images).

    ``mode``: "hard" (-inf outside the region) or "bias" (``-bias`` on the logits);
    ``branches``: which guidance rows are constrained ("p" prompt, "a" actor, "c" caption).
    """

    enabled: bool = True
    mode: AttentionMode = "hard"
    bias: float = setting(5.0, "logit penalty in 'bias' mode", config_name="attention_bias")
    branches: tuple[GuidanceBranch, ...] = setting(
        GUIDANCE_BRANCHES, "guidance rows constrained: p prompt, a actor, c caption", config_name="attention_branches"
    )

    def __post_init__(self):
        if self.mode not in ATTENTION_MODES:
            raise ValueError(f"localized attention mode must be one of {ATTENTION_MODES}, not {self.mode!r}")
        unknown = set(self.branches) - set(GUIDANCE_BRANCHES)
        if unknown:
            raise ValueError(f"unknown guidance branches {sorted(unknown)}; expected some of {GUIDANCE_BRANCHES}")
        if self.mode == "bias" and self.bias <= 0:
            raise ValueError("the attention bias must be positive (it is subtracted from the logits)")

    @property
    def penalty(self) -> float:
        return -math.inf if self.mode == "hard" else -float(self.bias)


@dataclass
class GenerationSettings:
    num_inference_steps: int = setting(50, "denoising steps of every method")
    scales: GuidanceScales = field(default_factory=GuidanceScales)  # s1 is the CFG scale of every method
    height: int = setting(
        768,
        "size of the LoRA and MPDS methods (2:3 like a poster, buckets.POSTER_ASPECT; 512x512 is the paper's); "
        "sd baselines keep the shape with their native short side",
    )
    width: int = setting(512, "width of the LoRA and MPDS methods")
    seed: int = setting(0, "seed of every image (the same for every method)")
    controlnet_conditioning_scale: float = 1.0
    device: str | None = None
    dtype: str | None = None  # a device.py precision; None: bf16/fp16 on CUDA, fp32 on CPU
    attention: LocalizedAttentionSettings = field(default_factory=LocalizedAttentionSettings)


@dataclass
class SwapSettings:
    n_actors: int = setting(4, "actors swapped into one caption (columns of that grid, plus the no-actor column)")
    n_prompts: int = setting(4, "captions one actor is cast in (columns of that grid)")
    num_inference_steps: int = setting(50, "denoising steps of every cell")
    height: int = setting(768, "2:3 like a poster and the caption controls; 512 for the paper's square")
    width: int = setting(512, "width of every cell")
    scales: GuidanceScales = field(default_factory=lambda: GuidanceScales(7.5, 2.0, 0.0))
    seed: int = setting(0, "seed of every cell")
    device: str | None = None
    thumb: int = 192  # cell size in the grid PNGs
