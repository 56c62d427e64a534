"""Archive page sources: Common Crawl and the Wayback Machine.

Parsers are checked on real recorded answers (../shared/api-samples/commoncrawl), the
crawl on loopback against the sample server's emulation of both archives."""

from __future__ import annotations

import asyncio
import base64
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.base.folders import PagesFolder
from mpds_pipeline.imdb.archive import PROVENANCE_HEADERS, PageArchive
from mpds_pipeline.imdb.crawl import crawl_partition, read_outcomes
from mpds_pipeline.imdb.record_store import parse_archive
from mpds_pipeline.net.client import PoliteClient
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server import SampleImdbServer, sample_title
from mpds_pipeline.sample_server.archives import CRAWLS, capture_plan
from mpds_pipeline.sources import common_crawl, wayback
from mpds_pipeline.sources.archived_pages import ArchiveSettings, archive_crawler
from mpds_pipeline.sources.bulk import bulk_capture_lists, query_captures
from mpds_pipeline.sources.captures import (
    NEWEST,
    OLDEST,
    Capture,
    RecordError,
    id_prefixes,
    order_captures,
    page_id,
    payload_digest,
    read_warc_record,
)
from mpds_pipeline_tests.shared_samples import ABSENT, SHARED_DIR

SAMPLES = SHARED_DIR / "api-samples" / "commoncrawl"
MOCKS = SAMPLES / "cocrawler-cdx_toolkit" / "tests" / "data" / "mock_responses"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=ABSENT)
NEWEST_CRAWL, MIDDLE_CRAWL, OLDEST_CRAWL = (c[0] for c in CRAWLS)


def recorded(name: str) -> list[dict]:
    return [json.loads(line) for line in (MOCKS / name).read_text().splitlines() if line.strip()]


# --- parsers on real answers -------------------------------------------------------------


@needs_samples
def test_collinfo_lists_every_crawl_newest_first():
    crawls = common_crawl.parse_collinfo(recorded("test_cc/test_get_cc_endpoints.jsonl")[0]["response_text"].encode())
    ids = [c["id"] for c in crawls]
    assert len(ids) == 115 and ids[0] == "CC-MAIN-2025-33" and ids[-1] == "CC-MAIN-2008-2009"
    assert all(c["cdx-api"].endswith(f"{c['id']}-index") for c in crawls)


@needs_samples
def test_cdx_lines_num_pages_and_no_captures_answers():
    answer = recorded("test_cli/test_basics.jsonl")[0]
    lines = common_crawl.parse_cdx_lines(answer["response_text"].encode(), "CC-MAIN-2025-33", None)
    assert len(lines) == 10 and lines[0].timestamp == "20250804103329" and lines[0].status == 200
    assert lines[0].filename.startswith("crawl-data/CC-MAIN-2025-33/") and lines[0].length == 7063
    # A redirect line (robots.txt fetches sit under robotstxt/) parses with its status.
    redirects = common_crawl.parse_cdx_lines(
        recorded("test_cli/test_multi_cc1_slow_7.jsonl")[0]["response_text"].encode(), None, None
    )
    assert redirects[0].status == 301 and redirects[0].crawl == "CC-MAIN-2025-33"
    # IMDb's main pages only: these commoncrawl.org lines are nobody's page.
    assert common_crawl.parse_cdx_lines(answer["response_text"].encode(), None, "title") == []
    num = recorded("test_cli/test_multi_misc_not_ia_slow_4.jsonl")[0]
    assert common_crawl.parse_num_pages(num["response_text"].encode()) == 1
    none, past_last = recorded("test_cli/test_multi_cc1_slow_2.jsonl")
    assert none["response_status_code"] == 404 and common_crawl.NO_CAPTURES in none["response_text"]
    assert past_last["response_status_code"] == 400


@needs_samples
@pytest.mark.parametrize("name", ["test_capture_object/test_capture_object.jsonl", "test_cli/test_warc_prefix_1.jsonl"])
def test_range_answers_are_one_record_whose_payload_digest_is_the_index_digest(name):
    exchanges = recorded(name)
    index_lines = [
        line
        for e in exchanges
        if "index.commoncrawl.org" in e["url"]
        for line in common_crawl.parse_cdx_lines(e["response_text"].encode(), None, None)
    ]
    bodies = [base64.b64decode(e["response_text"]) for e in exchanges if e["response_status_code"] == 206]
    assert bodies
    for body in bodies:
        record = read_warc_record(body, 10_000_000)
        line = next(c for c in index_lines if c.length == len(body))
        # The digest covers the HTTP payload as stored (Common Crawl stores it decoded).
        assert payload_digest(record.payload) == line.digest
        assert record.http_status == line.status and record.body == record.payload


