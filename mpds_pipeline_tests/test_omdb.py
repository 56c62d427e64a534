"""OMDb: the parser on OMDb's real recorded answers, and the client against the sample
server's emulation (loopback): answers, "N/A", a refused key, the daily limit and resuming,
the quota, and the key kept out of every file and log line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server import SampleImdbServer
from mpds_pipeline.sample_server.content import TITLE_CYCLE, sample_title
from mpds_pipeline.sample_server.omdb import answer_for
from mpds_pipeline.sources.omdb import OmdbKeyRefused, ids_wanting_omdb, omdb_partition
from mpds_pipeline.sources.omdb_answers import ANSWERED, classify, join_actor_names, parse_answer, read_answers
from mpds_pipeline.sources.omdb_quota import DailyQuota
from mpds_pipeline.sources.omdb_records import build_omdb_records
from mpds_pipeline_tests.shared_samples import API_SAMPLES, SHARED_DIR

OMDB_SAMPLES = API_SAMPLES / "omdb"
needs_omdb_samples = pytest.mark.skipif(
    not OMDB_SAMPLES.is_dir(), reason=f"OMDb's recorded answers not found at {OMDB_SAMPLES} (set MPDS_SHARED_DIR)"
)
KEY = "sample-omdb-key"


# --- the real recorded answers ------------------------------------------------------------


class _CassetteLoader(yaml.SafeLoader):
    """Ruby's VCR writes bodies as ``!binary`` (base64), a local tag PyYAML does not know."""


_CassetteLoader.add_constructor("!binary", lambda loader, node: base64.b64decode(loader.construct_scalar(node)))


def _cassette(path: Path) -> list[tuple[int, bytes]]:
    """(HTTP status, body) of each exchange of a vcrpy or Ruby VCR cassette."""
    data = yaml.load(path.read_text(), Loader=_CassetteLoader)  # noqa: S506 - a SafeLoader with one more tag
    exchanges = data.get("interactions") or data.get("http_interactions")
    found = []
    for exchange in exchanges:
        response = exchange["response"]
        body = response["body"]["string"]
        body = body if isinstance(body, bytes) else body.encode("utf-8")
        found.append((response["status"]["code"], body))
    return found


@needs_omdb_samples
def test_a_full_record_parses_with_n_a_as_missing_and_the_full_size_poster():
    ((status, body),) = _cassette(OMDB_SAMPLES / "barrust-pyomdbapi/tests/cassettes/get/tt1323594.yaml")
    kind, answer, error = classify(status, body)
    assert (kind, error) == ("ok", None)
    fields = parse_answer(answer)
    assert fields["id"] == 1323594 and fields["title"] == "Despicable Me" and fields["year"] == 2010
    assert fields["certificate"] == "PG" and fields["title_type"] == "movie"
    assert fields["genres"] == ["Animation", "Adventure", "Comedy"]
    assert fields["actor_names"] == ["Steve Carell", "Jason Segel", "Russell Brand"]
    assert fields["synopsis"].startswith("Gru, a criminal mastermind")
    # OMDb links the 300-pixel resize; the poster kept is the original, as for a page's poster.
    assert fields["poster_url"] == (
        "https://m.media-amazon.com/images/M/MV5BMTY3NjY0MTQ0Nl5BMl5BanBnXkFtZTcwMzQ2MTc0Mw@@._V1_.jpg"
    )


@needs_omdb_samples
def test_a_2016_series_answer_stored_as_binary_parses():
    ((status, body),) = _cassette(OMDB_SAMPLES / "caseyscarborough-omdbapi/spec/vcr/id/existing.yml")
    fields = parse_answer(classify(status, body)[1])
    assert fields["id"] == 411008 and fields["title"] == "Lost"
    assert fields["year"] == 2004  # "2004–2010"
    assert fields["title_type"] == "tvSeries"
    assert fields["poster_url"].startswith("https://") or fields["poster_url"].startswith("http://")


@needs_omdb_samples
def test_n_a_poster_and_rating_are_missing_not_values():
    answer = json.loads((OMDB_SAMPLES / "worr-node-imdb-api/james-bond.json").read_text())
    fields = parse_answer(answer)
    assert answer["Poster"] == "N/A" and fields["poster_url"] is None
    assert answer["Rated"] == "N/A" and fields["certificate"] is None
    assert "N/A" not in json.dumps(fields)
    ((status, body),) = _cassette(OMDB_SAMPLES / "caseyscarborough-omdbapi/spec/vcr/title/valid.yml")
    assert parse_answer(classify(status, body)[1])["poster_url"] is None


