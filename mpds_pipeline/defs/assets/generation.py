"""GPU stages: ``lora_weights``, ``benchmark_prompts``, ``actor_embeddings``,
``caption_controls``, ``benchmark_images`` and ``benchmark_report`` (their steps: vision/).

They read the release under export/ but are not downstream of the ``export`` asset, so
re-merging captions re-exports the dataset without hours of GPU training. Materialise
them explicitly (``--select 'group:generation'``) when the export is ready.
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
from ...curate.subsets import SubsetSpec
from ...vision.buckets import poster_size
from ...vision.caption_control import CaptionControlSettings
from ...vision.choices import AttentionSetting
from ...vision.holdout import HoldoutSettings
from ...vision.lora_training import LoraSettings
from ...vision.metrics.report import BenchmarkReportSettings
from ...vision.sampling_settings import GenerationSettings, GuidanceScales, LocalizedAttentionSettings
from ...vision.textual_inversion import TextualInversionSettings
from ..resources import DataDirResource, ModelsResource
from ..settings_models import ALL, config_fields, derived, to_settings
from .actor_photos import actor_photos
from .metadata import plot_image, preview_table, tabulate

GENERATION_GROUP = "generation"


class LoraConfig(
    derived(
        Config,
        config_fields(
            LoraSettings,
            ["rank", "learning_rate", "resolution", "train_batch_size", "gradient_accumulation_steps"]
            + ["max_train_steps", "n_pairs", "sample_seed", "seed", "checkpointing_steps", "mixed_precision"]
            + ["aspect_buckets", "bucket_multiple"],
        ),
        config_fields(SubsetSpec, ["genres", "year_min", "year_max", "actors", "certificates"]),
    )
):
    one_per_duplicate_group: bool = Field(True, description="draw at most one poster per near-duplicate group")


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
    from ...vision.benchmark_steps import NoTrainingPairs, lora_training_pairs
    from ...vision.lora_training import train_lora

    layout = data_dir.layout
    spec = to_settings(SubsetSpec, config)
    try:
        pairs, counts, subset = lora_training_pairs(
            layout.export_dir,
            layout.movies_file,
            layout.lora_dir,
            config.n_pairs,
            config.sample_seed,
            spec,
            config.one_per_duplicate_group,
        )
    except NoTrainingPairs as error:
        raise Failure(str(error)) from None
    if config.one_per_duplicate_group and not counts.get("groups_known"):
        context.log.warning("the export has no duplicate_group column: materialise near_duplicates, then export")
    settings = to_settings(LoraSettings, config, pretrained_model=models.stable_diffusion, device=models.device)
    result = train_lora(settings, pairs, layout.lora_dir, log=context.log.info)
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


class BenchmarkPromptsConfig(derived(Config, config_fields(HoldoutSettings, ALL))):
    pass


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
    draw = to_settings(HoldoutSettings, config)
    prompts = held_out_posters(layout.export_dir, draw.n_prompts, draw.seed, train_ids, draw.actors_per_poster, groups)
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


class ActorEmbeddingsConfig(
    derived(
        Config,
        config_fields(
            TextualInversionSettings,
            ["learning_rate", "final_learning_rate", "max_train_steps", "train_batch_size", "resolution"]
            + ["initializer_token", "too_few_images", "aspect_buckets", "bucket_multiple"],
        ),
    )
):
    max_actors: int | None = Field(
        None, description="cap on actors trained (None: every actor of the benchmark prompts)"
    )


@asset(group_name=GENERATION_GROUP, deps=[benchmark_prompts, actor_photos], kinds={"pytorch", "safetensors"})
def actor_embeddings(
    context: AssetExecutionContext, config: ActorEmbeddingsConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Textual-inversion embeddings of the benchmark movies' actors from their 3-5 face
    crops (export/actor_photos); one `nm<id>.safetensors` per actor, token `<nm…>`,
    loadable with a stock `load_textual_inversion(path, token=...)`. A crop that does not
    decode is left out and counted; an actor left under 3 is trained or skipped as configured."""
    from ...vision.benchmark_steps import actors_to_train, embedding_tables, read_benchmark_prompts
    from ...vision.textual_inversion import export_actor_photos, train_actor_embeddings

    layout = data_dir.layout
    rows, _ = read_benchmark_prompts(layout.benchmark_prompts_file)
    photos = export_actor_photos(layout.export_dir)
    wanted = actors_to_train(rows, photos, config.max_actors)
    settings = to_settings(
        TextualInversionSettings, config, pretrained_model=models.stable_diffusion, device=models.device
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
    used, buckets = embedding_tables(results)
    return MaterializeResult(
        metadata={
            "actors_trained": sum(not r.skipped for r in results),
            "actors_skipped_too_few_photos": sum(r.skipped for r in results),
            "photo_decode_failures": undecodable,
            "actors_without_photos": len({a for r in rows for a in r["actor_ids"]} - set(photos)),
            "photo_warnings": sum(bool(r.warning) for r in results),
            "aspect_buckets": preview_table(buckets),
            "photos_per_actor": preview_table(used, limit=50),
            "token_naming": "<nm + 7-digit person id>, e.g. <nm0000206>",
            "folder": MetadataValue.path(str(out)),
        }
    )


class CaptionControlsConfig(derived(Config, config_fields(CaptionControlSettings, ["size", "height", "font_path"]))):
    pass


@asset(group_name=GENERATION_GROUP, deps=[benchmark_prompts], kinds={"python", "png"})
def caption_controls(
    context: AssetExecutionContext, config: CaptionControlsConfig, data_dir: DataDirResource
) -> MaterializeResult:
    """The poster caption (title, actor names) drawn as a sketch in a poster layout, then
    canny edges (OpenCV): the ControlNet condition of the caption branch, and the layout
    (where the title and each name are drawn) for the localized attention constraint.
    `benchmark_images` reads these files by prompt id."""
    from ...vision.benchmark_steps import read_benchmark_prompts
    from ...vision.caption_control import default_font_path, render_caption_controls

    layout = data_dir.layout
    rows, _ = read_benchmark_prompts(layout.benchmark_prompts_file)
    height = config.height or poster_size(config.size)[0]
    result = render_caption_controls(
        [(r["prompt_id"], r["title"], r["actors"]) for r in rows],
        layout.caption_controls_dir,
        to_settings(CaptionControlSettings, config, height=height),
        log=context.log.info,
    )
    first = next(iter(result.control_paths.values()), None)
    return MaterializeResult(
        metadata={
            "controls": len(result.control_paths),
            "size": f"{config.size}x{height}",
            "font": config.font_path or default_font_path(),
            "mean_edge_fraction": round(result.mean_edge_fraction, 4),
            "mean_text_area": MetadataValue.float(round(result.mean_text_area, 4)),
            "folder": MetadataValue.path(str(layout.caption_controls_dir)),
            **({"example": plot_image(context, first, "caption control")} if first else {}),
        }
    )


class BenchmarkImagesConfig(
    derived(
        Config,
        config_fields(GenerationSettings, ["num_inference_steps", "height", "width", "seed"]),
        config_fields(GuidanceScales, ["prompt", "actor", "caption"]),
        config_fields(LocalizedAttentionSettings, ["bias", "branches"]),
    )
):
    localized_attention: AttentionSetting = Field(
        "hard", description="'hard' (-inf outside the region), 'bias' (-attention_bias), or 'off'"
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
    from ...vision.benchmark_steps import (
        attention_from_setting,
        benchmark_methods,
        method_summary,
        ran_unconstrained,
        read_benchmark_prompts,
    )
    from ...vision.generation import generate_benchmark_images

    layout = data_dir.layout
    _, prompts = read_benchmark_prompts(layout.benchmark_prompts_file)
    methods = benchmark_methods(
        models.stable_diffusion,
        models.controlnet,
        layout.lora_dir,
        layout.actor_embeddings_dir,
        layout.caption_controls_dir,
        config.baselines,
        config.image_folders,
    )
    attention = attention_from_setting(config.localized_attention, config.attention_bias, config.attention_branches)
    settings = to_settings(
        GenerationSettings,
        config,
        scales=to_settings(GuidanceScales, config),
        device=models.device,
        attention=attention,
    )
    manifest = generate_benchmark_images(methods, prompts, layout.benchmark_images.path, settings, log=context.log.info)
    summary = method_summary(manifest)
    truncated = int((manifest["truncated_tokens"] > 0).sum())
    if truncated:
        context.log.warning(
            f"{truncated} images were made from a prompt longer than CLIP's 77 tokens: the text encoder "
            "dropped its tail (see truncated_tokens in the manifest)"
        )
    if attention.enabled and ran_unconstrained(summary):
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


class BenchmarkReportConfig(
    derived(
        Config,
        config_fields(
            BenchmarkReportSettings,
            ["fid_resize", "fid_resize_method", "metric_image_size", "baselines", "grid_prompts"],
        ),
    )
):
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
    from ...vision.benchmark_steps import read_benchmark_prompts
    from ...vision.metrics.report import benchmark_report as score

    layout = data_dir.layout
    rows, _ = read_benchmark_prompts(layout.benchmark_prompts_file)
    manifest = pd.read_csv(layout.benchmark_images.manifest)
    settings = to_settings(
        BenchmarkReportSettings,
        config,
        clip_model=models.clip,
        clip_s_model=models.clip_s,
        pickscore_model=models.pickscore,
        pickscore_processor=models.pickscore_processor,
        fid_extractor=models.fid_features,
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