@needs_samples
def test_whirlwind_warc_response_record():
    data = (SAMPLES / "commoncrawl-whirlwind-python" / "whirlwind.warc.gz").read_bytes()
    members, pos = [], 0
    while pos < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[pos:])
        used = len(data) - pos - len(inflater.unused_data)
        members.append(data[pos : pos + used])
        pos += used
    assert len(members) == 4
    records = []
    for member in members:
        try:
            records.append(read_warc_record(member, 10_000_000))
        except RecordError as exc:
            assert "not a response" in str(exc)  # warcinfo, request, metadata
    (record,) = records
    assert record.http_status == 200 and record.target_uri.startswith("https://an.wikipedia.org/")
    assert payload_digest(record.payload) == "RY7PLBUFQNI2FFV5FTUQK72W6SNPXLQU"


@needs_samples
def test_wayback_cdx_arrays_and_raw_capture():
    index, raw = recorded("test_cli/test_warc_prefix_2.jsonl")
    rows, resume = wayback.parse_cdx_rows(index["response_text"].encode())
    assert resume is None and rows[0]["timestamp"] == "20080328041443"
    (capture,) = wayback.captures_from_rows(rows, None)
    assert capture.status == 200 and capture.url == "http://www.commoncrawl.org:80/"
    # The id_ capture is the payload as archived: its SHA-1 is the CDX digest.
    assert payload_digest(raw["response_text"].encode()) == capture.digest
    many, _ = wayback.parse_cdx_rows(recorded("test_cli/test_multi_ia.jsonl")[0]["response_text"].encode())
    assert len(many) == 10 and all(set(r) >= {"original", "statuscode", "digest"} for r in many)


# --- which URLs, which prefixes, which capture ----------------------------------------------


def test_page_id_keeps_main_pages_only():
    assert page_id("title", "https://www.imdb.com/title/tt0133093/") == 133093
    assert page_id("title", "http://www.imdb.com:80/title/tt0133093/?ref_=nv_sr_1") == 133093
    assert page_id("title", "http://imdb.com/title/tt0133093/combined") == 133093
    assert page_id("title", "https://www.imdb.com/title/tt0133093/fullcredits") is None
    assert page_id("title", "https://www.imdb.com/name/nm0000206/") is None
    assert page_id("person", "https://www.imdb.com/name/nm0000206") == 206
    assert page_id("person", "https://www.imdb.com/name/nm0000206/mediaindex") is None
    assert page_id("title", "https://m.imdb.com/title/tt0133093/") is None


def test_id_prefixes_cover_the_range_in_few_queries():
    assert id_prefixes("title", 1, 50) == [("www.imdb.com/title/tt00000", 1, 50)]
    assert id_prefixes("title", 1001, 2000) == [
        ("www.imdb.com/title/tt0001", 1001, 1999),
        ("www.imdb.com/title/tt0002", 2000, 2000),
    ]
    assert [p for p, _, _ in id_prefixes("person", 1, 9_999)] == ["www.imdb.com/name/nm000"]
    across = id_prefixes("title", 9_999_990, 10_000_005)
    assert across[0] == ("www.imdb.com/title/tt99999", 9_999_990, 9_999_999)
    assert across[-1] == ("www.imdb.com/title/tt100000", 10_000_000, 10_000_005)
    for lo, hi in [(1, 1), (7, 7777), (123_456, 124_001), (1, 1_250_000)]:
        prefixes = id_prefixes("title", lo, hi)
        covered = [i for _, first, last in prefixes for i in range(first, last + 1)]
        assert covered == list(range(lo, hi + 1)) and len(prefixes) <= 20


