"""Curation assets: ``movies`` and ``actors`` (filters), ``poster_images`` and
``actor_images`` (verified downloads), ``export`` (the MPDS release) and
``dataset_statistics`` (the paper's Fig. 2)."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from ..curate.filters import ADULT_REASONS, DEFAULT_CERTIFICATE_BLOCKLIST
from ..curate.image_checks import VerifyMode
from ..curate.rehydrate import MovieSource
from ..imdb.partitions import parse_partition_key
from ..pool_slots import IMDB_POOL
from ..resources import DataDirResource, ImdbClientResource
from .checks import contract_result
from .crawl import person_assets, title_assets
from .metadata import bar_chart, counts_table, plot_image, preview_table, tabulate
from .partitions import TITLE_PARTITIONS, require_registered

CURATE_GROUP = "curate"


class MoviesConfig(Config):
    source: MovieSource = Field("crawl", description="'crawl' (title_records) or 'release' (an MPDS meta.csv)")
    release_meta_csv: str | None = Field(None, description="path to a released meta.csv (source='release')")
    release_posters_csv: str | None = Field(None, description="optional posters.csv of the same release")
    use_certificate_blocklist: bool = True
    certificate_blocklist: list[str] = list(DEFAULT_CERTIFICATE_BLOCKLIST)
    drop_non_english: bool = Field(True, description="lingua language filter (off for a release: it is curated)")
    language_threshold: float = 0.5


@asset(group_name=CURATE_GROUP, deps=[title_assets[1]], kinds={"python", "parquet"})
def movies(context: AssetExecutionContext, config: MoviesConfig, data_dir: DataDirResource) -> MaterializeResult:
    """Titles that become MPDS movies: adult, certificate-blocklisted, non-English and
    poster-less titles dropped (each counted); missing genre, cast or plot kept and counted.
    Built from every crawled partition, or from a released meta.csv (rehydrate mode)."""
    from ..curate.filters import MovieFilterSettings, select_movie_files, select_movies
    from ..curate.rehydrate import ReleaseFormatError, load_release
    from ..curate.store import write_table
    from ..imdb.record_store import latest_partitions

    layout = data_dir.layout
    settings = MovieFilterSettings(
        certificate_blocklist=tuple(config.certificate_blocklist),
        use_certificate_blocklist=config.use_certificate_blocklist,
        drop_non_english=config.drop_non_english and config.source == "crawl",
        language_threshold=config.language_threshold,
    )
    metadata: dict = {"source": config.source}
    texts: dict[int, str] = {}
    if config.source == "release":
        if not config.release_meta_csv:
            raise Failure("source='release' needs release_meta_csv: the path of an MPDS meta.csv")
        try:
            release = load_release(
                Path(config.release_meta_csv), Path(config.release_posters_csv) if config.release_posters_csv else None
            )
        except (ReleaseFormatError, FileNotFoundError) as error:
            raise Failure(f"cannot read the release: {error}") from error
        titles, texts = release.movies, release.texts
        metadata.update({f"release_{k}": v for k, v in release.metadata().items()})
        if release.errors:
            context.log.warning(f"{len(release.errors)} bad release rows skipped; first: {release.errors[0]}")
        selection = select_movies(titles, settings, log=context.log.info)
        write_table(selection.movies, layout.movies_file)
        write_table(selection.decisions, layout.movie_decisions_file)
        preview = selection.movies[["id", "title", "year", "genres", "certificate"]]
    else:
        # Partition by partition: memory stays bounded however many titles were crawled.
        titles = latest_partitions(layout.records_dir("title"), "title")
        selection = select_movie_files(
            titles,
            titles.schema,
            layout.movies_file,
            layout.movie_decisions_file,
            settings,
            total=titles.rows,
            log=context.log.info,
        )
        preview = selection.preview
    write_table(pd.DataFrame({"id": list(texts), "text": list(texts.values())}), layout.release_texts_file)
    counts = selection.metadata()
    dropped_certificates = counts.pop("dropped_certificates")
    return MaterializeResult(
        metadata=tabulate(
            {
                **metadata,
                **counts,
                "drop_reasons": counts_table(selection.drop_counts),
                "dropped_certificates": counts_table(dropped_certificates, "certificate"),
                "preview": preview_table(preview),
                "path": MetadataValue.path(str(layout.movies_file)),
            }
        )
    )


@asset(group_name=CURATE_GROUP, deps=[movies, person_assets[1]], kinds={"python", "parquet"})
def actors(data_dir: DataDirResource) -> MaterializeResult:
    """Crawled persons who act (actor or actress) and have a photo, and each movie's cast
    linked to their ids (billing order kept)."""
    from ..curate.filters import select_actor_files
    from ..imdb.record_store import latest_partitions

    layout = data_dir.layout
    # Partition by partition, the movies in batches: memory stays bounded at full scale.
    selection = select_actor_files(
        latest_partitions(layout.records_dir("person"), "person"),
        layout.movies_file,
        layout.actors_file,
        layout.movie_actor_file,
    )
    return MaterializeResult(
        metadata=tabulate(
            {
                **selection.metadata(),
                "preview": preview_table(selection.preview),
                "path": MetadataValue.path(str(layout.actors_file)),
            }
        )
    )


class ImagesConfig(Config):
    min_bytes: int = Field(5120, description="files smaller than this are dropped (the paper's 5 KB)")
    max_bytes: int = 20_000_000
    max_pixels: int = 50_000_000
    resize_to: int | None = Field(None, description="longest side in pixels; off by default")
    verify: VerifyMode = Field(
        "structure",
        description="'structure': container, header size and a complete stream, no "
        "pixel decoded (captioning decodes later and reports); 'decode': every pixel now",
    )
    processes: int | None = Field(
        None,
        description="download processes; None: more than one only at a high request rate (never at IMDb's default 1/s)",
    )


@asset(
    group_name=CURATE_GROUP, deps=[movies], partitions_def=TITLE_PARTITIONS, kinds={"python", "jpeg"}, pool=IMDB_POOL
)
def poster_images(
    context: AssetExecutionContext, config: ImagesConfig, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Posters of the partition's movies, downloaded politely and verified (structure,
    size, pixel and byte caps; or a full decode), written atomically with a manifest;
    verified files are never fetched again. The metadata counts how many are fully
    decoded so far (captioning decodes the rest and reports failures)."""
    from ..curate.images import download_images
    from ..curate.store import read_table

    require_registered(context.instance, "title", context.partition_key)
    id_range = parse_partition_key(context.partition_key)
    movies_frame = read_table(data_dir.layout.movies_file)
    in_range = movies_frame[movies_frame["id"].between(id_range.first, id_range.last)]
    result = download_images(
        [(int(i), u) for i, u in zip(in_range["id"], in_range["poster_url"])],
        data_dir.layout.poster_images_dir(context.partition_key),
        imdb.client_settings(),
        min_bytes=config.min_bytes,
        max_bytes=config.max_bytes,
        max_pixels=config.max_pixels,
        resize_to=config.resize_to,
        verify=config.verify,
        processes=config.processes,
        log=context.log.info,
    )
    return _download_result(result, blocked_message="IMDb's image CDN is blocking: rerun this partition later")


