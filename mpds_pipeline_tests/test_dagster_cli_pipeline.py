"""End to end through the real Dagster CLI and a real SQLite instance, the way README
runs it: the named jobs (crawl, curate, caption, export) with `dagster job execute`,
settings read from the data directory's settings.env; then a correction file and the
re-merge job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance

from mpds_pipeline.base import jobnames
from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.base.settings import write_settings_file
from mpds_pipeline.sample_server import SampleImdbServer

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The data directory's own id ranges: partitions that only exist if settings.env was read.
TITLE_KEY, PERSON_KEY = "tt0000001-tt0000060", "nm0000001-nm0000060"


def test_cli_named_jobs_to_export_and_rectification_remerge(dagster_home, tmp_path, tiny_models):
    from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

    layout = DataLayout(tmp_path / "data")
    write_settings_file(
        layout.settings_file,
        {
            "MPDS_TITLE_IDS": "1-60",
            "MPDS_PERSON_IDS": "1-60",
            "MPDS_PARTITION_SIZE": "60",
            "MPDS_BLIP2_MODEL": str(save_tiny_blip2(tmp_path / "tiny-blip2")),
            "MPDS_SD_MODEL": str(tiny_models.sd),  # its tokenizer counts the 77-token window
            "MPDS_DEVICE": "cpu",
        },
        "as `mpds demo` writes it",
    )
    with SampleImdbServer() as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MPDS_")}
        env.update(
            {
                "DAGSTER_HOME": str(dagster_home),
                "MPDS_DATA_DIR": str(layout.root),
                "MPDS_IMDB_BASE_URL": server.base_url,
                "MPDS_PAGE_SOURCES": "live",  # the sample server stands in for live IMDb
                "MPDS_RATE": "50",
                "MPDS_BACKOFF_BASE_S": "0.05",
            }
        )

        def run(*args: str) -> None:
            done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
            assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"

        def job(name: str, partition: str | None = None) -> None:
            tags = ["--tags", json.dumps({"dagster/partition": partition})] if partition else []
            run(str(BIN / "dagster"), "job", "execute", "-m", "mpds_pipeline", "-j", name, *tags)

        run(str(BIN / "mpds"), "ranges")
        job(jobnames.TITLE_CRAWL, TITLE_KEY)
        job(jobnames.PERSON_CRAWL, PERSON_KEY)
        job(jobnames.CURATE)
        job(jobnames.CAPTION, TITLE_KEY)
        job(jobnames.EXPORT)

    posters = pd.read_csv(layout.export_dir / "posters.csv")
    assert len(posters) > 5
    assert all((layout.export_dir / "posters" / f"{i}.jpg").stat().st_size >= 5120 for i in posters["id"])
    # Captioning hashed every poster it decoded; the export job grouped them before exporting.
    assert set(pd.read_parquet(layout.poster_hashes_file(TITLE_KEY))["id"]) >= set(posters["id"])
    groups = pd.read_parquet(layout.near_duplicates_file)
    exported = pd.read_parquet(layout.export_dir / "posters.parquet")
    group_of = dict(zip(groups["id"], groups["group"]))
    assert all(group_of[i] == g for i, g in zip(exported["id"], exported["duplicate_group"]))

    target = int(posters["id"].iloc[-1])
    layout.rectifications_dir.mkdir(exist_ok=True)
    (layout.rectifications_dir / "fix.csv").write_text(f"id,text\n{target},a lighthouse in a storm at night\n")
    job(jobnames.EXPORT)  # the re-merge README shows (and the sensor launches)
    merged = pd.read_csv(layout.export_dir / "posters.csv").set_index("id")
    assert merged.loc[target, "text"].startswith("a lighthouse in a storm at night")

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.get() as instance:
        # Every run is recorded under its named job, so the overview lists them.
        runs = instance.get_runs()
        assert sorted(run.job_name for run in runs) == sorted(
            [
                jobnames.TITLE_CRAWL,
                jobnames.PERSON_CRAWL,
                jobnames.CURATE,
                jobnames.CAPTION,
                jobnames.EXPORT,
                jobnames.EXPORT,
            ]
        )
        assert {run.tags.get("dagster/partition") for run in runs if run.job_name == jobnames.CAPTION} == {TITLE_KEY}
        event = instance.get_latest_materialization_event(AssetKey("export"))
        assert event.asset_materialization.metadata["poster_rows"].value == len(posters)
        prompts = instance.get_latest_materialization_event(AssetKey("poster_prompts")).asset_materialization
        assert prompts.metadata["token_counter"].value == "CLIP tokenizer"

        # The long steps report progress at INFO in the run log.
        progress: dict[str, list[str]] = {}
        for run in runs:
            for entry in instance.all_logs(run.run_id):
                if entry.level == 20 and entry.dagster_event is None and entry.step_key:
                    progress.setdefault(entry.step_key, []).append(entry.user_message)
        assert any(
            line.startswith(f"title_records {TITLE_KEY}: ") and "pages/s" in line for line in progress["title_records"]
        )
        assert any(line.startswith("movies: filtering: ") for line in progress["movies"])
        assert any(line.startswith("poster_prompts: ") and "rectified 1" in line for line in progress["poster_prompts"])
        assert any(line.startswith("export: posters: ") and "done in" in line for line in progress["export"])
