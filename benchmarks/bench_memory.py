"""Peak memory at full scale: ``movies``, ``actors``, ``write_export`` and the index build.

Generates synthetic inputs of realistic shape once (outside any measurement) under
``--workdir``, then runs each stage in a fresh child process and reports the child's
peak resident memory (``ru_maxrss``), its CPU seconds (user + system) and wall time:

* ``movies``: title_records partitions of 10,000 ids (``--titles`` in all, default 1M),
  streamed through the filters as the asset does, language filter included (lingua's
  models are about 0.5 GB of the peak by themselves);
* ``actors``: person_records partitions (``--persons``) and the movies table just written;
* ``export``: ``write_export`` of ``--export-rows`` movies (default 400k) with a verified
  poster each (one JPEG per partition folder, hard-linked), integrated poster texts and
  their extra columns (Arrow, as the asset reads them), and actors with photos;
* ``index``: IMDb dataset TSVs (``.tsv.gz``) of ``--index-scale`` times the full size
  (1.0: 11.5M titles, 14M names, 95M principals, about 5.7 GB uncompressed) converted by
  ``build_index``, then by DuckDB (when installed: ``pip install -e '.[bench]'``) with the
  same typed conversions into the same Parquet tables.

``--before N`` also runs the in-memory ``movies``/``actors`` selections and the
pre-streaming export path (``read_table`` of the whole movies table, dict texts) at N
titles, for a per-row comparison.

    .venv/bin/python benchmarks/bench_memory.py                      # everything, full size
    .venv/bin/python benchmarks/bench_memory.py --titles 100000 --export-rows 40000 \\
        --persons 30000 --index-scale 0.1 --before 100000           # a tenth, with the old path

Prints one markdown table (stage, rows, peak MB, CPU s, wall s) and the load average.
No network, no model.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

PARTITION = 10_000
GENRES = ["Drama", "Comedy", "Action", "Horror", "Romance", "Thriller", "Documentary", "Adult", "Crime", "Family"]
CERTIFICATES = ["PG", "PG-13", "R", "G", "TV-14", "Not Rated", None]
WORDS = (
    "love night city war story dark house girl man return last world time life dead blood road king summer "
    "secret river little black white heart family dream fire star long way home lost island shadow"
).split()
FOREIGN = ["La nuit des morts", "Der lange Weg nach Hause", "El secreto de sus ojos", "Il buono e il cattivo"]
FULL_INDEX_ROWS = {"title.basics": 11_500_000, "name.basics": 14_000_000, "title.principals": 95_000_000}


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


# --- synthetic crawl partitions -------------------------------------------------------


def generate_titles(records_dir: Path, titles: int, persons: int, seed: int = 1) -> None:
    """title_records partitions: ~5 % adult, ~10 % R, ~35 % without poster, ~8 % foreign
    original titles, 3-12 billed actors, 150-300 character synopses."""
    from mpds_pipeline.imdb.record_store import TITLE_SCHEMA

    rng = random.Random(seed)
    records_dir.mkdir(parents=True, exist_ok=True)
    for first in range(1, titles + 1, PARTITION):
        last = min(titles, first + PARTITION - 1)
        rows = []
        for i in range(first, last + 1):
            title = words(rng, rng.randint(1, 4)).title()
            original = rng.choice(FOREIGN) if rng.random() < 0.08 else title
            cast = {
                f"Actor {j} {words(rng, 1).title()}": f"https://www.imdb.com/name/nm{j:07d}/"
                for j in (rng.randint(1, 3 * persons) for _ in range(rng.randint(3, 12)))
            }
            rows.append(
                {
                    "id": i,
                    "title": title,
                    "original_title": original,
                    "title_type": rng.choice(["movie", "short", "tvMovie", "video"]),
                    "year": rng.randint(1900, 2025) if rng.random() < 0.95 else None,
                    "genres": rng.sample(GENRES[:7] if rng.random() < 0.97 else GENRES, rng.randint(0, 3)),
                    "actors": list(cast.items()),
                    "poster_url": (
                        f"https://m.media-amazon.com/images/M/MV5B{rng.getrandbits(128):032x}@._V1_.jpg"
                        if rng.random() < 0.65
                        else None
                    ),
                    "synopsis": words(rng, rng.randint(25, 50)).capitalize() + "." if rng.random() < 0.8 else None,
                    "certificate": rng.choice(CERTIFICATES),
                    "is_adult": rng.random() < 0.05,
                    "era": "next_data",
                }
            )
        pq.write_table(
            pa.Table.from_pylist(rows, schema=TITLE_SCHEMA), records_dir / f"tt{first:07d}-tt{last:07d}.parquet"
        )


def generate_persons(records_dir: Path, persons: int, seed: int = 2) -> None:
    from mpds_pipeline.imdb.record_store import PERSON_SCHEMA

    rng = random.Random(seed)
    records_dir.mkdir(parents=True, exist_ok=True)
    for first in range(1, persons + 1, PARTITION):
        last = min(persons, first + PARTITION - 1)
        rows = []
        for i in range(first, last + 1):
            professions = rng.sample(["actor", "actress", "writer", "director", "producer", "soundtrack"], 2)
            has_photo = rng.random() < 0.6
            rows.append(
                {
                    "id": i,
                    "name": f"Actor {i} {words(rng, 1).title()}",
                    "image_url": f"https://m.media-amazon.com/images/M/p{i}._V1_.jpg" if has_photo else None,
                    "professions": professions,
                    "is_actor": bool({"actor", "actress"} & set(professions)),
                    "era": "next_data",
                    "photos": [],
                }
            )
        pq.write_table(
            pa.Table.from_pylist(rows, schema=PERSON_SCHEMA), records_dir / f"nm{first:07d}-nm{last:07d}.parquet"
        )


def tiny_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 12), (120, 30, 60)).save(out, "JPEG")
    return out.getvalue()


def generate_export_inputs(root: Path, rows: int, seed: int = 3) -> None:
    """A curated movies table of ``rows`` movies, a verified poster each (10,000 per
    folder, all hard links of the folder's one JPEG), poster_prompts with 300-500
    character texts, and actors (one per five movies; exported without photos)."""
    from mpds_pipeline.base.folders import image_file_name
    from mpds_pipeline.curate.filters import movies_schema
    from mpds_pipeline.curate.manifest import MANIFEST_SCHEMA
    from mpds_pipeline.imdb.record_store import TITLE_SCHEMA

    rng = random.Random(seed)
    data = tiny_jpeg()
    n_actors = max(1, rows // 5)
    posters_root = root / "poster_images"

    def manifest(folder: Path, ids: list[int], variants: int = 1) -> None:
        # One JPEG per folder, hard-linked: 10,000 links (20,000 with the export's) stay
        # under ext4's 65,000 per file, and 400k posters take no disk space.
        folder.mkdir(parents=True)
        original = folder / ".original.jpg"
        original.write_bytes(data)
        names, entries = [], []
        for item_id in ids:
            for variant in range(1, variants + 1):
                name = image_file_name(item_id, variant)
                os.link(original, folder / name)
                names.append(name)
                entries.append((item_id, variant, name))
        table = pa.table(
            {
                "id": [e[0] for e in entries],
                "variant": [e[1] for e in entries],
                "file_name": [e[2] for e in entries],
                "url": [f"https://m.media-amazon.com/images/M/{e[2]}" for e in entries],
                "bytes": [len(data)] * len(entries),
                "width": [8] * len(entries),
                "height": [12] * len(entries),
                "format": ["JPEG"] * len(entries),
                "sha256": [None] * len(entries),
                "status": ["ok"] * len(entries),
                "reason": [None] * len(entries),
                "verified": ["structure"] * len(entries),
                "decoded_by": [None] * len(entries),
            }
        )
        pq.write_table(table.cast(MANIFEST_SCHEMA), folder / "manifest.parquet")

    schema = movies_schema(TITLE_SCHEMA)
    with (
        pq.ParquetWriter(root / "movies.parquet", schema) as movies_out,
        pq.ParquetWriter(
            root / "poster_prompts.parquet",
            pa.schema(
                [
                    (c, pa.int64() if c == "id" else pa.string())
                    for c in ("id", "text", "poster_caption", "synopsis_prompt", "vision_prompt")
                ]
            ),
        ) as prompts_out,
    ):
        for first in range(1, rows + 1, PARTITION):
            ids = list(range(first, min(rows, first + PARTITION - 1) + 1))
            manifest(posters_root / f"tt{ids[0]:07d}-tt{ids[-1]:07d}", ids)
            batch = []
            for i in ids:
                cast = [
                    (f"Actor {j}", f"https://www.imdb.com/name/nm{j:07d}/")
                    for j in ((i * 7 + k) % n_actors + 1 for k in range(rng.randint(3, 10)))
                ]
                batch.append(
                    {
                        "id": i,
                        "title": words(rng, rng.randint(1, 4)).title(),
                        "original_title": None,
                        "title_type": "movie",
                        "year": 2000,
                        "genres": rng.sample(GENRES[:7], 3),
                        "actors": cast,
                        "poster_url": f"https://m.media-amazon.com/images/M/MV5B{rng.getrandbits(128):032x}@._V1_.jpg",
                        "synopsis": words(rng, rng.randint(25, 50)).capitalize() + ".",
                        "certificate": "PG",
                        "is_adult": False,
                        "era": "next_data",
                        "language": "ENGLISH",
                        "language_confidence": 0.9,
                    }
                )
            movies_out.write_table(pa.Table.from_pylist(batch, schema=schema))
            prompts_out.write_table(
                pa.table(
                    {
                        "id": ids,
                        "text": [words(rng, rng.randint(50, 80)) for _ in ids],
                        "poster_caption": [words(rng, rng.randint(2, 6)) for _ in ids],
                        "synopsis_prompt": [words(rng, rng.randint(40, 60)) for _ in ids],
                        "vision_prompt": [words(rng, rng.randint(10, 20)) for _ in ids],
                    }
                )
            )
    pq.write_table(
        pa.table(
            {
                "id": list(range(1, n_actors + 1)),
                "name": [f"Actor {i}" for i in range(1, n_actors + 1)],
                "image_url": [f"https://m.media-amazon.com/images/M/a{i}._V1_.jpg" for i in range(1, n_actors + 1)],
            }
        ),
        root / "actors.parquet",
    )


# --- synthetic IMDb dataset files ---------------------------------------------------


def generate_index_files(files_dir: Path, scale: float, seed: int = 4) -> dict[str, int]:
    """title.basics, name.basics and title.principals .tsv.gz at ``scale`` times the full
    size, with IMDb's columns, \\N nulls and value shapes (see ../shared/imdb-datasets)."""
    rng = random.Random(seed)
    files_dir.mkdir(parents=True, exist_ok=True)
    counts = {name: max(1, int(full * scale)) for name, full in FULL_INDEX_ROWS.items()}
    n_titles, n_names = counts["title.basics"], counts["name.basics"]
    pool = [words(rng, k).title() for k in (1, 2, 3, 4) for _ in range(500)]
    genre_pool = [",".join(rng.sample(GENRES, k)) for k in (1, 2, 3) for _ in range(200)] + ["\\N"] * 60
    professions = [
        "actor",
        "actress",
        "writer,producer,director",
        "actress,soundtrack",
        "composer",
        "\\N",
        "actor,director",
        "cinematographer,camera_department",
        "music_department,soundtrack,composer",
    ]
    categories = ["actor", "actress", "director", "writer", "producer", "composer", "self", "cinematographer"]

    def write(name: str, header: str, rows_of) -> None:
        path = files_dir / f"{name}.tsv.gz"
        with gzip.open(path, "wt", compresslevel=1, encoding="utf-8", newline="\n") as out:
            out.write(header + "\n")
            for chunk in rows_of():
                out.write(chunk)

    def titles():
        types = ["movie", "short", "tvEpisode", "tvSeries", "video", "tvMovie"]
        for first in range(1, n_titles + 1, 100_000):
            lines = []
            for i in range(first, min(n_titles, first + 99_999) + 1):
                title = pool[i % len(pool)]
                year = str(1890 + i % 135) if i % 17 else "\\N"
                runtime = str(5 + i % 150) if i % 3 else "\\N"
                adult = "1" if i % 50 == 0 else "0"
                lines.append(
                    f"tt{i:07d}\t{types[i % 6]}\t{title}\t{title}\t{adult}\t{year}\t\\N\t{runtime}\t"
                    f"{genre_pool[i % len(genre_pool)]}\n"
                )
            yield "".join(lines)

    def names():
        for first in range(1, n_names + 1, 100_000):
            lines = []
            for i in range(first, min(n_names, first + 99_999) + 1):
                known = ",".join(f"tt{(i * 31 + k * 7919) % n_titles + 1:07d}" for k in range(i % 5))
                born = str(1900 + i % 110) if i % 4 else "\\N"
                lines.append(
                    f"nm{i:07d}\t{pool[(i * 7) % len(pool)]} {pool[i % 97]}\t{born}\t\\N\t"
                    f"{professions[i % len(professions)]}\t{known or chr(92) + 'N'}\n"
                )
            yield "".join(lines)

    def principals():
        per_title = max(1, counts["title.principals"] // n_titles)
        done = 0
        for first in range(1, n_titles + 1, 20_000):
            lines = []
            for t in range(first, min(n_titles, first + 19_999) + 1):
                for order in range(1, per_title + 1):
                    person = (t * 13 + order * 104729) % n_names + 1
                    category = categories[(t + order) % len(categories)]
                    acting = category in ("actor", "actress", "self")
                    characters = f'["{pool[(t + order) % len(pool)]}"]' if acting else "\\N"
                    job = "\\N" if acting or order % 3 else "director of photography"
                    lines.append(f"tt{t:07d}\t{order}\tnm{person:07d}\t{category}\t{job}\t{characters}\n")
            done += len(lines)
            yield "".join(lines)

    write(
        "title.basics",
        "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\tendYear\truntimeMinutes\tgenres",
        titles,
    )
    write("name.basics", "nconst\tprimaryName\tbirthYear\tdeathYear\tprimaryProfession\tknownForTitles", names)
    write("title.principals", "tconst\tordering\tnconst\tcategory\tjob\tcharacters", principals)
    return counts


DUCKDB_SQL = {
    "titles": """
        SELECT TRY_CAST(substr(tconst, 3) AS BIGINT) AS id, titleType AS title_type, primaryTitle AS primary_title,
               originalTitle AS original_title, coalesce(isAdult = '1', false) AS is_adult,
               TRY_CAST(startYear AS INTEGER) AS start_year, TRY_CAST(endYear AS INTEGER) AS end_year,
               TRY_CAST(runtimeMinutes AS INTEGER) AS runtime_minutes, string_split(genres, ',') AS genres
        FROM {source} WHERE TRY_CAST(substr(tconst, 3) AS BIGINT) IS NOT NULL""",
    "names": """
        SELECT TRY_CAST(substr(nconst, 3) AS BIGINT) AS id, primaryName AS primary_name,
               TRY_CAST(birthYear AS INTEGER) AS birth_year, TRY_CAST(deathYear AS INTEGER) AS death_year,
               string_split(primaryProfession, ',') AS primary_professions,
               list_transform(string_split(knownForTitles, ','),
                              lambda x: TRY_CAST(substr(x, 3) AS BIGINT)) AS known_for,
               coalesce(list_has_any(string_split(primaryProfession, ','), ['actor', 'actress']), false) AS is_actor
        FROM {source} WHERE TRY_CAST(substr(nconst, 3) AS BIGINT) IS NOT NULL""",
    "principals": """
        SELECT TRY_CAST(substr(tconst, 3) AS BIGINT) AS title_id, TRY_CAST(ordering AS INTEGER) AS ordering,
               TRY_CAST(substr(nconst, 3) AS BIGINT) AS person_id, category, job,
               list_transform(string_split(regexp_replace(characters, '^\\["|"\\]$', '', 'g'), '","'),
                              lambda x: replace(x, '\\"', '"')) AS characters
        FROM {source} WHERE TRY_CAST(substr(tconst, 3) AS BIGINT) IS NOT NULL""",
}
DUCKDB_SOURCES = {"titles": "title.basics", "names": "name.basics", "principals": "title.principals"}


# --- the stages, each in a child process ---------------------------------------------


def run_stage(stage: str, work: Path) -> dict:
    """Runs in the child: one stage; returns its counts (the parent adds the resources)."""
    if stage == "baseline":  # the interpreter with the project's imports, nothing done
        import mpds_pipeline.curate.export  # noqa: F401
        import mpds_pipeline.curate.filters  # noqa: F401

        return {}
    if stage == "movies":
        from mpds_pipeline.curate.filters import select_movie_files
        from mpds_pipeline.imdb.record_store import latest_partitions

        titles = latest_partitions(work / "title_records", "title")
        selection = select_movie_files(titles, titles.schema, work / "movies.parquet", work / "decisions.parquet")
        return {"rows": selection.input_rows, "kept": selection.kept}
    if stage == "movies-before":
        from mpds_pipeline.curate.filters import select_movies
        from mpds_pipeline.curate.store import write_table
        from mpds_pipeline.imdb.record_store import read_records

        selection = select_movies(read_records(work / "title_records", "title"))
        write_table(selection.movies, work / "movies-before.parquet")
        write_table(selection.decisions, work / "decisions-before.parquet")
        return {"rows": selection.input_rows, "kept": selection.kept}
    if stage == "actors":
        from mpds_pipeline.curate.filters import select_actor_files
        from mpds_pipeline.imdb.record_store import latest_partitions

        selection = select_actor_files(
            latest_partitions(work / "person_records", "person"),
            work / "movies.parquet",
            work / "actors.parquet",
            work / "movie_actor.parquet",
        )
        return {"rows": selection.counts["input_persons"], "actors": selection.actors, "links": selection.links}
    if stage == "actors-before":
        from mpds_pipeline.curate.filters import select_actors
        from mpds_pipeline.curate.store import read_table, write_table
        from mpds_pipeline.imdb.record_store import read_records

        selection = select_actors(read_records(work / "person_records", "person"), read_table(work / "movies.parquet"))
        write_table(selection.actors, work / "actors-before.parquet")
        write_table(selection.movie_actor, work / "movie_actor-before.parquet")
        return {"rows": selection.counts["input_persons"], "actors": len(selection.actors)}
    if stage in ("export", "export-before"):
        from mpds_pipeline.curate.export import write_export
        from mpds_pipeline.curate.store import read_table

        inputs = work / "export_inputs"
        columns = ["id", "text", "poster_caption", "synopsis_prompt", "vision_prompt"]
        if stage == "export":  # as the asset calls it now: the movies file, Arrow texts
            prompts = pq.read_table(inputs / "poster_prompts.parquet", columns=columns)
            movies, texts, extra = (
                inputs / "movies.parquet",
                prompts.select(["id", "text"]),
                prompts.select(["id", *columns[2:]]),
            )
        else:  # as the asset called it before: whole DataFrames and a dict
            prompts = read_table(inputs / "poster_prompts.parquet")
            movies, texts = read_table(inputs / "movies.parquet"), dict(zip(prompts["id"], prompts["text"]))
            extra = prompts[["id", *columns[2:]]]
        export_dir = work / stage
        shutil.rmtree(export_dir, ignore_errors=True)
        result = write_export(
            movies,
            None,
            sorted(p for p in (inputs / "poster_images").iterdir() if p.is_dir()),
            read_table(inputs / "actors.parquet"),
            None,
            export_dir,
            texts=texts,
            extra_poster_columns=extra,
        )
        return {"rows": result.counts["poster_rows"], "meta_rows": result.counts["meta_rows"]}
    if stage == "index":
        from mpds_pipeline.imdb.dataset_index import build_index

        result = build_index(work / "index_files", work / "index", force=True)
        return {"rows": sum(result.rows.values()), **result.rows}
    if stage == "index-duckdb":
        import duckdb

        out = work / "index_duckdb"
        out.mkdir(exist_ok=True)
        connection = duckdb.connect()
        rows = {}
        for table, sql in DUCKDB_SQL.items():
            source = (
                f"read_csv('{work / 'index_files' / DUCKDB_SOURCES[table]}.tsv.gz', delim='\\t', quote='', "
                "escape='', header=true, nullstr='\\N', all_varchar=true, ignore_errors=true)"
            )
            target = out / f"{table}.parquet"
            connection.execute(f"COPY ({sql.format(source=source)}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
            rows[table] = pq.ParquetFile(target).metadata.num_rows
        return {"rows": sum(rows.values()), **rows}
    raise SystemExit(f"unknown stage {stage}")


def child_main(stage: str, work: Path) -> None:
    started = time.perf_counter()
    counts = run_stage(stage, work)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "stage": stage,
                "peak_mb": usage.ru_maxrss / 1024,  # Linux: KiB
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "wall_s": time.perf_counter() - started,
                **counts,
            }
        )
    )