@needs_omdb_samples
def test_every_recorded_error_is_classified():
    cassettes = OMDB_SAMPLES / "barrust-pyomdbapi/tests/cassettes/exceptions"
    ((status, body),) = _cassette(next((cassettes / "bad_api_key").glob("*.yaml")))
    assert status == 401 and classify(status, body)[0] == "bad_key"
    *pages, (status, body) = _cassette(cassettes / "limit_reached/order.yaml")
    assert status == 401 and classify(status, body) == ("limit", json.loads(body), "Request limit reached!")
    assert all(classify(s, b)[0] == "failed" for s, b in pages)  # search pages: no imdbID, not a title
    ((status, body),) = _cassette(cassettes / "no_results/tt596799.yaml")
    assert classify(status, body)[0] == "not_found" and parse_answer(json.loads(body)) is None
    assert classify(502, b"<html>Bad gateway</html>")[0] == "failed"


@needs_omdb_samples
def test_the_emulated_answer_has_the_real_answers_keys_in_order():
    ((_, body),) = _cassette(OMDB_SAMPLES / "barrust-pyomdbapi/tests/cassettes/get/tt1323594.yaml")
    real = json.loads(body)
    truth = sample_title(1)
    assert list(answer_for(truth, "http://127.0.0.1:1")) == list(real)


def test_the_binary_cassette_helper_reads_base64_bodies():
    # The Ruby cassettes store bodies as !binary (base64); safe_load gives bytes.
    doc = yaml.load("b: !binary |-\n  " + base64.b64encode(b'{"a": 1}').decode(), Loader=_CassetteLoader)  # noqa: S506
    assert doc["b"] == b'{"a": 1}'


# --- actor names -> ids -----------------------------------------------------------------------


def test_actor_names_join_to_the_titles_principals_and_misses_are_counted():
    principals = [(12, "Elena Keller", "actress"), (44, "José Ñúñez", "actor"), (97, "Thomas Sato", "director")]
    actors, unmatched = join_actor_names(["elena  keller", "Jose Nunez", "Nobody Known"], principals)
    assert actors == {
        "Elena Keller": "https://www.imdb.com/name/nm0000012",
        "José Ñúñez": "https://www.imdb.com/name/nm0000044",
    }
    assert unmatched == ["Nobody Known"]


def test_which_ids_ask_omdb():
    from mpds_pipeline.imdb.records import TitleRecord

    complete = TitleRecord(1, "a", "a", "movie", 2000, poster_url="http://x/p.jpg", synopsis="plot")
    no_plot = TitleRecord(2, "b", "b", "movie", 2000, poster_url="http://x/p.jpg")
    no_poster = TitleRecord(3, "c", "c", "movie", 2000, synopsis="plot")
    assert ids_wanting_omdb([1, 2, 3, 4, 5], [complete, no_plot, no_poster], answered=[5]) == [2, 3, 4]


# --- loopback: the emulated OMDb ------------------------------------------------------------


def _settings(server: SampleImdbServer) -> ClientSettings:
    return ClientSettings(base_url=server.base_url, rate_per_second=0, backoff_base_s=0.01, max_retries=1)


def _ids(slots: list[int], first_cycle: int = 0) -> list[int]:
    """Title ids whose sample titles fall in these slots of the 25-id cycle."""
    return [first_cycle * TITLE_CYCLE + slot for slot in slots]


def _ask(server, tmp_path, ids, key=KEY, quota=None, partition="tt0000001-tt0000050", lines=None, **options):
    layout = DataLayout(tmp_path / "data")
    folder = layout.omdb(partition)
    return omdb_partition(
        layout.pages_dir("title", partition),  # no crawl: every id lacks a page
        folder,
        1,
        50,
        key=key,
        base_url=f"{server.base_url}/omdb",
        settings=_settings(server),
        quota=quota or DailyQuota(layout.omdb_usage_file, 1000),
        rate_per_second=0,
        log=lines.append if lines is not None else None,
        **options,
    ), folder


