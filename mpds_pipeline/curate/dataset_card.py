"""The export's dataset card (``README.md``): YAML front matter the Hugging Face hub
reads (licence, name, task, size, ``configs`` naming the export's files), and a body
built from the data: counts per source and per licence, filters and their drop counts,
the AI opt-out setting, each source's terms, the MPDS paper, known limits.

The ``configs`` list only files the export holds, so ``datasets.load_dataset(export_dir,
name)`` loads each one as it is (the poster imagefolder with its metadata.jsonl, the
Parquet tables, attribution.csv).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..base.files import write_atomic
from ..base.folders import ExportFolder
from ..base.layout import LICENCE_CLEAN

MPDS_CITATION = """@article{xu2024mpds,
  title   = {MPDS: A Movie Posters Dataset for Image Generation with Diffusion Model},
  author  = {Xu, Meng and Zhang, Tong and Wang, Fuyun and Lei, Yi and Liu, Xin and Cui, Zhen},
  journal = {arXiv preprint arXiv:2410.16840},
  year    = {2024}
}"""

SOURCE_TERMS = {
    "imdb": (
        "IMDb",
        "Pages, posters and the non-commercial datasets (datasets.imdbws.com) are IMDb's: the datasets are "
        "licensed for personal and non-commercial use only (https://developer.imdb.com/non-commercial-datasets/), "
        "and posters remain the property of their rights holders. IMDb blocks automated clients since 2026; "
        "this pipeline never works around that.",
    ),
    "omdb": (
        "OMDb",
        "The OMDb API (https://www.omdbapi.com) is CC BY-NC 4.0 for its data; posters it links to remain "
        "their rights holders'.",
    ),
    "common_crawl": (
        "Common Crawl / Wayback Machine",
        "Archived pages under Common Crawl's terms of use (https://commoncrawl.org/terms-of-use) and the "
        "Internet Archive's terms; the archived content keeps its original rights.",
    ),
    "wikidata": ("Wikidata", "Structured data under CC0 1.0 (https://www.wikidata.org/wiki/Wikidata:Licensing)."),
    "commons": (
        "Wikimedia Commons",
        "Each file under its own free licence or in the public domain, as listed per file in attribution.csv "
        "(author, licence, source page); reuse must credit them as stated there.",
    ),
}


@dataclass
class CardFacts:
    edition: str
    ai_optout: str  # "honoured", "ignored (research setting)", "mixed", or "unknown"
    tables: dict[str, int] = field(default_factory=dict)  # export table -> rows
    image_sources: dict[str, int] = field(default_factory=dict)  # where the exported images came from
    licences: dict[str, int] = field(default_factory=dict)  # licence short name -> exported images
    movie_drops: dict[str, int] = field(default_factory=dict)  # the movie filter's drop reasons
    image_drops: dict[str, int] = field(default_factory=dict)  # download refusals (opted_out:<signal>, too_small ...)
    licence_refusals: dict[str, int] = field(default_factory=dict)  # Commons files not kept, by reason
    sources: list[str] = field(default_factory=list)  # SOURCE_TERMS keys that fed this export
    allowlist: list[str] = field(default_factory=list)
    poster_count: int = 0  # the hub's size category
    table_files: dict[str, str] = field(default_factory=dict)  # table name -> file in the export


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def card_configs(export: ExportFolder) -> list[dict]:
    """The image folders as configs (posters, the default, and the face crops).

    ``datasets`` picks one builder for a whole repository, from the first config's
    files, so an imagefolder config and a Parquet config cannot both load from one card:
    the images are the configs, and the tables are named in the body with the one line
    that loads each (``load_dataset("parquet", data_files=...)``)."""
    configs: list[dict] = []
    if export.posters_metadata.is_file() and export.posters_metadata.stat().st_size > 0:
        configs.append({"config_name": "posters", "data_dir": export.posters_dir.name, "default": True})
    if export.actor_photos_metadata.is_file() and export.actor_photos_metadata.stat().st_size > 0:
        configs.append({"config_name": "actor_photos", "data_dir": export.actor_photos_dir.name})
    return configs


def write_actor_photos_metadata(export: ExportFolder) -> int:
    """``actor_photos/metadata.jsonl`` (file_name, actor_id, rank, source, caption) from
    actor_photos.csv, so the crops load as an imagefolder; returns the rows written."""
    import json

    import pandas as pd

    if not export.actor_photos_csv.is_file():
        return 0
    photos = pd.read_csv(export.actor_photos_csv, usecols=["actor_id", "rank", "source", "caption", "file_name"])
    lines = [
        json.dumps(
            {
                "file_name": Path(row["file_name"]).name,
                "actor_id": int(row["actor_id"]),
                "rank": int(row["rank"]),
                "source": row["source"],
                "caption": row["caption"] if isinstance(row["caption"], str) else None,
            }
        )
        for row in photos.to_dict("records")
        if (export.path / row["file_name"]).is_file()
    ]
    export.actor_photos_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(export.actor_photos_metadata, ("\n".join(lines) + "\n" if lines else "").encode())
    return len(lines)


def table_files(export: ExportFolder) -> dict[str, str]:
    """The export's tables that hold rows, as ``name -> file`` (the card's body lists them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = {}
    for table in ("meta", "posters", "actors", "actor_photos", "provenance"):
        path = export.parquet(table)
        if not path.is_file() or pq.read_metadata(path).num_rows == 0:
            continue
        # datasets has no type for Arrow maps (meta's actors): such a table is named by its CSV.
        has_map = any(pa.types.is_map(f.type) for f in pq.read_schema(path))
        csv_path = export.csv(table)
        found[table] = csv_path.name if has_map and csv_path.is_file() else path.name
    if _has_data_rows(export.attribution_csv):
        found["attribution"] = export.attribution_csv.name
    return found


