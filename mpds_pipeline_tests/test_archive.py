"""The WARC page archive: append, read back, recover from a kill, data-only mode."""

from __future__ import annotations

import gzip

import httpx
import pytest
from warcio.archiveiterator import ArchiveIterator

from mpds_pipeline.imdb.archive import PageArchive
from mpds_pipeline.imdb.crawl import PageOutcome
from mpds_pipeline.imdb.parsing import parse_page
from mpds_pipeline.net.client import FetchResponse
from mpds_pipeline.sample_server import SampleImdbServer, sample_title

PAGE = (
    b'<html><head><script type="application/ld+json">{"name": "X"}</script></head><body><h1>X</h1>'
    b'<script id="__NEXT_DATA__" type="application/json">{"props": {}}</script>'
    + b"<p>filler</p>" * 500
    + b"</body></html>"
)


def outcome(item_id: int, status: str = "ok", redirect_id: int | None = None) -> PageOutcome:
    http = {"ok": 200, "missing": 404, "redirect": 301, "blocked": 202, "failed": 503}[status]
    return PageOutcome(
        "title",
        item_id,
        f"http://127.0.0.1:1/title/tt{item_id:07d}",
        status,
        http,
        redirect_id,
        None,
        1,
        "2026-01-02T03:04:05.678+00:00",
    )


def response(item_id: int, status_code: int = 200, body: bytes = PAGE, **headers) -> FetchResponse:
    url = f"http://127.0.0.1:1/title/tt{item_id:07d}"
    base = {"content-type": "text/html", "content-length": "999", "content-encoding": "gzip"}
    return FetchResponse(url, status_code, {**base, **headers}, body, url, 1)


def test_roundtrip_keeps_only_final_responses(tmp_path):
    archive = PageArchive(tmp_path)
    assert archive.write(outcome(1), response(1))
    assert archive.write(outcome(2, "missing"), response(2, 404, b"not found"))
    assert archive.write(outcome(3, "redirect", 2), response(3, 301, b"", location="/title/tt0000002/"))
    assert not archive.write(outcome(4, "blocked"), response(4, 202, b"challenge"))
    assert not archive.write(outcome(5, "failed"), response(5, 503, b"error"))

    reopened = PageArchive(tmp_path)
    records = list(reopened.iter_responses())
    assert [(r.id, r.status, r.http_status) for r in records] == [
        (1, "ok", 200),
        (2, "missing", 404),
        (3, "redirect", 301),
    ]
    assert records[0].body == PAGE and records[0].kind == "title" and records[0].content == "full"
    # Wire headers that no longer describe the stored body are replaced.
    assert records[0].headers["content-length"] == str(len(PAGE)) and "content-encoding" not in records[0].headers
    assert records[2].redirect_id == 2 and records[2].headers["location"] == "/title/tt0000002/"
    assert records[0].fetched_at.startswith("2026-01-02T03:04:05")
    assert reopened.archived_ids("title") == {1, 2, 3}
    assert {r.url for r in reopened.iter_responses(with_bodies=False)} == {r.url for r in records}
    # Standard readers see a valid gzip WARC.
    assert gzip.decompress((tmp_path / "pages.warc.gz").read_bytes()).startswith(b"WARC/1.")
    with open(tmp_path / "pages.warc.gz", "rb") as fh:
        assert [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh)] == [r.url for r in records]


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_truncated_tail_is_dropped_before_appending(tmp_path, damage):
    archive = PageArchive(tmp_path)
    for item_id in (1, 2, 3):
        archive.write(outcome(item_id), response(item_id))
    path = tmp_path / "pages.warc.gz"
    data = path.read_bytes()
    if damage == "cut":  # killed in the middle of writing record 3
        path.write_bytes(data[:-200])
    else:  # a torn write left bytes that are not gzip at all
        path.write_bytes(data + b"\x1f\x8b\x08\x00garbage")

    recovered = PageArchive(tmp_path)
    assert recovered.dropped_tail_bytes > 0
    expected = {1, 2} if damage == "cut" else {1, 2, 3}
    assert recovered.archived_ids("title") == expected
    recovered.write(outcome(9), response(9))
    again = PageArchive(tmp_path)
    assert again.dropped_tail_bytes == 0
    assert [r.id for r in again.iter_responses()] == sorted(expected) + [9]


def test_reading_tolerates_a_truncated_tail_without_repairing(tmp_path):
    archive = PageArchive(tmp_path)
    archive.write(outcome(1), response(1))
    archive.write(outcome(2), response(2))
    path = tmp_path / "pages.warc.gz"
    path.write_bytes(path.read_bytes()[:-50])
    # iter_responses on an archive opened before the damage still stops cleanly.
    assert [r.id for r in archive.iter_responses()] == [1]
    # A reader (repair=False) never cuts the file: the tail may be a live writer's record.
    size = path.stat().st_size
    reader = PageArchive(tmp_path, repair=False)
    assert reader.archived_ids("title") == {1} and path.stat().st_size == size


def test_data_mode_keeps_only_the_data_scripts(tmp_path):
    def extract(html: bytes) -> bytes | None:
        return b"<script>data</script>" if b"__NEXT_DATA__" in html else None

    archive = PageArchive(tmp_path, "data", extractor=extract)
    archive.write(outcome(1), response(1))
    classic = b"<html><h1 itemprop='name'>Classic</h1></html>"
    archive.write(outcome(2), response(2, body=classic))
    records = {r.id: r for r in PageArchive(tmp_path).iter_responses()}
    assert records[1].body == b"<script>data</script>" and records[1].content == "data"
    assert records[2].body == classic and records[2].content == "full"  # no data scripts: kept whole


def test_data_mode_with_the_project_parser_still_parses(tmp_path):
    with SampleImdbServer() as server:
        page = httpx.get(server.base_url + "/title/tt0000001").content
    archive = PageArchive(tmp_path, "data")
    archive.write(outcome(1), response(1, body=page))
    (record,) = PageArchive(tmp_path).iter_responses()
    assert record.content == "data" and len(record.body) < len(page) // 5
    parsed = parse_page(record.body, kind="title")
    assert parsed.title == sample_title(1)["title"] and parsed.id == 1
