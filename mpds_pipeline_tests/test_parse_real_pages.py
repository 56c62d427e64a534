"""The parsers on every real IMDb page in ../shared/imdb-pages.

Expected values were read from the pages themselves (the __NEXT_DATA__ objects, the
JSON-LD blocks and the classic page markup), not from the parser's output.
"""

from __future__ import annotations

import io
import re
from collections import namedtuple
from pathlib import Path

import orjson
import pytest

from mpds_pipeline.imdb.parse_cli import run_parse
from mpds_pipeline.imdb.parsing import extract_data_scripts, parse_file, parse_page
from mpds_pipeline.imdb.records import ParseError, PersonRecord, TitleRecord
from mpds_pipeline_tests.shared_samples import IMDB_PAGES as PAGES
from mpds_pipeline_tests.shared_samples import needs_shared

pytestmark = needs_shared

T = namedtuple(
    "T",
    "file id title original_title title_type year genres first_actors poster_key has_synopsis certificate is_adult era",
)
# poster_key: the start of the image key after /images/M/, None for "no poster".
TITLES = [
    T(
        "real/tt0047034.html",
        47034,
        "Godzilla",
        "Gojira",
        "movie",
        1954,
        ["Drama", "Horror", "Sci-Fi", "Thriller"],
        ["Akira Takarada", "Momoko Kôchi", "Akihiko Hirata"],
        "MV5BMjAzNTk3MTc2",
        True,
        "UNRATED",
        False,
        "classic",
    ),
    T(
        "real/tt0078788.html",
        78788,
        "Apocalypse Now",
        "Apocalypse Now",
        "movie",
        1979,
        ["Drama", "War"],
        ["Marlon Brando", "Martin Sheen", "Robert Duvall"],
        "MV5BMTcyMzQ5NDM4",
        True,
        "X",
        False,
        "classic",
    ),
    T(
        "real/tt0088247.html",
        88247,
        "The Terminator",
        "The Terminator",
        "movie",
        1984,
        ["Action", "Sci-Fi"],
        ["Arnold Schwarzenegger", "Linda Hamilton", "Michael Biehn"],
        "MV5BYTViNzMxZjEt",
        True,
        "R",
        False,
        "next",
    ),
    T(
        "real/tt0103639.html",
        103639,
        "Aladdin",
        "Aladdin",
        "movie",
        1992,
        ["Animation", "Adventure", "Comedy", "Family", "Fantasy", "Musical", "Romance"],
        ["Scott Weinger", "Robin Williams", "Linda Larkin"],
        "MV5BY2Q2NDI1MjUt",
        True,
        "G",
        False,
        "next",
    ),
    T(
        "real/tt0114478.html",
        114478,
        "Smoke",
        "Smoke",
        "movie",
        1995,
        ["Comedy", "Drama"],
        ["Giancarlo Esposito", "José Zúñiga", "Stephen Gevedon"],
        "MV5BMjUwYTdiYjIt",
        True,
        "R",
        False,
        "classic",
    ),
    T(
        "real/tt0119698.html",
        119698,
        "Princess Mononoke",
        "Mononoke-hime",
        "movie",
        1997,
        ["Animation", "Action", "Adventure", "Fantasy"],
        ["Yôji Matsuda", "Yuriko Ishida", "Yûko Tanaka"],
        "MV5BNGIzY2IzODQt",
        True,
        "PG-13",
        False,
        "next",
    ),
    T(
        "real/tt0133093.html",
        133093,
        "The Matrix",
        "The Matrix",
        "movie",
        1999,
        ["Action", "Sci-Fi"],
        ["Keanu Reeves", "Laurence Fishburne", "Carrie-Anne Moss"],
        "MV5BNzQzOTk3OTAt",
        True,
        "R",
        False,
        "next",
    ),
    T(
        "real/tt0185183.html",
        185183,
        "Battlefield Earth",
        "Battlefield Earth",
        "movie",
        2000,
        ["Action", "Adventure", "Sci-Fi"],
        ["John Travolta", "Barry Pepper", "Forest Whitaker"],
        "MV5BMTg0Njk2OTM3",
        True,
        "PG-13",
        False,
        "classic-jsonld",
    ),
    T(
        "real/tt0245062.html",
        245062,
        "The Magnet",
        "Comme un aimant",
        "movie",
        2000,
        ["Crime", "Drama"],
        ["Kamel Saleh", "Akhenaton", "Houari Djerir"],
        "MV5BMTY2OTAzMTQ2",
        False,
        None,
        False,
        "classic",
    ),
    T(
        "real/tt0245429.html",
        245429,
        "Spirited Away",
        "Sen to Chihiro no kamikakushi",
        "movie",
        2001,
        ["Animation", "Adventure", "Family", "Fantasy", "Mystery"],
        ["Daveigh Chase", "Suzanne Pleshette", "Miyu Irino"],
        "MV5BMjlmZmI5MDct",
        True,
        "PG",
        False,
        "next",
    ),
    T(
        "real/tt0306414.html",
        306414,
        "The Wire",
        "The Wire",
        "tvSeries",
        2002,
        ["Crime", "Drama", "Thriller"],
        ["Dominic West", "John Doman", "Deirdre Lovejoy"],
        "MV5BNjc1NzYwODEy",
        True,
        "TV-MA",
        False,
        "classic",
    ),
    T(
        "real/tt0387564.html",
        387564,
        "Saw",
        "Saw",
        "movie",
        2004,
        ["Horror", "Mystery", "Thriller"],
        ["Cary Elwes", "Leigh Whannell", "Danny Glover"],
        "MV5BM2M1MzI1MWYt",
        True,
        "R",
        False,
        "next",
    ),
    T(
        "real/tt0903747.html",
        903747,
        "Breaking Bad",
        "Breaking Bad",
        "tvSeries",
        2008,
        ["Crime", "Drama", "Thriller"],
        ["Bryan Cranston", "Anna Gunn", "Aaron Paul"],
        "MV5BMTU2MTgzMzQx",
        True,
        None,
        False,
        "classic",
    ),
    T(
        "real/tt1054487.html",
        1054487,
        "Futurama: Into the Wild Green Yonder",
        "Futurama: Into the Wild Green Yonder",
        "video",
        2009,
        ["Animation", "Comedy", "Sci-Fi"],
        ["Billy West", "Katey Sagal", "John DiMaggio"],
        "MV5BMTczMzkwMzE5",
        True,
        "Not Rated",
        False,
        "next",
    ),
    T(
        "real/tt1259574.html",
        1259574,
        "Red Riding: The Year of Our Lord 1974",
        "Red Riding: The Year of Our Lord 1974",
        "tvMovie",
        2009,
        ["Crime", "Drama", "History"],
        ["Andrew Garfield", "David Morrissey", "John Henshaw"],
        "MV5BNzQ3N2IyZDgt",
        True,
        "Not Rated",
        False,
        "next",
    ),
    T(
        "real/tt1300562.html",
        1300562,
        "Adieu mères",
        "Adieu mères",
        "movie",
        2007,
        ["Drama"],
        ["Marc Samuel", "Rachid El Ouali", "Souad Amidou"],
        "MV5BY2Y1ZWEyNjgt",
        False,
        None,
        False,
        "next",
    ),
    T(
        "real/tt1300570.html",
        1300570,
        "Cuckold 1",
        "Cuckold 1",
        "video",
        2006,
        ["Adult"],
        ["Riley Shy", "Kelly Wells", "Chelsie Rae"],
        None,
        False,
        "X",
        True,
        "next",
    ),
    T(
        "real/tt1839596.html",
        1839596,
        "Rockstar",
        "Rockstar",
        "movie",
        2011,
        ["Drama", "Music", "Musical", "Romance"],
        ["Ranbir Kapoor", "Nargis Fakhri", "Shammi Kapoor"],
        "MV5BOTc3NzAxMjg4",
        True,
        "Not Rated",
        False,
        "classic-jsonld",
    ),
    T(
        "real/tt2241351.html",
        2241351,
        "Money Monster",
        "Money Monster",
        "movie",
        2016,
        ["Crime", "Drama", "Thriller"],
        ["George Clooney", "Julia Roberts", "Jack O'Connell"],
        "MV5BMTgzMjU1NDUw",
        True,
        "R",
        False,
        "classic",
    ),
    T(
        "real/tt2250192.html",
        2250192,
        "Sword Art Online",
        "Sword Art Online",
        "tvSeries",
        2012,
        ["Animation", "Action", "Adventure", "Fantasy", "Romance", "Sci-Fi", "Thriller"],
        ["Yoshitsugu Matsuoka", "Haruka Tomatsu", "Bryce Papenbrook"],
        "MV5BYjY4MDU2YjMt",
        True,
        "TV-14",
        False,
        "next-urql",
    ),
    T(
        "real/tt2294629.html",
        2294629,
        "Frozen",
        "Frozen",
        "movie",
        2013,
        ["Animation", "Adventure", "Comedy", "Family", "Fantasy", "Musical"],
        ["Kristen Bell", "Idina Menzel", "Jonathan Groff"],
        "MV5BMTQ1MjQwMTE5",
        True,
        "PG",
        False,
        "next",
    ),
    T(
        "real/tt2402107.html",
        2402107,
        "Existence",
        "Existence",
        "movie",
        2012,
        ["Drama"],
        ["Loren Taylor", "Peter McCauley", "Gareth Reeves"],
        "MV5BMTU5NzA3ODQ3",
        True,
        "Not Rated",
        False,
        "next",
    ),
    T(
        "real/tt3291150.html",
        3291150,
        "The Expendables 4",
        "The Expendables 4",
        "movie",
        2017,
        ["Action", "Adventure", "Thriller"],
        ["Hulk Hogan"],
        None,
        False,
        None,
        False,
        "classic",
    ),
    T(
        "real/tt3303790.html",
        3303790,
        "Master of None",
        "Master of None",
        "movie",
        None,
        ["Drama"],
        [],
        None,
        False,
        None,
        False,
        "next",
    ),
    T(
        "next-data-json/tt0133093.next_data.json",
        133093,
        "Matrix",
        "The Matrix",
        "movie",
        1999,
        ["Action", "Sci-Fi"],
        ["Keanu Reeves", "Laurence Fishburne", "Carrie-Anne Moss"],
        "MV5BOWVlOTU2Mzkt",
        True,
        "T",
        False,
        "next-2025",
    ),
    T(
        "next-data-json/tt1520211.next_data.json",
        1520211,
        "The Walking Dead",
        "The Walking Dead",
        "tvSeries",
        2010,
        ["Drama", "Horror", "Thriller"],
        ["Andrew Lincoln", "Norman Reedus", "Melissa McBride"],
        "MV5BYWQwMGRhNGEt",
        True,
        "VM14",
        False,
        "next-2025",
    ),
    T(
        "next-data-json/tt1628065.next_data.json",
        1628065,
        "Tell It to the Frogs",
        "Tell It to the Frogs",
        "tvEpisode",
        2010,
        ["Drama", "Horror", "Thriller"],
        ["Andrew Lincoln", "Jon Bernthal", "Sarah Wayne Callies"],
        "MV5BMjE3NDIxMjgz",
        True,
        "TV-14",
        False,
        "next-2025",
    ),
    # 2009-2010 pages (../shared/imdb-pages/real-older): no microdata, no JSON-LD.
    # The /combined view: a localised <title> and header ("Duro de matar"), the original
    # title in span.title-extra; "Certification:" lists USA:R among others.
    T(
        "real-older/tt0095016.combined-2010.html",
        95016,
        "Duro de matar",
        "Die Hard",
        "movie",
        1988,
        ["Action", "Crime", "Thriller"],
        ["Bruce Willis", "Alan Rickman", "Bonnie Bedelia", "Alexander Godunov"],
        "MV5BMTIxNTY3NjM0OV5BMl5BanBnXkFtZTcwNzg5MzY0MQ@@._V1_.jpg",
        True,
        "R",
        False,
        "combined",
    ),
    # No poster (the share logo is og:image) and no USA certificate (Japan, UK only).
    T(
        "real-older/tt1352369.combined-2010.html",
        1352369,
        "Gurotesuku",
        "Gurotesuku",
        "movie",
        2009,
        ["Crime", "Horror", "Thriller"],
        ["Tsugumi Nagasawa", "Hiroaki Kawatsure", "Shigeo Ôsako"],
        None,
        True,
        None,
        False,
        "combined",
    ),
    # A 2009 main page in iso-8859-1: "MPAA: Rated R for …", cast overview first billed.
    T(
        "real-older/tt0332452.2009.html",
        332452,
        "Troy",
        "Troy",
        "movie",
        2004,
        ["Action", "History", "Romance"],
        ["Julian Glover", "Brian Cox", "Nathan Jones", "Adoni Maropis", "Jacob Smith", "Brad Pitt"],
        "MV5BMTg5NzQzNTcxM15BMl5BanBnXkFtZTcwNTE3NzU4MQ@@._V1_.jpg",
        True,
        "R",
        False,
        "tn15",
    ),
]

