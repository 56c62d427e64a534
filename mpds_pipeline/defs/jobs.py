"""The named asset jobs: every stage a user runs, under its own name on the Overview
page, in the launchpad and in ``dagster job execute -j NAME`` (``dagster asset
materialize`` records its runs under a hidden ad-hoc job instead). The assets of one job
share one partitions definition, so the title and person crawls are two jobs."""

from dagster import AssetSelection, define_asset_job

from ..base import jobnames

refresh_index_job = define_asset_job(
    jobnames.REFRESH_INDEX,
    selection=AssetSelection.assets("imdb_index"),
    description="Download IMDb's dataset files (skipped when unchanged) and rebuild the index.",
)
title_crawl_job = define_asset_job(
    jobnames.TITLE_CRAWL,
    selection=AssetSelection.assets("title_pages", "omdb_titles", "title_records"),
    description="Crawl and parse one title id range (asking OMDb for what the pages lack, when a key is set).",
)
person_crawl_job = define_asset_job(
    jobnames.PERSON_CRAWL,
    selection=AssetSelection.assets("person_pages", "person_records"),
    description="Crawl and parse one person id range.",
)
curate_job = define_asset_job(
    jobnames.CURATE,
    # The curate group's whole-dataset assets: not the per-range poster downloads, not the export.
    selection=AssetSelection.groups("curate") - AssetSelection.assets("poster_images", "near_duplicates", "export"),
    description="Filter the crawled titles into movies, pick the actors and download their photos, "
    "and draw the dataset statistics.",
)
caption_job = define_asset_job(
    jobnames.CAPTION,
    selection=AssetSelection.assets("poster_images", "vision_prompts"),
    description="Download and verify one title range's posters, then caption them with BLIP-2.",
)
export_job = define_asset_job(
    jobnames.EXPORT,
    selection=AssetSelection.assets("rectifications", "poster_prompts", "near_duplicates", "export"),
    description="Merge the human corrections into the prompts and write the release under export/ "
    "(the re-merge the rectifications sensor launches).",
)
generate_job = define_asset_job(
    jobnames.GENERATE,
    selection=AssetSelection.groups("generation"),
    description="The GPU stages: LoRA, actor embeddings, caption controls, benchmark images and report.",
)

wikimedia_job = define_asset_job(
    jobnames.WIKIMEDIA,
    selection=AssetSelection.assets("wikimedia"),
    description="Look the movies and actors up on Wikidata and read their Commons files' licences "
    "(what the licence-clean edition downloads from).",
)

named_jobs = [
    refresh_index_job,
    title_crawl_job,
    person_crawl_job,
    curate_job,
    caption_job,
    export_job,
    generate_job,
    wikimedia_job,
]