def test_capture_policy_orders_an_ids_captures():
    def capture(ts, crawl):
        return Capture("common_crawl", "title", 1, "u", ts, 200, "text/html", "D", 1, 0, "f", crawl)

    caps = [capture("20190101000000", "CC-MAIN-2019-04"), capture("20240101000000", "CC-MAIN-2024-10")]
    assert order_captures(caps, NEWEST)[0].crawl == "CC-MAIN-2024-10"
    assert order_captures(caps, OLDEST)[0].crawl == "CC-MAIN-2019-04"
    assert order_captures(caps, "CC-MAIN-2019-04")[0].crawl == "CC-MAIN-2019-04"


# --- the crawl from the archives, on loopback ------------------------------------------------


def archive_settings(server, **overrides) -> ArchiveSettings:
    values = dict(
        cc_index_url=f"{server.base_url}/cc-index",
        cc_data_url=f"{server.base_url}/cc-data",
        wayback_url=f"{server.base_url}/wayback",
        index_rate=0,
        data_rate=0,
        wayback_rate=0,
    )
    values.update(overrides)
    return ArchiveSettings(**values)


def client_settings(server, **overrides) -> ClientSettings:
    values = dict(base_url=server.base_url, rate_per_second=0, timeout_s=5.0, max_retries=2, backoff_base_s=0.2)
    values.update(overrides)
    return ClientSettings(**values)


@pytest.fixture
def server():
    with SampleImdbServer() as srv:
        yield srv


IDS = range(1, 51)


def test_pages_come_from_the_archives_with_provenance_and_parse_like_live_pages(server, tmp_path):
    archived, live = tmp_path / "archived", tmp_path / "live"
    result = crawl_partition(
        "title",
        IDS,
        client_settings(server),
        archived,
        page_sources=("common_crawl", "wayback"),
        archive_crawl=archive_crawler(archive_settings(server)),
    )
    outcomes = {o.id: o for o in read_outcomes(archived)}
    assert sorted(outcomes) == list(IDS)
    for item_id, o in outcomes.items():
        plan, exists = capture_plan("title", item_id), sample_title(item_id)["status"] == "ok"
        if not exists or item_id % 10 == 8:
            assert o.status == "uncaptured" and o.capture_timestamp is None, o  # never "missing"
        elif item_id % 10 == 6:
            assert (o.status, o.source, o.capture_crawl) == ("ok", "wayback", None), o
            assert o.capture_timestamp.startswith("2011")
            assert o.source_url.endswith((f"tt{item_id:07d}/", f"tt{item_id:07d}/combined"))
        else:
            assert (o.status, o.source) == ("ok", "common_crawl"), o
            assert o.capture_filename.startswith(f"crawl-data/{o.capture_crawl}/") and o.capture_length > 0
            if item_id % 10 == 2:  # the newest crawl's capture is a WAF challenge: the older crawl's wins
                assert o.capture_crawl == MIDDLE_CRAWL
            elif item_id % 10 == 4:  # the newest capture fails its digest: the one before it in that crawl
                assert o.capture_crawl == NEWEST_CRAWL and o.attempts == 2
            else:
                assert o.capture_crawl == NEWEST_CRAWL and plan["crawls"][0][0] == NEWEST_CRAWL
    coverage = result.coverage
    assert coverage["common_crawl"]["challenges_skipped"] == sum(
        1 for i in IDS if capture_plan("title", i)["crawls"][:1] == [(NEWEST_CRAWL, "waf")]
    )
    assert coverage["common_crawl"]["digest_mismatches"] > 0
    assert coverage["wayback"]["asked"] == sum(1 for o in outcomes.values() if o.source == "wayback")
    # Politeness toward archive hosts: no robots.txt asked of API endpoints.
    assert server.request_count("/robots.txt") == 0

    # The archive alone says where each page came from (WARC-MPDS-* headers).
    for response in PageArchive(archived, repair=False).iter_responses():
        o = outcomes[response.id]
        assert (response.source, response.capture_crawl, response.capture_offset) == (
            o.source,
            o.capture_crawl,
            o.capture_offset,
        )
        assert payload_digest(response.body) == o.capture_digest
    header_names = PROVENANCE_HEADERS.values()
    raw = zlib.decompress(PagesFolder(archived).archive.read_bytes()[:4096], 31)
    assert any(name.encode() in raw for name in header_names)

    # The same parsers build the same records as from live pages of the same ids.
    crawl_partition("title", [o.id for o in outcomes.values() if o.status == "ok"], client_settings(server), live)
    parsed = parse_archive(archived, "title")
    from_archives = {r.id: r for r in parsed.records}
    from_live = {r.id: r for r in parse_archive(live, "title").records}
    assert parsed.errors == [] and set(from_archives) == set(from_live) and len(from_archives) > 25
    today = {i for i, o in outcomes.items() if o.capture_crawl == NEWEST_CRAWL}
    assert today and all(from_archives[i] == from_live[i] for i in today)
    # Older captures are in their year's layout: the same title, from another era's markup.
    older = set(from_archives) - today
    assert older and all(from_archives[i].title == from_live[i].title for i in older)
    assert {from_archives[i].era for i in older} - {r.era for r in from_live.values()}