P = namedtuple("P", "file id name image_key professions is_actor era")
PERSONS = [
    P(
        "real/nm0000246.html",
        246,
        "Bruce Willis",
        "MV5BMjA0MjMzMTE5",
        ["actor", "soundtrack", "producer"],
        True,
        "classic",
    ),
    # Browser-saved copy: img#name-poster points at a local file, the remote URL is in
    # JSON-LD/og:image. Professions are the ones the page shows under the name.
    P(
        "real/nm0000434.html",
        434,
        "Mark Hamill",
        "MV5BOGY2MjI5MDQt",
        ["actor", "producer", "director"],
        True,
        "classic-jsonld",
    ),
    P(
        "real/nm1212722.html",
        1212722,
        "Benedict Cumberbatch",
        "MV5BMjE0MDkzMDQw",
        ["actor", "producer", "miscellaneous"],
        True,
        "mobile",
    ),
    P(
        "next-data-json/nm0000126.next_data.json",
        126,
        "Kevin Costner",
        "MV5BMTY1ODkwMTQx",
        ["actor", "producer", "writer"],
        True,
        "next-2025",
    ),
    # 2009, iso-8859-1, browser-saved: professions only as filmography sections (In
    # Development, Thanks, Self and Archive Footage are none); the headshot's src is a
    # local file named after the image key without its "@@._V1…" tail.
    P(
        "real-older/nm0000129.2009.html",
        129,
        "Tom Cruise",
        "MV5BMTk1MjM3NTU5M15BMl5BanBnXkFtZTcwMTMyMjAyMg@@._V1_.jpg",
        ["actor", "producer", "soundtrack", "director", "writer"],
        True,
        "tn15",
    ),
]


