"""Person photos: the strip of every real page era, who is in a photo, the gallery
request, and the records that keep them.

Expected strips were read from the saved pages themselves (the __NEXT_DATA__ image
nodes, the desktop and mobile strip markup), not from the parser's output.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.imdb.archive import PageArchive
from mpds_pipeline.imdb.crawl import crawl_partition, read_outcomes
from mpds_pipeline.imdb.galleries import actors_needing_gallery, crawl_galleries
from mpds_pipeline.imdb.ids import GALLERY_KIND
from mpds_pipeline.imdb.parsing import parse_file
from mpds_pipeline.imdb.person_photos import (
    ALONE,
    NOT_NAMED,
    UNCAPTIONED,
    WITH_OTHERS,
    caption_subject,
    gallery_photos,
    photo_subject,
)
from mpds_pipeline.imdb.record_store import parse_archive, read_records, write_records
from mpds_pipeline.imdb.records import PersonPhoto, PersonRecord
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server import SampleImdbServer, sample_person
from mpds_pipeline_tests.shared_samples import IMDB_PAGES as PAGES
from mpds_pipeline_tests.shared_samples import needs_shared as needs_pages

CDN = "https://m.media-amazon.com/images/M/"

# file, strip size, (index, caption, image key after /images/M/, full-size host)
STRIPS = [
    (
        "next-data-json/nm0000126.next_data.json",
        9,
        [
            (
                0,
                "Kevin Costner and Sienna Miller in Horizon: An American Saga - Chapter 1 (2024)",
                "MV5BOTVjNGZlMDEt",
                CDN,
            ),
            (4, "Kevin Costner in Waterworld (1995)", "MV5BZTY1NGI5ZjQt", CDN),
        ],
    ),
    # A browser "save page as" copy: src is a local file named after the image token.
    (
        "real/nm0000434.html",
        6,
        [
            (0, "Mark Hamill and Charles Lippincott", "MV5BMTlkZTliODMt", CDN),
            (1, "Mark Hamill in What We Do in the Shadows: On the Run (2020)", "MV5BZDk2YmE0MDYt", CDN),
        ],
    ),
    # 2014 desktop: /media/rm…/nm… links, lazy-loaded (URL in loadlate, placeholder in src).
    (
        "real/nm0000246.html",
        6,
        [
            # The page's ia.media-imdb.com URLs name today's host, same key.
            (1, "Still of Bruce Willis in The Prince (2014)", "MV5BMjMzNTQ1MzI2", CDN),
            (5, "Bruce Willis", "MV5BMTcxNTE2Nzk3", CDN),
        ],
    ),
    (
        "real/nm1212722.html",
        6,
        [
            (
                1,
                "Benedict Cumberbatch in Doctor Strange (2016)",
                "MV5BMTU0MjY1MjM1",
                CDN,  # images-na.ssl-images-amazon.com on the page
            ),
        ],
    ),
]


@needs_pages
@pytest.mark.parametrize("file,count,expected", STRIPS, ids=[s[0] for s in STRIPS])
def test_photo_strip_of_every_era(file, count, expected):
    record = parse_file(PAGES / file)
    assert isinstance(record, PersonRecord), record
    assert len(record.photos) == count
    assert record.image_url not in {p.url for p in record.photos}  # the primary image is not a strip photo
    for photo in record.photos:
        assert photo.url.endswith("._V1_.jpg") and photo.source == "strip"
    for index, caption, key, host in expected:
        photo = record.photos[index]
        assert photo.caption == caption
        assert photo.url.startswith(host + key)


@needs_pages
def test_sizes_come_from_page_data_only():
    costner = parse_file(PAGES / "next-data-json/nm0000126.next_data.json")
    assert (costner.photos[0].width, costner.photos[0].height) == (1920, 1080)
    hamill = parse_file(PAGES / "real/nm0000434.html")  # 99 px thumbnails: not the photo's size
    assert len(hamill.photos) == 6 and all(p.width is None and p.height is None for p in hamill.photos)


@needs_pages
def test_solo_photos_by_caption_on_real_strips():
    subjects = {}
    for file, *_ in STRIPS:
        record = parse_file(PAGES / file)
        subjects[record.name] = [photo_subject(p, record.id, record.name) for p in record.photos]
    assert subjects["Kevin Costner"].count(ALONE) == 2  # 7 of 9 name a co-star too
    assert subjects["Mark Hamill"] == [WITH_OTHERS, ALONE, WITH_OTHERS, ALONE, ALONE, ALONE]
    assert subjects["Bruce Willis"] == [ALONE, ALONE, ALONE, ALONE, WITH_OTHERS, ALONE]
    assert subjects["Benedict Cumberbatch"] == [WITH_OTHERS, ALONE, ALONE, WITH_OTHERS, WITH_OTHERS, WITH_OTHERS]


@needs_pages
def test_tags_of_2025_image_nodes_decide_who_is_in_a_photo():
    photos = gallery_photos((PAGES / "next-data-json/tt0910970.media_gallery.json").read_bytes(), 123785)
    assert len(photos) == 50 and all(p.source == "gallery" for p in photos)
    first = photos[0]
    assert first.caption == "Ben Burtt and Elissa Knight in WALL·E (2008)" and first.tagged_ids == [123785, 2264184]
    burtt = [photo_subject(p, 123785, "Ben Burtt") for p in photos]
    assert burtt.count(ALONE) == 14 and burtt.count(WITH_OTHERS) == 7
    # A tag wins over the caption: the caption below names Ben Burtt alone.
    tagged_other = PersonPhoto(url="u", caption="Ben Burtt in WALL·E (2008)", tagged_ids=[2264184])
    assert photo_subject(tagged_other, 123785, "Ben Burtt") == NOT_NAMED


@pytest.mark.parametrize(
    "caption,expected",
    [
        ("Kevin Costner", ALONE),
        ("Kevin Costner in Waterworld (1995)", ALONE),
        ("Still of Kevin Costner in Dances with Wolves (1990)", ALONE),
        ("Kevin Costner at an event for The Postman (1997)", ALONE),
        ("kevin  COSTNER in Robin Hood (1991)", ALONE),
        ("Kevin Costner and Sienna Miller in Horizon (2024)", WITH_OTHERS),
        ("Tina Majorino, Kevin Costner, and Jeanne Tripplehorn in Waterworld (1995)", WITH_OTHERS),
        ("Elijah Wood with Kevin Costner", WITH_OTHERS),
        ("Dennis Hopper in Waterworld (1995)", NOT_NAMED),
        ("Kevin Costnerson in Waterworld (1995)", NOT_NAMED),
    ],
)
def test_caption_names_this_person_alone(caption, expected):
    assert caption_subject(caption, "Kevin Costner") == expected


def test_an_uncaptioned_untagged_photo_is_left_to_the_face_count():
    assert photo_subject(PersonPhoto(url="u"), 1, "A B") == UNCAPTIONED


def test_photos_round_trip_and_old_record_files_stay_readable(tmp_path):
    folder = tmp_path / "records"
    photo = PersonPhoto(
        url="https://m.media-amazon.com/images/M/a._V1_.jpg",
        caption="A in B (2000)",
        width=400,
        height=600,
        tagged_ids=[5],
        source="gallery",
    )
    write_records([PersonRecord(5, "A", "u", ["actor"], True, "next", [photo])], "person", folder / "nm1.parquet")
    # A file written before photos existed: the same columns but that one.
    old = pa.table(
        {
            "id": [6],
            "name": ["B"],
            "image_url": ["v"],
            "professions": [["actor"]],
            "is_actor": [True],
            "era": ["classic"],
        }
    )
    pq.write_table(old, folder / "nm0.parquet")
    frame = read_records(folder, "person").set_index("id")
    assert frame.loc[6, "photos"] == []
    (stored,) = frame.loc[5, "photos"]
    assert stored["url"] == photo.url and stored["caption"] == photo.caption and list(stored["tagged_ids"]) == [5]
    assert (stored["width"], stored["height"], stored["source"]) == (400, 600, "gallery")


def test_sample_server_person_pages_mirror_each_layout():
    with SampleImdbServer() as server:
        import httpx

        from mpds_pipeline.imdb.parsing import parse_page

        for person_id, layout in ((1, "next"), (7, "mobile"), (14, "classic")):
            truth = sample_person(person_id)
            assert truth["layout"] == layout
            record = parse_page(httpx.get(f"{server.base_url}/name/nm{person_id:07d}").content, kind="person")
            assert [p.caption for p in record.photos] == [p["caption"] for p in truth["photos"]] and record.photos
            assert all(
                truth["photos"][i]["token"] in p.url and p.url.endswith("._V1_.jpg")
                for i, p in enumerate(record.photos)
            )
            tags = [p.tagged_ids for p in record.photos]
            assert tags == ([p["tagged"] for p in truth["photos"]] if layout == "next" else [None] * len(tags))


def test_gallery_is_fetched_once_for_actors_with_too_few_solo_photos(tmp_path):
    settings = ClientSettings(rate_per_second=0, concurrency=4, timeout_s=2.0, max_retries=1, backoff_base_s=0.01)
    ids = range(1, 31)
    with SampleImdbServer() as server:
        settings.base_url = server.base_url
        crawl_partition("person", ids, settings, tmp_path)
        truth = {i: sample_person(i) for i in ids}
        # Actors with an image whose strip has one solo photo (the sample's gallery plan) or
        # none at all (a tiny image: no strip).
        expected = sorted(
            i
            for i, p in truth.items()
            if p["status"] == "ok" and p["is_actor"] and p["image_token"] and (p["gallery"] or not p["photos"])
        )
        assert actors_needing_gallery(tmp_path) == expected and expected
        first = crawl_galleries(tmp_path, settings)
        assert first.wanted == expected and first.metadata()["gallery_status_ok"] == len(expected)
        assert server.request_count("/name/") == len(ids) + len(expected)
        again = crawl_galleries(tmp_path, settings)  # archived: nothing is fetched twice
        assert again.wanted == [] and server.request_count("/name/") == len(ids) + len(expected)
    archived = PageArchive(tmp_path).archived_ids(GALLERY_KIND)
    assert sorted(archived) == expected
    assert {o.kind for o in read_outcomes(tmp_path)} == {"person", GALLERY_KIND}
    records = {r.id: r for r in parse_archive(tmp_path, "person").records}
    with_gallery = [i for i in expected if truth[i]["gallery"]]
    assert with_gallery
    for person_id in with_gallery:
        sources = [p.source for p in records[person_id].photos]
        assert sources.count("strip") == len(truth[person_id]["photos"])
        assert sources.count("gallery") == len(truth[person_id]["gallery"])  # the strip's photos are not repeated
