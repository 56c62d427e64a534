"""The IMDb dataset index: download, streamed conversion to Parquet, crawl-time look-ups.

Real samples come from ../shared/imdb-datasets (skipped when absent); generated files
are served by a loopback http.server in a thread.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import os
import shutil
import threading
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.base.folders import IndexFolder
from mpds_pipeline.imdb.dataset_files import DatasetDownloadError, fetch_dataset_files
from mpds_pipeline.imdb.dataset_index import (
    NAMES_SCHEMA,
    PRINCIPALS_SCHEMA,
    TITLES_SCHEMA,
    actor_ids,
    build_index,
    has_index,
    ids_to_crawl,
    index_title_facts,
    max_person_id,
    max_title_id,
)
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline_tests.shared_samples import ABSENT, IMDB_DATASETS, SHARED_DIR


def sample_dir(name: str) -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(ABSENT)
    return IMDB_DATASETS / name


@pytest.fixture(scope="module")
def ocheretko_index(tmp_path_factory) -> tuple[Path, object]:
    """The a-ocheretko sample (2000 movies, their principals and people), in small chunks."""
    out = tmp_path_factory.mktemp("ocheretko_index")
    return out, build_index(sample_dir("a-ocheretko__IMDB"), out, chunk_rows=300)


# --- conversion of the real samples ---------------------------------------------------


def test_real_sample_converts_to_typed_parquet_with_all_rows(ocheretko_index):
    out, result = ocheretko_index
    assert result.rows == {"titles": 2000, "names": 10177, "principals": 11576}
    assert result.missing == [] and result.unchanged == []
    assert {name: t.invalid_rows for name, t in result.tables.items()} == {"titles": 0, "names": 0, "principals": 0}
    assert result.adult_titles == 6

    assert pq.read_schema(out / "titles.parquet").equals(TITLES_SCHEMA)
    assert pq.read_schema(out / "names.parquet").equals(NAMES_SCHEMA)
    assert pq.read_schema(out / "principals.parquet").equals(PRINCIPALS_SCHEMA)

    titles = pq.read_table(out / "titles.parquet")
    assert titles.num_rows == 2000
    assert titles.column("title_type").unique().to_pylist() == ["movie"]
    assert sum(titles.column("is_adult").to_pylist()) == 6
    shadowtown = titles.filter(pa.compute.equal(titles.column("id"), 9806258)).to_pylist()[0]
    assert shadowtown["genres"] == ["Drama", "Mystery", "Thriller"]
    assert shadowtown["start_year"] == 2020 and shadowtown["runtime_minutes"] == 84
    rogue = titles.filter(pa.compute.equal(titles.column("id"), 9806262)).to_pylist()[0]
    assert rogue["start_year"] is None and rogue["genres"] is None  # \N is null


def test_conversion_is_chunked_into_bounded_row_groups(ocheretko_index):
    out, result = ocheretko_index
    # 10177 names in chunks of 300 rows: 34 row groups, none larger than a chunk.
    assert result.tables["names"].row_groups == 34
    meta = pq.ParquetFile(out / "names.parquet").metadata
    assert meta.num_row_groups == 34
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 300


def test_names_and_principals_are_typed(ocheretko_index):
    out, _ = ocheretko_index
    names = pq.read_table(out / "names.parquet")
    bergman = names.filter(pa.compute.equal(names.column("id"), 6)).to_pylist()[0]
    assert bergman["primary_name"] == "Ingrid Bergman"
    assert bergman["birth_year"] == 1915 and bergman["death_year"] == 1982
    assert bergman["primary_professions"] == ["actress", "soundtrack", "producer"]
    assert bergman["known_for"] == [77711, 34583, 38109, 36855]
    assert bergman["is_actor"] is True

    principals = pq.read_table(out / "principals.parquet")
    maya = principals.filter(
        pa.compute.and_(
            pa.compute.equal(principals.column("title_id"), 9806258), pa.compute.equal(principals.column("ordering"), 1)
        )
    ).to_pylist()[0]
    assert maya == {
        "title_id": 9806258,
        "ordering": 1,
        "person_id": 1147982,
        "category": "actress",
        "job": None,
        "characters": ["Maya"],
    }


def test_rebuild_skips_unchanged_sources(ocheretko_index, tmp_path):
    source = sample_dir("a-ocheretko__IMDB")
    out = tmp_path / "index"
    build_index(source, out, chunk_rows=5000)
    again = build_index(source, out, chunk_rows=5000)
    assert sorted(again.unchanged) == ["names", "principals", "titles"]
    assert again.rows["titles"] == 2000 and again.adult_titles == 6
    forced = build_index(source, out, chunk_rows=5000, force=True)
    assert forced.unchanged == [] and forced.rows["names"] == 10177


def test_episodes_sample_keeps_title_types(tmp_path):
    result = build_index(sample_dir("BurntSushi__imdb-rename"), tmp_path)
    assert result.missing == ["name.basics", "title.principals"]
    titles = pq.read_table(tmp_path / "titles.parquet")
    types = titles.column("title_type").to_pylist()
    assert types == ["tvEpisode"] * 59  # The Simpsons' episodes (the series row is not in the sample)
    roasting = index_title_facts(tmp_path, [348034])[348034]
    assert roasting["primary_title"] == "Simpsons Roasting on an Open Fire"
    assert roasting["title_type"] == "tvEpisode" and roasting["genres"] == ["Animation", "Comedy"]
    crawl = ids_to_crawl(tmp_path, 348034, 348034, title_types={"movie"})
    assert list(crawl) == [] and crawl.skipped["title_type"] == 1
    assert list(ids_to_crawl(tmp_path, 348034, 348034, title_types={"movie", "tvEpisode"})) == [348034]


def test_director_sample_is_not_an_actor(tmp_path):
    result = build_index(sample_dir("MPMarshall1__DirectorProfile"), tmp_path)
    assert result.rows == {"titles": 15, "names": 1}
    assert max_person_id(tmp_path) == 634240  # Christopher Nolan, nm0634240
    assert actor_ids(tmp_path) == set()
    assert not has_index(tmp_path, "principals")
    facts = index_title_facts(tmp_path, [154506, 28642224, 999])
    assert facts[154506]["genres"] == ["Crime", "Mystery", "Thriller"]  # Following (1998)
    assert facts[28642224]["genres"] == []  # \N genres: nothing to fill in
    assert 999 not in facts
    assert max_title_id(tmp_path) == max(pq.read_table(tmp_path / "titles.parquet").column("id").to_pylist())


# --- crawl-time look-ups ----------------------------------------------------------------


def test_ids_to_crawl_keeps_only_existing_non_adult_titles(ocheretko_index):
    out, _ = ocheretko_index
    titles = pq.read_table(out / "titles.parquet").to_pylist()
    ids = sorted(t["id"] for t in titles)
    first, last = ids[0], ids[-1]
    crawl = ids_to_crawl(out, first, last)
    adult = {t["id"] for t in titles if t["is_adult"]}
    assert len(adult) == 6
    assert list(crawl) == sorted(set(ids) - adult)
    assert crawl.skipped == {"not_in_index": (last - first + 1) - 2000, "adult": 6, "title_type": 0}
    assert crawl.beyond_index == 0

    with_adult = ids_to_crawl(out, first, last, skip_adult=False)
    assert len(with_adult) == 2000 and with_adult.skipped["adult"] == 0


def test_ids_to_crawl_on_a_sub_range_and_beyond_the_index(ocheretko_index):
    out, _ = ocheretko_index
    ids = sorted(pq.read_table(out / "titles.parquet").column("id").to_pylist())
    first, last = ids[10], ids[20]
    assert list(ids_to_crawl(out, first, last, skip_adult=False)) == ids[10:21]

    # Ids newer than the index cannot be ruled out: they are probed, not skipped.
    top = max_title_id(out)
    assert top == ids[-1]
    crawl = ids_to_crawl(out, top, top + 5, skip_adult=False)
    assert list(crawl) == [top, top + 1, top + 2, top + 3, top + 4, top + 5]
    assert crawl.beyond_index == 5 and sum(crawl.skipped.values()) == 0
    closed = ids_to_crawl(out, top, top + 5, skip_adult=False, probe_beyond_index=False)
    assert list(closed) == [top] and closed.skipped["not_in_index"] == 5


def test_actor_ids_follow_primary_profession(ocheretko_index):
    out, result = ocheretko_index
    actors = actor_ids(out)
    names = pq.read_table(out / "names.parquet").to_pylist()
    expected = {n["id"] for n in names if set(n["primary_professions"] or []) & {"actor", "actress"}}
    assert actors == expected and len(actors) == result.actors == 4824
    assert 6 in actors  # Ingrid Bergman: actress
    assert 25 not in actors  # Jerry Goldsmith: composer
    assert actor_ids(out, [6, 25, 32, 123456789]) == {6, 32}  # Charlton Heston: actor
    assert actor_ids(out, []) == set()


def cast_in_index(index_dir: Path, title_id: int) -> list[int]:
    """The title's actor and actress principals in the index, in billing order."""
    principals = pq.read_table(IndexFolder(index_dir).table("principals")).to_pylist()
    return [
        p["person_id"]
        for p in sorted(principals, key=lambda p: p["ordering"])
        if p["title_id"] == title_id and p["category"] in ("actor", "actress")
    ]


