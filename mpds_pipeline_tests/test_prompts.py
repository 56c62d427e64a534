"""Prompts: synopsis, poster caption, and the integrated prompt's 77-token rule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mpds_pipeline.curate.prompts import (
    POSTER_PROMPT_COLUMNS,
    SynopsisParts,
    TokenCounter,
    actor_prompt,
    build_poster_prompts,
    integrated_prompt,
    load_clip_tokenizer,
    poster_caption,
    synopsis_prompt,
)

VISION = "a movie poster of a man in a black coat holding a gun in the rain"
LONG_SYNOPSIS = (
    "When a beautiful stranger leads computer hacker Neo to a forbidding underworld, he "
    "discovers the shocking truth that the life he knows is the elaborate deception of an "
    "evil cyber-intelligence, and he joins a small band of rebels who fight the machines "
    "that keep humanity asleep in a dream world built to hide the war that was lost long ago."
)
MATRIX = SynopsisParts(
    title="The Matrix",
    genres=["Action", "Sci-Fi"],
    actors=["Keanu Reeves", "Laurence Fishburne", "Carrie-Anne Moss"],
    synopsis=LONG_SYNOPSIS,
)

_WORDS = (
    "a movie poster of man in black coat holding gun the rain matrix action sci fi keanu "
    "reeves laurence fishburne carrie anne moss genres starring when beautiful stranger "
    "leads computer hacker neo to forbidding underworld he discovers shocking truth that "
    "life knows is elaborate deception an evil cyber intelligence and joins small band"
).split()


@pytest.fixture(scope="module")
def clip_tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny CLIPTokenizer's files: byte alphabet + whole words, every merge result in the vocab."""
    folder = tmp_path_factory.mktemp("clip-tokenizer")
    alphabet = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    vocab: dict[str, int] = {}
    for token in [*alphabet, *(c + "</w>" for c in alphabet)]:
        vocab.setdefault(token, len(vocab))
    merges: list[str] = []
    for word in sorted(set(_WORDS)):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:  # merge left to right: "m o" -> "mo", "mo v" -> "mov", ...
            merged = pieces[0] + pieces[1]
            if f"{pieces[0]} {pieces[1]}" not in merges:
                merges.append(f"{pieces[0]} {pieces[1]}")
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