def _seed_outcomes(tmp_path: Path, ids: list[int], partition="tt0000001-tt0000050") -> None:
    """The crawl's outcomes for ``ids`` as if IMDb had blocked them all (no usable page)."""
    import pyarrow as pa

    pages = DataLayout(tmp_path / "data").pages("title", partition)
    pages.path.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "kind": "title",
            "id": i,
            "url": f"https://www.imdb.com/title/tt{i:07d}/",
            "status": "blocked",
            "http_status": 202,
            "redirect_id": None,
            "error": "WAF challenge",
            "attempts": 1,
            "fetched_at": "2026-12-07T00:00:00+00:00",
        }
        for i in ids
    ]
    pq.write_table(pa.Table.from_pylist(rows), pages.outcomes)


def test_answers_na_posters_and_unknown_ids(tmp_path):
    # slot 1: a plain title; 13: no poster (N/A); 15: no plot on its page, a plot from OMDb; 7: no such title
    ids = _ids([1, 13, 15, 7])
    _seed_outcomes(tmp_path, ids)
    with SampleImdbServer() as server:
        result, folder = _ask(server, tmp_path, ids)
    assert result.run.statuses == {"ok": 3, "not_found": 1} and result.run.stopped is None
    assert server.omdb.asked == [f"tt{i:07d}" for i in sorted(ids, reverse=True)]  # newest first
    table = pq.read_table(folder.records).to_pylist()
    by_id = {row["id"]: row for row in table}
    assert sorted(by_id) == sorted(_ids([1, 13, 15]))
    assert by_id[13]["poster_url"] is None and by_id[1]["poster_url"].endswith("._V1_.jpg")
    assert by_id[15]["synopsis"]
    assert by_id[1]["certificate"] == (sample_title(1)["certificate"] or None)
    assert by_id[1]["genres"] == sample_title(1)["genres"]
    assert "N/A" not in json.dumps(table)
    # Without the index every actor name is unmatched, and counted.
    assert result.records.counts["actor_names_unmatched"] == result.records.counts["actor_names"] > 0
    assert result.records.counts["no_poster"] == 1
    assert result.records.poster_hosts() == {"127.0.0.1"}


def test_actor_names_join_through_the_index(tmp_path):
    from mpds_pipeline.imdb.dataset_index import build_index
    from mpds_pipeline.sample_server.datasets import write_sample_datasets

    write_sample_datasets(tmp_path / "files", range(1, 51), range(1, 200), 0)
    build_index(tmp_path / "files", tmp_path / "index")
    ids = _ids([1, 2])
    _seed_outcomes(tmp_path, ids)
    layout = DataLayout(tmp_path / "data")
    with SampleImdbServer() as server:
        result, folder = _ask(server, tmp_path, ids)
    records = build_omdb_records(folder, tmp_path / "index")
    assert records.counts["actor_names"] > 0 and records.counts["actor_names_unmatched"] == 0
    row = next(r for r in records.table.to_pylist() if r["id"] == 1)
    expected = [(name, f"https://www.imdb.com/name/nm{pid:07d}") for pid, name in sample_title(1)["cast"][:4]]
    assert row["actors"] == expected
    assert layout  # the partition folder under the data directory holds both files
    assert folder.answers.is_file() and folder.records.is_file()


def test_a_refused_key_fails_at_once_saying_what_to_do_without_the_key(tmp_path):
    bad = "bad-key-0123456789"
    ids = _ids([1, 2, 4])
    _seed_outcomes(tmp_path, ids)
    lines: list[str] = []
    with SampleImdbServer() as server, pytest.raises(OmdbKeyRefused) as refused:
        _ask(server, tmp_path, ids, key=bad, lines=lines)
    assert server.request_count("/omdb") == 1  # nothing asked after the refusal
    message = str(refused.value)
    assert "Invalid API key!" in message and "MPDS_OMDB_API_KEY" in message and bad not in message
    assert not any(bad in line for line in lines)
    _assert_key_in_no_file(tmp_path, bad)