def test_the_index_keeps_the_cast_in_billing_order(ocheretko_index):
    out, _ = ocheretko_index
    assert cast_in_index(out, 9806258)[0] == 1147982


# --- generated files: gzip, quotes, malformed rows ---------------------------------------

TITLE_HEADER = "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\tendYear\truntimeMinutes\tgenres\n"
NAME_HEADER = "nconst\tprimaryName\tbirthYear\tdeathYear\tprimaryProfession\tknownForTitles\n"
PRINCIPAL_HEADER = "tconst\tordering\tnconst\tcategory\tjob\tcharacters\n"


def write_generated_dataset(folder: Path, titles: int = 1000) -> None:
    """IMDb-format .tsv.gz files: every 7th id missing, every 50th adult, odd persons actors."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "title.basics.tsv.gz", "wt", encoding="utf-8", newline="") as out:
        out.write(TITLE_HEADER)
        for i in range(1, titles + 1):
            if i % 7 == 0:
                continue
            adult = 1 if i % 50 == 0 else 0
            # A bare quote, as in real IMDb titles: the files have no quoting.
            out.write(f'tt{i:07d}\tmovie\tThe "Film" {i}\tFilm {i}\t{adult}\t{1900 + i % 120}\t\\N\t90\tDrama,Comedy\n')
    with gzip.open(folder / "name.basics.tsv.gz", "wt", encoding="utf-8", newline="") as out:
        out.write(NAME_HEADER)
        for i in range(1, 201):
            profession = "actor,producer" if i % 2 else "director"
            out.write(f"nm{i:07d}\tPerson {i}\t1950\t\\N\t{profession}\ttt{i:07d},tt{i + 1:07d}\n")
        out.write("nm0009999\ta malformed row with too few columns\n")
    with gzip.open(folder / "title.principals.tsv.gz", "wt", encoding="utf-8", newline="") as out:
        out.write(PRINCIPAL_HEADER)
        out.write('tt0000001\t1\tnm0000001\tactor\t\\N\t["Jack \\"Ace\\" Doe","Himself"]\n')
        out.write("tt0000001\t2\tnm0000002\tdirector\t\\N\t\\N\n")


def test_generated_gzip_files_convert_in_several_chunks(tmp_path):
    write_generated_dataset(tmp_path / "files")
    lines = []
    result = build_index(tmp_path / "files", tmp_path / "index", chunk_rows=100, log=lines.append)
    kept = 1000 - 1000 // 7
    assert result.rows == {"titles": kept, "names": 200, "principals": 2}
    # Progress per table: rows so far, then a final line with the table's rows.
    finals = [line.rsplit(": ", 1) for line in lines if "done in" in line]
    assert [(label, text.split(",")[0]) for label, text in finals] == [
        ("imdb_index: converting title.basics.tsv.gz to titles.parquet", f"{kept} rows"),
        ("imdb_index: converting name.basics.tsv.gz to names.parquet", "200 rows"),
        ("imdb_index: converting title.principals.tsv.gz to principals.parquet", "2 rows"),
    ]
    assert result.tables["titles"].row_groups == -(-kept // 100)
    assert result.tables["names"].invalid_rows == 1
    assert result.adult_titles == len([i for i in range(50, 1001, 50) if i % 7])

    facts = index_title_facts(tmp_path / "index", [1])
    assert facts[1]["primary_title"] == 'The "Film" 1'
    characters = pq.read_table(tmp_path / "index" / "principals.parquet").column("characters").to_pylist()
    assert characters == [['Jack "Ace" Doe', "Himself"], None]

    crawl = ids_to_crawl(tmp_path / "index", 1, 100)
    assert crawl.skipped == {"not_in_index": 14, "adult": 2, "title_type": 0}
    assert len(crawl) == 84 and 7 not in crawl and 50 not in crawl
    assert actor_ids(tmp_path / "index", range(1, 11)) == {1, 3, 5, 7, 9}


def test_plain_tsv_is_read_like_gzip(tmp_path):
    write_generated_dataset(tmp_path / "gz", titles=30)
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("title.basics", "name.basics", "title.principals"):
        with gzip.open(tmp_path / "gz" / f"{name}.tsv.gz", "rb") as src, open(plain / f"{name}.tsv", "wb") as dst:
            shutil.copyfileobj(src, dst)
    from_gz = build_index(tmp_path / "gz", tmp_path / "index_gz")
    from_plain = build_index(plain, tmp_path / "index_plain")
    assert from_gz.rows == from_plain.rows
    for table in ("titles", "names", "principals"):
        assert pq.read_table(tmp_path / "index_gz" / f"{table}.parquet").equals(
            pq.read_table(tmp_path / "index_plain" / f"{table}.parquet")
        )


def test_no_dataset_files_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no IMDb dataset files"):
        build_index(tmp_path, tmp_path / "index")
    with pytest.raises(FileNotFoundError, match="build_index"):
        ids_to_crawl(tmp_path / "index", 1, 10)


# --- download from a loopback server ------------------------------------------------------


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and records each request's method, path and answer."""

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def send_response(self, code, message=None):
        self.server.answers.append((self.command, self.path, code))
        super().send_response(code, message)