@pytest.fixture
def clip_tokenizer(clip_tokenizer_dir):
    """A fresh tokenizer per test: some tests add actor tokens to theirs."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir))


def real_count(tokenizer, text: str) -> int:
    return len(tokenizer(text)["input_ids"])


def test_synopsis_prompt_leaves_out_empty_parts():
    assert synopsis_prompt("Alien", ["Horror"], [], None) == "Alien. Genres: Horror."
    assert synopsis_prompt("", [], ["Sigourney Weaver"], "In space.") == "Starring: Sigourney Weaver. In space."


def test_poster_caption_title_and_top_billed_actors():
    actors = {"Keanu Reeves": "u1", "Laurence Fishburne": "u2", "Carrie-Anne Moss": "u3", "Hugo Weaving": "u4"}
    assert (
        poster_caption("The Matrix", actors)
        == "The Matrix, starring Keanu Reeves, Laurence Fishburne, Carrie-Anne Moss"
    )
    pairs = [("Keanu Reeves", "u1"), ("Hugo Weaving", "u4")]  # how a Parquet map reads back
    assert poster_caption("The Matrix", pairs, max_actors=1) == "The Matrix, starring Keanu Reeves"
    assert poster_caption("Untitled", []) == "Untitled"


def test_load_clip_tokenizer_finds_a_model_folder_or_gives_none(clip_tokenizer, tmp_path):
    clip_tokenizer.save_pretrained(tmp_path / "sd" / "tokenizer")
    loaded = load_clip_tokenizer(tmp_path / "sd")
    assert loaded is not None and loaded("a movie poster")["input_ids"] == clip_tokenizer("a movie poster")["input_ids"]
    assert load_clip_tokenizer(tmp_path / "nothing-here") is None and load_clip_tokenizer(None) is None


def test_counter_matches_clip_tokenizer(clip_tokenizer):
    counter = TokenCounter(clip_tokenizer)
    for text in (VISION, MATRIX.render(), "Sci-Fi, neo! 1999 xqzv"):
        assert counter(text) == real_count(clip_tokenizer, text)


def test_integrated_prompt_fits_77_with_clip_tokenizer(clip_tokenizer):
    text = integrated_prompt(VISION, MATRIX, clip_tokenizer)
    count = real_count(clip_tokenizer, text)
    assert count <= 77
    # Priority: the whole vision prompt first, then title, genres and actors ...
    assert text.startswith(VISION + ". The Matrix. Genres: Action, Sci-Fi. Starring: Keanu Reeves")
    # ... then the synopsis, cut at a word boundary, as long as it fits.
    synopsis_part = text.split("Carrie-Anne Moss. ", 1)[1]
    assert LONG_SYNOPSIS.startswith(synopsis_part) and LONG_SYNOPSIS[len(synopsis_part)] == " "
    next_word = LONG_SYNOPSIS[len(synopsis_part) :].split()[0]
    assert real_count(clip_tokenizer, f"{text} {next_word}") > 77


def test_actors_are_reserved_before_the_vision_prompt(clip_tokenizer):
    long_vision = " ".join(["a man holding a gun in the rain"] * 12)
    text = integrated_prompt(long_vision, MATRIX, clip_tokenizer)
    assert real_count(clip_tokenizer, text) <= 77
    vision, actors = text.split(". Starring: ")
    assert long_vision.startswith(vision) and len(vision) < len(long_vision)  # cut at a word boundary
    assert actors == "Keanu Reeves, Laurence Fishburne, Carrie-Anne Moss." and "Matrix" not in text
    # Without actors the vision prompt comes first and is cut alone, as before.
    alone = integrated_prompt(long_vision, SynopsisParts(title="The Matrix"), clip_tokenizer)
    assert long_vision.startswith(alone) and real_count(clip_tokenizer, alone) <= 77
    # A budget too small for every actor keeps the top-billed ones that fit.
    short = integrated_prompt("a poster", MATRIX, clip_tokenizer, max_tokens=16)
    assert real_count(clip_tokenizer, short) <= 16 and "Keanu Reeves" in short and "Carrie-Anne" not in short


def test_lower_priority_part_fills_room_a_longer_one_cannot(clip_tokenizer):
    parts = SynopsisParts(title="The Matrix", genres=["Science-Fiction-Adventure", "Action"], synopsis="")
    budget = TokenCounter(clip_tokenizer)("a poster. The Matrix. Genres: Action.")
    text = integrated_prompt("a poster", parts, clip_tokenizer, max_tokens=budget)
    assert text == "a poster. The Matrix. Genres: Action."


def test_fallback_counter_is_conservative_and_keeps_the_same_order(clip_tokenizer):
    estimate_clip_tokens = TokenCounter(None)
    text = integrated_prompt(VISION, MATRIX)  # no tokenizer: the estimate
    assert estimate_clip_tokens(text) <= 77
    assert real_count(clip_tokenizer, text) <= estimate_clip_tokens(text)
    assert text.startswith(VISION + ". The Matrix")
    # BOS/EOS, "Keanu" ceil(5/3), "Reeves" ceil(6/3), ",", four digits, "!".
    assert estimate_clip_tokens("Keanu Reeves, 1999!") == 2 + 2 + 2 + 1 + 4 + 1


def test_string_synopsis_is_cut_at_a_word_boundary():
    text = integrated_prompt(VISION, LONG_SYNOPSIS)
    tail = text[len(VISION) + 2 :]
    assert text.startswith(VISION + ". ") and LONG_SYNOPSIS.startswith(tail)
    assert LONG_SYNOPSIS[len(tail)] == " "


def test_build_poster_prompts_sources_and_columns(clip_tokenizer):
    movies = pd.DataFrame(
        {
            "id": [133093, 78748, 1],
            "title": ["The Matrix", "Alien", "Carmencita"],
            "genres": [["Action", "Sci-Fi"], ["Horror"], []],
            "actors": [
                [("Keanu Reeves", "u"), ("Laurence Fishburne", "u")],
                {"Sigourney Weaver": "u"},
                None,
            ],
            "synopsis": [LONG_SYNOPSIS, "In space no one can hear you scream.", None],
        }
    )
    vision = pd.DataFrame(
        {
            "id": [133093, 78748, 1],
            "caption": ["a poster of a man", "a poster of an alien egg", None],
            "error": [None, None, "UnidentifiedImageError"],
        }
    )
    table = build_poster_prompts(movies, vision, {78748: "an alien egg cracking open"}, tokenizer=clip_tokenizer)
    assert list(table.columns) == POSTER_PROMPT_COLUMNS
    rows = table.set_index("id")
    assert rows.loc[133093, "vision_source"] == "blip2"
    assert rows.loc[78748, "vision_source"] == "rectified"
    assert rows.loc[78748, "text"].startswith("an alien egg cracking open. Alien. Genres: Horror")
    assert rows.loc[1, "vision_source"] == "none" and rows.loc[1, "text"] == "Carmencita."
    assert rows.loc[78748, "poster_caption"] == "Alien, starring Sigourney Weaver"
    assert (table["text_tokens"] <= 77).all()
    assert all(real_count(clip_tokenizer, t) == n for t, n in zip(table["text"], table["text_tokens"]))
    assert rows.loc[133093, "synopsis_prompt"].endswith("long ago.")  # full, unfitted


def test_actor_prompt_replaces_names_with_tokens(clip_tokenizer):
    clip_tokenizer.add_tokens(["<nm0000206>", "<nm0000401>"])
    text = integrated_prompt(VISION, MATRIX, clip_tokenizer)
    fitted = actor_prompt(text, ["Keanu Reeves", "Laurence Fishburne"], ["<nm0000206>", "<nm0000401>"], clip_tokenizer)
    assert "Starring: <nm0000206>, <nm0000401>, Carrie-Anne Moss." in fitted.text and fitted.cut_words == 0
    assert fitted.tokens == real_count(clip_tokenizer, fitted.text) <= real_count(clip_tokenizer, text)


def test_actor_tokens_missing_from_the_prompt_go_first_and_survive_any_cut(clip_tokenizer):
    clip_tokenizer.add_tokens(["<nm0000206>", "<nm0000401>"])
    tokens = ["<nm0000206>", "<nm0000401>"]
    long_text = f"{VISION}. {LONG_SYNOPSIS}"  # a release text: not fitted, names absent
    fitted = actor_prompt(long_text, ["Keanu Reeves", "Laurence Fishburne"], tokens, clip_tokenizer)
    assert fitted.text.startswith("<nm0000206> and <nm0000401>, a movie poster")
    assert fitted.tokens <= 77 and fitted.cut_words > 0
    ids = clip_tokenizer(fitted.text)["input_ids"]
    assert all(clip_tokenizer.convert_tokens_to_ids(t) in ids[:77] for t in tokens)
    # A token at the end of an over-long prompt stays; the words before it are what go.
    late = actor_prompt(f"{LONG_SYNOPSIS} Starring: Keanu Reeves.", ["Keanu Reeves"], tokens[:1], clip_tokenizer)
    assert late.text.startswith(LONG_SYNOPSIS[:40]) and late.text.endswith(" <nm0000206>.")
    assert late.tokens == real_count(clip_tokenizer, late.text) <= 77 and late.cut_words > 0
