"""Actor embeddings: the saved file loads with a stock pipeline's load_textual_inversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mpds_pipeline.vision.textual_inversion import (
    TextualInversionModels,
    TextualInversionSettings,
    placeholder_token,
    train_actor_embedding,
    train_actor_embeddings,
)
from mpds_pipeline.vision.tiny_sd import TINY_IMAGE_SIZE


def _photos(directory, count, seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = directory / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, size=(40, 36, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _settings(tiny_models, **overrides):
    values = dict(
        pretrained_model=str(tiny_models.sd),
        resolution=TINY_IMAGE_SIZE,
        max_train_steps=4,
        train_batch_size=2,
        learning_rate=5e-2,
        initializer_token="a",
        device="cpu",
    )
    values.update(overrides)
    return TextualInversionSettings(**values)


def test_placeholder_token_is_the_person_code():
    assert placeholder_token(206) == "<nm0000206>"


def test_embedding_loads_with_stock_load_textual_inversion(tiny_models, tmp_path):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    settings = _settings(tiny_models)
    models = TextualInversionModels.load(settings)
    initial_row = models.text_encoder.get_input_embeddings().weight[5].clone()
    result = train_actor_embedding(settings, _photos(tmp_path / "photos", 3), 206, tmp_path / "emb", models=models)
    assert result.token == "<nm0000206>" and result.embedding_path.name == "nm0000206.safetensors"
    assert result.warning is None and len(result.losses) == 4
    # only the new row moved
    torch.testing.assert_close(models.text_encoder.get_input_embeddings().weight[5], initial_row)

    saved = load_file(result.embedding_path)
    assert list(saved) == ["<nm0000206>"] and saved["<nm0000206>"].shape == (1, 32)
    initializer = models.tokenizer.convert_tokens_to_ids("a</w>")
    assert not torch.allclose(saved["<nm0000206>"][0], models.text_encoder.get_input_embeddings().weight[initializer])

    pipe = StableDiffusionPipeline.from_pretrained(tiny_models.sd)
    pipe.load_textual_inversion(result.embedding_path, token=result.token)
    token_id = pipe.tokenizer.convert_tokens_to_ids(result.token)
    torch.testing.assert_close(pipe.text_encoder.get_input_embeddings().weight[token_id], saved[result.token][0])
    assert pipe.tokenizer.tokenize(f"a photo of {result.token}")[-1] == result.token


def test_too_few_photos_warn_and_several_actors_share_models(tiny_models, tmp_path):
    settings = _settings(tiny_models, max_train_steps=2)
    with pytest.warns(UserWarning, match="fewer than"):
        results = train_actor_embeddings(
            settings,
            {206: _photos(tmp_path / "a", 2), 1234567: _photos(tmp_path / "b", 6, seed=1)},
            tmp_path / "emb",
        )
    assert [r.token for r in results] == ["<nm0000206>", "<nm1234567>"]
    assert results[0].warning and results[1].warning is None and results[1].n_images == 5
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["nm0000206.safetensors", "nm1234567.safetensors"]


def test_too_few_photos_can_skip_and_progress_is_logged(tiny_models, tmp_path):
    lines = []
    settings = _settings(tiny_models, max_train_steps=2, too_few_images="skip")
    with pytest.warns(UserWarning, match="skipped"):
        results = train_actor_embeddings(
            settings,
            {206: _photos(tmp_path / "a", 2), 207: _photos(tmp_path / "b", 3, seed=1)},
            tmp_path / "emb",
            lines.append,
        )
    assert [r.skipped for r in results] == [True, False] and results[0].embedding_path is None
    assert [p.name for p in results[1].images] == ["0.jpg", "1.jpg", "2.jpg"]  # in the order given
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["nm0000207.safetensors"]
    assert lines[-1].startswith("actor_embeddings: 4/4 steps") and "skipped 2" in lines[-1] and "loss" in lines[-1]


def test_a_photo_that_does_not_decode_is_left_out_and_reported(tiny_models, tmp_path):
    """Decode at use: the actor trains on the photos that decode, or is skipped when that
    leaves fewer than min_images and the policy says skip."""
    from .image_samples import noise_image, undecodable_jpeg

    def with_broken(folder, count):
        paths = _photos(folder, count)
        paths[1].write_bytes(undecodable_jpeg(noise_image(36, 40, seed=9)))
        return paths

    settings = _settings(tiny_models, max_train_steps=1)
    enough = with_broken(tmp_path / "enough", 4)
    few = with_broken(tmp_path / "few", 3)
    lines = []
    with pytest.warns(
        UserWarning, match=r"1 face crop\(s\) did not decode \(1.jpg: OSError.*2 image\(s\).*\(trained anyway\)"
    ):
        results = train_actor_embeddings(settings, {206: enough, 207: few}, tmp_path / "emb", lines.append)
    assert results[0].images == [enough[0], *enough[2:]] and results[0].n_images == 3 and results[0].warning is None
    assert list(results[0].decode_failures) == [enough[1]] and results[0].image_outcomes[enough[0]] is None
    assert results[0].metadata()["decode_failures"] == 1 and not results[0].skipped
    assert results[1].n_images == 2 and not results[1].skipped and list(results[1].decode_failures) == [few[1]]

    skip = _settings(tiny_models, max_train_steps=1, too_few_images="skip")
    with pytest.warns(UserWarning, match=r"did not decode.*\(skipped\)"):
        skipped = train_actor_embedding(skip, few, 207, tmp_path / "skip")
    assert skipped.skipped and skipped.n_images == 2 and list(skipped.decode_failures) == [few[1]]
    assert not (tmp_path / "skip").exists()

    with pytest.warns(UserWarning, match=r"0 image\(s\).*\(skipped\)"):
        nothing = train_actor_embedding(settings, [few[1]], 208, tmp_path / "none")  # "warn", but nothing to train on
    assert nothing.skipped and nothing.embedding_path is None
