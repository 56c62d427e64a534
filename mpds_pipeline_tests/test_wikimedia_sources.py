"""Wikidata and Commons: parsers on the real recorded answers (../shared/api-samples),
and the whole lookup against the sample server's emulation over loopback (maxlag,
429 on the query service, non-free files, a file without licence metadata)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from mpds_pipeline.net.client import PoliteClient
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server.server import SampleImdbServer
from mpds_pipeline.sample_server.wikimedia import person_item, title_item
from mpds_pipeline.sources.commons import (
    STANDARD_THUMB_WIDTHS,
    check_thumb_width,
    html_to_text,
    licence_family,
    parse_imageinfo,
)
from mpds_pipeline.sources.mediawiki import MediaWikiError, api_get, contact_warning
from mpds_pipeline.sources.wikidata import (
    commons_file_name,
    parse_entities,
    parse_entity,
    parse_imdb_mapping,
    parse_sparql_bindings,
    sparql_query,
)
from mpds_pipeline.sources.wikimedia import WikimediaSettings, collect_wikimedia

from .shared_samples import ABSENT, API_SAMPLES

needs_api_samples = pytest.mark.skipif(not API_SAMPLES.is_dir(), reason=ABSENT)


def sample(*parts: str) -> dict:
    return json.loads(API_SAMPLES.joinpath(*parts).read_text())


# --- parsers on the real answers ----------------------------------------------------------


@needs_api_samples
def test_wbgetentities_of_a_person_gives_imdb_id_image_and_category():
    items = parse_entities(sample("wikidata", "Q42_wbgetentities.json"))
    adams = items["Q42"]
    assert adams.imdb_ids == ["nm0010930"]
    assert adams.images == ["Douglas adams portrait cropped.jpg"]
    assert adams.commons_category == "Douglas Adams"
    assert adams.label == "Douglas Adams" and adams.description == "English writer and humorist"
    assert adams.posters == []


@needs_api_samples
def test_an_entity_with_several_images_keeps_them_in_rank_order():
    item = parse_entities(sample("wikidata", "Q857243_wbgetentities.json"))["Q857243"]
    assert item.images[:2] == ["Gujo Gifu Japan.jpg", "Gujo in Gifu Prefecture.png"]
    raw = sample("wikidata", "Q857243_wbgetentities.json")["entities"]["Q857243"]
    claims = raw["claims"]["P18"]
    claims[1]["rank"], claims[0]["rank"] = "preferred", "deprecated"
    reranked = parse_entity(raw)
    assert reranked.images[0] == "Gujo in Gifu Prefecture.png" and "Gujo Gifu Japan.jpg" not in reranked.images


@needs_api_samples
def test_a_bare_entity_and_an_item_without_the_wanted_claims():
    roth = parse_entity(sample("wikidata", "Q328212.json"))
    assert roth.qid == "Q328212" and roth.imdb_ids == ["nm4316121"]
    assert roth.images == ["Veronica Roth March 18, 2014 (cropped).jpg"]
    bare = parse_entities(sample("wikidata", "wbgetentities_response.json"))["Q3235026"]
    assert bare.imdb_ids == [] and bare.images == [] and bare.label is None


@needs_api_samples
def test_query_service_results_blank_nodes_left_out():
    rows = parse_sparql_bindings(sample("wikidata", "sparql_results_with_optional_values.json"))
    assert rows[0]["imdbId"] == "tt1705952"
    multi = parse_sparql_bindings(sample("wikidata", "multi_vars_sparql_results.json"))
    assert all("entity" not in row or row["entity"].startswith("http://www.wikidata.org/entity/") for row in multi)
    assert any("entity" not in row for row in multi)  # the blank node's row has no entity
    assert len(parse_sparql_bindings(sample("wikidata", "single_var_sparql_results.json"))) == 4
    mapping = parse_imdb_mapping(
        {
            "results": {
                "bindings": [
                    {"item": {"type": "uri", "value": "http://www.wikidata.org/entity/Q1"}, "imdb": rows[0]["imdbId"]}
                    | {"imdb": {"type": "literal", "value": rows[0]["imdbId"]}}
                ]
            }
        }
    )
    assert mapping == {"tt1705952": ["Q1"]}


@needs_api_samples
def test_commons_imageinfo_gives_licence_author_and_attribution():
    files = parse_imageinfo(sample("commons", "imageinfo_douglas_adams_portrait.json"))
    file = files["File:Douglas adams portrait cropped.jpg"]
    assert file.decision == "kept"  # "missing" on en.wikipedia, but served from the shared repository
    assert file.licence == "CC BY-SA 2.0" and file.licence_family == "cc-by-sa"
    assert file.licence_url == "https://creativecommons.org/licenses/by-sa/2.0"
    assert file.artist == "Douglas_adams_portrait.jpg: michael hughes from berlin, germany; derivative work: Beao"
    assert file.credit == "Douglas_adams_portrait.jpg"
    assert file.attribution_required is True and file.restrictions is None
    assert (file.width, file.height, file.size) == (333, 386, 32915)
    assert file.source_page == "https://commons.wikimedia.org/wiki/File:Douglas_adams_portrait_cropped.jpg"
    assert "michael hughes" in file.attribution and "CC BY-SA 2.0" in file.attribution
    assert "<" not in file.attribution


def test_licence_families_and_html():
    assert licence_family("CC BY 4.0") == "cc-by"
    assert licence_family("CC BY-SA 3.0 de") == "cc-by-sa"
    assert licence_family("CC BY-NC-SA 2.0") == "cc-by-nc-sa"
    assert licence_family("CC0") == licence_family(None, "cc0") == "cc0"
    assert licence_family("Public domain") == licence_family(None, "PD-US") == "public-domain"
    assert licence_family(None, None, "https://creativecommons.org/licenses/by/2.5/") == "cc-by"
    assert licence_family("Fair use") == "other:Fair use"
    assert licence_family(None) is None and licence_family("") is None
    assert html_to_text('<a href="x">A &amp; B</a> <b>C</b>') == "A & B C"
    assert html_to_text("") is None


def test_only_standard_thumbnail_widths():
    assert 1280 in STANDARD_THUMB_WIDTHS and 250 in STANDARD_THUMB_WIDTHS
    assert check_thumb_width(960) == 960
    with pytest.raises(ValueError, match="standard widths"):
        check_thumb_width(1000)
    with pytest.raises(ValueError):
        WikimediaSettings(thumb_width=512)


def test_sparql_query_sends_only_imdb_ids():
    query = sparql_query(["tt0000001", 'nm1" } DROP', "nm0000002"])
    assert '"tt0000001"' in query and '"nm0000002"' in query and "DROP" not in query
    assert commons_file_name("http://commons.wikimedia.org/wiki/Special:FilePath/A%20b_c.jpg") == "A b c.jpg"


def test_contact_warning_only_for_wikimedia_hosts_without_contact():
    urls = ["https://www.wikidata.org", "https://query.wikidata.org/sparql"]
    assert "MPDS_CONTACT" in contact_warning(ClientSettings(), urls)
    assert contact_warning(ClientSettings(contact="me@example.org"), urls) is None
    assert contact_warning(ClientSettings(), ["http://127.0.0.1:8000/wikidata"]) is None


# --- over loopback ----------------------------------------------------------------------


def endpoints(server: SampleImdbServer, **kw) -> WikimediaSettings:
    return WikimediaSettings(
        wikidata_url=f"{server.base_url}/wikidata",
        sparql_url=f"{server.base_url}/sparql",
        commons_url=f"{server.base_url}/commons",
        thumb_width=250,
        rate_per_second=0,
        **kw,
    )


def test_lookup_maps_ids_and_reads_every_file_with_its_licence():
    with SampleImdbServer() as server:
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, contact="tests@example.org")
        seen_agents = []
        server.on_request = lambda target, headers: seen_agents.append(headers.get("User-Agent"))
        result = collect_wikimedia(range(96, 106), [1, 2, 7, 8], settings, endpoints(server))
        assert server.request_count("/sparql") == 1  # one VALUES query for all 14 ids
        assert server.request_count("/wikidata/w/api.php") == 1  # one wbgetentities for <= 50 items
    assert all("tests@example.org" in agent for agent in seen_agents)
    items = result.items.set_index("imdb_id")
    expected_titles = {f"tt{i:07d}" for i in range(96, 106) if title_item(i)}
    expected_people = {f"nm{i:07d}" for i in (1, 2, 7, 8) if person_item(i)}
    assert set(items.index) == expected_titles | expected_people
    assert items.loc["tt0000101", "poster_file"] == "File:Poster of tt0000101.jpg"
    assert items.loc["nm0000001", "commons_category"] and len(items.loc["nm0000001", "category_files"]) >= 3
    files = result.files.set_index("file_title")
    assert files.loc["File:Poster of tt0000096.jpg", "decision"] == "licence_not_allowlisted"  # Fair use
    assert files.loc["File:Poster of tt0000103.jpg", "decision"] == "no_licence_metadata"
    assert files.loc["File:Portrait of nm0000007.jpg", "decision"] == "licence_not_allowlisted"
    kept = files[files["decision"] == "kept"]
    assert kept["licence_family"].isin(["public-domain", "cc0", "cc-by", "cc-by-sa"]).all()
    assert kept["thumb_url"].str.contains("/250px-").all() and kept["attribution"].notna().all()
    assert result.metadata()["files_refused_no_licence_metadata"] == 1


def test_maxlag_is_waited_out_and_retried():
    with SampleImdbServer() as server:
        server.wikimedia_maxlag, server.wikimedia_retry_after = 2, "1"
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0)
        started = time.monotonic()
        result = collect_wikimedia([100], [], settings, endpoints(server, maxlag_min_wait_s=0))
        elapsed = time.monotonic() - started
        calls = server.request_log["/wikidata/w/api.php"]
    assert result.maxlag_waits == 2 and len(calls) == 3
    assert calls[1] - calls[0] >= 0.95 and calls[2] - calls[1] >= 0.95  # Retry-After honoured
    assert elapsed >= 2 and result.items["qid"].tolist() == ["Q10000100"]


def test_maxlag_that_never_ends_is_an_error_not_a_loop():
    async def call(base_url):
        async with PoliteClient(ClientSettings(base_url=base_url, rate_per_second=0)) as client:
            return await api_get(
                client, f"{base_url}/commons/w/api.php", {"action": "query"}, max_lag_waits=2, min_wait_s=0
            )

    with SampleImdbServer() as server:
        server.wikimedia_maxlag, server.wikimedia_retry_after = 10, "0"
        with pytest.raises(MediaWikiError, match="still lagged") as raised:
            asyncio.run(call(server.base_url))
        assert server.request_count("/commons/w/api.php") == 3
    assert raised.value.code == "maxlag"


def test_api_error_and_query_service_429_with_retry_after():
    async def bad_call(base_url):
        async with PoliteClient(ClientSettings(base_url=base_url, rate_per_second=0)) as client:
            return await api_get(client, f"{base_url}/wikidata/w/api.php", {"action": "query"})

    with SampleImdbServer(faults="429,path=^/sparql,times=1,retry_after=1") as server:
        with pytest.raises(MediaWikiError, match="badvalue"):
            asyncio.run(bad_call(server.base_url))
        settings = ClientSettings(base_url=server.base_url, rate_per_second=0, backoff_base_s=0.01)
        result = collect_wikimedia([100], [], settings, endpoints(server))
        first, second = server.request_log["/sparql"]
    assert second - first >= 0.95  # the query service's Retry-After was honoured
    assert result.items["imdb_id"].tolist() == ["tt0000100"]


def test_a_file_commons_does_not_have_is_counted_missing():
    from mpds_pipeline.sources.commons import read_files

    async def ask(base_url):
        async with PoliteClient(ClientSettings(base_url=base_url, rate_per_second=0)) as client:
            return await read_files(
                client,
                f"{base_url}/commons/w/api.php",
                ["Poster of tt0000100.jpg", "File:No_such_poster.jpg"],
                thumb_width=250,
            )

    with SampleImdbServer() as server:
        result = asyncio.run(ask(server.base_url))
    assert result.decisions() == {"kept": 1, "missing_file": 1}
    assert result.files["File:No such poster.jpg"].licence is None


def test_provenance_rows_get_the_licence_of_their_commons_file():
    import pandas as pd

    from mpds_pipeline.curate.licences import add_licences
    from mpds_pipeline.sources.commons import parse_page

    page = {
        "title": "File:P.jpg",
        "imagerepository": "local",
        "imageinfo": [
            {
                "url": "https://upload.wikimedia.org/p.jpg",
                "thumburl": "https://upload.wikimedia.org/thumb/960px-p.jpg",
                "descriptionurl": "https://commons.wikimedia.org/wiki/File:P.jpg",
                "width": 2000,
                "extmetadata": {"LicenseShortName": {"value": "CC0"}, "Artist": {"value": "<b>Ann</b>"}},
            }
        ],
    }
    files = pd.DataFrame([parse_page(page, thumb_width=960).row()])
    rows = pd.DataFrame(
        {
            "kind": ["poster", "poster"],
            "source": ["live", "live"],
            "source_url": ["x", "y"],
            "image_url": ["https://upload.wikimedia.org/thumb/960px-p.jpg", "https://m.media-amazon.com/a.jpg"],
            "licence": [None, None],
            "licence_url": [None, None],
            "attribution": [None, None],
            "source_page": [None, None],
        }
    )
    out = add_licences(rows, files)
    assert out.loc[0, "licence"] == "CC0" and out.loc[0, "source"] == "wikimedia_commons"
    assert (
        out.loc[0, "source_url"] == "https://commons.wikimedia.org/wiki/File:P.jpg"
        and "Ann" in out.loc[0, "attribution"]
    )
    assert pd.isna(out.loc[1, "licence"]) and out.loc[1, "source"] == "live"
