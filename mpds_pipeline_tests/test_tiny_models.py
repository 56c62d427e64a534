"""The tiny models' CLIP tokenizer reads whole words, so a demo prompt has realistic
token counts (a caption leaves room for the title and the names); models an older
version built are rebuilt."""

from __future__ import annotations

import json
import shutil

from mpds_pipeline.curate.prompts import CLIP_MAX_TOKENS, SynopsisParts, integrated_prompt, load_clip_tokenizer
from mpds_pipeline.sample_server.content import english_words, person_name, sample_title
from mpds_pipeline.vision.tiny_blip2 import CAPTION_WORDS
from mpds_pipeline.vision.tiny_sd import (
    TINY_MODELS_VERSION,
    build_tiny_tokenizer,
    ensure_tiny_models,
    learn_word_merges,
    tiny_models_marker,
    tiny_words,
)


def test_every_tiny_word_is_one_token_and_other_words_fall_back_to_pieces(tiny_models):
    tokenizer = load_clip_tokenizer(tiny_models.sd)
    words = tiny_words(english_words())
    assert {"the", "poster", "starring", "person", "detective"} <= set(words)
    assert set(english_words()) <= set(words) and set(CAPTION_WORDS) <= set(words)
    assert [w for w in words if len(tokenizer.tokenize(w)) != 1] == []
    assert tokenizer.tokenize("The Burning Echo") == ["the</w>", "burning</w>", "echo</w>"]
    pieces = tokenizer.tokenize("Kubrick")  # not a known word: shorter pieces, still readable
    assert len(pieces) > 1 and "".join(pieces).replace("</w>", "") == "kubrick"
    bpe = json.loads((tiny_models.sd / "tokenizer" / "tokenizer.json").read_text())["model"]
    assert bpe["merges"] and all(left + right in bpe["vocab"] for left, right in bpe["merges"])  # every result a token


def test_learnt_merges_build_each_word_whole(tmp_path):
    # Words that share pieces in different places: merging each word left to right would
    # leave "stone" as "st" + "one" (the "o n" merge of "one" and "on" wins first).
    words = ["stone", "one", "on", "tone", "nest", "stones", "notes", "onset", "sonnet"]
    merges = learn_word_merges(words)
    assert len(merges) == len(set(merges))
    tokenizer = build_tiny_tokenizer(tmp_path, words)
    assert {w: tokenizer.tokenize(w) for w in words} == {w: [w + "</w>"] for w in words}


def test_a_demo_caption_leaves_room_for_the_title_and_the_names(tiny_models):
    """With a letter-level tokenizer the caption alone filled the 77 tokens, so the
    localized attention constraint found no title or name in any demo prompt."""
    tokenizer = load_clip_tokenizer(tiny_models.sd)
    movie = sample_title(10)
    caption = "a movie poster of " + " ".join(CAPTION_WORDS[i * 7 % len(CAPTION_WORDS)] for i in range(30))
    names = [person_name(pid) for pid, _ in movie["cast"][:3]]
    text = integrated_prompt(
        caption, SynopsisParts(movie["title"], movie["genres"][:3], names, movie["plot"] or ""), tokenizer
    )
    assert len(tokenizer(text)["input_ids"]) <= CLIP_MAX_TOKENS
    assert names and text.startswith(caption) and movie["title"] in text and all(name in text for name in names)
    assert len(tokenizer(caption)["input_ids"]) < 40  # about a token a word, as with the real CLIP vocabulary


def test_models_of_an_older_version_are_rebuilt(tiny_models, tmp_path):
    root = tmp_path / "tiny-diffusion"
    shutil.copytree(tiny_models.root, root)
    (root / "sd" / "left-by-the-old-build").write_text("")
    assert ensure_tiny_models(root, english_words()).sd == root / "sd"
    assert (root / "sd" / "left-by-the-old-build").exists()  # this version's models: kept as they are

    (root / "complete").write_text("ok\n")  # what version 1 wrote, with its letter-level tokenizer
    paths = ensure_tiny_models(root, english_words())
    assert not (root / "sd" / "left-by-the-old-build").exists()
    marker = (root / "complete").read_text()
    assert marker == tiny_models_marker(english_words()) and marker.startswith(f"version {TINY_MODELS_VERSION} ")
    assert load_clip_tokenizer(paths.sd).tokenize("poster") == ["poster</w>"]
    assert (paths.controlnet / "config.json").exists() and (paths.clip / "config.json").exists()


def test_the_caller_gives_the_extra_words_and_another_vocabulary_is_rebuilt(tiny_models, tmp_path):
    """The core knows no sample server: its pages' words are whole tokens only because the
    demo (and these tests) pass them; models built with other words are not reused."""
    only_sample = sorted(set(english_words()) - set(tiny_words()))
    assert only_sample
    root = tmp_path / "tiny-diffusion"
    shutil.copytree(tiny_models.root, root)
    paths = ensure_tiny_models(root)
    assert (root / "complete").read_text() == tiny_models_marker() != tiny_models_marker(english_words())
    tokenizer = load_clip_tokenizer(paths.sd)
    assert all(len(tokenizer.tokenize(word)) > 1 for word in only_sample[:20])
    assert load_clip_tokenizer(tiny_models.sd).tokenize(only_sample[0]) == [only_sample[0] + "</w>"]