def _all_page_files() -> list[Path]:
    """Saved pages and their page data; API answers such as a title's media gallery
    (``*.media_gallery.json``) are not pages and have tests of their own."""
    data = [f for f in sorted((PAGES / "next-data-json").glob("*.json")) if f.name.endswith(".next_data.json")]
    return sorted((PAGES / "real").glob("*.html")) + sorted((PAGES / "real-older").glob("*.html")) + data


def test_every_shared_page_has_expectations():
    covered = {t.file for t in TITLES} | {p.file for p in PERSONS}
    on_disk = {f"{f.parent.name}/{f.name}" for f in _all_page_files()}
    assert on_disk == covered


@pytest.mark.parametrize("expected", TITLES, ids=[t.file for t in TITLES])
def test_title_page(expected: T):
    record = parse_file(PAGES / expected.file)
    assert isinstance(record, TitleRecord), record
    assert record.id == expected.id
    assert record.title == expected.title
    assert record.original_title == expected.original_title
    assert record.title_type == expected.title_type
    assert record.year == expected.year
    assert record.genres == expected.genres
    assert list(record.actors)[: len(expected.first_actors)] == expected.first_actors
    assert len(record.actors) <= 15
    for url in record.actors.values():
        assert url.startswith("https://www.imdb.com/name/nm") and not url.endswith("/")
    if expected.poster_key is None:
        assert record.poster_url is None
    else:
        assert f"/images/M/{expected.poster_key}" in record.poster_url
        assert record.poster_url.endswith("._V1_.jpg")
        assert not record.poster_url.startswith(("http://ia.media-imdb.com", "http://i.media-imdb.com"))
    assert bool(record.synopsis) == expected.has_synopsis
    assert record.certificate == expected.certificate
    assert record.is_adult == expected.is_adult
    assert record.era == expected.era