def test_rerun_skips_archived_ids_and_asks_again_for_uncaptured(server, tmp_path):
    crawler = archive_crawler(archive_settings(server))
    crawl_partition(
        "title",
        IDS,
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=crawler,
    )
    server.clear_log()
    again = crawl_partition(
        "title",
        IDS,
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=crawler,
    )
    captured = sum(1 for o in read_outcomes(tmp_path) if o.status == "ok")
    assert again.skipped_archived == captured and server.request_count("/cc-data/") == 0
    assert all(o.status == "uncaptured" for o in again.outcomes)


def test_index_503_is_retried_after_a_backoff_and_halves_the_index_rate(server, tmp_path):
    server.archives.index_503_requests = {2}  # the first query after collinfo.json
    messages: list[str] = []
    crawl_partition(
        "title",
        range(1, 11),
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl",),
        # One host stands in for all three archive hosts: its policy is the last one set.
        archive_crawl=archive_crawler(archive_settings(server, index_rate=50, data_rate=50, wayback_rate=50)),
        log=messages.append,
    )
    index = [r for r in server.requests if r.path.startswith("/cc-index/CC-MAIN")]
    assert index[0].status == 503 and index[1].status == 200
    assert index[1].t - index[0].t >= 0.2 * 0.5  # backoff_base_s with jitter
    assert any("HTTP 503" in m and "halved" in m for m in messages)
    assert sum(o.status == "ok" for o in read_outcomes(tmp_path)) == sum(
        1 for i in range(1, 11) if capture_plan("title", i)["crawls"]
    )


def test_an_index_gateway_timeout_is_retried(server, tmp_path):
    server.archives.index_504_requests = {1, 3}  # collinfo.json, and the first query after it
    crawl_partition(
        "title",
        range(1, 11),
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=archive_crawler(archive_settings(server)),
    )
    index = [r.status for r in server.requests if r.path.startswith("/cc-index/")]
    assert index[:4] == [504, 200, 504, 200]  # each answered on its retry
    assert sum(o.status == "ok" for o in read_outcomes(tmp_path)) == sum(
        1 for i in range(1, 11) if capture_plan("title", i)["crawls"]
    )


def test_an_index_that_keeps_failing_leaves_ids_failed_not_uncaptured(server, tmp_path):
    server.archives.index_503_requests = set(range(2, 100))
    result = crawl_partition(
        "title",
        range(1, 11),
        client_settings(server, max_retries=1, backoff_base_s=0.01),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=archive_crawler(archive_settings(server, crawls=(NEWEST_CRAWL,))),
    )
    assert {o.status for o in result.outcomes} == {"failed"}
    assert all("503" in o.error for o in result.outcomes)


