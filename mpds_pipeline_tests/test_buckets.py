"""Aspect buckets: which bucket a poster goes to, how it is cropped, and training on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mpds_pipeline.vision.buckets import (
    assign_bucket,
    batches_per_epoch,
    bucket_sizes,
    cover_crop,
    epoch_batches,
    poster_size,
)
from mpds_pipeline.vision.caption_control import render_caption_layout
from mpds_pipeline.vision.frozen_sd import load_frozen_sd
from mpds_pipeline.vision.latent_cache import cache_latents
from mpds_pipeline.vision.lora_training import LoraSettings, train_lora
from mpds_pipeline.vision.tiny_sd import TINY_IMAGE_SIZE


def test_posters_go_to_the_bucket_of_nearest_aspect():
    sizes = bucket_sizes(512)
    assert sizes == [(512, 768), (576, 704), (512, 512)]
    # A 2:3 poster (IMDb's 1000x1500, and a slightly cut 680x1000), a 4:5 one, a square
    # DVD cover and a landscape still (as far from 2:3 as a square is, nearer the square).
    assert [assign_bucket(w, h, sizes) for w, h in [(1000, 1500), (680, 1000)]] == [0, 0]
    assert assign_bucket(800, 1000, sizes) == 1
    assert assign_bucket(600, 600, sizes) == 2 and assign_bucket(1920, 1080, sizes) == 2
    # The tiny models' 32 px: sides rounded to an eighth of the resolution.
    assert bucket_sizes(32) == [(32, 48), (36, 44), (32, 32)]
    assert bucket_sizes(768) == [(768, 1152), (896, 1024), (768, 768)]
    assert bucket_sizes(512, ()) == [(512, 512)]  # the paper's square path
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        bucket_sizes(512, ("512by768",))
    assert poster_size(512) == (768, 512) and poster_size(32) == (48, 32)


def test_cover_crop_keeps_the_credits_a_square_crop_cuts():
    # A 2:3 poster with the names across the top, as the caption sketch draws it.
    poster, layout = render_caption_layout("The Green Planet", ["Nicole Kidman"], (400, 600))
    names_bottom = max(box[3] for r in layout.regions if r.kind == "name" for box in r.boxes) / 600
    assert names_bottom < 1 / 6  # inside the band a square crop of a 2:3 poster removes
    bucket = cover_crop(poster, (512, 768))
    square = cover_crop(poster, (512, 512))
    assert bucket.size == (512, 768) and square.size == (512, 512)
    ink = lambda image, y0, y1: int((np.asarray(image.convert("L"))[y0:y1] < 128).sum())  # noqa: E731
    # The bucket is the whole poster scaled; the square is its middle 512 rows: the names are gone.
    assert ink(square, 0, 512) == ink(bucket, 128, 640)
    assert ink(bucket, 0, 128) > 0


def test_epoch_batches_hold_one_bucket_each_and_are_reproducible():
    bucket_of = [0, 1, 0, 2, 1, 0, 0, 1]
    batches = epoch_batches(bucket_of, 2, seed=5, epoch=0)
    assert len(batches) == batches_per_epoch(bucket_of, 2) == 2 + 2 + 1
    assert sorted(row for batch in batches for row in batch) == list(range(8))  # every row once an epoch
    assert all(len({bucket_of[row] for row in batch}) == 1 for batch in batches)
    assert batches == epoch_batches(bucket_of, 2, seed=5, epoch=0)
    assert batches != epoch_batches(bucket_of, 2, seed=5, epoch=1)


def _mixed_images(folder):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(40, 60), (64, 64), (40, 60), (80, 100), (60, 60)]):
        path = folder / f"{i + 1}.jpg"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_latent_cache_keeps_each_bucket_at_its_own_shape(tiny_models, tmp_path):
    sd = load_frozen_sd(str(tiny_models.sd), "cpu", torch.float32)
    paths = _mixed_images(tmp_path / "images")
    cache = cache_latents(sd.vae, paths, TINY_IMAGE_SIZE, buckets=bucket_sizes(TINY_IMAGE_SIZE))
    assert cache.bucket_counts() == {"32x48": 2, "36x44": 1, "32x32": 2}
    assert cache.decoded == [0, 1, 2, 3, 4] and cache.bucket_of == [0, 2, 0, 1, 2]
    poster_bucket = cache.buckets[0]
    assert poster_bucket.rows == [0, 2] and tuple(poster_bucket.mean.shape[2:]) == (24, 16)  # VAE halves: h 48, w 32
    draw = cache.sample(torch.tensor([2, 0]), torch.Generator().manual_seed(0))
    assert draw.shape == (2, 4, 24, 16)
    with pytest.raises(ValueError, match="one bucket"):
        cache.sample(torch.tensor([0, 1]), torch.Generator())
    with pytest.raises(ValueError, match="span 3 buckets"):
        _ = cache.mean
    square = cache_latents(sd.vae, paths, TINY_IMAGE_SIZE)  # the paper's square path: one bucket
    assert square.bucket_counts() == {"32x32": 5} and square.mean.shape == (5, 4, 16, 16)


def test_lora_trains_on_buckets_and_reports_the_histogram(tiny_models, tmp_path):
    paths = _mixed_images(tmp_path / "posters")
    settings = LoraSettings(
        pretrained_model=str(tiny_models.sd),
        resolution=TINY_IMAGE_SIZE,
        train_batch_size=2,
        max_train_steps=3,
        checkpointing_steps=0,
        device="cpu",
    )
    result = train_lora(settings, [(p, f"poster {p.stem}") for p in paths], tmp_path / "lora")
    assert result.bucket_counts == {"32x48": 2, "36x44": 1, "32x32": 2}
    assert result.metadata()["aspect_buckets"] == result.bucket_counts
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
