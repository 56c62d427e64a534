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

from ...base import jobnames
from ...base.layout import LICENCE_CLEAN
from ...base.settings import env_bool
from ...curate.filters import ADULT_REASONS, MovieFilterSettings
from ...curate.image_checks import ImageLimits, VerifyMode
from ...curate.rehydrate import MovieSource
from ...imdb.partitions import parse_partition_key
from ..checks import contract_result
from ..pool_slots import IMDB_POOL
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from ..settings_models import ALL, config_fields, derived, to_settings
from .crawl import person_assets, title_assets
from .metadata import bar_chart, counts_table, plot_image, preview_table, tabulate
from .partitions import TITLE_PARTITIONS, require_registered

CURATE_GROUP = "curate"


def ai_optout_default() -> bool:
    """MPDS_AI_OPTOUT (default on): the download configs' ``ai_optout`` default."""
    return env_bool("MPDS_AI_OPTOUT", True)


class MoviesConfig(
    derived(
        Config,
        config_fields(
            MovieFilterSettings,
            ["use_certificate_blocklist", "certificate_blocklist", "drop_non_english", "language_threshold"],
        ),
    )
):
    source: MovieSource = Field("crawl", description="'crawl' (title_records) or 'release' (an MPDS meta.csv)")
    release_meta_csv: str | None = Field(
        None, description="path to a released table (source='release'): MPDS's meta.csv, or any CSV or .parquet"
    )
    release_columns: dict[str, str] | None = Field(
        None,
        description="which column holds what, for a table not in MPDS's format: keys id, poster_url, title, text, "
        "actors, movie_url, genres, synopsis (id required), e.g. {'id': 'imdb_id', 'poster_url': 'poster'}",
    )
    release_posters_csv: str | None = Field(None, description="optional posters.csv of the same release")


