"""GPU stages: ``lora_weights``, ``benchmark_prompts``, ``actor_embeddings``,
``caption_controls``, ``benchmark_images`` and ``benchmark_report``.

Model locations come from the ``models`` resource (hub ids or local folders); every
training and sampling setting is asset config, with the paper's values as defaults.

These assets read the release under export/ but are deliberately not downstream of the
``export`` asset in the graph: re-merging captions (``--select 'poster_prompts*'``)
re-exports the dataset without starting hours of GPU training. Materialise this group
explicitly (``--select 'group:generation'``) when the export is ready.
"""

import json
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from ...base.files import write_atomic
from ...vision.buckets import DEFAULT_BUCKETS, poster_size
from ...vision.choices import GUIDANCE_BRANCHES, AttentionSetting
from ...vision.device import Precision
from ...vision.metrics import ResizeMethod
from ...vision.textual_inversion import TooFewImages
from ..resources import DataDirResource, ModelsResource
from .actor_photos import actor_photos
from .metadata import plot_image, preview_table, tabulate

GENERATION_GROUP = "generation"


class LoraConfig(Config):
    rank: int = 4
    learning_rate: float = 1e-4
    resolution: int = 512
    train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_train_steps: int = 15000
    n_pairs: int = Field(2000, description="pairs sampled from the export (the paper's 2,000)")
    sample_seed: int = 0
    seed: int = 42
    checkpointing_steps: int = 500
    mixed_precision: Precision = Field(
        "auto", description="auto: bf16 where the GPU supports it, else fp16; CPU runs train in fp32"
    )
    aspect_buckets: list[str] = Field(
        list(DEFAULT_BUCKETS), description="WIDTHxHEIGHT at 512 px, scaled to resolution; [] = the paper's square crop"
    )
    bucket_multiple: int = Field(64, description="bucket sides are rounded to this, or to resolution/8 if finer")
    one_per_duplicate_group: bool = Field(True, description="draw at most one poster per near-duplicate group")
    subset_genres: list[str] = Field(default_factory=list, description="train on posters of any of these genres")
    subset_year_min: int | None = None
    subset_year_max: int | None = None
    subset_actors: list[str] = Field(default_factory=list, description="names or nm ids: posters of any of them")
    subset_certificates: list[str] = Field(default_factory=list, description="e.g. PG-13 (matches US:PG-13)")


def _lora_subset(config: LoraConfig, movies_file):
    """The configured subset (None: every poster) from the curated movies."""
    from ...curate.store import read_table
    from ...curate.subsets import SubsetSpec, select_subset

    spec = SubsetSpec(
        genres=config.subset_genres,
        year_min=config.subset_year_min,
        year_max=config.subset_year_max,
        actors=config.subset_actors,
        certificates=config.subset_certificates,
    )
    return None if spec.is_everything else select_subset(read_table(movies_file), spec)


