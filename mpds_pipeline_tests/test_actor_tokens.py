"""Actor tokens reach the text encoder: every benchmark prompt, tokenized by the
pipeline's own tokenizer (with the actors' embeddings loaded), has every actor token
inside CLIP's 77 tokens; and the Fig. 5 swap grids."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.prompts import CLIP_MAX_TOKENS, actor_prompt, build_poster_prompts, load_clip_tokenizer
from mpds_pipeline.imdb.ids import person_url
from mpds_pipeline.sample_server.content import person_name
from mpds_pipeline.vision.holdout import held_out_posters
from mpds_pipeline.vision.multicondition import MultiConditionPipeline, prompt_with_actor_tokens
from mpds_pipeline.vision.textual_inversion import embedding_file_name, placeholder_token

from .image_samples import saved_noise_jpeg

# What made the demo's actor tokens fall off: a caption and a synopsis that fill the
# window on their own (the demo's BLIP-2 is random, so its captions run to the limit).
LONG_CAPTION = " ".join(["a dark poster of a man and a woman standing in the rain"] * 6)
LONG_SYNOPSIS = " ".join(["a retired detective uncovers a conspiracy that reaches the top"] * 6)


@pytest.fixture(scope="module")
def benchmark(tiny_models, tmp_path_factory):
    """An export whose texts come from the prompt builder with the pipeline's tokenizer,
    its held-out prompts, and an embedding for every actor in them."""
    root = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(0)
    posters = root / "posters"
    posters.mkdir()
    movies, manifest = [], []
    for movie_id in range(1, 9):
        cast = {person_name(a): person_url(a) for a in (movie_id * 3, movie_id * 3 + 1, movie_id * 3 + 2, 99)}
        movies.append(
            {
                "id": movie_id,
                "title": f"The Long Title Number {movie_id}",
                "genres": ["Drama", "Crime", "Thriller"],
                "actors": cast,
                "synopsis": LONG_SYNOPSIS,
                "poster_url": f"https://m.media-amazon.com/images/M/p{movie_id}._V1_.jpg",
            }
        )
        manifest.append(saved_noise_jpeg(rng, posters, movie_id, width=64, height=96, url=movies[-1]["poster_url"]))
    frame = pd.DataFrame(movies)
    tokenizer = load_clip_tokenizer(tiny_models.sd)  # the SD model's own, as poster_prompts loads it
    vision = pd.DataFrame({"id": frame["id"], "caption": LONG_CAPTION})
    texts = build_poster_prompts(frame, vision, None, tokenizer=tokenizer)
    write_export(
        frame,
        pd.DataFrame(manifest),
        [posters],
        pd.DataFrame(columns=["id", "name", "image_url"]),
        None,
        root / "export",
        texts=dict(zip(texts["id"], texts["text"])),
    )
    prompts = held_out_posters(root / "export", n=8, seed=0, exclude_ids=set())
    embeddings = root / "embeddings"
    embeddings.mkdir()
    from safetensors.torch import save_file

    for actor_id in {a for p in prompts for a in p.actor_ids}:
        token = placeholder_token(actor_id)
        weights = torch.randn(1, 32, generator=torch.Generator().manual_seed(actor_id))  # not the global RNG's turn
        save_file({token: weights}, embeddings / embedding_file_name(actor_id))
    pipe = MultiConditionPipeline.from_pretrained(
        tiny_models.sd, embeddings={f"<{p.stem}>": p for p in embeddings.glob("*.safetensors")}, device="cpu"
    )
    return {"prompts": prompts, "pipe": pipe, "root": root, "embeddings": embeddings}


def test_every_benchmark_prompt_keeps_every_actor_token_inside_77(benchmark):
    tokenizer = benchmark["pipe"].base.tokenizer
    prompts = benchmark["prompts"]
    assert len(prompts) == 8 and all(len(p.actors) == 3 for p in prompts)
    for prompt in prompts:
        assert len(tokenizer(prompt.prompt)["input_ids"]) <= CLIP_MAX_TOKENS  # the text itself fits
        tokens = [placeholder_token(a) for a in prompt.actor_ids]
        fitted = actor_prompt(prompt.prompt, prompt.actors, tokens, tokenizer)
        assert fitted.cut_words == 0  # room was reserved: nothing had to give way
        ids = tokenizer(fitted.text)["input_ids"]
        assert len(ids) <= CLIP_MAX_TOKENS
        for token in tokens:
            assert tokenizer.convert_tokens_to_ids(token) in ids[:CLIP_MAX_TOKENS], (token, fitted.text)
        assert fitted.text == prompt_with_actor_tokens(prompt.prompt, prompt.actors, tokens, tokenizer)


def test_the_text_encoder_logs_no_truncation(benchmark, caplog):
    import logging

    pipe, prompt = benchmark["pipe"], benchmark["prompts"][0]
    tokens = [placeholder_token(a) for a in prompt.actor_ids]
    text = prompt_with_actor_tokens(prompt.prompt, prompt.actors, tokens, pipe.base.tokenizer)
    with caplog.at_level(logging.WARNING):
        pipe(
            prompt.prompt,
            actor_prompt=text,
            num_inference_steps=1,
            height=32,
            width=32,
            generator=torch.Generator().manual_seed(0),
        )
    assert not [r for r in caplog.records if "truncated" in r.getMessage()] and pipe.last_truncated_tokens == 0
    # The check can fail: the old way (tokens appended after a full prompt) is truncated, and counted.
    with caplog.at_level(logging.WARNING):
        pipe(
            prompt.prompt,
            actor_prompt=f"{prompt.prompt}, starring {' and '.join(tokens)}",
            num_inference_steps=1,
            height=32,
            width=32,
            generator=torch.Generator().manual_seed(0),
        )
    assert [r for r in caplog.records if "truncated" in r.getMessage()] and pipe.last_truncated_tokens > 0


def test_swap_grids_cast_each_actor_into_one_caption_and_one_actor_into_each(benchmark, tiny_models, tmp_path):
    from mpds_pipeline.vision.sampling_settings import SwapSettings
    from mpds_pipeline.vision.swap_ablation import ACTOR_SWAP, CAPTION_SWAP, swap_ablation_grids

    rows = [p.to_dict() for p in benchmark["prompts"]]
    settings = SwapSettings(n_actors=3, n_prompts=3, num_inference_steps=2, height=32, width=32, device="cpu", thumb=32)
    result = swap_ablation_grids(rows, str(tiny_models.sd), None, benchmark["embeddings"], tmp_path, settings)
    caption = [c for c in result.cells if c["grid"] == CAPTION_SWAP]
    actor = [c for c in result.cells if c["grid"] == ACTOR_SWAP]
    assert [c["actor_id"] for c in caption] == [None, *rows[0]["actor_ids"][:3]]
    assert len({c["prompt_id"] for c in caption}) == 1 and len({c["actor_id"] for c in actor}) == 1
    assert [c["prompt_id"] for c in actor] == [r["prompt_id"] for r in rows[:3]]
    lead = placeholder_token(actor[0]["actor_id"])
    assert all(c["actor_prompt"].count(lead) == 1 and c["cut_words"] == 0 for c in actor)
    pixels = [np.asarray(Image.open(c["image_path"])) for c in caption]
    assert not np.array_equal(pixels[0], pixels[1])  # the actor branch changes the image
    assert set(result.grids) == {CAPTION_SWAP, ACTOR_SWAP}
    for name, path in result.grids.items():
        with Image.open(path) as grid:
            assert grid.width == 32 * len([c for c in result.cells if c["grid"] == name])
    assert json.dumps(result.metadata())