def test_no_captures_is_an_answer_and_the_past_last_page_is_a_400(server):
    async def ask():
        async with PoliteClient(archive_settings(server).client_settings(client_settings(server))) as client:
            return await common_crawl.query_prefix(
                client,
                f"{server.base_url}/cc-index",
                NEWEST_CRAWL,
                "title",
                "www.imdb.com/title/tt0000008",
                8,
                8,
            )

    answer = asyncio.run(ask())
    assert answer.captures == [] and answer.error is None and answer.requests == 2
    assert [r.status for r in server.requests] == [200, 404]
    import urllib.request

    url = common_crawl.index_query_url(
        f"{server.base_url}/cc-index", NEWEST_CRAWL, "www.imdb.com/title/tt00000", page="9"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 400 and b"Last Page is" in err.value.read()


def test_index_pages_are_walked(server):
    server.archives.page_lines = 7

    async def ask():
        async with PoliteClient(archive_settings(server).client_settings(client_settings(server))) as client:
            return await common_crawl.query_prefix(
                client, f"{server.base_url}/cc-index", NEWEST_CRAWL, "title", "www.imdb.com/title/tt00000", 1, 99
            )

    answer = asyncio.run(ask())
    pages = json.loads(
        __import__("urllib.request")
        .request.urlopen(
            common_crawl.index_query_url(
                f"{server.base_url}/cc-index", NEWEST_CRAWL, "www.imdb.com/title/tt00000", showNumPages="true"
            )
        )
        .read()
    )["pages"]
    assert pages > 3 and answer.requests == 1 + pages
    expected = sum(sum(c == NEWEST_CRAWL for c, _ in capture_plan("title", i)["crawls"]) for i in range(1, 100))
    assert len(answer.captures) == expected  # sub-pages (/fullcredits) dropped


def test_live_takes_the_ids_the_archives_lack(server, tmp_path):
    ids = [6, 8, 9, 18]  # 6: only Wayback has it; 8, 18: no archive has them
    crawl_partition(
        "title",
        ids,
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl", "live"),
        archive_crawl=archive_crawler(archive_settings(server)),
    )
    by_id = {o.id: o for o in read_outcomes(tmp_path)}
    assert by_id[9].source == "common_crawl"
    assert by_id[6].source == by_id[8].source == by_id[18].source == "live"
    assert by_id[8].status == "ok" and by_id[8].source_url == by_id[8].url
    assert server.request_count("/title/tt0000009") == 0


def test_bulk_capture_lists_from_a_columnar_index_replace_the_cdx_queries(server, tmp_path):
    # A local columnar index (Common Crawl's schema, hive-partitioned by crawl and subset)
    # made of the emulated crawls' index lines.
    for crawl, _, _ in CRAWLS:
        rows = []
        for block in (0, 1):
            for c in server.archives.warc_file(crawl, "title", block)[2]:
                path = c.url.split("imdb.com", 1)[1]
                stamp = c.timestamp
                when = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[8:10]}:{stamp[10:12]}:{stamp[12:]}"
                rows.append(
                    {
                        "url": c.url,
                        "url_host_name": "www.imdb.com",
                        "url_path": path,
                        "url_query": None,
                        "fetch_time": when,
                        "fetch_status": c.status,
                        "content_mime_detected": "text/html",
                        "content_digest": c.digest,
                        "warc_filename": c.filename,
                        "warc_record_offset": c.offset,
                        "warc_record_length": c.length,
                    }
                )
        table = pa.Table.from_pylist(rows)
        table = table.set_column(
            table.schema.get_field_index("fetch_time"), "fetch_time", table.column("fetch_time").cast(pa.timestamp("s"))
        )
        folder = tmp_path / "cc-index" / f"crawl={crawl}" / "subset=warc"
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet")
    files = str(tmp_path / "cc-index" / "*" / "*" / "*.parquet")
    found = query_captures(files, "title", 1, 150)
    assert set(found.column("id").to_pylist()) == {
        i for i in range(1, 151) if capture_plan("title", i)["crawls"]
    }  # main pages only, every crawl

    pages_dir = {"a": tmp_path / "pages" / "a", "b": tmp_path / "pages" / "b"}
    written = bulk_capture_lists(files, "title", {"a": (1, 50), "b": (51, 150)}, pages_dir.get)
    assert written["a"] > 0 and written["b"] > 0
    server.clear_log()
    crawl_partition(
        "title",
        range(51, 151),
        client_settings(server),
        pages_dir["b"],
        page_sources=("common_crawl",),
        archive_crawl=archive_crawler(archive_settings(server)),
    )
    assert server.request_count("/cc-index") == 0  # the capture list replaced the index
    ok = {o.id for o in read_outcomes(pages_dir["b"]) if o.status == "ok"}
    assert ok == {i for i in range(51, 151) if capture_plan("title", i)["crawls"]}


