"""The named asset jobs, as plain strings: the review page, the CLI and the demo name
them without importing Dagster. Their definitions are in ``defs/jobs.py``."""

REFRESH_INDEX = "refresh_index"  # imdb_index
TITLE_CRAWL = "title_crawl"  # title_pages, title_records (title id ranges)
PERSON_CRAWL = "person_crawl"  # person_pages, person_records (person id ranges)
CURATE = "curate"  # movies, actors, actor_images, actor_photos, dataset_statistics
CAPTION = "caption"  # poster_images, vision_prompts (title id ranges)
# rectifications, poster_prompts, export: the re-merge (not "export": the asset's op has that name)
EXPORT = "export_dataset"
GENERATE = "generate"  # the generation group
WIKIMEDIA = "wikimedia_licences"  # wikimedia: Wikidata items and Commons files with their licences


def execute_command(job: str, partition: str | None = None) -> str:
    """The shell command that runs ``job`` (from the repository root, in the venv)."""
    command = f".venv/bin/dagster job execute -m mpds_pipeline -j {job}"
    if partition:
        command += f""" --tags '{{"dagster/partition": "{partition}"}}'"""
    return command


OMDB_LOOKUPS = "omdb_lookups"  # omdb_titles, title_records (title id ranges): the daily OMDb schedule's job
FRESHNESS = "dataset_freshness_job"  # dataset_freshness: the freshness view (no network)