@asset(group_name=GENERATION_GROUP, kinds={"pytorch", "safetensors"})
def lora_weights(
    context: AssetExecutionContext, config: LoraConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """LoRA (peft) on Stable Diffusion 1.5's UNet, trained on pairs sampled from the export;
    `pytorch_lora_weights.safetensors` loads with a stock `load_lora_weights(dir)`.
    Checkpoints let an interrupted run resume. A training image that does not decode is
    left out and recorded in its download manifest, which keeps it out of the next export."""
    from ...curate.image_checks import LORA_LATENTS
    from ...curate.manifest import record_poster_decode_results
    from ...vision.holdout import write_train_ids
    from ...vision.lora_training import LoraSettings, sample_pairs, train_lora

    layout = data_dir.layout
    out = layout.lora_dir
    subset = _lora_subset(config, layout.movies_file)
    counts: dict = {}
    pairs = sample_pairs(
        layout.export_dir,
        config.n_pairs,
        config.sample_seed,
        ids=subset.ids if subset else None,
        one_per_group=config.one_per_duplicate_group,
        counts=counts,
    )
    if not pairs:
        raise Failure(f"no training pair left: {counts} (subset: {subset.spec.describe() if subset else 'everything'})")
    if config.one_per_duplicate_group and not counts.get("groups_known"):
        context.log.warning("the export has no duplicate_group column: materialise near_duplicates, then export")
    write_train_ids(out, pairs)
    settings = LoraSettings(
        pretrained_model=models.stable_diffusion,
        rank=config.rank,
        learning_rate=config.learning_rate,
        resolution=config.resolution,
        train_batch_size=config.train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_train_steps=config.max_train_steps,
        n_pairs=config.n_pairs,
        sample_seed=config.sample_seed,
        seed=config.seed,
        checkpointing_steps=config.checkpointing_steps,
        mixed_precision=config.mixed_precision,
        device=models.device,
        aspect_buckets=tuple(config.aspect_buckets),
        bucket_multiple=config.bucket_multiple,
    )
    result = train_lora(settings, pairs, out, log=context.log.info)
    decodes = record_poster_decode_results(
        layout.poster_images_root,
        {int(path.stem): error for path, error in result.image_outcomes.items()},
        LORA_LATENTS,
    )
    if result.decode_failures:
        context.log.warning(f"{result.decode_failures} training images did not decode; left out and marked invalid")
    if result.superseded_checkpoints:
        context.log.warning(
            "the checkpoints were made with other settings or training pairs, so training started afresh; "
            f"they are kept in {result.superseded_checkpoints}"
        )
    return MaterializeResult(
        metadata=tabulate(
            {
                **{k: v for k, v in result.metadata().items() if v is not None},
                "pairs_at_each_stage": counts,
                **(subset.metadata() if subset else {"subset": "everything"}),
                "manifest_rows_marked_decoded": decodes.decoded,
                "manifest_rows_marked_invalid": decodes.failed,
                "base_model": models.stable_diffusion,
                "loss_curve": plot_image(context, result.loss_curve_png, "loss curve"),
                "weights": MetadataValue.path(str(result.weights_path)),
            }
        )
    )


class BenchmarkPromptsConfig(Config):
    n_prompts: int = Field(100, description="held-out posters to generate for")
    seed: int = 0
    max_actors: int = 3


@asset(
    group_name=GENERATION_GROUP,
    deps=[lora_weights],
    kinds={"python", "json"},
    check_specs=[
        AssetCheckSpec(
            "benchmark_leak_free",
            asset="benchmark_prompts",
            blocking=True,
            description="No benchmark poster shares a near-duplicate group with a LoRA training poster.",
        )
    ],
)
def benchmark_prompts(config: BenchmarkPromptsConfig, data_dir: DataDirResource) -> MaterializeResult:
    """Held-out posters (never in the LoRA's training pairs, nor near-duplicates of one):
    their prompts, titles, top-billed actors and real images, shared by every benchmark method."""
    from ...curate.near_duplicates import leaking_groups, read_groups
    from ...vision.holdout import held_out_posters, read_train_ids

    layout = data_dir.layout
    groups = read_groups(layout.near_duplicates_file)
    train_ids = read_train_ids(layout.lora_dir)
    prompts = held_out_posters(layout.export_dir, config.n_prompts, config.seed, train_ids, config.max_actors, groups)
    leaks = leaking_groups([p.movie_id for p in prompts], train_ids, groups)
    path = layout.benchmark_prompts_file
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps([p.to_dict() for p in prompts], indent=1))
    frame = pd.DataFrame([p.to_dict() for p in prompts])
    leak_check = AssetCheckResult(
        check_name="benchmark_leak_free",
        passed=not leaks and bool(groups),
        # Without groups the split is unchecked, not leaking: a warning, which blocks nothing.
        severity=AssetCheckSeverity.ERROR if groups else AssetCheckSeverity.WARN,
        description=(
            None
            if not leaks and groups
            else "no near_duplicates table: materialise it, then export"
            if not groups
            else f"{len(leaks)} benchmark posters share a group with training posters"
        ),
        metadata={
            "benchmark_posters": len(prompts),
            "training_posters": len(train_ids),
            "grouped_posters": len(groups),
            "leaks": json.dumps({str(k): v for k, v in list(leaks.items())[:20]}),
        },
    )
    return MaterializeResult(
        check_results=[leak_check],
        metadata={
            "prompts": len(prompts),
            "near_duplicate_groups_used": bool(groups),
            "path": MetadataValue.path(str(path)),
            "preview": preview_table(frame[["prompt_id", "title", "actors", "prompt"]] if len(frame) else frame),
        },
    )