@pytest.mark.parametrize("expected", PERSONS, ids=[p.file for p in PERSONS])
def test_person_page(expected: P):
    record = parse_file(PAGES / expected.file)
    assert isinstance(record, PersonRecord), record
    assert record.id == expected.id
    assert record.name == expected.name
    assert f"/images/M/{expected.image_key}" in record.image_url
    assert record.image_url.startswith("http") and record.image_url.endswith("._V1_.jpg")
    assert "media-imdb.com" not in record.image_url  # legacy hosts name today's host
    assert record.professions == expected.professions
    assert record.is_actor == expected.is_actor
    assert record.era == expected.era


def test_actor_urls_and_order_on_2022_page():
    # Early-2022 page: the principal cast (3 stars above the fold, 4 in
    # mainColumnData.principalCast) is not in the cast list at all; it must come first.
    record = parse_file(PAGES / "real/tt1300562.html")
    assert list(record.actors.items())[:5] == [
        ("Marc Samuel", "https://www.imdb.com/name/nm0760405"),
        ("Rachid El Ouali", "https://www.imdb.com/name/nm0252733"),
        ("Souad Amidou", "https://www.imdb.com/name/nm0024850"),
        ("Hafida Kassoui", "https://www.imdb.com/name/nm3150950"),
        ("Christian Drillaud", "https://www.imdb.com/name/nm0237921"),
    ]


