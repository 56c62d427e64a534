"""Text prompts built from a movie's metadata.

The movie-synopsis prompt carries title, genres, cast and synopsis (the MPDS paper's
"movie-synopsis prompt").
"""
from __future__ import annotations

DEFAULT_SYNOPSIS_TEMPLATE = "{title}. Genres: {genres}. Starring: {actors}. {synopsis}"


def synopsis_prompt(
    title: str,
    genres: list[str],
    actors: list[str],
    synopsis: str | None,
    template: str = DEFAULT_SYNOPSIS_TEMPLATE,
) -> str:
    """The movie-synopsis prompt; empty parts are left out rather than printed as blanks."""
    parts = {
        "title": title or "",
        "genres": ", ".join(genres or []),
        "actors": ", ".join(actors or []),
        "synopsis": synopsis or "",
    }
    text = template.format(**parts)
    # Drop the labels of empty fields ("Genres: .") so missing data reads naturally.
    for label in ("Genres: .", "Starring: ."):
        text = text.replace(label, "")
    return " ".join(text.split()).strip()