@pytest.fixture
def dataset_server(tmp_path):
    served = tmp_path / "served"
    write_generated_dataset(served, titles=3000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_CountingHandler, directory=str(served)))
    server.answers = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_download_streams_files_and_skips_unchanged(dataset_server, tmp_path):
    base_url, served, server = dataset_server
    dest = tmp_path / "downloads"
    paths = fetch_dataset_files(base_url, dest).paths
    names = ["title.basics.tsv.gz", "name.basics.tsv.gz", "title.principals.tsv.gz"]
    assert paths == [dest / name for name in names]
    for name in names:
        assert (dest / name).read_bytes() == (served / name).read_bytes()
    assert not list(dest.glob("*.part"))
    assert [code for _, _, code in server.answers] == [200, 200, 200]

    # Unchanged on the server: answered 304 to the conditional request, not fetched again.
    before = {name: (dest / name).stat().st_mtime_ns for name in names}
    again = fetch_dataset_files(base_url, dest, client_settings=ClientSettings(user_agent="mpds-test"))
    assert again.downloaded == 0 and again.unchanged == 3 and again.bytes_downloaded == 0
    assert [code for _, _, code in server.answers[3:]] == [304, 304, 304]
    assert {name: (dest / name).stat().st_mtime_ns for name in names} == before

    # The server's copy changes: only that file is fetched again.
    write_generated_dataset(tmp_path / "newer", titles=3100)
    shutil.copy(tmp_path / "newer" / "title.basics.tsv.gz", served / "title.basics.tsv.gz")
    newer_mtime = (served / "name.basics.tsv.gz").stat().st_mtime + 10
    os.utime(served / "title.basics.tsv.gz", (newer_mtime, newer_mtime))
    lines = []
    third = fetch_dataset_files(base_url, dest, log=lines.append)
    assert [f.status for f in third.files] == ["downloaded", "unchanged", "unchanged"]
    assert len(lines) == 2  # under a MiB: the first update is the last part
    assert (
        lines[-1].startswith("imdb_index: downloading title.basics.tsv.gz: 1/1 MiB (100.0%)") and "done in" in lines[-1]
    )
    assert (dest / "title.basics.tsv.gz").read_bytes() == (served / "title.basics.tsv.gz").read_bytes()

    result = build_index(dest, tmp_path / "index", chunk_rows=500)
    assert result.rows["titles"] == 3100 - 3100 // 7


