"""Caption assets: ``vision_prompts`` (BLIP-2), ``rectifications`` (human corrections)
and ``poster_prompts`` (the integrated text that goes to posters.csv), plus the sensor
that re-merges when reviewers drop new corrections."""

from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    Config,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset,
    sensor,
)
from pydantic import Field

from ...vision.captioner import CaptionSettings
from ..jobs import export_job
from ..resources import DataDirResource, ModelsResource
from ..settings_models import config_fields, derived, to_settings
from .curation import movies, poster_images
from .metadata import counts_table, preview_table, tabulate, thumbnail_table
from .partitions import TITLE_PARTITIONS

PROMPTS_GROUP = "prompts"


class CaptionConfig(
    derived(Config, config_fields(CaptionSettings, ["batch_size", "prompt", "max_new_tokens", "num_beams", "dtype"]))
):
    pass


@asset(group_name=PROMPTS_GROUP, deps=[poster_images], partitions_def=TITLE_PARTITIONS, kinds={"pytorch", "parquet"})
def vision_prompts(
    context: AssetExecutionContext, config: CaptionConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """BLIP-2 "vision-perceptive" captions of the partition's verified posters, each with
    its confidence (mean token log-probability), model and settings; resumable. Each
    poster's decode outcome goes to the download manifest: one that does not decode
    leaves the export."""
    from ...curate.manifest import read_manifest, verification_counts
    from ...vision.captioner import CaptionSettings, caption_partition

    layout = data_dir.layout
    image_dir = layout.poster_images_dir(context.partition_key)
    manifest = read_manifest(image_dir)
    verified = manifest[manifest["status"] == "ok"]
    items = [(int(i), image_dir / name) for i, name in zip(verified["id"], verified["file_name"])]
    settings = to_settings(
        CaptionSettings, config, model=models.blip2, device=models.device, prompt=config.prompt or None
    )
    result = caption_partition(
        items,
        layout.vision_prompts_file(context.partition_key),
        settings,
        manifest_dir=image_dir,
        log=context.log.info,
        hashes_parquet=layout.poster_hashes_file(context.partition_key),
    )
    return MaterializeResult(
        metadata=tabulate(
            {
                **result.metadata(),
                **verification_counts(read_manifest(image_dir)),
                "model": models.blip2,
                "path": MetadataValue.path(str(result.out_path)),
                "posters": thumbnail_table(context, result.preview, image_dir),
                "preview": preview_table(pd.DataFrame(result.preview, columns=["id", "caption", "confidence"])),
            }
        )
    )


def _read_vision_prompts(layout) -> pd.DataFrame:
    from ...vision.captioner import read_captions

    files = sorted(layout.vision_prompts_dir.glob("*.parquet"))
    frames = [read_captions(f) for f in files]
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["id", "caption", "confidence", "error"])
    )


def _load_rectifications(layout, vision: pd.DataFrame, movie_ids: set[int]):
    """Corrections for known movies; the BLIP-2 captions are what a first correction replaced."""
    from ...curate.rectify import load_rectifications

    captions = dict(zip(vision["id"].astype(int), vision["caption"])) if not vision.empty else {}
    layout.rectifications_dir.mkdir(parents=True, exist_ok=True)
    return load_rectifications(layout.rectifications_dir, known_ids=movie_ids, current_texts=captions)


@asset(group_name=PROMPTS_GROUP, deps=[movies], kinds={"python", "parquet"})
def rectifications(data_dir: DataDirResource) -> MaterializeResult:
    """Human corrections of captions, dropped as CSV or Label Studio JSON files into
    rectifications/ (or saved by `mpds review`): validated, latest wins per id, every
    correction kept in an audit table with who, when and the text it replaced."""
    from ...curate.store import read_table, write_table

    layout = data_dir.layout
    movie_ids = set(read_table(layout.movies_file)["id"].astype(int))
    result = _load_rectifications(layout, _read_vision_prompts(layout), movie_ids)
    write_table(result.accepted, layout.rectified_file)
    write_table(result.audit, layout.rectification_audit_file)
    write_table(result.rejected.astype({"row": "float64"}), layout.rectification_rejected_file)
    counts = result.metadata()
    reasons = counts.pop("rejection_reasons")
    return MaterializeResult(
        metadata=tabulate(
            {
                **counts,
                "rejection_reasons": counts_table(reasons),
                "rejected_rows": preview_table(result.rejected, limit=20),
                "audit": preview_table(
                    result.audit[["id", "text", "replaced_text", "reviewer", "created_at", "source"]], limit=20
                ),
                "folder": MetadataValue.path(str(layout.rectifications_dir)),
            }
        )
    )


