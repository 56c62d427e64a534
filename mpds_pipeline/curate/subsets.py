"""Subsets of the dataset for a LoRA of one kind of poster: a genre, an era, an actor, a rating.

The paper's intended uses (posters of a genre, of an era, of an actor) need a switch:
``SubsetSpec`` names the genres (any of them), the year range (inclusive), the actors
(any of them, by name or ``nm`` id) and the certificates (any of them, as written on the
title page or normalised: "PG-13" matches "US:PG-13"); an empty field does not filter.
``select_subset`` keeps the movies that pass every given field and describes what it
kept (size and composition), which the LoRA asset reports.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import pandas as pd

from ..base.settings import setting
from .filters import as_text, normalize_certificate


@dataclass
class SubsetSpec:
    genres: list[str] = setting(
        factory=list, doc="train on posters of any of these genres", config_name="subset_genres"
    )
    year_min: int | None = setting(None, "first release year kept", config_name="subset_year_min")
    year_max: int | None = setting(None, "last release year kept", config_name="subset_year_max")
    actors: list[str] = setting(
        factory=list, doc="names or nm ids (nm0000206 or 206): posters of any of them", config_name="subset_actors"
    )
    certificates: list[str] = setting(
        factory=list, doc="e.g. PG-13 (matches US:PG-13)", config_name="subset_certificates"
    )

    @property
    def is_everything(self) -> bool:
        return not (self.genres or self.actors or self.certificates) and self.year_min is None and self.year_max is None

    def describe(self) -> str:
        parts = []
        if self.genres:
            parts.append("genres " + " or ".join(self.genres))
        if self.year_min is not None or self.year_max is not None:
            parts.append(f"years {self.year_min or '…'}-{self.year_max or '…'}")
        if self.actors:
            parts.append("actors " + " or ".join(self.actors))
        if self.certificates:
            parts.append("certificates " + " or ".join(self.certificates))
        return "; ".join(parts) or "everything"


@dataclass
class Subset:
    spec: SubsetSpec
    ids: set[int]
    considered: int  # movies the spec was applied to
    composition: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return {
            "subset": self.spec.describe(),
            "subset_size": len(self.ids),
            "subset_of": self.considered,
            "subset_spec": {k: v for k, v in asdict(self.spec).items() if v not in (None, [])},
            **{f"subset_{k}": v for k, v in self.composition.items()},
        }


def _person_id(text: str) -> int | None:
    digits = str(text).strip().lower().removeprefix("nm")
    return int(digits) if digits.isdigit() else None


def _actor_keys(actors) -> tuple[set[str], set[int]]:
    """Lower-cased names and person ids of a movie's cast (a name -> URL mapping)."""
    from ..imdb.ids import parse_person_id

    items = actors.items() if isinstance(actors, dict) else []
    names = {str(name).strip().lower() for name, _ in items}
    ids = {pid for _, url in items if (pid := parse_person_id(str(url)))}
    return names, ids


def _as_list(value) -> list:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return list(value)


def select_subset(movies: pd.DataFrame, spec: SubsetSpec) -> Subset:
    """The ids of ``movies`` (id, genres, year, actors, certificate) that ``spec`` keeps."""
    wanted_genres = {g.strip().lower() for g in spec.genres}
    wanted_certs = {c.strip() for c in spec.certificates} | {normalize_certificate(c) for c in spec.certificates}
    wanted_names = {a.strip().lower() for a in spec.actors if _person_id(a) is None}
    wanted_ids = {pid for a in spec.actors if (pid := _person_id(a)) is not None}
    kept = []
    for row in movies.to_dict("records"):
        genres = {str(g).lower() for g in _as_list(row.get("genres"))}
        if wanted_genres and not genres & wanted_genres:
            continue
        year = pd.to_numeric(row.get("year"), errors="coerce")
        if (spec.year_min is not None or spec.year_max is not None) and pd.isna(year):
            continue
        if spec.year_min is not None and year < spec.year_min:
            continue
        if spec.year_max is not None and year > spec.year_max:
            continue
        if wanted_names or wanted_ids:
            names, ids = _actor_keys(row.get("actors"))
            if not (names & wanted_names or ids & wanted_ids):
                continue
        if wanted_certs:
            certificate = as_text(row.get("certificate")) or ""
            if not certificate or not ({certificate, normalize_certificate(certificate)} & wanted_certs):
                continue
        kept.append(row)
    return Subset(spec, {int(r["id"]) for r in kept}, len(movies), composition(kept))


def composition(rows: list[dict], top: int = 10) -> dict:
    """What a set of movies is made of: genres, decades and certificates (the most common)."""
    genres = Counter(str(g) for r in rows for g in _as_list(r.get("genres")))
    decades = Counter(
        f"{int(y) // 10 * 10}s" if not pd.isna(y := pd.to_numeric(r.get("year"), errors="coerce")) else "unknown"
        for r in rows
    )
    certificates = Counter(as_text(r.get("certificate")) or "none" for r in rows)
    return {
        "genres": dict(genres.most_common(top)),
        "decades": dict(sorted(decades.items())),
        "certificates": dict(certificates.most_common(top)),
    }
