"""The BLIP-2 captioner end to end with a tiny random BLIP-2 saved to disk and loaded back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mpds_pipeline.vision.captioner import CAPTION_COLUMNS, Captioner, CaptionSettings, caption_partition, read_captions
from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_blip2(tmp_path_factory.mktemp("tiny-blip2"))


@pytest.fixture(scope="module")
def posters(tmp_path_factory) -> list[tuple[int, Path]]:
    """Six readable posters of different sizes and formats."""
    folder = tmp_path_factory.mktemp("posters")
    items = []
    for movie_id in range(1, 7):
        rng = np.random.default_rng(movie_id)
        height, width = (900, 600) if movie_id % 2 else (120, 80)
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        suffix = ".png" if movie_id == 4 else ".jpg"
        path = folder / f"{movie_id}{suffix}"
        Image.fromarray(pixels).save(path)
        items.append((movie_id, path))
    return items


@pytest.fixture(scope="module")
def broken(tmp_path_factory, posters) -> list[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("broken")
    truncated = folder / "101.jpg"
    truncated.write_bytes(posters[0][1].read_bytes()[:2000])
    not_image = folder / "102.jpg"
    not_image.write_text("<html>blocked</html>")
    return [(101, truncated), (102, not_image), (103, folder / "missing.jpg")]


def settings_for(model_dir: Path, **overrides) -> CaptionSettings:
    return CaptionSettings(model=str(model_dir), batch_size=4, max_new_tokens=8, decode_workers=2, **overrides)


@pytest.fixture(scope="module")
def captioner(model_dir) -> Captioner:
    return Captioner(settings_for(model_dir))


def test_processor_loads_back_without_torchvision(captioner):
    assert type(captioner.processor.image_processor).__name__ == "BlipImageProcessorPil"
    assert captioner.device == "cpu" and captioner.dtype == torch.float32


def test_captions_every_poster_in_order(captioner, posters, model_dir):
    rows = list(captioner.caption_images(posters))
    assert [row.id for row in rows] == [movie_id for movie_id, _ in posters] and len(rows) == 6
    for row in rows:
        assert row.error is None
        assert row.caption.startswith("a movie poster of ") and len(row.caption) > len("a movie poster of ")
        assert math.isfinite(row.confidence) and row.confidence <= 0
        assert row.model == str(model_dir)
    settings = json.loads(rows[0].settings_json)
    assert settings["prompt"] == "a movie poster of" and settings["batch_size"] == 4
    assert settings["resolved_dtype"] == "float32"
    # Bare paths named <id>.<ext> work too.
    assert [row.id for row in captioner.caption_images([posters[0][1]])] == [1]


def test_confidence_is_the_mean_log_probability_of_the_caption(captioner, posters):
    """Recompute the score by teacher forcing the greedy caption through the model."""
    movie_id, path = posters[3]  # the PNG: decoded the same way with or without JPEG draft
    row = next(iter(captioner.caption_images([(movie_id, path)])))
    processor, model = captioner.processor, captioner.model
    prompt = processor(images=[Image.open(path).convert("RGB")], text=["a movie poster of"], return_tensors="pt")
    start = prompt["input_ids"].shape[1]
    with torch.no_grad():
        sequence = model.generate(**prompt, do_sample=False, max_new_tokens=captioner.settings.max_new_tokens)
    generated = sequence[0, start:].tolist()
    eos = model.config.text_config.eos_token_id
    if eos in generated:  # the caption ends with its EOS; the rest is padding
        generated = generated[: generated.index(eos) + 1]
    ids = torch.cat([prompt["input_ids"], torch.tensor([generated])], dim=1)
    with torch.no_grad():
        logits = model(pixel_values=prompt["pixel_values"], input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    log_probs = torch.log_softmax(logits[0, start - 1 : -1].float(), dim=-1)
    expected = log_probs.gather(1, torch.tensor(generated)[:, None]).mean().item()
    assert row.caption == "a movie poster of " + processor.decode(generated, skip_special_tokens=True).strip()
    assert row.confidence == pytest.approx(expected, abs=1e-3)  # KV-cache vs full pass rounding


def test_same_inputs_and_settings_give_the_same_captions(model_dir, posters, captioner):
    again = Captioner(settings_for(model_dir))  # a second, independent load
    first = [(r.caption, r.confidence) for r in captioner.caption_images(posters)]
    second = [(r.caption, r.confidence) for r in again.caption_images(posters)]
    assert first == second
    assert len({caption for caption, _ in first}) > 1  # captions depend on the image


def test_beam_search_captions(model_dir, posters):
    rows = list(Captioner(settings_for(model_dir, num_beams=3)).caption_images(posters[:3]))
    assert len(rows) == 3 and all(r.error is None and math.isfinite(r.confidence) and r.confidence <= 0 for r in rows)


def test_unreadable_posters_become_error_rows(captioner, posters, broken):
    rows = list(captioner.caption_images([posters[0], *broken, posters[1]]))
    assert [row.id for row in rows] == [1, 101, 102, 103, 2]
    by_id = {row.id: row for row in rows}
    assert by_id[1].error is None and by_id[2].error is None
    for movie_id in (101, 102, 103):
        assert by_id[movie_id].caption is None and by_id[movie_id].confidence is None
        assert by_id[movie_id].error
    assert "FileNotFoundError" in by_id[103].error
    assert "UnidentifiedImageError" in by_id[102].error


def test_caption_partition_resumes_and_retries_errors(tmp_path, model_dir, posters, broken, captioner):
    out = tmp_path / "vision_prompts" / "tt0000001-tt0000200.parquet"
    first = caption_partition(posters[:3] + broken[:1], out, captioner=captioner)
    assert (first.count, first.skipped, first.errors, first.total_rows) == (3, 0, 1, 4)
    assert first.posters_per_s > 0 and len(first.preview) == 3
    table = read_captions(out)
    assert list(table.columns) == CAPTION_COLUMNS
    assert str(table["created_at"].dtype).startswith("datetime64") and table["id"].dtype == "int64"
    before = table.set_index("id")

    second = caption_partition(posters + broken[:1], out, captioner=captioner)
    assert (second.count, second.skipped, second.errors, second.total_rows) == (3, 3, 1, 7)
    after = read_captions(out).set_index("id")
    for movie_id in (1, 2, 3):  # earlier captions are kept as they were
        assert after.loc[movie_id, "created_at"] == before.loc[movie_id, "created_at"]
        assert after.loc[movie_id, "caption"] == before.loc[movie_id, "caption"]
    assert after.index.is_unique and after.loc[101, "error"]

    # Everything captioned and errors not retried: the model is never loaded (the
    # settings point at a folder that does not exist).
    done = caption_partition(
        posters + broken[:1], out, settings=CaptionSettings(model=str(tmp_path / "nope")), retry_errors=False
    )
    assert (done.count, done.skipped, done.errors) == (0, 7, 0)
    assert not list(out.parent.glob(".*.part"))


def test_caption_partition_checkpoints_while_it_runs(tmp_path, posters, captioner):
    out = tmp_path / "part.parquet"
    result = caption_partition(posters, out, captioner=captioner, checkpoint_rows=2)
    assert result.count == 6 and len(read_captions(out)) == 6
