"""``actor_photos``: 3-5 head-and-shoulders face crops per actor (the paper's actor branch).

Candidates come from the person records (primary image, photo strip, gallery); the
strip and gallery photos are downloaded politely like every image, faces are found and
matched to the primary headshot, and the kept crops are written at 512x512.
"""

from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from ...base.layout import LICENCE_CLEAN
from ...curate.actor_photos import ActorPhotoSettings
from ...curate.faces import FaceSettings
from ...curate.image_checks import ImageLimits
from ..pool_slots import IMDB_POOL
from ..resources import DataDirResource, ImdbClientResource
from ..settings_models import config_fields, derived, to_settings
from .curation import CURATE_GROUP, actor_images, ai_optout_default, licence_clean_actor_inputs
from .metadata import counts_table, plot_image, preview_table, tabulate


class ActorPhotosConfig(
    derived(
        Config,
        config_fields(ActorPhotoSettings, ["min_photos", "max_photos", "max_candidates"]),
        config_fields(
            FaceSettings,
            ["match_faces", "match_distance", "detect_size", "upsample", "min_face_side", "crop_size", "margin"],
        ),
        config_fields(ImageLimits, ["min_bytes"]),
    )
):
    workers: int | None = Field(None, description="processes for the face work; None: one per core for 16+ actors")
    ai_optout: bool = Field(
        default_factory=ai_optout_default,
        description="refuse photos whose rights holder opted out of AI training (X-Robots-Tag, TDMRep); "
        "off only for research use; the licence-clean edition always honours them",
    )


@asset(group_name=CURATE_GROUP, deps=[actor_images], kinds={"python", "jpeg", "parquet"}, pool=IMDB_POOL)
def actor_photos(
    context: AssetExecutionContext, config: ActorPhotosConfig, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Up to 5 face crops (512x512, head and shoulders) per actor: the primary image plus
    photos of the strip and gallery that show the actor alone (tags, else the caption,
    else exactly one face), matched to the primary headshot; every dropped photo counted
    by reason."""
    from ...curate.actor_photos import build_actor_photos, contact_sheet
    from ...curate.licences import ai_optout_in_force
    from ...curate.store import read_table, write_table
    from ...imdb.record_store import read_records

    layout = data_dir.layout
    settings = to_settings(ActorPhotoSettings, config, faces=to_settings(FaceSettings, config))
    previous = (
        read_table(layout.actor_photos_file, missing_ok=True),
        read_table(layout.actor_photo_decisions_file, missing_ok=True),
    )
    actors_frame, persons, client_settings = (
        read_table(layout.actors_file),
        None,
        imdb.client_settings(),
    )
    edition = {"edition": data_dir.edition}
    if data_dir.edition == LICENCE_CLEAN:
        # Commons only: the portrait (P18) is the reference face, the category's files the candidates.
        actors_frame, persons, client_settings, edition = licence_clean_actor_inputs(
            data_dir, actors_frame, client_settings
        )
    result, download = build_actor_photos(
        actors_frame,
        persons if persons is not None else read_records(layout.records_dir("person"), "person"),
        layout.actor_images_dir,
        layout.actor_photos_dir,
        layout.actor_crops_dir,
        client_settings,
        settings,
        to_settings(ImageLimits, config),
        context.log.info,
        previous=previous,
        workers=config.workers,
        ai_optout=ai_optout_in_force(data_dir.edition, config.ai_optout),
    )
    downloads = {f"download_{k}": v for k, v in download.metadata().items()}
    if result is None:
        raise Failure("IMDb's image CDN is blocking: rerun actor_photos later", metadata=downloads)
    write_table(result.photos, layout.actor_photos_file)
    write_table(result.decisions, layout.actor_photo_decisions_file)
    metadata = result.metadata()
    if metadata["actors_under_min_photos"]:
        context.log.warning(
            f"{metadata['actors_under_min_photos']} of {result.actors} actors have fewer than "
            f"{settings.min_photos} face crops (see {layout.actor_photo_decisions_file} for why)"
        )
    if result.decode_failures:
        context.log.warning(
            f"{len(result.decode_failures)} downloaded photos did not decode: left out, and marked "
            "invalid in their download manifest"
        )
    dropped = {k.removeprefix("dropped_"): v for k, v in metadata.items() if k.startswith("dropped_") and v}
    per_actor = result.photos.groupby("actor_id").agg(
        crops=("rank", "size"), sources=("source", lambda s: ", ".join(s))
    )
    sheet = contact_sheet(result.photos, layout.actor_crops_sheet)
    return MaterializeResult(
        metadata=tabulate(
            {
                **edition,
                **{k: v for k, v in metadata.items() if not k.startswith("dropped_")},
                **downloads,
                "manifest_rows_marked_decoded": result.manifest_updates.decoded,
                "manifest_rows_marked_invalid": result.manifest_updates.failed,
                "drop_reasons": counts_table(dropped),
                "per_actor": preview_table(per_actor.reset_index(), limit=20),
                **({"crops": plot_image(context, sheet, "face crops, one row per actor")} if sheet else {}),
                "table": MetadataValue.path(str(layout.actor_photos_file)),
                "crops_dir": MetadataValue.path(str(layout.actor_crops_dir)),
            }
        )
    )