def test_download_of_a_missing_file_fails_and_leaves_nothing(dataset_server, tmp_path):
    base_url, _, _ = dataset_server
    dest = tmp_path / "downloads"
    with pytest.raises(DatasetDownloadError, match="HTTP 404"):
        fetch_dataset_files(base_url, dest, names=["title.ratings.tsv.gz"])
    assert list(dest.iterdir()) == []


# --- the sample server's generated titles and persons -----------------------------------


def test_sample_server_datasets_agree_with_the_sample_pages(tmp_path):
    from mpds_pipeline.sample_server.content import sample_person, sample_title
    from mpds_pipeline.sample_server.datasets import write_sample_datasets

    written = write_sample_datasets(tmp_path / "files", range(1, 301), range(1, 201), seed=3)
    assert sorted(p.name for p in written.files.values()) == [
        "name.basics.tsv.gz",
        "title.basics.tsv.gz",
        "title.principals.tsv.gz",
    ]
    result = build_index(tmp_path / "files", tmp_path / "index", chunk_rows=64)
    assert result.rows == {
        "titles": written.rows["title.basics"],
        "names": written.rows["name.basics"],
        "principals": written.rows["title.principals"],
    }

    truth = {i: sample_title(i, 3) for i in range(1, 301)}
    pages = {i for i, t in truth.items() if t["status"] == "ok"}
    adult = {i for i in pages if truth[i]["is_adult"]}
    assert adult  # every 25 ids hold an adult title
    crawl = ids_to_crawl(tmp_path / "index", 1, 300)
    assert list(crawl) == sorted(pages - adult)  # no 404s, no redirects, no adult pages
    assert crawl.skipped["adult"] == len(adult)
    assert crawl.skipped["not_in_index"] == 300 - len(pages)

    facts = index_title_facts(tmp_path / "index", pages)
    for title_id in pages:
        assert facts[title_id]["title_type"] == truth[title_id]["title_type"]
        assert facts[title_id]["genres"] == truth[title_id]["genres"]

    persons = {i: sample_person(i, 3) for i in range(1, 201)}
    expected_actors = {i for i, p in persons.items() if p["status"] == "ok" and p["is_actor"]}
    assert actor_ids(tmp_path / "index") == expected_actors
    first_ok = min(pages - adult)
    assert cast_in_index(tmp_path / "index", first_ok) == [pid for pid, _ in truth[first_ok]["cast"]]


