"""A poster that passes the download's structure check but does not decode is found at
captioning, recorded in the manifest, and kept out of the export: through the core,
and once through Dagster (poster_images -> vision_prompts -> export)."""

from __future__ import annotations

import pandas as pd
import pytest

from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.images import download_images
from mpds_pipeline.curate.manifest import read_manifest
from mpds_pipeline.vision.captioner import CaptionSettings, caption_partition
from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

from .test_images import ImageServer

PARTITION = "tt0000001-tt0000050"
POSTERS = {1: "/good.jpg", 2: "/undecodable.jpg", 3: "/good2.jpg"}


@pytest.fixture(scope="module")
def blip2(tmp_path_factory):
    return save_tiny_blip2(tmp_path_factory.mktemp("tiny-blip2"))


@pytest.fixture
def server():
    srv = ImageServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def movies_for(server) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": i,
                "title": f"Movie {i}",
                "year": 2000,
                "genres": ["Drama"],
                "actors": {},
                "synopsis": "A story.",
                "poster_url": server.base + path,
            }
            for i, path in POSTERS.items()
        ]
    )


def test_captioning_records_a_decode_failure_that_keeps_the_poster_out(server, blip2, tmp_path):
    folder = tmp_path / "images" / "posters" / PARTITION
    download = download_images([(i, server.base + p) for i, p in POSTERS.items()], folder, server.settings())
    assert download.status_counts == {"ok": 3} and download.verification["verified_structure_only"] == 3

    lines: list[str] = []
    result = caption_partition(
        [(i, folder / f"{i}.jpg") for i in POSTERS],
        tmp_path / "captions.parquet",
        CaptionSettings(model=str(blip2), batch_size=2, max_new_tokens=4, decode_workers=1),
        manifest_dir=folder,
        log=lines.append,
    )
    assert (result.count, result.errors, result.decode_failures) == (2, 1, 1)
    assert lines[-1].startswith("captions captions: 3/3 posters (100.0%)")

    rows = read_manifest(folder).set_index("id")
    assert rows.loc[2, "status"] == "invalid"
    assert rows.loc[2, "reason"].startswith("does not decode (captioning): OSError")
    assert rows.loc[[1, 3], "verified"].tolist() == ["decoded", "decoded"]
    assert rows.loc[[1, 3], "decoded_by"].tolist() == ["captioning", "captioning"]

    export = write_export(
        movies_for(server), None, [folder], pd.DataFrame(columns=["id", "name", "image_url"]), None, tmp_path / "export"
    )
    assert pd.read_csv(export.files["posters.csv"])["id"].tolist() == [1, 3]


def test_the_same_through_dagster(server, blip2, tmp_path):
    from dagster import DagsterInstance, materialize

    from mpds_pipeline.base.layout import DataLayout
    from mpds_pipeline.curate.store import write_table
    from mpds_pipeline.definitions import export
    from mpds_pipeline.defs.assets.captions import vision_prompts
    from mpds_pipeline.defs.assets.curation import poster_images
    from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, ModelsResource

    data = tmp_path / "data"
    write_table(movies_for(server), DataLayout(data).movies_file)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [PARTITION])
    resources = {
        "imdb": ImdbClientResource(base_url=server.base, rate_per_second=50, max_retries=0, extra_allowed_hosts=[]),
        "data_dir": DataDirResource(path=str(data)),
        "models": ModelsResource(blip2=str(blip2), device="cpu"),
    }
    run_config = {"ops": {"vision_prompts": {"config": {"batch_size": 2, "max_new_tokens": 4}}}}
    first = materialize(
        [poster_images, vision_prompts],
        partition_key=PARTITION,
        resources=resources,
        instance=instance,
        run_config=run_config,
    )
    assert first.success
    downloaded = first.asset_materializations_for_node("poster_images")[0].metadata
    captioned = first.asset_materializations_for_node("vision_prompts")[0].metadata
    assert downloaded["verified_structure_only"].value == 3 and downloaded["verified_decoded"].value == 0
    assert captioned["decode_failures"].value == 1 and captioned["verified_decoded"].value == 2

    assert materialize([export], resources=resources, instance=instance).success
    assert pd.read_csv(data / "export" / "posters.csv")["id"].tolist() == [1, 3]