def measure(stage: str, work: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", stage, "--workdir", str(work)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {stage}: {result}", flush=True)
    return result


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--titles", type=int, default=1_000_000, help="crawled title records")
    parser.add_argument("--persons", type=int, default=300_000, help="crawled person records")
    parser.add_argument("--export-rows", type=int, default=400_000)
    parser.add_argument("--index-scale", type=float, default=1.0, help="of IMDb's full dataset sizes")
    parser.add_argument("--stages", nargs="+", default=["movies", "actors", "export", "index"])
    parser.add_argument("--before", type=int, default=0, help="also run the in-memory path at this many titles")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "mpds-bench-memory"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(args.workdir)
    if args.child:
        child_main(args.child, root)
        return
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average before: {load()}")
    results = [measure("baseline", root)]

    def ready(folder: Path, what: str, make) -> None:
        marker = folder / ".complete"
        if marker.exists():
            return
        started = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        make(folder)
        marker.write_text("ok")
        print(f"  generated {what} in {time.perf_counter() - started:.0f} s (not measured)", flush=True)

    work = root / f"crawl-{args.titles}-{args.persons}"
    work.mkdir(parents=True, exist_ok=True)
    if {"movies", "actors"} & set(args.stages) or args.before:
        titles, persons = args.titles, args.persons
        ready(work / "title_records", f"{titles:,} title records", lambda f: generate_titles(f, titles, persons))
        ready(work / "person_records", f"{args.persons:,} person records", lambda f: generate_persons(f, args.persons))
    for stage in ("movies", "actors"):
        if stage in args.stages:
            results.append(measure(stage, work))
    if args.before:
        before = root / f"before-{args.before}"
        before.mkdir(parents=True, exist_ok=True)
        persons_before = max(1, args.before * 3 // 10)
        ready(
            before / "title_records",
            f"{args.before:,} title records",
            lambda f: generate_titles(f, args.before, persons_before),
        )
        ready(before / "person_records", "person records", lambda f: generate_persons(f, persons_before))
        for stage in ("movies", "movies-before", "actors", "actors-before"):
            results.append({**measure(stage, before), "stage": f"{stage} @{args.before:,}"})
    if "export" in args.stages or args.before:
        rows = args.export_rows
        export_work = root / f"export-{rows}"
        ready(export_work / "export_inputs", f"{rows:,} export rows", lambda f: generate_export_inputs(f, rows))
        if "export" in args.stages:
            results.append(measure("export", export_work))
        if args.before:
            results.append(measure("export-before", export_work))
    if "index" in args.stages:
        index_work = root / f"index-{args.index_scale:g}"
        ready(
            index_work / "index_files",
            f"dataset files at {args.index_scale:g}x",
            lambda f: generate_index_files(f, args.index_scale),
        )
        sizes = {p.name: p.stat().st_size for p in (index_work / "index_files").glob("*.tsv.gz")}
        print(f"  dataset files: {sizes}", flush=True)
        results.append(measure("index", index_work))
        try:
            import duckdb  # noqa: F401

            results.append(measure("index-duckdb", index_work))
        except ImportError:
            print("  duckdb not installed: pip install -e '.[bench]' for the comparison")
    print("\n| stage | rows | peak MB | CPU s | wall s |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['stage']} | {r.get('rows', 0):,} | {r['peak_mb']:.0f} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} |")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
