"""``wikimedia``: the curated movies and actors looked up on Wikidata (CC0), and every
Commons file they link to read with its licence and author: the tables the
licence-clean edition downloads from, and the licence columns of provenance."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .curation import actors, movies
from .metadata import counts_table, preview_table, tabulate

# Its own group, not curate's: the curate job must not ask Wikimedia unless asked to.
WIKIMEDIA_GROUP = "wikimedia"


@asset(group_name=WIKIMEDIA_GROUP, deps=[movies, actors], kinds={"python", "parquet"})
def wikimedia(
    context: AssetExecutionContext, imdb: ImdbClientResource, sources: SourcesResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Wikidata items of the movies (P3383 film poster) and actors (P18 image, P373
    Commons category), in batches through the query service and wbgetentities with
    maxlag; then each Commons file's licence, author, credit, size and sha1 (imageinfo,
    50 a request), kept only under an allowlisted licence, every refusal counted."""
    from collections import Counter

    from ...curate.store import read_table, write_table
    from ...sources.mediawiki import MediaWikiError
    from ...sources.wikimedia import collect_wikimedia

    layout = data_dir.layout
    movie_ids = read_table(layout.movies_file)["id"].astype(int).tolist()
    actor_frame = read_table(layout.actors_file, missing_ok=True)
    actor_ids = actor_frame["id"].astype(int).tolist() if not actor_frame.empty else []
    try:
        result = collect_wikimedia(
            movie_ids, actor_ids, imdb.client_settings(), sources.wikimedia_settings(), log=context.log.info
        )
    except MediaWikiError as error:
        raise Failure(f"Wikimedia did not answer usably: {error}") from error
    for warning in result.warnings:
        context.log.warning(warning)
    write_table(result.items, layout.wikidata_items_file)
    write_table(result.files, layout.commons_files_file)
    kept = result.files[result.files["decision"] == "kept"]
    return MaterializeResult(
        metadata=tabulate(
            {
                **result.metadata(),
                "licences_kept": counts_table(dict(Counter(kept["licence"].fillna("?"))), "licence"),
                "refusals": counts_table(
                    dict(Counter(d for d in result.files["decision"] if d != "kept")), "reason", "files"
                ),
                "requests_by_host": counts_table(result.requests_by_host, "host", "requests"),
                "items_preview": preview_table(result.items[["kind", "imdb_id", "qid", "label", "poster_file"]]),
                "files_preview": preview_table(result.files[["file_title", "licence", "artist", "decision"]]),
                "items": MetadataValue.path(str(layout.wikidata_items_file)),
                "files": MetadataValue.path(str(layout.commons_files_file)),
            }
        )
    )