@asset(group_name=CURATE_GROUP, deps=[title_assets[1]], kinds={"python", "parquet"})
def movies(context: AssetExecutionContext, config: MoviesConfig, data_dir: DataDirResource) -> MaterializeResult:
    """Titles that become MPDS movies: adult, certificate-blocklisted, non-English and
    poster-less titles dropped (each counted); missing genre, cast or plot kept and counted.
    Built from every crawled partition, or from a released meta.csv (rehydrate mode)."""
    from ...curate.filters import select_movie_files, select_movies
    from ...curate.rehydrate import ReleaseFormatError, load_release
    from ...curate.store import write_table
    from ...imdb.record_store import latest_partitions

    layout = data_dir.layout
    settings = to_settings(
        MovieFilterSettings, config, drop_non_english=config.drop_non_english and config.source == "crawl"
    )
    metadata: dict = {"source": config.source}
    texts: dict[int, str] = {}
    if config.source == "release":
        if not config.release_meta_csv:
            raise Failure("source='release' needs release_meta_csv: the path of an MPDS meta.csv or a mapped table")
        try:
            release = load_release(
                Path(config.release_meta_csv),
                Path(config.release_posters_csv) if config.release_posters_csv else None,
                columns=config.release_columns,
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
    from ...curate.filters import select_actor_files
    from ...imdb.record_store import latest_partitions

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


class ImagesConfig(derived(Config, config_fields(ImageLimits, ALL))):
    verify: VerifyMode = Field(
        "structure",
        description="'structure': container, header size and a complete stream, no "
        "pixel decoded (captioning decodes later and reports); 'decode': every pixel now",
    )
    processes: int | None = Field(
        None,
        description="download processes; None: more than one only at a high request rate (never at IMDb's default 1/s)",
    )
    ai_optout: bool = Field(
        default_factory=ai_optout_default,
        description="refuse images whose rights holder opted out of AI training (X-Robots-Tag noai/noimageai, "
        "TDMRep); off only for research use; the licence-clean edition always honours them",
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
    from ...curate.images import download_images
    from ...curate.licences import ai_optout_in_force
    from ...curate.store import read_table

    require_registered(context.instance, "title", context.partition_key)
    id_range = parse_partition_key(context.partition_key)
    movies_frame = read_table(data_dir.layout.movies_file)
    in_range = movies_frame[movies_frame["id"].between(id_range.first, id_range.last)]
    items = [(int(i), u) for i, u in zip(in_range["id"], in_range["poster_url"])]
    settings, edition_metadata = imdb.client_settings(), {"edition": data_dir.edition}
    if data_dir.edition == LICENCE_CLEAN:
        items, settings, edition_metadata = _licence_clean_posters(data_dir, in_range["id"], settings)
    result = download_images(
        items,
        data_dir.layout.poster_images_dir(context.partition_key),
        settings,
        limits=to_settings(ImageLimits, config),
        verify=config.verify,
        processes=config.processes,
        log=context.log.info,
        ai_optout=ai_optout_in_force(data_dir.edition, config.ai_optout),
    )
    return _download_result(
        result, blocked_message="IMDb's image CDN is blocking: rerun this partition later", extra=edition_metadata
    )


def _wikimedia_tables(data_dir: DataDirResource):
    from ...curate.store import read_table

    layout = data_dir.layout
    if not layout.commons_files_file.is_file():
        raise Failure(
            f"the {LICENCE_CLEAN} edition downloads Commons files: materialize the wikimedia asset "
            f"(job {jobnames.WIKIMEDIA}) first"
        )
    return read_table(layout.wikidata_items_file), read_table(layout.commons_files_file)


def _licence_clean_posters(data_dir: DataDirResource, movie_ids, settings):
    """The licence-clean edition's poster downloads: Commons files under allowlisted licences."""
    from ...curate.licences import licence_clean_posters
    from ...sources.mediawiki import allow_file_hosts

    items, files = _wikimedia_tables(data_dir)
    inputs = licence_clean_posters(movie_ids, items, files)
    urls = [url for _, _, url in inputs.items]
    return (
        [(i, u) for i, _, u in inputs.items],
        allow_file_hosts(settings, urls),
        {
            "edition": data_dir.edition,
            **inputs.metadata(),
        },
    )


@asset(group_name=CURATE_GROUP, deps=[actors], kinds={"python", "jpeg"}, pool=IMDB_POOL)
def actor_images(
    context: AssetExecutionContext, config: ImagesConfig, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    """One to two verified photos per actor (the paper's actor images)."""
    from ...curate.images import download_actor_images
    from ...curate.licences import ai_optout_in_force
    from ...curate.store import read_table

    actors_frame, settings = read_table(data_dir.layout.actors_file), imdb.client_settings()
    extra = {"edition": data_dir.edition}
    if data_dir.edition == LICENCE_CLEAN:
        actors_frame, settings, extra = _licence_clean_actors(data_dir, actors_frame, settings)
    result = download_actor_images(
        actors_frame,
        data_dir.layout.actor_images_dir,
        settings,
        limits=to_settings(ImageLimits, config),
        verify=config.verify,
        processes=config.processes,
        log=context.log.info,
        ai_optout=ai_optout_in_force(data_dir.edition, config.ai_optout),
    )
    return _download_result(
        result, blocked_message="IMDb's image CDN is blocking: rerun actor_images later", extra=extra
    )


def licence_clean_actor_inputs(data_dir: DataDirResource, actors_frame: pd.DataFrame, settings):
    """The licence-clean edition's actors (portrait P18 as image_url) and person photos
    (their P373 category's files), all under allowlisted licences; the client settings
    allowing the files' hosts; metadata."""
    from ...curate.licences import licence_clean_actors
    from ...sources.mediawiki import allow_file_hosts

    items, files = _wikimedia_tables(data_dir)
    clean_actors, persons, inputs = licence_clean_actors(actors_frame, items, files)
    urls = [*clean_actors["image_url"], *(u for urls in clean_actors["image_urls"] for u in urls)]
    settings = allow_file_hosts(settings, urls) if settings is not None else None
    return clean_actors, persons, settings, {"edition": data_dir.edition, **inputs.metadata()}


def _licence_clean_actors(data_dir: DataDirResource, actors_frame: pd.DataFrame, settings):
    clean_actors, _persons, settings, metadata = licence_clean_actor_inputs(data_dir, actors_frame, settings)
    return clean_actors, settings, metadata


def _download_result(result, blocked_message: str, extra: dict | None = None) -> MaterializeResult:
    metadata = tabulate(
        {
            **(extra or {}),
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


def write_export_provenance(layout, poster_dirs: list[Path]):
    """export/provenance.parquet for the export just written (see curate/provenance.py)."""
    from ...curate.provenance import build_provenance, write_provenance
    from ...curate.store import read_table

    provenance = build_provenance(
        layout.export_dir,
        read_table(layout.movies_file),
        title_pages_root=layout.pages_root("title"),
        person_pages_root=layout.pages_root("person"),
        omdb_root=layout.omdb_root,
        poster_dirs=poster_dirs,
        actor_images_dir=layout.actor_images_dir if layout.actor_images_dir.exists() else None,
    )
    # Wikimedia rows get their file's licence, attribution and page (curate/licences.py).
    from ...curate.licences import add_licences

    commons_files = read_table(layout.commons_files_file, missing_ok=True)
    provenance.rows = add_licences(provenance.rows, commons_files)
    write_provenance(provenance, layout.export.provenance)
    return provenance


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
        from ...curate.export import write_export
        from ...curate.export_actor_photos import write_actor_photos_export
        from ...curate.export_checks import check_export
        from ...curate.store import read_table
        from .near_duplicates import with_duplicate_groups

        layout = data_dir.layout
        texts, extra, text_source = export_texts(layout)
        extra = with_duplicate_groups(extra, layout.near_duplicates_file)
        poster_dirs = sorted(p for p in layout.poster_images_root.glob("*") if p.is_dir())
        # The research edition's movies are read in batches (memory stays bounded at 400k
        # rows); the licence-clean edition's are the few with a licensed poster, built here.
        movies = layout.movies_file
        actors_frame = read_table(layout.actors_file, missing_ok=True)
        if data_dir.edition == LICENCE_CLEAN:
            movies, actors_frame, texts, extra, text_source = _licence_clean_export_inputs(
                data_dir, read_table(layout.movies_file), actors_frame
            )
        result = write_export(
            movies,
            None,
            poster_dirs,
            actors_frame,
            layout.actor_images_dir if layout.actor_images_dir.exists() else None,
            layout.export_dir,
            texts=texts,
            extra_poster_columns=extra,
            log=context.log.info,
        )
        photos = write_actor_photos_export(
            read_table(layout.actor_photos_file, missing_ok=True), layout.export_dir, log=context.log.info
        )
        provenance = write_export_provenance(layout, poster_dirs)
        posters = pd.read_csv(layout.export.posters_csv, nrows=10)  # the preview: not 400k rows
        decisions = read_table(layout.movie_decisions_file, missing_ok=True)
        adult = decisions.loc[decisions["drop_reason"].isin(ADULT_REASONS), "id"] if not decisions.empty else []
        contract = contract_result("export_contract", check_export(layout.export_dir, adult_ids=adult))
        card = _dataset_card(data_dir, poster_dirs)
        return MaterializeResult(
            check_results=[contract],
            metadata=tabulate(
                {
                    **result.metadata(),
                    **photos,
                    **provenance.metadata(),
                    "provenance_by_source": provenance.counts_by_kind(),
                    **card,
                    "text_source": text_source,
                    "export_dir": MetadataValue.path(str(layout.export_dir)),
                    "posters_preview": preview_table(posters),
                }
            ),
        )

    return export_asset


def _licence_clean_export_inputs(data_dir: DataDirResource, movies_frame: pd.DataFrame, actors_frame: pd.DataFrame):
    """Movies with metadata from CC0 Wikidata and IMDb's datasets only, actors with their
    Commons portraits, and poster texts built from that metadata alone (the integrated
    prompts embed IMDb plots)."""
    from ...curate.licences import licence_clean_movies

    items, files = _wikimedia_tables(data_dir)
    clean_movies = licence_clean_movies(movies_frame, items, files, data_dir.layout.index_dir)
    clean_actors = actors_frame
    if not actors_frame.empty:
        clean_actors, _persons, _settings, _meta = licence_clean_actor_inputs(data_dir, actors_frame, None)
    return clean_movies, clean_actors, {}, None, "movie-synopsis prompt from CC0 Wikidata and IMDb datasets"


def _dataset_card(data_dir: DataDirResource, poster_dirs: list) -> dict:
    """attribution.csv and the dataset card (README.md) of the edition's export."""
    from ...curate.dataset_card import LicenceCleanViolation, publish_card

    layout = data_dir.layout
    # The allowlist is a sources setting; the export keeps its resources as they were
    # (every caller of this asset binds data_dir and imdb), so it reads the setting's default.
    allowlist = SourcesResource().licence_allowlist
    try:
        return publish_card(
            layout,
            poster_dirs=poster_dirs,
            actor_images_dir=layout.actor_images_dir if layout.actor_images_dir.exists() else None,
            allowlist=allowlist,
        )
    except LicenceCleanViolation as error:
        raise Failure(f"not a licence-clean export: {error}") from error


@asset(group_name=CURATE_GROUP, deps=[movies], kinds={"python", "matplotlib"})
def dataset_statistics(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
    """The paper's Fig. 2 for the curated movies: genre distribution, record types, and
    the share missing genre, cast or plot. The plots and the same figures as text bar
    charts are in the Metadata section of the asset's Overview tab; the PNGs and
    stats.md are under export/stats/."""
    from ...curate.stats import export_statistics
    from ...curate.store import read_table

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