def test_wayback_finds_an_archived_poster(server):
    token = sample_title(1)["poster_token"]
    poster = f"{server.base_url}/images/M/{token}._V1_.jpg"

    async def find():
        settings = archive_settings(server).client_settings(client_settings(server))
        async with PoliteClient(settings) as client:
            capture, resp = await wayback.fetch_archived_image(client, f"{server.base_url}/wayback", poster, 10**7)
            assert resp.url == wayback.replay_url(f"{server.base_url}/wayback", capture)
            return capture, resp

    capture, resp = asyncio.run(find())
    assert capture.url == poster and capture.mime == "image/jpeg"

    async def batch():
        async with PoliteClient(archive_settings(server).client_settings(client_settings(server))) as client:
            return await wayback.archived_image_urls(client, f"{server.base_url}/wayback", [poster, poster])

    assert asyncio.run(batch()) == {poster: wayback.replay_url(f"{server.base_url}/wayback", capture)}
    assert resp.status_code == 200 and resp.content[:2] == b"\xff\xd8"
    assert wayback.image_url_variants("https://ia.media-imdb.com/images/M/MV5Bx._V1_.jpg")[1:] == [
        "https://m.media-amazon.com/images/M/MV5Bx._V1_.jpg",
        "https://images-na.ssl-images-amazon.com/images/M/MV5Bx._V1_.jpg",
    ]


def test_unknown_page_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="page sources"):
        crawl_partition("title", [1], ClientSettings(base_url="http://127.0.0.1:9"), tmp_path, page_sources=("tmdb",))
    assert not Path(PagesFolder(tmp_path).outcomes).exists()


def test_old_image_hosts_map_to_todays_host_with_the_same_key():
    from mpds_pipeline.imdb.image_hosts import current_image_url

    old = "http://ia.media-imdb.com/images/M/MV5BMTIxNTY3NjM0OV5BMl5BanBnXkFtZTcwNzg5MzY0MQ@@._V1_.jpg"
    assert current_image_url(old) == old.replace("http://ia.media-imdb.com", "https://m.media-amazon.com")
    for same in ("https://m.media-amazon.com/images/M/MV5Bx._V1_.jpg", "http://127.0.0.1:8000/images/M/x._V1_.jpg"):
        assert current_image_url(same) == same
    assert current_image_url("https://ia.media-imdb.com/images/G/nopicture.png").endswith("/images/G/nopicture.png")


def test_crawl_assets_take_pages_from_the_archives_and_report_coverage(server, tmp_path):
    from dagster import DagsterInstance, materialize

    from mpds_pipeline.base.layout import DataLayout
    from mpds_pipeline.defs.assets.crawl import person_assets, title_assets
    from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, SourcesResource

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", ["tt0000001-tt0000050"])
    instance.add_dynamic_partitions("person_ranges", ["nm0000001-nm0000050"])
    layout = DataLayout(tmp_path / "data")
    resources = {
        # Live IMDb would answer (the same sample server): the archives must be asked first.
        "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=0, use_index=False),
        "data_dir": DataDirResource(path=str(layout.root)),
        "sources": SourcesResource(
            page_sources=["common_crawl", "wayback"],
            cc_index_url=f"{server.base_url}/cc-index",
            cc_data_url=f"{server.base_url}/cc-data",
            wayback_url=f"{server.base_url}/wayback",
            cc_index_rate=0,
            cc_data_rate=0,
            wayback_rate=0,
        ),
    }
    titles = materialize(title_assets, partition_key="tt0000001-tt0000050", resources=resources, instance=instance)
    persons = materialize(person_assets, partition_key="nm0000001-nm0000050", resources=resources, instance=instance)
    assert titles.success and persons.success
    assert server.request_count("/title/") == server.request_count("/name/") == 0  # nothing live, no galleries
    metadata = titles.asset_materializations_for_node("title_pages")[0].metadata
    captured = sum(1 for o in read_outcomes(layout.pages_dir("title", "tt0000001-tt0000050")) if o.status == "ok")
    assert metadata["ids_with_capture"].value == captured > 25
    assert metadata["status_uncaptured"].value > 0 and metadata["status_missing"].value == 0
    assert "common_crawl" in metadata["source_coverage"].value and "wayback" in metadata["source_coverage"].value
    years = {r.data["year"]: r.data["count"] for r in metadata["captures_per_year"].value.records}
    assert sum(years.values()) == captured and {"2024", "2019", "2011"} <= set(years)
    records = titles.asset_materializations_for_node("title_records")[0].metadata
    assert records["records"].value == captured and records["parse_errors"].value == 0
    person_records = persons.asset_materializations_for_node("person_records")[0].metadata
    assert person_records["records"].value > 20
    # The export's provenance reads each page's source and capture from the outcomes.
    from mpds_pipeline.curate.provenance import page_sources

    origins = page_sources(layout.pages_root("title"))
    assert origins[1]["source"] == "common_crawl" and origins[1]["capture_crawl"] == NEWEST_CRAWL
    assert origins[1]["capture_filename"] and origins[1]["capture_offset"] is not None
    assert origins[6]["source"] == "wayback" and origins[6]["source_url"].startswith("https://www.imdb.com/title/")