def test_limit_reached_stops_cleanly_and_the_next_day_resumes_without_asking_an_answered_id(tmp_path):
    from datetime import UTC, datetime

    from mpds_pipeline.sources.pauses import active_pause

    ids = _ids([1, 2, 4, 6, 8, 10])
    _seed_outcomes(tmp_path, ids)
    ids = sorted(ids, reverse=True)  # the order OMDb is asked in: newest first
    layout = DataLayout(tmp_path / "data")
    clock = [datetime(2026, 12, 7, 15, 30, tzinfo=UTC)]
    quota = DailyQuota(layout.omdb_usage_file, 1000, today=lambda: clock[0].date().isoformat())
    ask = {"quota": quota, "pauses_file": layout.paused_hosts_file, "now": lambda: clock[0]}
    with SampleImdbServer() as server:
        server.omdb.daily_limit = 3
        first, folder = _ask(server, tmp_path, ids, **ask)
        assert first.run.stopped == "limit" and first.run.statuses == {"ok": 3}
        assert first.run.asked == ids[:4]  # the fourth was refused: OMDb never answered it
        assert set(read_answers(folder.answers)[0]) == set(ids[:3])
        pause = active_pause(layout.paused_hosts_file, "127.0.0.1", clock[0])
        assert pause is not None and pause.until_time == datetime(2026, 12, 8, tzinfo=UTC)

        # The same day: OMDb's host is paused, so nothing is sent at all.
        asked_before = server.request_count("/omdb")
        again, _ = _ask(server, tmp_path, ids, **ask)
        assert again.run.stopped.startswith("paused: 127.0.0.1 is paused until 2026-12-08")
        assert server.request_count("/omdb") == asked_before

        # The next day OMDb answers again, and only the ids without an answer are asked.
        clock[0] = datetime(2026, 12, 8, 0, 5, tzinfo=UTC)
        server.omdb.new_day()
        server.omdb.asked.clear()
        resumed, _ = _ask(server, tmp_path, ids, **ask)
    assert resumed.run.stopped is None and resumed.run.asked == ids[3:]
    assert server.omdb.asked == [f"tt{i:07d}" for i in ids[3:]]
    answered, _ = read_answers(folder.answers)
    assert sorted(answered) == sorted(ids)
    lines = [json.loads(line) for line in folder.answers.read_text().splitlines()]
    assert len(lines) == len(ids)  # each id answered exactly once over both days
    assert all(line["status"] in ANSWERED for line in lines)


def test_the_daily_quota_is_shared_and_stops_a_run_cleanly(tmp_path):
    ids = _ids([1, 2, 4, 6, 8])
    _seed_outcomes(tmp_path, ids)
    quota = DailyQuota(DataLayout(tmp_path / "data").omdb_usage_file, 2)
    with SampleImdbServer() as server:
        result, _ = _ask(server, tmp_path, ids, quota=quota)
    assert result.run.stopped == "quota" and len(result.run.asked) == 2 and server.request_count("/omdb") == 2
    assert result.run.remaining == 3 and quota.status()["requests"] == 2


def test_no_key_asks_nothing_and_says_so(tmp_path):
    ids = _ids([1, 2])
    _seed_outcomes(tmp_path, ids)
    with SampleImdbServer() as server:
        result, folder = _ask(server, tmp_path, ids, key=None)
    assert server.request_count("/omdb") == 0 and result.run is None
    assert "MPDS_OMDB_API_KEY" in result.skipped and folder.records.is_file()


def test_the_key_reaches_no_file_and_no_log_line(tmp_path):
    ids = _ids([1, 7, 13])
    _seed_outcomes(tmp_path, ids)
    lines: list[str] = []
    with SampleImdbServer() as server:
        result, folder = _ask(server, tmp_path, ids, lines=lines)
    assert result.run.statuses["ok"] == 2
    assert lines and not any(KEY in line for line in lines)
    urls = [json.loads(line)["url"] for line in folder.answers.read_text().splitlines()]
    assert all("apikey=REDACTED" in url for url in urls)
    _assert_key_in_no_file(tmp_path, KEY)


def _assert_key_in_no_file(root: Path, key: str) -> None:
    written = [p for p in root.rglob("*") if p.is_file()]
    assert written
    leaks = [str(p) for p in written if key.encode() in p.read_bytes()]
    assert not leaks, f"the API key was written to {leaks}"


def test_shared_dir_override_is_honoured():
    assert SHARED_DIR.name == "shared" or SHARED_DIR.is_dir()