def test_sample_datasets_are_byte_stable_so_downloads_see_them_unchanged(tmp_path):
    from mpds_pipeline.sample_server.datasets import write_sample_datasets

    first = write_sample_datasets(tmp_path / "a", range(1, 60), seed=1)
    second = write_sample_datasets(tmp_path / "b", range(1, 60), seed=1)
    assert len(first.files) == 3 and first.files.keys() == second.files.keys()
    for name, path in first.files.items():
        assert path.read_bytes() == second.files[name].read_bytes()


# --- download validators other than Last-Modified (a loopback host of one file) --------


@contextlib.contextmanager
def _fixed_host(body: bytes, headers: dict, *, honour_conditionals: bool, status: int = 200):
    """A loopback server answering every GET with ``body``; yields (base URL, request headers seen)."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append({k.lower(): v for k, v in self.headers.items()})
            if honour_conditionals and self.headers.get("If-None-Match") == headers.get("ETag"):
                self.send_response(304)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_etag_is_sent_back_and_a_304_keeps_the_file(tmp_path):
    names = ["title.basics.tsv.gz"]
    with _fixed_host(b"x" * 5000, {"ETag": '"v1"'}, honour_conditionals=True) as (url, seen):
        assert fetch_dataset_files(url, tmp_path, names).downloaded == 1
        again = fetch_dataset_files(url, tmp_path, names)
    assert again.unchanged == 1
    assert seen[1]["if-none-match"] == '"v1"'
    assert seen[0]["user-agent"].startswith("MPDS-pipeline/")  # the one client's User-Agent


def test_same_etag_or_same_size_counts_as_unchanged_without_conditional_support(tmp_path):
    names = ["name.basics.tsv.gz"]
    with _fixed_host(b"y" * 3000, {"ETag": '"v2"'}, honour_conditionals=False) as (url, _):
        fetch_dataset_files(url, tmp_path / "etag", names)
        assert fetch_dataset_files(url, tmp_path / "etag", names).unchanged == 1

    # No validators at all: the size is the only evidence.
    with _fixed_host(b"z" * 3000, {}, honour_conditionals=False) as (url, _):
        fetch_dataset_files(url, tmp_path / "size", names)
        assert fetch_dataset_files(url, tmp_path / "size", names).unchanged == 1
    with _fixed_host(b"z" * 3001, {}, honour_conditionals=False) as (url, _):
        refetch = fetch_dataset_files(url, tmp_path / "size", names)
    assert refetch.downloaded == 1 and (tmp_path / "size" / names[0]).stat().st_size == 3001


def test_a_waf_challenge_is_reported_as_blocked(tmp_path):
    with (
        _fixed_host(b"", {"x-amzn-waf-action": "challenge"}, honour_conditionals=False, status=202) as (url, _),
        pytest.raises(DatasetDownloadError, match="blocked"),
    ):
        fetch_dataset_files(url, tmp_path, ["title.basics.tsv.gz"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["huge", "huge_chunked"])
def test_download_over_the_file_cap_is_refused_and_leaves_nothing(tmp_path, kind):
    from mpds_pipeline.sample_server import FaultPlan, FaultRule, SampleImdbServer

    faults = FaultPlan([FaultRule(kind, path="^/datasets/", size_mb=3)])
    with SampleImdbServer(faults=faults) as server, pytest.raises(DatasetDownloadError, match="1,000,000-byte cap"):
        fetch_dataset_files(server.base_url + "/datasets", tmp_path, ["title.basics.tsv.gz"], max_file_bytes=1_000_000)
    assert list(tmp_path.iterdir()) == []
