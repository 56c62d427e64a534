"""The licence-clean edition through the real Dagster CLI, with the commands
docs/licence-clean.md gives (and the demo runs): the wikimedia job against the sample
server's Wikidata and Commons, then curate, poster downloads and export with
MPDS_EDITION=licence_clean. Poster 101, which the sample server marks ``noai``, is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from mpds_pipeline.base import jobnames
from mpds_pipeline.base.layout import LICENCE_CLEAN, DataLayout
from mpds_pipeline.base.settings import write_settings_file
from mpds_pipeline.sample_server import SampleImdbServer
from mpds_pipeline.sample_server.server import NOAI_POSTERS

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TITLE_KEY, PERSON_KEY = "tt0000081-tt0000120", "nm0000001-nm0000040"


def test_cli_builds_the_licence_clean_edition_beside_the_research_one(dagster_home, tmp_path):
    from huggingface_hub import DatasetCard

    noai_id = next(iter(NOAI_POSTERS))
    layout = DataLayout(tmp_path / "data")
    write_settings_file(
        layout.settings_file,
        {"MPDS_TITLE_IDS": "81-120", "MPDS_PERSON_IDS": "1-40", "MPDS_PARTITION_SIZE": "40", "MPDS_DEVICE": "cpu"},
        "as `mpds demo` writes it",
    )
    with SampleImdbServer() as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith("MPDS_")}
        env.update(
            {
                "DAGSTER_HOME": str(dagster_home),
                "MPDS_DATA_DIR": str(layout.root),
                "MPDS_IMDB_BASE_URL": server.base_url,
                "MPDS_PAGE_SOURCES": "live",
                "MPDS_RATE": "50",
                "MPDS_BACKOFF_BASE_S": "0.05",
                "MPDS_WIKIDATA_URL": f"{server.base_url}/wikidata",
                "MPDS_WIKIDATA_SPARQL_URL": f"{server.base_url}/sparql",
                "MPDS_COMMONS_URL": f"{server.base_url}/commons",
                "MPDS_WIKIMEDIA_RATE": "0",
            }
        )

        def run(*args: str, edition: str | None = None) -> None:
            extra = {"MPDS_EDITION": edition} if edition else {}
            done = subprocess.run(
                args, env={**env, **extra}, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600
            )
            assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"

        def job(name: str, partition: str | None = None, edition: str | None = None) -> None:
            tags = ["--tags", json.dumps({"dagster/partition": partition})] if partition else []
            run(str(BIN / "dagster"), "job", "execute", "-m", "mpds_pipeline", "-j", name, *tags, edition=edition)

        run(str(BIN / "mpds"), "ranges")
        job(jobnames.TITLE_CRAWL, TITLE_KEY)
        job(jobnames.PERSON_CRAWL, PERSON_KEY)
        job(jobnames.CURATE)
        job(jobnames.WIKIMEDIA)
        job(jobnames.CURATE, edition=LICENCE_CLEAN)
        run(
            str(BIN / "dagster"),
            *("asset", "materialize", "-m", "mpds_pipeline", "--select", "poster_images", "--partition", TITLE_KEY),
            edition=LICENCE_CLEAN,
        )
        job(jobnames.EXPORT, edition=LICENCE_CLEAN)

    clean = DataLayout(layout.root, LICENCE_CLEAN)
    manifest = pd.read_parquet(clean.poster_images_dir(TITLE_KEY) / "manifest.parquet").set_index("id")
    assert manifest.loc[noai_id, "reason"] == "opted_out:noai"
    posters = pd.read_csv(clean.export_dir / "posters.csv")
    attribution = pd.read_csv(clean.export_dir / "attribution.csv")
    assert len(posters) > 3 and noai_id not in set(posters["id"])
    assert {f"posters/{i}.jpg" for i in posters["id"]} <= set(attribution["file_name"])
    assert attribution["licence"].notna().all() and attribution["author"].notna().all()
    card = DatasetCard.load(clean.export_dir / "README.md")
    assert card.data.to_dict()["license_name"] == "per-image-free-licences"
    assert "opted_out:noai: 1" in card.text
    assert not layout.export.posters_csv.exists()  # the research export was never built: nothing overwritten
