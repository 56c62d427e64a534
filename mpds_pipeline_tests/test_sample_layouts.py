"""The sample server's pages in every IMDb layout since 2006 parse to the same records.

The ground truth is ``sample_title``/``sample_person``; the pages of each layout are
rendered from it (``render_title(..., layout=...)``), and the parsers must read every
field back, whatever the year's markup.
"""

from __future__ import annotations

import httpx
import pytest

from mpds_pipeline.imdb import ids
from mpds_pipeline.imdb.crawl import crawl_partition
from mpds_pipeline.imdb.page_data import full_size_image
from mpds_pipeline.imdb.parse_title import MAX_ACTORS
from mpds_pipeline.imdb.parsing import parse_page
from mpds_pipeline.imdb.record_store import parse_archive
from mpds_pipeline.imdb.records import PersonRecord, TitleRecord
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server import SampleImdbServer, sample_person, sample_title
from mpds_pipeline.sample_server.older_pages import (
    ARCHIVE_YEARS,
    PERSON_LAYOUTS,
    TITLE_LAYOUTS,
    archive_layout,
    archive_year,
    layout_for_year,
    shown_genres,
)
from mpds_pipeline.sample_server.pages import image_url, render_person, render_title

BASE = "http://127.0.0.1:8000"
TITLE_IDS = [i for i in range(1, 51) if sample_title(i)["status"] == "ok"]
PERSON_IDS = [i for i in range(1, 41) if sample_person(i)["status"] == "ok"]
ERAS = {"tn15": "tn15", "combined": "combined", "infobar": "classic", "classic": "classic", "next": "next"}


def _title_truth(t: dict, layout: str) -> dict:
    poster = full_size_image(image_url(BASE, t["poster_token"])) if t["poster_token"] else None
    return {
        "id": t["id"],
        "title": t["title"],
        "original_title": t["original_title"],
        "title_type": t["title_type"],
        "year": t["year"],
        "genres": shown_genres(t, layout),
        "actors": {name: ids.person_url(pid) for pid, name in t["cast"][:MAX_ACTORS]},
        "poster_url": poster,
        "synopsis": t["plot"],
        "certificate": t["certificate"],
        "is_adult": t["is_adult"],
    }


@pytest.mark.parametrize("layout", TITLE_LAYOUTS)
def test_title_pages_of_every_layout_give_the_truth(layout):
    for title_id in TITLE_IDS:
        t = sample_title(title_id)
        record = parse_page(render_title(title_id, 0, BASE, 4, layout=layout))
        assert isinstance(record, TitleRecord), (title_id, record)
        fields = {name: getattr(record, name) for name in _title_truth(t, layout)}
        expected = _title_truth(t, layout)
        if layout == "classic":
            # The live classic sample pages carry no og:title, so no type (unchanged).
            expected["title_type"] = fields["title_type"] = None
        assert fields == expected, (title_id, layout)
        assert record.era.startswith(ERAS[layout])


def test_every_case_is_in_the_checked_ids():
    titles = [sample_title(i) for i in TITLE_IDS]
    assert {t["title_type"] for t in titles} >= {"movie", "tvSeries", "tvMovie", "video", "short"}
    assert any(t["poster_token"] is None for t in titles) and any(t["plot"] is None for t in titles)
    assert any(t["is_adult"] for t in titles) and any(t["language"] != "en" for t in titles)
    assert any(t["certificate"] in ("Not Rated", "TV-14", "18") for t in titles)
    assert any(t["certificate"] is None for t in titles) and any(not t["cast"] for t in titles)
    persons = [sample_person(i) for i in PERSON_IDS]
    assert any(not p["is_actor"] for p in persons) and any(p["image_token"] is None for p in persons)


@pytest.mark.parametrize("layout", PERSON_LAYOUTS)
def test_person_pages_of_every_layout_give_the_truth(layout):
    for person_id in PERSON_IDS:
        p = sample_person(person_id)
        record = parse_page(render_person(person_id, 0, BASE, 4, layout=layout))
        assert isinstance(record, PersonRecord), (person_id, record)
        image = full_size_image(image_url(BASE, p["image_token"])) if p["image_token"] else None
        assert (record.id, record.name, record.image_url) == (person_id, p["name"], image)
        assert record.professions == p["professions"] and record.is_actor == p["is_actor"]
        assert [photo.caption for photo in record.photos] == [photo["caption"] for photo in p["photos"]]


def test_same_id_gives_the_same_record_in_every_layout():
    for title_id in TITLE_IDS:
        if sample_title(title_id)["title_type"] == "short":
            continue  # its older pages list the genre "Short" too (shown_genres)
        records = [parse_page(render_title(title_id, 0, BASE, 4, layout=layout)) for layout in TITLE_LAYOUTS]
        for record in records:
            record.era = "unknown"
            if record.title_type is None:  # the classic sample page (see above)
                record.title_type = records[0].title_type
        assert all(record == records[0] for record in records), title_id