@pytest.mark.parametrize("policy", [OLDEST, OLDEST_CRAWL])
def test_capture_policy_oldest_or_one_crawl(server, tmp_path, policy):
    crawl_partition(
        "title",
        range(1, 21),
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=archive_crawler(archive_settings(server, policy=policy, crawls=tuple(c[0] for c in CRAWLS))),
    )
    kept = {o.id: o.capture_crawl for o in read_outcomes(tmp_path) if o.status == "ok"}
    in_oldest = {i for i in range(1, 21) if (OLDEST_CRAWL, None) in capture_plan("title", i)["crawls"]}
    assert in_oldest and {i for i, crawl in kept.items() if crawl == OLDEST_CRAWL} == in_oldest
    if policy == OLDEST_CRAWL:
        assert set(kept) == in_oldest  # no other crawl asked
        assert {r.path for r in server.requests if r.path.startswith("/cc-index/")} == {
            f"/cc-index/{OLDEST_CRAWL}-index"
        }
    else:  # the other ids from the next crawls, oldest first
        assert len(kept) > len(in_oldest)


def test_an_unreachable_data_host_leaves_the_rest_failed_after_a_few_tries(server, tmp_path):
    result = crawl_partition(
        "title",
        range(1, 41),
        client_settings(server, max_retries=0, timeout_s=1.0),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=archive_crawler(
            archive_settings(server, cc_data_url="http://127.0.0.1:9", crawls=(NEWEST_CRAWL,))
        ),
    )
    # MAX_CONSECUTIVE_UNREACHABLE in a row, plus what the other worker had in flight
    assert 10 <= result.coverage["common_crawl"]["capture_requests"] <= 10 + ArchiveSettings().data_concurrency - 1
    failed = [o for o in result.outcomes if o.status == "failed"]
    assert failed and all("unreachable" in o.error and "MPDS_CC_DATA_URL" in o.error for o in failed)
    assert {o.status for o in result.outcomes} == {"failed"}  # never "uncaptured": the archive was not read


def test_archive_hosts_get_their_own_polite_rate(server, tmp_path):
    # One loopback host stands in for all three archive hosts, so one rate applies to all.
    crawl_partition(
        "title",
        range(1, 31),
        client_settings(server),
        tmp_path,
        page_sources=("common_crawl",),
        archive_crawl=archive_crawler(
            archive_settings(server, index_rate=8, data_rate=8, wayback_rate=8, crawls=(NEWEST_CRAWL,))
        ),
    )
    assert server.request_count("/cc-data/") > 16  # long enough for the limit to bind
    assert server.max_requests_in_any_window(1.0) <= 8


def test_should_stop_ends_an_archive_crawl_and_leaves_the_rest_unattempted(server, tmp_path):
    from mpds_pipeline.imdb.crawl import CrawlStopped

    asked = {"n": 0}

    def stop_after_a_few() -> str | None:
        asked["n"] += 1
        return "the run that started this step is gone" if server.request_count("/cc-data/") >= 3 else None

    with pytest.raises(CrawlStopped, match="is gone") as stopped:
        crawl_partition(
            "title",
            IDS,
            client_settings(server),
            tmp_path,
            page_sources=("common_crawl", "wayback"),
            # one loopback host stands in for all three: one rate for all
            archive_crawl=archive_crawler(
                archive_settings(server, crawls=(NEWEST_CRAWL,), data_rate=20, index_rate=20, wayback_rate=20)
            ),
            should_stop=stop_after_a_few,
        )
    result = stopped.value.result
    assert asked["n"] > 0 and result.unattempted_ids
    assert server.request_count("/wayback/") == 0  # the chain stops with the source that was stopped
    written = read_outcomes(tmp_path)
    assert {o.id for o in written} & set(result.unattempted_ids) == set()
    assert all(o.status == "ok" for o in written)
