"""Benchmark image generation: the same held-out prompts through every method.

Method kinds (``MethodSpec.kind``):
- ``"sd"``: any diffusers text-to-image model id or path (base SD1.5, SD2.1, ...);
- ``"lora"``: a base model plus a LoRA directory;
- ``"multicondition"``: base + LoRA + actor embeddings dir + ControlNet, with
  ``use_actor``/``use_caption`` switches for the ablations (Fig. 5);
- ``"folder"``: images made elsewhere for the same prompts (DALL-E, Firefly), matched by
  file name ``<prompt_id>.<png|jpg|jpeg|webp>``, copied in as PNG.

Output: ``out_dir/<method>/<prompt_id>.png`` and a manifest DataFrame (one row per
(method, prompt), ``image_path`` None where a folder lacks the image). Every method
draws the same seed for a prompt, so differences come from the method, not the noise.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mpds_pipeline.vision.caption_control import render_caption_control
from mpds_pipeline.vision.lora_training import DEFAULT_BASE_MODEL
from mpds_pipeline.vision.multicondition import GuidanceScales, MultiConditionPipeline, prompt_with_actor_tokens
from mpds_pipeline.vision.textual_inversion import embedding_file_name, placeholder_token

METHOD_KINDS = ("sd", "lora", "multicondition", "folder")
FOLDER_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class MethodSpec:
    name: str  # column/row label in the report, and the output folder name
    kind: str  # one of METHOD_KINDS
    model: str = DEFAULT_BASE_MODEL
    lora_dir: Path | None = None
    embeddings_dir: Path | None = None
    controlnet: str | None = None
    use_actor: bool = True
    use_caption: bool = True
    folder: Path | None = None

    def __post_init__(self):
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


@dataclass
class GenerationSettings:
    num_inference_steps: int = 50
    scales: GuidanceScales = field(default_factory=GuidanceScales)  # s1 is the CFG scale of every method
    height: int = 512
    width: int = 512
    seed: int = 0
    controlnet_conditioning_scale: float = 1.0
    device: str | None = None
    dtype: str | None = None  # "float16", "float32"; None: fp16 on CUDA, fp32 on CPU


def _pipeline_for(method: MethodSpec, settings: GenerationSettings):
    import torch

    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, settings.dtype) if settings.dtype else None
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
        torch_dtype=dtype,
    )


def _generate_one(pipe, method: MethodSpec, prompt: BenchmarkPrompt, settings: GenerationSettings, seed: int):
    import torch

    actor_prompt = control = None
    if method.kind == "multicondition":
        if method.use_actor and method.embeddings_dir:
            known = [
                (name, placeholder_token(actor_id))
                for name, actor_id in zip(prompt.actors, prompt.actor_ids)
                if (Path(method.embeddings_dir) / embedding_file_name(actor_id)).exists()
            ]
            if known:
                actor_prompt = prompt_with_actor_tokens(prompt.prompt, [n for n, _ in known], [t for _, t in known])
        if method.use_caption and pipe.controlnet is not None and (prompt.title or prompt.actors):
            control = render_caption_control(prompt.title, prompt.actors, size=max(settings.height, settings.width))[1]
    # Plain methods use the same pipeline with no extra branch: exactly classifier-free guidance.
    scales = settings.scales if method.kind == "multicondition" else GuidanceScales(settings.scales.prompt, 0.0, 0.0)
    generator = torch.Generator().manual_seed(seed)
    return pipe(
        prompt.prompt,
        actor_prompt=actor_prompt,
        control_image=control,
        scales=scales,
        num_inference_steps=settings.num_inference_steps,
        height=settings.height,
        width=settings.width,
        generator=generator,
        controlnet_conditioning_scale=settings.controlnet_conditioning_scale,
    )[0]


def _copy_from_folder(method: MethodSpec, prompt: BenchmarkPrompt, target: Path) -> bool:
    from PIL import Image

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
):
    """One PNG per (method, prompt) under ``out_dir/<method>/``; returns the manifest DataFrame.

    Columns: method, kind, prompt_id, prompt, image_path (str or None), status
    ("generated", "copied", "missing"), seconds.
    """
    import pandas as pd

    settings = settings or GenerationSettings()
    out_dir = Path(out_dir)
    rows = []
    for method in methods:
        method_dir = out_dir / method.name
        method_dir.mkdir(parents=True, exist_ok=True)
        pipe = None if method.kind == "folder" else _pipeline_for(method, settings)
        if pipe is not None:
            pipe.set_progress_bar_config(disable=True)
        for index, prompt in enumerate(prompts):
            target = method_dir / f"{prompt.prompt_id}.png"
            started = time.perf_counter()
            if pipe is None:
                status = "copied" if _copy_from_folder(method, prompt, target) else "missing"
            else:
                _generate_one(pipe, method, prompt, settings, settings.seed + index).save(target)
                status = "generated"
            rows.append(
                {
                    "method": method.name,
                    "kind": method.kind,
                    "prompt_id": prompt.prompt_id,
                    "prompt": prompt.prompt,
                    "image_path": str(target) if status != "missing" else None,
                    "status": status,
                    "seconds": time.perf_counter() - started,
                }
            )
        del pipe
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    return manifest
