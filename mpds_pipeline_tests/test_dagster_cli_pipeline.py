"""End to end through the real Dagster CLI and a real SQLite instance: crawl, curate,
download, caption, export; then a correction file and `--select 'poster_prompts*'`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance

from mpds_pipeline.sample_server import SampleImdbServer

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
TITLE_KEY, PERSON_KEY = "tt0000001-tt0000050", "nm0000001-nm0000050"


def test_cli_pipeline_to_export_and_rectification_remerge(dagster_home, tmp_path):
    from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

    data_dir = tmp_path / "data"
    with SampleImdbServer() as server:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "MPDS_DATA_DIR": str(data_dir),
            "MPDS_IMDB_BASE_URL": server.base_url,
            "MPDS_TITLE_IDS": "1-50",
            "MPDS_PERSON_IDS": "1-50",
            "MPDS_PARTITION_SIZE": "50",
            "MPDS_RATE": "50",
            "MPDS_BACKOFF_BASE_S": "0.05",
            "MPDS_BLIP2_MODEL": str(save_tiny_blip2(tmp_path / "tiny-blip2")),
            "MPDS_DEVICE": "cpu",
        }

        def materialize(select: str, partition: str | None = None) -> None:
            args = [DAGSTER, "asset", "materialize", "-m", "mpds_pipeline", "--select", select]
            if partition:
                args += ["--partition", partition]
            done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
            assert done.returncode == 0, f"{select}: {done.stdout[-3000:]}{done.stderr[-3000:]}"

        ranges = subprocess.run([str(Path(sys.executable).with_name("mpds")), "ranges"], env=env, capture_output=True, text=True)
        assert ranges.returncode == 0, ranges.stderr
        materialize("title_pages,title_records", TITLE_KEY)
        materialize("person_pages,person_records", PERSON_KEY)
        materialize("movies,actors,actor_images,dataset_statistics")
        materialize("poster_images,vision_prompts", TITLE_KEY)
        materialize("rectifications,poster_prompts,export")

    export_dir = data_dir / "export"
    posters = pd.read_csv(export_dir / "posters.csv")
    assert len(posters) > 5
    assert all((export_dir / "posters" / f"{i}.jpg").stat().st_size >= 5120 for i in posters["id"])

    target = int(posters["id"].iloc[-1])
    (data_dir / "rectifications").mkdir(exist_ok=True)
    (data_dir / "rectifications" / "fix.csv").write_text(f"id,text\n{target},a lighthouse in a storm at night\n")
    materialize("poster_prompts*")
    merged = pd.read_csv(export_dir / "posters.csv").set_index("id")
    assert merged.loc[target, "text"].startswith("a lighthouse in a storm at night")

    # The runs and their materialisations live in the instance's SQLite storage.
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with DagsterInstance.get() as instance:
        assert (dagster_home / "history" / "runs.db").exists() or any(dagster_home.rglob("*.db"))
        event = instance.get_latest_materialization_event(AssetKey("export"))
        assert event is not None
        assert event.asset_materialization.metadata["poster_rows"].value == len(posters)
        assert len(instance.get_runs()) == 6
