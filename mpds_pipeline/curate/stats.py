"""Dataset statistics as in the MPDS paper's Fig. 2: genres, record types, missing fields."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..base.files import write_atomic
from ..base.folders import StatsFolder
from .filters import as_actor_dict, as_genre_list, as_text

TOP_RECORD_TYPES = 7  # further types are grouped as "other" so the pie stays readable


@dataclass
class StatsResult:
    records: int
    genre_percent: dict[str, float]  # genre -> % of records carrying it
    record_type_percent: dict[str, float]  # title_type -> % of records
    missing_percent: dict[str, float]  # "genre", "cast", "plot" -> % of records missing it
    markdown: str
    files: dict[str, Path] = field(default_factory=dict)

    def metadata(self) -> dict:
        return {"records": self.records, **{f"missing_{k}_percent": v for k, v in self.missing_percent.items()}}


def export_statistics(movies: pd.DataFrame, out_dir: Path) -> StatsResult:
    """Write genres.png, record_types.png, missing.png and stats.md under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(movies)
    genre_lists = [as_genre_list(v) for v in _column(movies, "genres")]
    genres = Counter(g for genres in genre_lists for g in dict.fromkeys(genres))
    genre_percent = {g: _pct(n, total) for g, n in genres.most_common()}
    types = Counter(as_text(v) or "unknown" for v in _column(movies, "title_type"))
    type_percent = {t: _pct(n, total) for t, n in types.most_common()}
    missing = {
        "genre": _pct(sum(not g for g in genre_lists), total),
        "cast": _pct(sum(not as_actor_dict(v) for v in _column(movies, "actors")), total),
        "plot": _pct(sum(as_text(v) is None for v in _column(movies, "synopsis")), total),
    }
    folder = StatsFolder(out_dir)
    files = {
        "genres": _bar(genre_percent, "Genre distribution", "% of records", folder.genres_plot),
        "record_types": _pie(types, folder.record_types_plot),
        "missing": _bar(missing, "Records missing a field", "% of records", folder.missing_plot),
    }
    markdown = _markdown(total, genre_percent, type_percent, missing)
    files["markdown"] = write_atomic(folder.markdown, markdown)
    return StatsResult(total, genre_percent, type_percent, missing, markdown, files)


def _column(frame: pd.DataFrame, name: str) -> list:
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _pct(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0


def _bar(values: dict[str, float], title: str, ylabel: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(values) + 2), 4))
    try:
        ax.bar(list(values), list(values.values()), color="#4C72B0")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=60)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _pie(types: Counter, path: Path) -> Path:
    common = types.most_common(TOP_RECORD_TYPES)
    rest = sum(types.values()) - sum(n for _, n in common)
    labels = [t for t, _ in common] + (["other"] if rest else [])
    sizes = [n for _, n in common] + ([rest] if rest else [])
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        if sizes:
            ax.pie(sizes, labels=labels, autopct="%1.1f%%", startangle=90)
        ax.set_title("Record types")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _markdown(total: int, genres: dict[str, float], types: dict[str, float], missing: dict[str, float]) -> str:
    lines = [f"Records: {total}", "", "| Genre | % of records |", "|---|---:|"]
    lines += [f"| {g} | {p:.2f} |" for g, p in genres.items()]
    lines += ["", "| Record type | % of records |", "|---|---:|"]
    lines += [f"| {t} | {p:.2f} |" for t, p in types.items()]
    lines += ["", "| Missing | % of records |", "|---|---:|"]
    lines += [f"| {field_name} | {p:.2f} |" for field_name, p in missing.items()]
    return "\n".join(lines) + "\n"
