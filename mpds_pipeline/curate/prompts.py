"""Text prompts built from a movie's metadata and its poster caption.

It builds the movie-synopsis prompt, the integrated prompt (the ``text`` of
``posters.csv``, fitted to CLIP's 77-token window with the actors' room reserved first),
the actor prompts and the poster caption for the caption-control branch. The 77-token
rule and how tokens are counted: docs/captions-review.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..base.progress import Progress, ProgressLog

DEFAULT_SYNOPSIS_TEMPLATE = "{title}. Genres: {genres}. Starring: {actors}. {synopsis}"
DEFAULT_POSTER_CAPTION_TEMPLATE = "{title}, starring {actors}"
CLIP_MAX_TOKENS = 77
CLIP_SPECIAL_TOKENS = 2  # BOS and EOS

POSTER_PROMPT_COLUMNS = [
    "id",
    "synopsis_prompt",
    "vision_prompt",
    "vision_source",
    "text",
    "text_tokens",
    "poster_caption",
]

_LETTERS = re.compile(r"[^\W\d_]+")
_DIGITS = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]|_")


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
    text = " ".join(text.split()).strip()
    return text.lstrip(". ").strip()  # an empty title leaves a leading ". "


def poster_caption(
    title: str | None, actors: Any, max_actors: int = 3, template: str = DEFAULT_POSTER_CAPTION_TEMPLATE
) -> str:
    """The poster's text elements: its title and top-billed actor names.

    ``actors`` may be a list of names, a name -> URL dict (``TitleRecord.actors``) or the
    (name, URL) pairs a Parquet map column reads back as.
    """
    names = actor_names(actors)[: max(0, max_actors)]
    title = " ".join((title or "").split())
    if not names:
        return title
    if not title:
        return ", ".join(names)
    return template.format(title=title, actors=", ".join(names))


def actor_names(actors: Any) -> list[str]:
    """Actor names in billing order from any of the shapes actors arrive in."""
    if actors is None or (isinstance(actors, float) and math.isnan(actors)):
        return []
    if isinstance(actors, Mapping):
        items: Iterable = actors.keys()
    else:
        items = list(actors)
    names = []
    for item in items:
        if isinstance(item, (tuple, list)) or (hasattr(item, "__len__") and not isinstance(item, str)):
            item = item[0]  # (name, url) pair
        name = " ".join(str(item).split())
        if name:
            names.append(name)
    return names


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# --------------------------------------------------------------------------- tokens


class TokenCounter:
    """Counts CLIP tokens (BOS/EOS included): exact with a tokenizer, else the estimate.

    ``tokenizer`` is a Hugging Face tokenizer (e.g. ``CLIPTokenizer``), a function
    ``str -> int`` counting one word's tokens, or None for the conservative estimate.
    """

    def __init__(self, tokenizer: Any = None):
        self._word_cost: Callable[[str], int]
        if tokenizer is None:
            self._word_cost = estimate_word_tokens
        elif hasattr(tokenizer, "tokenize") or hasattr(tokenizer, "encode"):
            self._word_cost = lambda word: len(tokenizer(word, add_special_tokens=False)["input_ids"])
        elif callable(tokenizer):
            self._word_cost = tokenizer
        else:
            raise TypeError(f"not a tokenizer: {tokenizer!r}")
        self.exact = tokenizer is not None
        self._cache: dict[str, int] = {}

    def word(self, word: str) -> int:
        cost = self._cache.get(word)
        if cost is None:
            cost = self._cache[word] = self._word_cost(word)
        return cost

    def __call__(self, text: str) -> int:
        return CLIP_SPECIAL_TOKENS + sum(self.word(w) for w in text.split())


def load_clip_tokenizer(path: str | Path | None) -> Any | None:
    """A ``CLIPTokenizer`` from a folder (or its ``tokenizer/`` subfolder, as in a
    Stable Diffusion model folder), or None when there is none: callers then get the
    conservative estimate."""
    if not path:
        return None
    from transformers import CLIPTokenizer

    for folder in (Path(path), Path(path) / "tokenizer"):
        if (folder / "vocab.json").exists() or (folder / "tokenizer.json").exists():
            return CLIPTokenizer.from_pretrained(str(folder))
    return None


def estimate_word_tokens(word: str) -> int:
    """Conservative CLIP token estimate for one whitespace-free word (see module doc)."""
    letters = sum(math.ceil(len(run) / 3) for run in _LETTERS.findall(word))
    return letters + len(_DIGITS.findall(word)) + len(_PUNCT.findall(word))


# --------------------------------------------------------------------------- integrated


@dataclass(frozen=True)
class SynopsisParts:
    """The pieces of a movie-synopsis prompt, for ``integrated_prompt`` to fit piece by piece."""

    title: str = ""
    genres: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    synopsis: str = ""
    template: str = DEFAULT_SYNOPSIS_TEMPLATE

    def render(self) -> str:
        return synopsis_prompt(self.title, self.genres, self.actors, self.synopsis, self.template)


def integrated_prompt(
    vision_prompt: str | None,
    synopsis: str | SynopsisParts | None,
    tokenizer: Any = None,
    max_tokens: int = CLIP_MAX_TOKENS,
) -> str:
    """Vision-perceptive prompt + movie-synopsis prompt, fitted to ``max_tokens`` CLIP
    tokens (BOS/EOS included) by the priority rule in the module docstring.

    ``tokenizer``: a CLIP tokenizer, a ``TokenCounter``, or None (conservative estimate).
    """
    counter = tokenizer if isinstance(tokenizer, TokenCounter) else TokenCounter(tokenizer)
    vision = " ".join((vision_prompt or "").split())
    fits = lambda text: counter(text) <= max_tokens  # noqa: E731

    if isinstance(synopsis, SynopsisParts) and synopsis.actors:
        return _with_actors_reserved(vision, synopsis, fits)
    if vision and not fits(vision):
        return _longest_prefix(vision.split(), lambda words: " ".join(words), fits)
    if synopsis is None:
        return vision
    if isinstance(synopsis, str):
        words = synopsis.split()
        return _longest_prefix(words, lambda kept: _join(vision, " ".join(kept)), fits)
    return _fill(vision, synopsis, SynopsisParts(template=synopsis.template), fits)


def _with_actors_reserved(vision: str, full: SynopsisParts, fits: Callable[[str], bool]) -> str:
    """Priority 1 of the module rule: the actors (as many as fit on their own), then the
    vision prompt cut to what is left, then the rest."""
    kept = SynopsisParts(template=full.template)
    for name in full.actors:
        trial = replace(kept, actors=[*kept.actors, name])
        if fits(trial.render()):
            kept = trial
    actors_only = kept.render()
    if vision and not fits(_join(vision, actors_only)):
        vision = _longest_prefix(vision.split(), lambda words: " ".join(words), lambda v: fits(_join(v, actors_only)))
        return _join(vision, actors_only)
    return _fill(vision, full, kept, fits)


def _fill(vision: str, full: SynopsisParts, kept: SynopsisParts, fits: Callable[[str], bool]) -> str:
    """Add the title, the genres and the actors not yet kept one by one, then synopsis words."""
    render = lambda parts: _join(vision, parts.render())  # noqa: E731
    if full.title and fits(render(replace(kept, title=full.title))):
        kept = replace(kept, title=full.title)
    for name in ("genres", "actors"):
        for item in getattr(full, name):
            if item in getattr(kept, name):
                continue
            trial = replace(kept, **{name: [*getattr(kept, name), item]})
            if fits(render(trial)):
                kept = trial
    words = (full.synopsis or "").split()
    return _longest_prefix(words, lambda prefix: render(replace(kept, synopsis=" ".join(prefix))), fits)


def _join(vision: str, synopsis_text: str) -> str:
    if not vision:
        return synopsis_text
    if not synopsis_text:
        return vision
    stop = "" if vision[-1] in ".!?" else "."
    return f"{vision}{stop} {synopsis_text}"


def _longest_prefix(words: list[str], render: Callable[[list[str]], str], fits: Callable[[str], bool]) -> str:
    """Render with the most leading ``words`` that fit (token counts grow with the prefix)."""
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(render(words[:middle])):
            low = middle
        else:
            high = middle - 1
    return render(words[:low])


# --------------------------------------------------------------------------- actor branch


@dataclass(frozen=True)
class ActorPrompt:
    """The prompt of the actor branch, and what fitting it cost."""

    text: str
    tokens: int  # CLIP tokens, BOS and EOS included (the counter's count)
    cut_words: int = 0  # words of the prompt left out so that every actor token fits


def actor_prompt(
    prompt: str,
    names: list[str],
    tokens: list[str],
    tokenizer: Any = None,
    max_tokens: int = CLIP_MAX_TOKENS,
) -> ActorPrompt:
    """``prompt`` with each actor's name replaced by its learned token.

    A token whose name the prompt lacks goes in front ("<a> and <b>, <prompt>"). If the
    result is longer than ``max_tokens``, words are cut from the end, skipping the
    tokens: every token reaches the text encoder. Count with the pipeline's tokenizer
    after the tokens were added to it (each is then one token); the conservative
    estimate over-counts a token, so it cuts more than needed, never less.
    """
    counter = tokenizer if isinstance(tokenizer, TokenCounter) else TokenCounter(tokenizer)
    text, missing = " ".join(prompt.split()), []
    for name, token in zip(names, tokens):
        if name and name in text:
            text = text.replace(name, token)
        else:
            missing.append(token)
    if missing:
        text = f"{' and '.join(missing)}, {text}" if text else " and ".join(missing)
    count = counter(text)
    if count <= max_tokens:
        return ActorPrompt(text, count)
    words, placed = text.split(), set(tokens)
    cuttable = [i for i, word in enumerate(words) if word.strip(".,;:!?()\"'") not in placed]

    def without_last(n: int) -> str:
        dropped = set(cuttable[len(cuttable) - n :]) if n else set()
        return " ".join(word for i, word in enumerate(words) if i not in dropped)

    low, high = 1, len(cuttable)  # the fewest words to cut (counts fall as words go)
    while low < high:
        middle = (low + high) // 2
        if counter(without_last(middle)) <= max_tokens:
            high = middle
        else:
            low = middle + 1
    fitted = without_last(low)
    return ActorPrompt(fitted, counter(fitted), low)


# --------------------------------------------------------------------------- table


def build_poster_prompts(
    movies: pd.DataFrame,
    vision: pd.DataFrame | None,
    rectified: Mapping[int, str] | None,
    template: str = DEFAULT_SYNOPSIS_TEMPLATE,
    tokenizer: Any = None,
    max_tokens: int = CLIP_MAX_TOKENS,
    max_actors: int = 3,
    caption_template: str = DEFAULT_POSTER_CAPTION_TEMPLATE,
    log: ProgressLog | None = None,
) -> pd.DataFrame:
    """One row of prompts per movie (``POSTER_PROMPT_COLUMNS``); ``log`` gets progress lines.

    ``movies``: columns ``id, title, genres, actors, synopsis`` (actors in any shape
    ``actor_names`` takes). ``vision``: BLIP-2 captions, columns ``id, caption`` (rows
    with an ``error`` or no caption are ignored). ``rectified``: id -> corrected text,
    which wins over BLIP-2. ``vision_source`` says which was used: "rectified",
    "blip2" or "none". ``synopsis_prompt`` is the full, unfitted prompt; ``text`` is
    the integrated prompt fitted to ``max_tokens``.
    """
    captions = _blip_captions(vision)
    rectified = {int(k): v for k, v in (rectified or {}).items() if v and str(v).strip()}
    counter = TokenCounter(tokenizer)
    rows = []
    progress = Progress("poster_prompts", len(movies), log, unit="posters")
    for movie in movies.itertuples(index=False):
        movie_id = int(movie.id)
        title = " ".join(str(getattr(movie, "title", "") or "").split())
        genres = _as_list(getattr(movie, "genres", None))
        names = actor_names(getattr(movie, "actors", None))
        synopsis = getattr(movie, "synopsis", None)
        synopsis = "" if synopsis is None or (isinstance(synopsis, float) and math.isnan(synopsis)) else str(synopsis)
        parts = SynopsisParts(title, genres, names[:max_actors], synopsis, template)
        if movie_id in rectified:
            vision_prompt, source = " ".join(str(rectified[movie_id]).split()), "rectified"
        elif movie_id in captions:
            vision_prompt, source = captions[movie_id], "blip2"
        else:
            vision_prompt, source = "", "none"
        text = integrated_prompt(vision_prompt, parts, counter, max_tokens)
        rows.append(
            {
                "id": movie_id,
                "synopsis_prompt": parts.render(),
                "vision_prompt": vision_prompt,
                "vision_source": source,
                "text": text,
                "text_tokens": counter(text),
                "poster_caption": poster_caption(title, names, max_actors, caption_template),
            }
        )
        progress.update(status=source)
    progress.close()
    frame = pd.DataFrame(rows, columns=POSTER_PROMPT_COLUMNS)
    return frame.astype({"id": "int64", "text_tokens": "int64"})


def _blip_captions(vision: pd.DataFrame | None) -> dict[int, str]:
    if vision is None or vision.empty:
        return {}
    usable = vision[vision["caption"].notna()]
    if "error" in usable.columns:
        usable = usable[usable["error"].isna()]
    captions = {}
    for movie_id, caption in zip(usable["id"], usable["caption"]):
        caption = " ".join(str(caption).split())
        if caption:
            captions[int(movie_id)] = caption  # later rows (newer captions) win
    return captions