def _read_benchmark_prompts(layout):
    from ...vision.generation import BenchmarkPrompt

    rows = json.loads(layout.benchmark_prompts_file.read_text())
    return rows, [BenchmarkPrompt(r["prompt_id"], r["prompt"], r["title"], r["actors"], r["actor_ids"]) for r in rows]


class ActorEmbeddingsConfig(Config):
    learning_rate: float = 5e-4
    final_learning_rate: float = 1e-6
    max_train_steps: int = 500
    train_batch_size: int = 4
    resolution: int = 512
    initializer_token: str = "person"
    max_actors: int | None = Field(
        None, description="cap on actors trained (None: every actor of the benchmark prompts)"
    )
    too_few_images: TooFewImages = Field(
        "warn", description="an actor with fewer than 3 face crops: 'warn' (train anyway) or 'skip'"
    )
    aspect_buckets: list[str] = Field(list(DEFAULT_BUCKETS), description="as lora_weights'; [] = square only")
    bucket_multiple: int = 64


@asset(group_name=GENERATION_GROUP, deps=[benchmark_prompts, actor_photos], kinds={"pytorch", "safetensors"})
def actor_embeddings(
    context: AssetExecutionContext, config: ActorEmbeddingsConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Textual-inversion embeddings of the benchmark movies' actors from their 3-5 face
    crops (export/actor_photos); one `nm<id>.safetensors` per actor, token `<nm…>`,
    loadable with a stock `load_textual_inversion(path, token=...)`. A crop that does not
    decode is left out and counted; an actor left under 3 is trained or skipped as configured."""
    from ...vision.textual_inversion import TextualInversionSettings, export_actor_photos, train_actor_embeddings

    layout = data_dir.layout
    rows, _ = _read_benchmark_prompts(layout)
    photos = export_actor_photos(layout.export_dir)
    wanted = list(dict.fromkeys(a for r in rows for a in r["actor_ids"] if a in photos))[: config.max_actors]
    settings = TextualInversionSettings(
        pretrained_model=models.stable_diffusion,
        learning_rate=config.learning_rate,
        final_learning_rate=config.final_learning_rate,
        max_train_steps=config.max_train_steps,
        train_batch_size=config.train_batch_size,
        resolution=config.resolution,
        initializer_token=config.initializer_token,
        too_few_images=config.too_few_images,
        device=models.device,
        aspect_buckets=tuple(config.aspect_buckets),
        bucket_multiple=config.bucket_multiple,
    )
    out = layout.actor_embeddings_dir
    results = train_actor_embeddings(settings, {a: photos[a] for a in wanted}, out, context.log.info) if wanted else []
    for result in results:
        if result.warning:
            context.log.warning(result.warning)
    undecodable = sum(len(r.decode_failures) for r in results)
    if undecodable:
        context.log.warning(
            f"{undecodable} actor face crops did not decode: left out of training (materialise "
            "actor_photos, which re-crops a file whose hash changed, then export)"
        )
    used = pd.DataFrame(
        [
            {
                "actor_id": r.actor_id,
                "token": r.token,
                "photos": r.n_images,
                "trained": not r.skipped,
                "files": ", ".join(p.name for p in r.images),
                "undecodable": ", ".join(p.name for p in r.decode_failures),
            }
            for r in results
        ]
    )
    return MaterializeResult(
        metadata={
            "actors_trained": sum(not r.skipped for r in results),
            "actors_skipped_too_few_photos": sum(r.skipped for r in results),
            "photo_decode_failures": undecodable,
            "actors_without_photos": len({a for r in rows for a in r["actor_ids"]} - set(photos)),
            "photo_warnings": sum(bool(r.warning) for r in results),
            "aspect_buckets": preview_table(
                pd.DataFrame(
                    [{"bucket": b, "photos": n} for b, n in _summed([r.bucket_counts for r in results]).items()],
                    columns=["bucket", "photos"],
                )
            ),
            "photos_per_actor": preview_table(used, limit=50),
            "token_naming": "<nm + 7-digit person id>, e.g. <nm0000206>",
            "folder": MetadataValue.path(str(out)),
        }
    )


def _summed(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for key, value in count.items():
            total[key] = total.get(key, 0) + value
    return total


class CaptionControlsConfig(Config):
    size: int = Field(512, description="width; keep size and height equal to benchmark_images' width and height")
    height: int | None = Field(None, description="None: a poster's 2:3 (1.5 x size); = size for the paper's square")
    font_path: str | None = Field(None, description="TTF font; default matplotlib's DejaVu Sans")


@asset(group_name=GENERATION_GROUP, deps=[benchmark_prompts], kinds={"python", "png"})
def caption_controls(
    context: AssetExecutionContext, config: CaptionControlsConfig, data_dir: DataDirResource
) -> MaterializeResult:
    """The poster caption (title, actor names) drawn as a sketch in a poster layout, then
    canny edges (OpenCV): the ControlNet condition of the caption branch, and the layout
    (where the title and each name are drawn) for the localized attention constraint.
    `benchmark_images` reads these files by prompt id."""
    from ...vision.caption_control import CaptionControlSettings, default_font_path, render_caption_controls

    layout = data_dir.layout
    rows, _ = _read_benchmark_prompts(layout)
    result = render_caption_controls(
        [(r["prompt_id"], r["title"], r["actors"]) for r in rows],
        layout.caption_controls_dir,
        CaptionControlSettings(
            size=config.size, font_path=config.font_path, height=config.height or poster_size(config.size)[0]
        ),
        log=context.log.info,
    )
    first = next(iter(result.control_paths.values()), None)
    return MaterializeResult(
        metadata={
            "controls": len(result.control_paths),
            "size": f"{config.size}x{config.height or poster_size(config.size)[0]}",
            "font": config.font_path or default_font_path(),
            "mean_edge_fraction": round(result.mean_edge_fraction, 4),
            "mean_text_area": MetadataValue.float(round(result.mean_text_area, 4)),
            "folder": MetadataValue.path(str(layout.caption_controls_dir)),
            **({"example": plot_image(context, first, "caption control")} if first else {}),
        }
    )


class BenchmarkImagesConfig(Config):
    num_inference_steps: int = 50
    height: int = Field(
        768,
        description="size of the LoRA and MPDS methods (2:3 like a poster; 512x512 is the paper's); "
        "sd baselines keep the shape with their native short side",
    )
    width: int = 512
    s1: float = Field(7.5, description="prompt guidance (the CFG scale of every method)")
    s2: float = Field(2.0, description="actor guidance")
    s3: float = Field(2.0, description="caption-control guidance")
    seed: int = 0
    localized_attention: AttentionSetting = Field(
        "hard", description="'hard' (-inf outside the region), 'bias' (-attention_bias), or 'off'"
    )
    attention_bias: float = Field(5.0, description="logit penalty in 'bias' mode")
    # Dagster offers choices for a Literal field but not for a list of them: checked by
    # LocalizedAttentionSettings when the run starts.
    attention_branches: list[str] = Field(
        list(GUIDANCE_BRANCHES), description="guidance rows constrained: p prompt, a actor, c caption"
    )
    baselines: list[str] = Field(
        default_factory=list,
        description="extra diffusers text-to-image model ids, e.g. stabilityai/stable-diffusion-2-1; "
        "each runs at its native size",
    )
    image_folders: dict[str, str] = Field(
        default_factory=dict, description="name -> folder of images made elsewhere, named <prompt_id>.png/.jpg"
    )


@asset(group_name=GENERATION_GROUP, deps=[lora_weights, actor_embeddings, caption_controls], kinds={"pytorch", "png"})
def benchmark_images(
    context: AssetExecutionContext, config: BenchmarkImagesConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """The held-out prompts through base SD1.5, the LoRA model, the full multi-condition
    model and its ablations (no caption branch, no actor branch, no localized attention),
    plus configured baselines and folders of images made elsewhere. The caption branch
    reads `caption_controls`' files."""
    from ...vision.generation import GenerationSettings, MethodSpec, generate_benchmark_images
    from ...vision.localized_attention import LocalizedAttentionSettings
    from ...vision.multicondition import GuidanceScales

    layout = data_dir.layout
    _, prompts = _read_benchmark_prompts(layout)
    sd = models.stable_diffusion
    mpds = dict(
        model=sd,
        lora_dir=layout.lora_dir,
        embeddings_dir=layout.actor_embeddings_dir,
        controlnet=models.controlnet,
        caption_controls=layout.caption_controls_dir,
    )
    methods = [
        MethodSpec("SD1.5", "sd", model=sd),
        *[MethodSpec(Path(m).name or m, "sd", model=m) for m in config.baselines],
        MethodSpec("SD1.5+LoRA", "lora", model=sd, lora_dir=mpds["lora_dir"]),
        MethodSpec("MPDS (full)", "multicondition", **mpds),
        MethodSpec("MPDS w/o caption", "multicondition", **mpds, use_caption=False),
        MethodSpec("MPDS w/o actor", "multicondition", **mpds, use_actor=False),
        MethodSpec("MPDS w/o localized attention", "multicondition", **mpds, use_localized_attention=False),
        *[MethodSpec(name, "folder", folder=Path(folder)) for name, folder in config.image_folders.items()],
    ]
    attention = LocalizedAttentionSettings(
        enabled=config.localized_attention != "off",
        mode=config.localized_attention if config.localized_attention != "off" else "hard",
        bias=config.attention_bias,
        branches=tuple(config.attention_branches),
    )
    settings = GenerationSettings(
        num_inference_steps=config.num_inference_steps,
        height=config.height,
        width=config.width,
        scales=GuidanceScales(config.s1, config.s2, config.s3),
        seed=config.seed,
        device=models.device,
        attention=attention,
    )
    manifest = generate_benchmark_images(methods, prompts, layout.benchmark_images.path, settings, log=context.log.info)
    manifest["size"] = [f"{w:.0f}x{h:.0f}" if w == w else "" for w, h in zip(manifest["width"], manifest["height"])]
    summary = (
        manifest.groupby("method", sort=False)
        .agg(
            kind=("kind", "first"),
            images=("status", "size"),
            made_at=("size", lambda v: ", ".join(sorted(set(v) - {""}))),
            constrained_prompts=("constrained_tokens", lambda v: int((v > 0).sum())),
            mean_constrained_tokens=("constrained_tokens", "mean"),
            truncated_prompts=("truncated_tokens", lambda v: int((v > 0).sum())),
            seconds=("seconds", "sum"),
        )
        .round(2)
        .reset_index()
    )
    truncated = int((manifest["truncated_tokens"] > 0).sum())
    if truncated:
        context.log.warning(
            f"{truncated} images were made from a prompt longer than CLIP's 77 tokens: the text encoder "
            "dropped its tail (see truncated_tokens in the manifest)"
        )
    full = summary[summary["method"] == "MPDS (full)"]
    if attention.enabled and len(full) and full["constrained_prompts"].iloc[0] == 0:
        context.log.warning(
            "localized attention found no title, name or actor token within the 77-token window of any prompt: "
            "MPDS (full) ran unconstrained"
        )
    return MaterializeResult(
        metadata={
            "images": int((manifest["status"] != "missing").sum()),
            "methods": len(methods),
            "truncated_prompts": truncated,
            "per_method": preview_table(summary, limit=50),
            "localized_attention": config.localized_attention if attention.enabled else "off",
            "caption_controls": MetadataValue.path(str(layout.caption_controls_dir)),
            "manifest": MetadataValue.path(str(layout.benchmark_images.manifest)),
        }
    )


class BenchmarkReportConfig(Config):
    fid_resize: int = 299
    fid_resize_method: ResizeMethod = "bicubic"
    metric_image_size: int = Field(512, description="every image is resized to this square before CLIP and PickScore")
    baselines: list[str] | None = Field(
        None, description="methods the PickScore preference compares against; default: the sd and folder methods"
    )
    grid_prompts: int = 4
    ocr: bool = Field(True, description="OCR text accuracy columns (rapidocr-onnxruntime, CPU)")
    ocr_sketch_width: int = Field(512, description="size of the caption sketches read for the OCR upper bound")
    ocr_sketch_height: int = 768


@asset(group_name=GENERATION_GROUP, deps=[benchmark_images], kinds={"pytorch", "json"})
def benchmark_report(
    context: AssetExecutionContext, config: BenchmarkReportConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """CLIP score (100 scale) and CLIP-S (2.5 scale), FID against the held-out real
    posters, mean PickScore and the pairwise preference against each baseline: the paper's
    Table 1 with its protocol, and a Fig. 4-style grid, in the Metadata section of the
    asset's Overview tab; also files under benchmark/report/ (benchmark_report.json)."""
    from ...vision.metrics import BenchmarkReportSettings
    from ...vision.metrics import benchmark_report as score

    layout = data_dir.layout
    rows, _ = _read_benchmark_prompts(layout)
    manifest = pd.read_csv(layout.benchmark_images.manifest)
    settings = BenchmarkReportSettings(
        clip_model=models.clip,
        clip_s_model=models.clip_s,
        pickscore_model=models.pickscore,
        pickscore_processor=models.pickscore_processor,
        fid_extractor=models.fid_features,
        fid_resize=config.fid_resize,
        fid_resize_method=config.fid_resize_method,
        metric_image_size=config.metric_image_size,
        baselines=config.baselines,
        grid_prompts=config.grid_prompts,
        device=models.device,
    )
    text_accuracy = None
    if config.ocr:
        from ...vision.text_accuracy import measure_text_accuracy, opencv_distributions

        text_accuracy = measure_text_accuracy(
            manifest, rows, (config.ocr_sketch_width, config.ocr_sketch_height), log=context.log.info
        )
        if len(opencv_distributions()) != 1:
            context.log.warning(f"OpenCV wheels installed: {opencv_distributions()}; exactly one belongs here")
    result = score(
        manifest,
        [Path(r["image_path"]) for r in rows],
        layout.benchmark_report.path,
        settings,
        log=context.log.info,
        text_accuracy=text_accuracy,
    )
    return MaterializeResult(
        metadata=tabulate(
            {
                "table": preview_table(result.table.reset_index(), limit=100),
                "grid": plot_image(context, result.grid_png, "benchmark grid"),
                **result.metadata(),
                **(
                    {"preference": preview_table(result.preference, limit=100)}
                    if result.preference is not None and len(result.preference)
                    else {}
                ),
                "protocol": preview_table(pd.DataFrame(result.protocol), limit=20, cell_width=120),
                "methods_protocol": preview_table(pd.DataFrame(result.methods), limit=50, cell_width=120),
                "warnings": preview_table(pd.DataFrame({"warning": result.warnings}), limit=50, cell_width=300),
                "report": MetadataValue.path(str(result.report_json)),
                **(text_accuracy.metadata() if text_accuracy is not None else {}),
            }
        )
    )


generation_assets = [
    lora_weights,
    benchmark_prompts,
    actor_embeddings,
    caption_controls,
    benchmark_images,
    benchmark_report,
]