def test_alphabetical_cast_tail_does_not_reorder_billing():
    # Aladdin (2022-10): billed cast, then an alphabetical list from Charlie Adler on.
    actors = list(parse_file(PAGES / "real/tt0103639.html").actors)
    assert actors[:8] == [
        "Scott Weinger",
        "Robin Williams",
        "Linda Larkin",
        "Jonathan Freeman",
        "Frank Welker",
        "Gilbert Gottfried",
        "Douglas Seale",
        "Charlie Adler",
    ]


def test_series_principal_stars_precede_cast_sorted_by_episodes():
    actors = list(parse_file(PAGES / "next-data-json/tt1520211.next_data.json").actors)
    assert actors[:4] == ["Andrew Lincoln", "Norman Reedus", "Melissa McBride", "Lauren Cohan"]


def test_sidebar_image_of_other_title_is_not_a_poster():
    page = (PAGES / "real/tt3291150.html").read_bytes()
    assert b"The Walking Dead" in page  # the sidebar promo is there...
    assert parse_page(page).poster_url is None  # ...and is not taken for the poster


def test_synopsis_text_is_clean():
    record = parse_file(PAGES / "real/tt2241351.html")
    assert record.synopsis == (
        "Financial TV host Lee Gates and his producer Patty are put in an extreme "
        "situation when an irate investor takes over their studio."
    )
    matrix = parse_file(PAGES / "real/tt0133093.html")
    assert matrix.synopsis.startswith("When a beautiful stranger leads computer hacker Neo")


def test_kind_given_explicitly_matches_detection():
    page = (PAGES / "real/tt0133093.html").read_bytes()
    assert parse_page(page, kind="title") == parse_page(page)
    person = (PAGES / "real/nm0000246.html").read_bytes()
    assert parse_page(person, kind="person") == parse_page(person)


def test_text_input_gives_same_record_as_bytes():
    page = (PAGES / "real/tt0047034.html").read_bytes()
    assert parse_page(page.decode("utf-8")) == parse_page(page)


@pytest.mark.parametrize("name", [f.name for f in sorted((PAGES / "real").glob("*.html"))] if PAGES.is_dir() else [])
def test_data_only_form_gives_the_same_record(name: str):
    page = (PAGES / "real" / name).read_bytes()
    reduced = extract_data_scripts(page)
    if b'id="__NEXT_DATA__"' not in page:
        assert reduced is None  # classic pages keep their data in the markup
        return
    assert reduced is not None and len(reduced) < len(page) // 2
    assert b'id="__NEXT_DATA__"' in reduced and b"og:url" in reduced and b"og:image" in reduced
    assert parse_page(reduced) == parse_page(page)


def test_run_parse_prints_one_json_line_per_file(tmp_path):
    bad = tmp_path / "broken.html"
    bad.write_bytes(b"<html><body>nothing here</body></html>")
    paths = [str(PAGES / "real/tt0133093.html"), str(bad), str(PAGES / "real/nm0000246.html")]
    out = io.StringIO()
    assert run_parse(paths, out=out) == 1
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    title_keys = set(TitleRecord.__dataclass_fields__) | {"kind"}
    assert set(lines[0]) == title_keys and lines[0]["kind"] == "title"
    assert lines[0]["actors"]["Keanu Reeves"] == "https://www.imdb.com/name/nm0000206"
    assert set(lines[1]) == {"path", "error"} and lines[1]["path"] == str(bad)
    assert set(lines[2]) == set(PersonRecord.__dataclass_fields__) | {"kind"}
    assert lines[2]["kind"] == "person"


