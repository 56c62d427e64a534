"""Parse throughput on the real IMDb pages: our parser against a BeautifulSoup baseline.

Both extract the same fields (title: id, titles, type, year, genres, cast, poster,
synopsis, certificate, adult; person: name, image, professions) from every page in
``../shared/imdb-pages/real/`` and ``real-older/`` (2009-2010 layouts), single process,
in the same run.

    python benchmarks/bench_parse.py [--shared PATH] [--folders real,real-older] [--rounds N] [--baseline-rounds N]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpds_pipeline.imdb import ids
from mpds_pipeline.imdb.page_data import full_size_image, is_media_image
from mpds_pipeline.imdb.parse_person import person_from_next_data, profession_id
from mpds_pipeline.imdb.parse_title import clean_synopsis, title_from_next_data
from mpds_pipeline.imdb.parsing import parse_page
from mpds_pipeline.imdb.records import ParseError

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"


def baseline_parse(page: bytes, parser: str) -> dict | None:
    """The same fields the classic way: a full BeautifulSoup tree, stdlib json."""
    soup = BeautifulSoup(page, parser)
    link = soup.find("link", rel="canonical") or soup.find("meta", property="og:url")
    url = (link.get("href") or link.get("content") or "") if link else ""
    person = "/name/nm" in url
    script = soup.find("script", id="__NEXT_DATA__")
    if script is not None:
        data = json.loads(script.string)
        record = person_from_next_data(data, url) if person else title_from_next_data(data, url)
        return None if isinstance(record, ParseError) else record.to_dict()
    ld = [json.loads(s.string) for s in soup.find_all("script", type="application/ld+json")]
    if person:
        name = soup.select_one("h1.header span.itemprop") or soup.select_one("#name-overview h1")
        img = soup.select_one("img#name-poster")
        jobs = [a.get_text() for a in soup.select("#name-job-categories a")]
        return {
            "name": name.get_text(strip=True) if name else None,
            "image": full_size_image(img.get("src")) if img and is_media_image(img.get("src")) else None,
            "professions": [profession_id(j) for j in jobs],
        }
    h1 = soup.select_one("div.title_wrapper h1") or soup.select_one("h1.header")
    year = h1.select_one("#titleYear, span.nobr") if h1 else None
    genres = [a.get_text(strip=True) for a in soup.select('a[href*="ref_=tt_stry_gnr"]')]
    cast = {}
    for row in soup.select("table.cast_list tr"):
        for a in row.select('td:not(.primary_photo):not(.character) a[href*="/name/nm"]')[:1]:
            cast.setdefault(a.get_text(strip=True), ids.person_url(ids.parse_person_id(a["href"])))
    img = soup.select_one("div.poster img, #img_primary img")
    plot = soup.select_one("div.summary_text, #overview-top p[itemprop=description]")
    rating = soup.select_one("[itemprop=contentRating]")
    return {
        "title": h1.get_text(" ", strip=True) if h1 else None,
        "year": re.search(r"\d{4}", year.get_text()).group(0) if year else None,
        "genres": genres,
        "actors": dict(list(cast.items())[:15]),
        "poster": full_size_image(img.get("src")) if img else None,
        "synopsis": clean_synopsis(plot.get_text(" ", strip=True)) if plot else None,
        "certificate": rating.get("content") if rating else None,
        "jsonld": bool(ld),
    }


def measure(pages: list[bytes], parse, rounds: int) -> tuple[float, float]:
    """(pages per CPU-second, pages per wall-second) over ``rounds`` passes through all
    pages. CPU time is the figure to compare: on a shared machine wall time also counts
    the time other processes held the core."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for page in pages:
            parse(page)
    done = rounds * len(pages)
    return done / (time.process_time() - cpu), done / (time.perf_counter() - wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder")
    parser.add_argument("--rounds", type=int, default=20, help="passes for our parser")
    parser.add_argument("--baseline-rounds", type=int, default=2, help="passes for BeautifulSoup")
    parser.add_argument("--bs-parser", default="lxml", choices=["lxml", "html.parser"])
    parser.add_argument("--folders", default="real,real-older", help="folders of imdb-pages/ to read, comma-separated")
    args = parser.parse_args(argv)
    folders = [args.shared / "imdb-pages" / name for name in args.folders.split(",")]
    pages = [p.read_bytes() for folder in folders for p in sorted(folder.glob("*.html"))]
    if not pages:
        print(f"no pages in {folders[0]}", file=sys.stderr)
        return 2
    failures = [r for r in map(parse_page, pages) if isinstance(r, ParseError)]
    megabytes = sum(map(len, pages)) / 1e6
    print(f"{len(pages)} pages, {megabytes:.1f} MB, {len(failures)} parse errors")
    ours, ours_wall = measure(pages, parse_page, args.rounds)
    base, base_wall = measure(pages, lambda p: baseline_parse(p, args.bs_parser), args.baseline_rounds)
    print(f"ours (regex/find + orjson, lexbor for classic): {ours:8.1f} pages/CPU-s ({ours_wall:.1f} pages/s wall)")
    print(
        f"BeautifulSoup ({args.bs_parser}) baseline:            {base:8.1f} pages/CPU-s ({base_wall:.1f} pages/s wall)"
    )
    print(f"ratio (CPU time): {ours / base:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
