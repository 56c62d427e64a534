"""Both editions through Dagster: the research export gains attribution.csv and a dataset
card; the licence-clean edition (wikimedia asset, then the same download, photo and export
assets with edition=licence_clean) exports only allowlisted Commons images, each
attributed, refuses an opted-out one, and its card loads with huggingface_hub and datasets."""

from __future__ import annotations

import pandas as pd
import pytest

from mpds_pipeline.base.layout import LICENCE_CLEAN, DataLayout
from mpds_pipeline.sample_server.wikimedia import title_item

from .conftest import PIPELINE_TITLE_KEY


def load_card_everywhere(export_dir, cache_dir) -> dict:
    """The card through the hub's parser, every config it names through datasets, and
    every table its body names with the line the body gives."""
    import re

    import datasets
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(export_dir / "README.md")
    data = card.data.to_dict()
    loaded = {}
    for config in data["configs"]:
        ds = datasets.load_dataset(str(export_dir), config["config_name"], cache_dir=str(cache_dir))
        loaded[config["config_name"]] = ds["train"]
    tables = re.findall(r'load_dataset\("(parquet|csv)", data_files="([^"]+)"\)', card.text)
    for builder, file in tables:
        ds = datasets.load_dataset(builder, data_files=str(export_dir / file), cache_dir=str(cache_dir))
        loaded[file] = ds["train"]
    return {"card": card, "data": data, "loaded": loaded, "tables": dict((f, b) for b, f in tables)}


def test_research_export_has_a_card_that_loads(pipeline, tmp_path):
    export_dir = pipeline["root"] / "export"
    got = load_card_everywhere(export_dir, tmp_path / "hf-cache")
    data = got["data"]
    assert data["task_categories"] == ["text-to-image"] and data["license"] == "other"
    assert data["license_name"] == "imdb-non-commercial-research"
    posters = pd.read_csv(export_dir / "posters.csv")
    assert len(got["loaded"]["posters"]) == len(posters) and "image" in got["loaded"]["posters"].features
    assert len(got["loaded"]["meta.csv"]) == len(pd.read_csv(export_dir / "meta.csv"))  # its Parquet has a map
    assert len(got["loaded"]["posters.parquet"]) == len(posters)
    assert len(got["loaded"]["actor_photos"]) == len(pd.read_csv(export_dir / "actor_photos.csv"))
    assert "attribution.csv" not in got["tables"]  # no Wikimedia image in the research export
    text = got["card"].text
    assert "non-commercial" in text and "arXiv:2410.16840" in text and "were\n**honoured**" in text
    assert (export_dir / "attribution.csv").read_text().splitlines()[0].startswith("file_name,kind,id,title,author")


@pytest.fixture
def licence_clean(pipeline, tmp_path):
    """The licence-clean edition built over the pipeline's copy, against a fresh sample
    server playing Wikidata and Commons; one kept Commons poster is opted out of AI."""
    from dagster import materialize

    from mpds_pipeline.definitions import export
    from mpds_pipeline.defs.assets.actor_photos import actor_photos
    from mpds_pipeline.defs.assets.curation import actor_images, poster_images
    from mpds_pipeline.defs.assets.wikimedia import wikimedia
    from mpds_pipeline.defs.resources import DataDirResource, SourcesResource
    from mpds_pipeline.sample_server import SampleImdbServer

    movie_ids = sorted(pd.read_parquet(DataLayout(pipeline["root"]).movies_file)["id"])
    # a movie whose Commons poster is kept (licences by id % 6: 2-5 are allowlisted)
    optout_id = next(i for i in movie_ids if (title_item(i) or {}).get("poster") and i % 6 in (2, 3, 4, 5))
    with SampleImdbServer() as server:
        server.poster_optouts = {optout_id: (("X-Robots-Tag", "mpds-pipeline: noimageai"),)}
        resources = {
            **pipeline["resources"],
            "sources": SourcesResource(
                wikidata_url=f"{server.base_url}/wikidata",
                wikidata_sparql_url=f"{server.base_url}/sparql",
                commons_url=f"{server.base_url}/commons",
                wikimedia_rate=0,
                thumb_width=250,
            ),
        }
        run = {"instance": pipeline["instance"], "resources": resources}
        assert materialize([wikimedia], **run).success
        resources["data_dir"] = DataDirResource(path=str(pipeline["root"]), edition=LICENCE_CLEAN)
        assert materialize([actor_images, actor_photos], **run).success
        downloads = materialize([poster_images], partition_key=PIPELINE_TITLE_KEY, **run)
        assert downloads.success
        final = materialize([export], **run)
        assert final.success
    return {
        "layout": DataLayout(pipeline["root"], LICENCE_CLEAN),
        "optout_id": optout_id,
        "downloads": downloads,
        "final": final,
        "server_requests": server.requests,
    }