@asset(group_name=CURATE_GROUP, deps=[actors], kinds={"python", "jpeg"}, pool=IMDB_POOL)
def actor_images(
    context: AssetExecutionContext, config: ImagesConfig, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    """One to two verified photos per actor (the paper's actor images)."""
    from ..curate.images import ImageLimits, download_actor_images
    from ..curate.store import read_table

    result = download_actor_images(
        read_table(data_dir.layout.actors_file),
        data_dir.layout.actor_images_dir,
        imdb.client_settings(),
        limits=ImageLimits(config.min_bytes, config.max_bytes, config.max_pixels, config.resize_to),
        verify=config.verify,
        processes=config.processes,
        log=context.log.info,
    )
    return _download_result(result, blocked_message="IMDb's image CDN is blocking: rerun actor_images later")


def _download_result(result, blocked_message: str) -> MaterializeResult:
    metadata = tabulate(
        {
            **result.metadata(),
            "reject_reasons": counts_table(result.reasons),
            "manifest": MetadataValue.path(str(result.manifest_path)),
            "preview": preview_table(
                result.manifest[["id", "url", "bytes", "width", "height", "status", "verified", "reason"]]
            ),
        }
    )
    if result.blocked:
        raise Failure(blocked_message, metadata=metadata)
    return MaterializeResult(metadata=metadata)


def export_texts(layout) -> tuple[pa.Table | None, pa.Table | None, str]:
    """The poster texts for posters.csv: the integrated prompts when they exist, else a
    release's own texts, else (None) the movie-synopsis prompt the export builds. Arrow
    tables (id, text) and (id, extra columns...): compact at 400k rows, unlike dicts."""
    import pyarrow.parquet as pq

    if layout.poster_prompts_file.is_file():
        columns = ["id", "text", "poster_caption", "synopsis_prompt", "vision_prompt"]
        prompts = pq.read_table(layout.poster_prompts_file, columns=columns)
        if prompts.num_rows:
            return prompts.select(["id", "text"]), prompts.select(["id", *columns[2:]]), "poster_prompts"
    if layout.release_texts_file.is_file():
        release = pq.read_table(layout.release_texts_file, columns=["id", "text"])
        if release.num_rows:
            return release, None, "release posters.csv"
    return None, None, "movie-synopsis prompt"


def build_export_asset(upstream: list):
    @asset(
        name="export",
        group_name=CURATE_GROUP,
        deps=upstream,
        kinds={"python", "csv", "parquet"},
        check_specs=[
            AssetCheckSpec(
                "export_contract",
                asset="export",
                blocking=True,
                description="Exact schemas, unique ids, a verified image >= 5 KB for every posters.csv id, "
                "no adult row, URL formats.",
            )
        ],
    )
    def export_asset(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
        """The MPDS release under export/: meta.csv, posters.csv, actors.csv in the paper's
        format, typed Parquet beside each, and the posters/ imagefolder (metadata.jsonl)."""
        from ..curate.export import check_export, write_actor_photos_export, write_export
        from ..curate.store import read_table

        layout = data_dir.layout
        texts, extra, text_source = export_texts(layout)
        poster_dirs = sorted(p for p in layout.poster_images_root.glob("*") if p.is_dir())
        result = write_export(
            layout.movies_file,  # read in batches: memory stays bounded at 400k rows
            None,
            poster_dirs,
            read_table(layout.actors_file, missing_ok=True),
            layout.actor_images_dir if layout.actor_images_dir.exists() else None,
            layout.export_dir,
            texts=texts,
            extra_poster_columns=extra,
            log=context.log.info,
        )
        photos = write_actor_photos_export(
            read_table(layout.actor_photos_file, missing_ok=True), layout.export_dir, log=context.log.info
        )
        posters = pd.read_csv(layout.export.posters_csv, nrows=10)  # the preview: not 400k rows
        decisions = read_table(layout.movie_decisions_file, missing_ok=True)
        adult = decisions.loc[decisions["drop_reason"].isin(ADULT_REASONS), "id"] if not decisions.empty else []
        contract = contract_result("export_contract", check_export(layout.export_dir, adult_ids=adult))
        return MaterializeResult(
            check_results=[contract],
            metadata=tabulate(
                {
                    **result.metadata(),
                    **photos,
                    "text_source": text_source,
                    "export_dir": MetadataValue.path(str(layout.export_dir)),
                    "posters_preview": preview_table(posters),
                }
            ),
        )

    return export_asset


@asset(group_name=CURATE_GROUP, deps=[movies], kinds={"python", "matplotlib"})
def dataset_statistics(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
    """The paper's Fig. 2 for the curated movies: genre distribution, record types, and
    the share missing genre, cast or plot. The plots and the same figures as text bar
    charts are in the Metadata section of the asset's Overview tab; the PNGs and
    stats.md are under export/stats/."""
    from ..curate.stats import export_statistics
    from ..curate.store import read_table

    layout = data_dir.layout
    stats = export_statistics(read_table(layout.movies_file), layout.export.stats.path)
    return MaterializeResult(
        metadata={
            **stats.metadata(),
            "genres_plot": plot_image(context, stats.files["genres"], "genre distribution"),
            "genres": bar_chart(stats.genre_percent, "genre", "% of records"),
            "record_types_plot": plot_image(context, stats.files["record_types"], "record types"),
            "record_types": bar_chart(stats.record_type_percent, "record type", "% of records"),
            "missing_plot": plot_image(context, stats.files["missing"], "missing fields"),
            "missing_fields": bar_chart(stats.missing_percent, "field", "% of records"),
            "stats_dir": MetadataValue.path(str(layout.export.stats.path)),
        }
    )