def test_run_parse_returns_zero_when_all_parse():
    out = io.StringIO()
    paths = [str(f) for f in _all_page_files()]
    assert run_parse(paths, out=out) == 0
    assert len(out.getvalue().splitlines()) == len(paths)
    assert not any(isinstance(parse_file(p), ParseError) for p in paths[:2])


def test_older_pages_name_todays_image_host_with_the_same_key():
    # The 2010 page shows http://ia.media-imdb.com/images/M/<key>._V1._SX100_SY135_.jpg.
    record = parse_file(PAGES / "real-older/tt0095016.combined-2010.html")
    assert record.poster_url == (
        "https://m.media-amazon.com/images/M/MV5BMTIxNTY3NjM0OV5BMl5BanBnXkFtZTcwNzg5MzY0MQ@@._V1_.jpg"
    )
    cruise = parse_file(PAGES / "real-older/nm0000129.2009.html")
    assert (
        cruise.image_url
        == "https://m.media-amazon.com/images/M/MV5BMTk1MjM3NTU5M15BMl5BanBnXkFtZTcwMTMyMjAyMg@@._V1_.jpg"
    )
    assert cruise.image_url not in {photo.url for photo in cruise.photos}


def test_outline_is_the_plot_not_the_storyline_on_2009_pages():
    troy = parse_file(PAGES / "real-older/tt0332452.2009.html")
    assert troy.synopsis == (
        "An adaptation of Homer's great epic, the film follows the assault on Troy by the united Greek "
        "forces and chronicles the fates of the men involved."
    )


def test_iso_8859_1_page_is_decoded_by_its_declared_charset():
    page = (PAGES / "real-older/nm0000129.2009.html").read_bytes()
    assert b"charset=ISO-8859-1" in page[:2000]
    # The header's name in latin-1 bytes (0xE9 is "é"): not valid UTF-8.
    header = b'<div id="tn15title">\n<h1>Tom Cruise '
    assert page.count(header) == 1
    record = parse_page(page.replace(header, b'<div id="tn15title">\n<h1>Tom Cruis\xe9 '))
    assert record.name == "Tom Cruisé"


@pytest.mark.parametrize(
    "name",
    [
        "real-older/tt0095016.combined-2010.html",
        "real-older/tt0332452.2009.html",
        "real/tt0047034.html",
        "real/tt0306414.html",
        "real/nm0000246.html",
        "real/nm1212722.html",
    ],
)
def test_wayback_capture_of_a_page_gives_the_same_record(name: str):
    # The Wayback Machine serves a capture with every URL rewritten to its own copy.
    page = (PAGES / name).read_bytes()
    stamp = b"https://web.archive.org/web/20101106014149"
    captured = re.sub(rb'(src|loadlate|content)="(https?://)', rb'\1="' + stamp + rb"im_/\2", page)
    captured = re.sub(
        rb'href="/', b'href="' + stamp[len(b"https://web.archive.org") :] + b"/http://www.imdb.com/", captured
    )
    captured = re.sub(rb'href="(https?://)', rb'href="' + stamp + rb"/\1", captured)
    assert captured.count(b"web.archive.org/web/20101106014149im_/") > 5
    assert parse_page(captured) == parse_page(page)


def test_quotes_mark_a_series_only_in_2006_2010_headers():
    troy = (PAGES / "real-older/tt0332452.2009.html").read_bytes()
    assert troy.count(b"<h1>Troy <span>") == 1 and troy.count(b"<title>Troy (2004)</title>") == 1
    series = troy.replace(b"<h1>Troy <span>", b'<h1>"Troy" <span>')
    series = series.replace(b"<title>Troy (2004)</title>", b'<title>"Troy" (2004)</title>')
    record = parse_page(series)
    assert (record.title, record.title_type, record.year) == ("Troy", "tvSeries", 2004)
    video = troy.replace(b"<title>Troy (2004)</title>", b"<title>Troy (2004) (V)</title>")
    assert parse_page(video).title_type == "video"
    # A 2016 header whose title itself starts with a quote keeps it.
    godzilla = (PAGES / "real/tt0047034.html").read_bytes()
    header = b'<h1 itemprop="name" class="">Godzilla&nbsp;'
    assert godzilla.count(header) == 1
    record = parse_page(godzilla.replace(header, b'<h1 itemprop="name" class="">"Godzilla" Returns&nbsp;'))
    assert record.title == '"Godzilla" Returns' and record.title_type == "movie"