def test_older_pages_are_iso_8859_1_and_decoded_as_such():
    french = next(
        i for i in TITLE_IDS if any(ord(c) > 127 for c in sample_title(i)["title"] + (sample_title(i)["plot"] or ""))
    )
    page = render_title(french, 0, BASE, 4, layout="tn15")
    assert b"charset=iso-8859-1" in page[:400]
    with pytest.raises(UnicodeDecodeError):
        page.decode("utf-8")
    t = sample_title(french)
    record = parse_page(page)
    assert (record.title, record.synopsis) == (t["title"], t["plot"])


def test_unknown_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown title layout 'v2'"):
        render_title(TITLE_IDS[0], 0, BASE, layout="v2")
    with pytest.raises(ValueError, match="unknown person layout 'combined'"):
        render_person(PERSON_IDS[0], 0, BASE, layout="combined")


def test_archive_layouts_follow_the_years():
    assert [layout_for_year("title", y) for y in (2008, 2010, 2011, 2012, 2013, 2021, 2022, 2025)] == [
        "tn15",
        "tn15",
        "infobar",
        "infobar",
        "classic",
        "classic",
        "next",
        "next",
    ]
    years = [archive_year("title", i) for i in range(1, 401)]
    assert years == [archive_year("title", i) for i in range(1, 401)]  # deterministic
    assert set(years) == set(range(ARCHIVE_YEARS[0], ARCHIVE_YEARS[1] + 1))
    layouts = {archive_layout("title", i) for i in range(1, 401)}
    assert layouts == {"tn15", "combined", "infobar", "classic", "next"}
    assert {archive_layout("person", i) for i in range(1, 401)} == {"tn15", "infobar", "classic", "next"}
    assert archive_layout("title", 4, year=2024) == "next" and archive_layout("title", 4, year=2009) == "combined"
    # Live pages keep their layout: the archive choice changes nothing there.
    assert {sample_title(i)["layout"] for i in TITLE_IDS} == {"next", "classic"}


def test_server_serves_the_combined_view():
    title_id = next(i for i in TITLE_IDS if sample_title(i)["cast"] and sample_title(i)["poster_token"])
    with SampleImdbServer() as server:
        reply = httpx.get(f"{server.base_url}/title/tt{title_id:07d}/combined")
        live = httpx.get(f"{server.base_url}/title/tt{title_id:07d}/")
    assert reply.status_code == 200 and reply.headers["content-type"] == "text/html; charset=iso-8859-1"
    assert live.headers["content-type"] == "text/html; charset=utf-8"
    record, today = parse_page(reply.content), parse_page(live.content)
    assert record.era == "combined" and record.id == title_id
    assert (record.title, record.year, record.actors, record.poster_url) == (
        today.title,
        today.year,
        today.actors,
        today.poster_url,
    )


@pytest.mark.parametrize("year", [2009, 2011])
def test_crawl_of_a_year_layout_server_gives_the_live_records(tmp_path, year):
    # The whole path: crawl (classify, archive) then parse, against a server that serves
    # every page in that year's layout, and against today's pages.
    settings = dict(rate_per_second=0, concurrency=4, timeout_s=5.0, max_retries=1, backoff_base_s=0.01)
    records = {}
    for label, layout_year in (("live", None), ("old", year)):
        with SampleImdbServer(layout_year=layout_year, padding_kb=4) as server:
            for kind, ids_ in (("title", range(1, 31)), ("person", range(1, 21))):
                folder = tmp_path / label / kind
                crawl_partition(kind, ids_, ClientSettings(base_url=server.base_url, **settings), folder)
                parsed = parse_archive(folder, kind)
                assert parsed.errors == []
                # Each server has its own port: compare image URLs without it.
                records[label, kind] = [_without_host(r.to_dict(), server.base_url) for r in parsed.records]
    layout = {2009: "tn15", 2011: "infobar"}[year]
    for kind in ("title", "person"):
        live, old = records["live", kind], records["old", kind]
        assert [r["id"] for r in old] == [r["id"] for r in live] and old
        assert {r.pop("era") for r in old} == ({"tn15"} if year == 2009 else {"classic"})
        for today, then in zip(live, old, strict=True):
            today.pop("era")
            if kind == "title":
                t = sample_title(today["id"])
                today["genres"] = shown_genres(t, layout)
                if today["title_type"] is None:  # the live classic sample page (see above)
                    today["title_type"] = t["title_type"]
            else:  # only Next.js pages tag the people in a photo and give its size
                for photo in today["photos"]:
                    photo.update(tagged_ids=None, width=None, height=None)
            assert today == then, today["id"]


def _without_host(record: dict, base: str) -> dict:
    for key in ("poster_url", "image_url"):
        if record.get(key):
            record[key] = record[key].removeprefix(base)
    for photo in record.get("photos", []):
        photo["url"] = photo["url"].removeprefix(base)
    return record