def test_licence_clean_export_has_only_allowlisted_attributed_images(licence_clean, pipeline, tmp_path):
    layout = licence_clean["layout"]
    export_dir = layout.export_dir
    assert export_dir.name == "export-licence-clean" and (pipeline["root"] / "export" / "posters.csv").is_file()
    attribution = pd.read_csv(export_dir / "attribution.csv")
    posters = pd.read_csv(export_dir / "posters.csv")
    assert len(posters) > 3
    files = pd.read_parquet(layout.commons_files_file)
    kept_licences = set(files.loc[files["decision"] == "kept", "licence"])
    # every exported image (posters, actor images, face crops) is a row of attribution.csv
    exported = {f"posters/{i}.jpg" for i in posters["id"]}
    exported |= {f"actors/{p.name}" for p in (export_dir / "actors").glob("*.jpg")}
    exported |= set(pd.read_csv(export_dir / "actor_photos.csv")["file_name"])
    assert exported == set(attribution["file_name"])
    assert set(attribution["licence"]) <= kept_licences
    assert set(attribution["licence"]) <= {"CC BY-SA 4.0", "Public domain", "CC0", "CC BY 4.0", "CC BY 2.0"}
    assert attribution["author"].notna().all() and attribution["source_page"].str.contains("/commons/wiki/File:").all()
    assert {"poster", "actor_image", "actor_photo"} <= set(attribution["kind"])
    # provenance: every image row is a Commons file with its licence, attribution and page
    provenance = pd.read_parquet(export_dir / "provenance.parquet")
    images = provenance[provenance["kind"].isin(["poster", "actor_photo"])]
    assert len(images) >= len(posters)
    assert images["licence"].notna().all() and (images["source"] == "wikimedia_commons").all()
    assert (images["source_url"] == images["source_page"]).all() and images["attribution"].notna().all()
    research = pd.read_parquet(pipeline["root"] / "export" / "provenance.parquet")
    assert research["licence"].isna().all()  # IMDb images carry no licence
    # the metadata is Wikidata's and the datasets': poster-url is the Commons original
    meta = pd.read_csv(export_dir / "meta.csv")
    with_poster = meta["poster-url"].dropna()
    assert with_poster.str.contains("/commons/files/").all() and set(posters["id"]) <= set(
        meta.loc[with_poster.index, "id"]
    )
    assert set(meta["synopsis"].dropna()) <= {f"{y} film" for y in range(1900, 2030)}


def test_licence_clean_refuses_the_opted_out_poster_and_the_card_says_so(licence_clean, tmp_path):
    layout, optout_id = licence_clean["layout"], licence_clean["optout_id"]
    manifest = pd.read_parquet(layout.poster_images_dir(PIPELINE_TITLE_KEY) / "manifest.parquet").set_index("id")
    assert manifest.loc[optout_id, "reason"] == "opted_out:noimageai"
    posters = pd.read_csv(layout.export_dir / "posters.csv")
    assert optout_id not in set(posters["id"])
    downloads = licence_clean["downloads"].asset_materializations_for_node("poster_images")[0].metadata
    assert downloads["edition"].value == LICENCE_CLEAN and downloads["ai_optout"].value == "honoured"
    assert downloads["without_image_licence_not_allowlisted"].value > 0
    got = load_card_everywhere(layout.export_dir, tmp_path / "hf-cache")
    assert got["data"]["license_name"] == "per-image-free-licences"
    assert len(got["loaded"]["posters"]) == len(posters)
    assert len(got["loaded"]["attribution.csv"]) == len(pd.read_csv(layout.export_dir / "attribution.csv"))
    assert "opted_out:noimageai: 1" in got["card"].text and "licence-clean" in got["card"].text
    export_meta = licence_clean["final"].asset_materializations_for_node("export")[0].metadata
    assert export_meta["images_without_licence"].value == 0
