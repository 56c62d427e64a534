"""Benchmark image generation: the same held-out prompts through every method.

Methods are a base SD model, a LoRA, the multi-condition pipeline (with switches for the
ablations) or a folder of images made elsewhere. Every method draws the same seed for a
prompt, so differences come from the method. Methods, shapes and outputs:
docs/generation.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from PIL import Image

from ..base.folders import BenchmarkImagesFolder
from ..base.progress import Progress, ProgressLog
from .caption_control import read_caption_control
from .device import choose_device, choose_dtype
from .lora_training import DEFAULT_BASE_MODEL
from .multicondition import MultiConditionPipeline, prompt_with_actor_tokens
from .sampling_settings import GenerationSettings, GuidanceScales
from .textual_inversion import embedding_file_name, placeholder_token

MethodKind = Literal["sd", "lora", "multicondition", "folder"]  # see the module doc
METHOD_KINDS: tuple[MethodKind, ...] = get_args(MethodKind)
FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class MethodSpec:
    name: str  # column/row label in the report, and the output folder name
    kind: MethodKind
    model: str = DEFAULT_BASE_MODEL
    lora_dir: Path | None = None
    embeddings_dir: Path | None = None
    controlnet: str | None = None
    use_actor: bool = True
    use_caption: bool = True
    use_localized_attention: bool = True
    caption_controls: Path | None = None  # the caption_controls asset's folder
    folder: Path | None = None
    native_resolution: bool | None = None  # None: True for "sd" models, else the settings' size

    def __post_init__(self):
        if self.native_resolution is None:
            self.native_resolution = self.kind == "sd"
        if self.kind not in METHOD_KINDS:
            raise ValueError(f"unknown method kind {self.kind!r}; expected one of {METHOD_KINDS}")
        if self.kind == "folder" and self.folder is None:
            raise ValueError(f"method {self.name}: a folder method needs folder=")


@dataclass
class BenchmarkPrompt:
    prompt_id: str
    prompt: str
    title: str = ""
    actors: list[str] = field(default_factory=list)  # names, aligned with actor_ids
    actor_ids: list[int] = field(default_factory=list)


def _pipeline_for(method: MethodSpec, settings: GenerationSettings):
    device = choose_device(settings.device)
    embeddings = {}
    if method.kind == "multicondition" and method.use_actor and method.embeddings_dir:
        for path in sorted(Path(method.embeddings_dir).glob("nm*.safetensors")):
            embeddings[f"<{path.stem}>"] = path
    return MultiConditionPipeline.from_pretrained(
        method.model,
        controlnet=method.controlnet if method.kind == "multicondition" and method.use_caption else None,
        lora_dir=method.lora_dir if method.kind in ("lora", "multicondition") else None,
        embeddings=embeddings,
        device=device,
        torch_dtype=choose_dtype(settings.dtype, device),
    )


def method_folder_name(name: str) -> str:
    """The output folder of a method: its name, with path separators replaced ("MPDS w/o actor" -> "MPDS w-o actor")."""
    return name.replace("/", "-").replace("\\", "-")


def image_size(pipe, method: MethodSpec, settings: GenerationSettings) -> tuple[int, int]:
    """(height, width) a method generates at: the settings' size, or for a native-size model
    the settings' shape with its short side at the model's native size (SD2.1 at 2:3:
    768 x 1152; a square setting gives the native square)."""
    if method.native_resolution:
        native = pipe.base.unet.config.sample_size * pipe.base.vae_scale_factor
        short = min(settings.height, settings.width)
        multiple = 8 * pipe.base.vae_scale_factor
        return tuple(multiple * round(native * side / short / multiple) for side in (settings.height, settings.width))
    return settings.height, settings.width


def _generate_one(pipe, method: MethodSpec, prompt: BenchmarkPrompt, settings: GenerationSettings, seed: int):
    import torch

    actor_prompt = caption = None
    actor_tokens: list[str] = []
    if method.kind == "multicondition":
        if method.use_actor and method.embeddings_dir:
            known = [
                (name, placeholder_token(actor_id))
                for name, actor_id in zip(prompt.actors, prompt.actor_ids)
                if (Path(method.embeddings_dir) / embedding_file_name(actor_id)).exists()
            ]
            if known:
                actor_tokens = [t for _, t in known]
                actor_prompt = prompt_with_actor_tokens(
                    prompt.prompt, [n for n, _ in known], actor_tokens, pipe.base.tokenizer
                )
        if method.use_caption and pipe.controlnet is not None and (prompt.title or prompt.actors):
            if method.caption_controls is None:
                raise ValueError(
                    f"method {method.name}: the caption branch needs caption_controls= (the asset's folder)"
                )
            caption = read_caption_control(method.caption_controls, prompt.prompt_id)
    # Plain methods use the same pipeline with no extra branch: exactly classifier-free guidance.
    scales = settings.scales if method.kind == "multicondition" else GuidanceScales(settings.scales.prompt, 0.0, 0.0)
    height, width = image_size(pipe, method, settings)
    constrained = caption is not None and method.use_localized_attention and settings.attention.enabled
    generator = torch.Generator().manual_seed(seed)
    return pipe(
        prompt.prompt,
        actor_prompt=actor_prompt,
        control_image=caption.canny if caption is not None else None,
        scales=scales,
        num_inference_steps=settings.num_inference_steps,
        height=height,
        width=width,
        generator=generator,
        controlnet_conditioning_scale=settings.controlnet_conditioning_scale,
        caption_layout=caption.layout if constrained else None,
        actor_tokens=actor_tokens,
        attention=settings.attention if constrained else None,
    )[0]


def _copy_from_folder(method: MethodSpec, prompt: BenchmarkPrompt, target: Path) -> bool:
    for suffix in FOLDER_SUFFIXES:
        source = Path(method.folder) / f"{prompt.prompt_id}{suffix}"
        if source.exists():
            with Image.open(source) as image:
                image.convert("RGB").save(target)
            return True
    return False


def generate_benchmark_images(
    methods: list[MethodSpec],
    prompts: list[BenchmarkPrompt],
    out_dir: Path,
    settings: GenerationSettings | None = None,
    log: ProgressLog | None = None,
):
    """One PNG per (method, prompt) under ``out_dir/<method>/``; returns the manifest DataFrame.

    Columns: method, kind, prompt_id, prompt, image_path (str or None), status
    ("generated", "copied", "missing"), width, height (as made, before any resize),
    constrained_tokens (prompt tokens under the localized attention constraint, summed over
    the guidance rows; 0 when it was off or found no caption or actor token),
    truncated_tokens (prompt and actor-prompt tokens past CLIP's window, which the text
    encoder dropped; 0 when everything fit), seconds. ``log`` gets a progress line per
    method (images done/total, rate, ETA).
    """
    import pandas as pd

    settings = settings or GenerationSettings()
    out_dir = Path(out_dir)
    rows = []
    for method in methods:
        method_dir = BenchmarkImagesFolder(out_dir).method_dir(method_folder_name(method.name))
        method_dir.mkdir(parents=True, exist_ok=True)
        pipe = None if method.kind == "folder" else _pipeline_for(method, settings)
        if pipe is not None:
            pipe.set_progress_bar_config(disable=True)
        with Progress(f"benchmark_images {method.name}", len(prompts), log, unit="images") as progress:
            for index, prompt in enumerate(prompts):
                target = BenchmarkImagesFolder(out_dir).image(method_folder_name(method.name), prompt.prompt_id)
                started = time.perf_counter()
                size, constrained_tokens, truncated_tokens = (None, None), 0, 0
                if pipe is None:
                    status = "copied" if _copy_from_folder(method, prompt, target) else "missing"
                else:
                    image = _generate_one(pipe, method, prompt, settings, settings.seed + index)
                    image.save(target)
                    status = "generated"
                    constrained_tokens = pipe.last_constraint.n_constrained_tokens if pipe.last_constraint else 0
                    truncated_tokens = pipe.last_truncated_tokens
                if status != "missing":
                    with Image.open(target) as written:
                        size = written.size
                rows.append(
                    {
                        "method": method.name,
                        "kind": method.kind,
                        "prompt_id": prompt.prompt_id,
                        "prompt": prompt.prompt,
                        "image_path": str(target) if status != "missing" else None,
                        "status": status,
                        "width": size[0],
                        "height": size[1],
                        "constrained_tokens": constrained_tokens,
                        "truncated_tokens": truncated_tokens,
                        "seconds": time.perf_counter() - started,
                    }
                )
                progress.update(status=status)
        del pipe
    manifest = pd.DataFrame(rows)
    manifest.to_csv(BenchmarkImagesFolder(out_dir).manifest, index=False)
    return manifest