class PosterPromptsConfig(Config):
    synopsis_template: str = Field(
        "{title}. Genres: {genres}. Starring: {actors}. {synopsis}", description="movie-synopsis prompt"
    )
    max_tokens: int = Field(77, description="CLIP's window, BOS and EOS included")
    max_actors: int = 3


@asset(group_name=PROMPTS_GROUP, deps=[movies, vision_prompts, rectifications], kinds={"python", "parquet"})
def poster_prompts(
    context: AssetExecutionContext, config: PosterPromptsConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Per poster: the movie-synopsis prompt, the vision-perceptive prompt (rectified when
    a correction exists, else BLIP-2's), the integrated text fitted to CLIP's 77 tokens
    (caption first, then title, genres, actors, synopsis), and the poster caption."""
    from ...curate.prompts import build_poster_prompts
    from ...curate.store import read_table, write_table

    layout = data_dir.layout
    movies_frame, vision = read_table(layout.movies_file), _read_vision_prompts(layout)
    # Read the folder fresh, so `--select 'poster_prompts*'` alone picks up new files.
    rectified = _load_rectifications(layout, vision, set(movies_frame["id"].astype(int)))
    tokenizer = _clip_tokenizer(models)
    frame = build_poster_prompts(
        movies_frame,
        vision,
        rectified.corrections,
        template=config.synopsis_template,
        tokenizer=tokenizer,
        max_tokens=config.max_tokens,
        max_actors=config.max_actors,
        log=context.log.info,
    )
    out = write_table(frame, layout.poster_prompts_file)
    return MaterializeResult(
        metadata={
            "posters": len(frame),
            **{f"vision_{k}": int(v) for k, v in frame["vision_source"].value_counts().items()},
            "max_text_tokens": int(frame["text_tokens"].max()) if len(frame) else 0,
            "token_counter": "CLIP tokenizer" if tokenizer is not None else "estimate (no CLIP tokenizer found)",
            "preview": preview_table(frame[["id", "vision_source", "text", "poster_caption"]]),
            "path": MetadataValue.path(str(out)),
        }
    )


def _clip_tokenizer(models: ModelsResource):
    from ...curate.prompts import load_clip_tokenizer

    for candidate in (models.clip_tokenizer, models.stable_diffusion):
        if candidate and Path(candidate).exists():
            tokenizer = load_clip_tokenizer(candidate)
            if tokenizer is not None:
                return tokenizer
    return None


@sensor(
    job=export_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="New files in rectifications/ (the folder `mpds review` saves to, under $MPDS_DATA_DIR) "
    "launch the re-merge: the export_dataset job.",
)
def rectifications_sensor(context: SensorEvaluationContext, data_dir: DataDirResource):
    from ...curate.rectify import record_sensor_check

    folder = data_dir.layout.rectifications_dir
    # The review page reads this to tell a reviewer that saves will be merged by themselves.
    record_sensor_check(data_dir.layout.rectifications_sensor_file, folder)
    files = (
        sorted(p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in (".csv", ".json"))
        if folder.exists()
        else []
    )
    if not files:
        return SkipReason(f"no correction files in {folder}")
    newest = max(p.stat().st_mtime_ns for p in files)
    fingerprint = f"{len(files)}:{newest}"
    if context.cursor == fingerprint:
        return SkipReason("no new corrections")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=fingerprint)