def _has_data_rows(csv_path: Path) -> bool:
    if not csv_path.is_file():
        return False
    with open(csv_path, encoding="utf-8") as handle:
        return sum(1 for _ in zip(range(2), handle)) > 1


def front_matter(facts: CardFacts, export: ExportFolder) -> dict:
    clean = facts.edition == LICENCE_CLEAN
    meta = {
        "license": "other",
        "license_name": "per-image-free-licences" if clean else "imdb-non-commercial-research",
        "license_link": export.attribution_csv.name if clean else "https://developer.imdb.com/non-commercial-datasets/",
        "pretty_name": f"MPDS movie posters ({'licence-clean' if clean else 'research'} edition)",
        "task_categories": ["text-to-image"],
        "language": ["en"],
        "size_categories": [size_category(facts.poster_count)],
        "tags": ["movie-posters", "mpds", facts.edition.replace("_", "-")],
        "configs": card_configs(export),
    }
    return meta


def _table(rows: dict[str, int], left: str, right: str = "count") -> str:
    if not rows:
        return "_none_\n"
    lines = [f"| {left} | {right} |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines) + "\n"


def card_body(facts: CardFacts) -> str:
    clean = facts.edition == LICENCE_CLEAN
    purpose = (
        "Only images whose rights holders licensed them freely (Wikimedia Commons files under the allowlisted "
        f"licence families: {', '.join(facts.allowlist) or 'none'}), with metadata from CC0 Wikidata and IMDb's "
        "datasets. Every image is attributed in `attribution.csv`; reusers must keep those credits and the "
        "share-alike terms of CC BY-SA files."
        if clean
        else "IMDb posters and actor photos for non-commercial research, as the MPDS paper built them. The images "
        "have no licence that can be passed on: do not redistribute them or train a model for release on them; "
        "build the licence-clean edition for that."
    )
    tables = "\n".join(
        f'- `{file}`: `load_dataset("{Path(file).suffix.lstrip(".")}", data_files="{file}")`'
        for file in facts.table_files.values()
    )
    sources = "\n".join(f"- **{SOURCE_TERMS[s][0]}**: {SOURCE_TERMS[s][1]}" for s in facts.sources if s in SOURCE_TERMS)
    opted_out = {k: v for k, v in facts.image_drops.items() if k.startswith("opted_out:")}
    by_signal = f" ({', '.join(f'{k}: {v}' for k, v in sorted(opted_out.items()))})" if opted_out else ""
    return f"""# MPDS movie posters: {"licence-clean" if clean else "research"} edition

Built by the MPDS pipeline (edition `{facts.edition}`). {purpose}

## Contents

{_table(facts.tables, "file", "rows")}
The `posters` config is an imagefolder (`posters/` with `metadata.jsonl`: `file_name`, `text`) that
`datasets` and diffusers' training scripts read as it is; `actor_photos` holds the 512x512 face
crops (`actor_id`, `rank`, `source`, `caption`). The tables, in the paper's format (CSV beside
each Parquet file):

{tables}

## Images per source

{_table(facts.image_sources, "source", "images")}
## Images per licence

{_table(facts.licences, "licence", "images")}
## Filters and what they dropped

Movies (adult, certificate blocklist, non-English, no poster):

{_table(facts.movie_drops, "reason", "titles")}
Image downloads (structure, size, HTTP, AI opt-out refusals):

{_table(facts.image_drops, "reason", "images")}
Commons files refused before download (licence allowlist, missing metadata):

{_table(facts.licence_refusals, "reason", "files")}
## AI opt-out

Opt-out signals (`X-Robots-Tag: noai` / `noimageai`, also addressed to our user agent
`mpds-pipeline`; TDMRep `tdm-reservation: 1` and `/.well-known/tdmrep.json`) were
**{facts.ai_optout}** when these images were downloaded. Images refused for them:
{sum(opted_out.values()):,}{by_signal}.

## Sources and their terms

{sources}

## Known limits

- Licence and author come from each Commons file's metadata (`extmetadata`) as its uploaders
  stated them; they are not verified by a person. Files without licence metadata are left out.
- Personality rights, trademarks and other restrictions listed by Commons (column
  `restrictions` of the pipeline's file table) are not licences: check them before use.
- Opt-out signals are read when an image is downloaded; a signal added later is not seen.
- Poster texts built from IMDb metadata (research edition) carry IMDb's terms.

## Citation

```bibtex
{MPDS_CITATION}
```
"""


def build_card(facts: CardFacts, export: ExportFolder) -> str:
    header = yaml.safe_dump(front_matter(facts, export), sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{card_body(facts)}"


def write_card(facts: CardFacts, export_dir: Path) -> Path:
    export = ExportFolder(Path(export_dir))
    write_atomic(export.dataset_card, build_card(facts, export).encode())
    return export.dataset_card


class LicenceCleanViolation(Exception):
    """A licence-clean export holds an image without an allowlisted licence."""


def publish_card(
    layout,
    *,
    poster_dirs: list[Path],
    actor_images_dir: Path | None,
    allowlist: list[str],
    movie_decisions=None,
) -> dict:
    """Write ``attribution.csv`` and the dataset card of ``layout``'s export; returns
    metadata. In the licence-clean edition every exported image must carry an
    allowlisted licence: otherwise LicenceCleanViolation names the first ones (nothing
    of the card is written then)."""
    from collections import Counter
    from urllib.parse import urlsplit

    import pandas as pd

    from ..base.folders import ImageFolder
    from .images import read_download_settings, reason_kind
    from .licences import attribute, empty_files, export_image_rows, write_attribution
    from .manifest import read_manifest
    from .store import read_table

    export = layout.export
    files = read_table(layout.commons_files_file, missing_ok=True)
    files = files if not files.empty else empty_files()
    rows = export_image_rows(export.path, poster_dirs, actor_images_dir)
    attribution = attribute(rows, files)
    if layout.edition == LICENCE_CLEAN:
        bad = attribution.rows[~attribution.rows["licence_family"].isin(list(allowlist))]
        if len(bad):
            listed = ", ".join(f"{r.file_name} ({r.licence or 'no licence'})" for r in bad.head(5).itertuples())
            raise LicenceCleanViolation(
                f"{len(bad)} exported images have no allowlisted licence ({', '.join(allowlist)}): {listed}"
            )
    write_attribution(attribution, export.path)
    photo_rows = write_actor_photos_metadata(export)

    image_dirs = [*poster_dirs, *([actor_images_dir] if actor_images_dir is not None else [])]
    drops: Counter = Counter()
    optout_settings = set()
    for folder in image_dirs:
        if ImageFolder(Path(folder)).manifest.is_file():
            manifest = read_manifest(folder)
            bad_rows = manifest[manifest["status"] != "ok"]
            drops.update(
                reason_kind(r) if isinstance(r, str) else s for r, s in zip(bad_rows["reason"], bad_rows["status"])
            )
        recorded = read_download_settings(folder).get("ai_optout")
        if recorded is not None:
            optout_settings.add(bool(recorded))
    ai_optout = (
        "unknown"
        if not optout_settings
        else "mixed"
        if len(optout_settings) > 1
        else "honoured"
        if optout_settings.pop()
        else "ignored (research setting)"
    )
    sources_of = Counter(
        "Wikimedia Commons"
        if isinstance(lic, str)
        else (urlsplit(url).hostname or "unknown")
        if isinstance(url, str)
        else "unknown"
        for lic, url in zip(attribution.rows["licence"], attribution.rows["image_url"])
    )
    tables = {}
    for name in ("meta", "posters", "actors", "actor_photos"):
        path = export.csv(name)
        if path.is_file():
            tables[path.name] = len(pd.read_csv(path, usecols=[0]))
    if export.attribution_csv.is_file():
        tables[export.attribution_csv.name] = len(attribution.licensed)
    decisions = (
        movie_decisions if movie_decisions is not None else read_table(layout.movie_decisions_file, missing_ok=True)
    )
    movie_drops = (
        dict(Counter(decisions["drop_reason"].dropna())) if len(decisions) and "drop_reason" in decisions else {}
    )
    refusals = dict(Counter(d for d in files["decision"] if d != "kept")) if len(files) else {}
    clean = layout.edition == LICENCE_CLEAN
    facts = CardFacts(
        edition=layout.edition,
        ai_optout=ai_optout,
        tables=tables,
        image_sources=dict(sources_of),
        licences=attribution.per_licence(),
        movie_drops=movie_drops,
        image_drops=dict(drops),
        licence_refusals=refusals,
        sources=["imdb", "wikidata", "commons"]
        if clean
        else ["imdb", "common_crawl", "omdb", *(["wikidata", "commons"] if len(attribution.licensed) else [])],
        allowlist=list(allowlist),
        poster_count=tables.get(export.posters_csv.name, 0),
        table_files=table_files(export),
    )
    card = write_card(facts, export.path)
    return {
        "edition": layout.edition,
        "ai_optout": ai_optout,
        "attribution_rows": len(attribution.licensed),
        "images_without_licence": int(attribution.rows["licence"].isna().sum()),
        "images_refused_opted_out": sum(v for k, v in drops.items() if str(k).startswith("opted_out:")),
        "licences": facts.licences,
        "dataset_card": str(card),
        "attribution_csv": str(export.attribution_csv),
        "actor_photos_metadata_rows": photo_rows,
    }
