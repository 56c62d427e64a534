"""LoRA fine-tune: the weights load into a stock pipeline, change it, and a run resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mpds_pipeline.vision.lora_training import (
    LORA_WEIGHTS_NAME,
    LoraSettings,
    TrainingInterrupted,
    sample_pairs,
    train_lora,
)
from mpds_pipeline.vision.tiny_sd import TINY_IMAGE_SIZE

from .image_samples import noise_image, undecodable_jpeg


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """An imagefolder export: posters/<id>.jpg and posters/metadata.jsonl."""
    root = tmp_path_factory.mktemp("export")
    posters = root / "posters"
    posters.mkdir()
    rng = np.random.default_rng(0)
    with (posters / "metadata.jsonl").open("w") as handle:
        for i in range(6):
            pixels = rng.integers(0, 255, size=(48, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(posters / f"{i}.jpg")
            handle.write(json.dumps({"file_name": f"{i}.jpg", "text": f"poster {i} of a red film"}) + "\n")
    return root


def _settings(tiny_models, **overrides) -> LoraSettings:
    values = dict(
        pretrained_model=str(tiny_models.sd),
        resolution=TINY_IMAGE_SIZE,
        learning_rate=5e-2,
        train_batch_size=2,
        max_train_steps=4,
        checkpointing_steps=2,
        device="cpu",
    )
    values.update(overrides)
    return LoraSettings(**values)


def test_sample_pairs_is_a_fixed_seeded_subset(export_dir):
    first = sample_pairs(export_dir, 4, seed=3)
    assert first == sample_pairs(export_dir, 4, seed=3)
    assert len(first) == 4 and len({p for p, _ in first}) == 4
    assert all(path.exists() and text.startswith("poster") for path, text in first)
    assert len(sample_pairs(export_dir / "posters" / "metadata.jsonl", 100, seed=3)) == 6


def test_lora_loads_into_stock_pipeline_and_changes_output(tiny_models, export_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    # One poster passed the download's structure check but does not decode: it is left
    # out of training and reported, not fatal.
    broken = tmp_path / "7.jpg"
    broken.write_bytes(undecodable_jpeg(noise_image(40, 48, seed=7)))
    pairs = sample_pairs(export_dir, 6, 0) + [(broken, "poster 7 of a red film")]
    lines = []
    result = train_lora(_settings(tiny_models), pairs, tmp_path / "lora", log=lines.append)
    assert result.n_pairs == 6 and result.decode_failures == 1
    assert result.image_outcomes[broken].startswith("OSError") and len(result.image_outcomes) == 7
    assert result.weights_path == tmp_path / "lora" / LORA_WEIGHTS_NAME and result.weights_path.exists()
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    # Progress: the images encoded, then step, loss, steps/s and ETA; a final line.
    training = [line for line in lines if line.startswith("lora_weights: training: ")]
    assert lines[0].startswith("lora_weights: encoding images: ") and "images/s" in lines[0]
    assert training[0].startswith("lora_weights: training: 1/4 steps (25.0%), ") and "ETA" in training[0]
    assert f"loss {result.losses[0]:.4g}" in training[0]
    assert training[-1].startswith("lora_weights: training: 4/4 steps (100.0%), ") and "done in" in training[-1]
    assert f"loss {result.losses[-1]:.4g}, mean of the last 50 {np.mean(result.losses):.4g}" in training[-1]
    assert result.loss_curve_png.stat().st_size > 0 and result.steps_per_second > 0

    pipe = StableDiffusionPipeline.from_pretrained(tiny_models.sd)
    pipe.set_progress_bar_config(disable=True)

    def run():
        return pipe(
            "poster 1 of a red film",
            num_inference_steps=2,
            height=TINY_IMAGE_SIZE,
            width=TINY_IMAGE_SIZE,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    before = run()
    pipe.load_lora_weights(tmp_path / "lora")
    after = run()
    assert np.abs(after - before).max() > 1e-3


def test_interrupted_run_resumes_to_the_same_weights(tiny_models, export_dir, tmp_path):
    from safetensors.torch import load_file

    pairs = sample_pairs(export_dir, 6, 0)
    settings = _settings(tiny_models, max_train_steps=5)
    straight = train_lora(settings, pairs, tmp_path / "straight")

    def crash_at_three(step, loss):
        if step == 3:
            raise TrainingInterrupted("simulated crash")

    with pytest.raises(TrainingInterrupted):
        train_lora(settings, pairs, tmp_path / "resumed", on_step=crash_at_three)
    assert not (tmp_path / "resumed" / LORA_WEIGHTS_NAME).exists()
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-2").exists()

    lines = []
    resumed = train_lora(settings, pairs, tmp_path / "resumed", log=lines.append)
    assert resumed.resumed_from_step == 2
    assert lines[-1].startswith("lora_weights: training (resumed at step 2): 3/3 steps (100.0%)")
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    expected, actual = load_file(straight.weights_path), load_file(resumed.weights_path)
    assert expected and expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6)


def test_a_rerun_after_the_last_checkpoint_trains_nothing_and_says_so(tiny_models, export_dir, tmp_path):
    from safetensors.torch import load_file

    pairs = sample_pairs(export_dir, 6, 0)
    settings = _settings(tiny_models, max_train_steps=4, checkpointing_steps=2)  # the last checkpoint is step 4
    first = train_lora(settings, pairs, tmp_path / "run")
    lines = []
    again = train_lora(settings, pairs, tmp_path / "run", log=lines.append)
    assert again.resumed_from_step == 4 and again.losses == pytest.approx(first.losses)
    assert "lora_weights: the checkpoint of step 4 already has all 4 steps: nothing to train" in lines
    assert not any("lora_weights: training" in line for line in lines)
    expected, actual = load_file(first.weights_path), load_file(again.weights_path)
    assert expected and all(torch.equal(actual[key], expected[key]) for key in expected)


def test_checkpoints_of_other_settings_are_set_aside_not_resumed(tiny_models, export_dir, tmp_path):
    pairs = sample_pairs(export_dir, 6, 0)
    settings = _settings(tiny_models, max_train_steps=5)

    def crash_at_three(step, loss):
        if step == 3:
            raise TrainingInterrupted("simulated crash")

    with pytest.raises(TrainingInterrupted):
        train_lora(settings, pairs, tmp_path / "run", on_step=crash_at_three)

    # Longer training and another checkpoint cadence still resume: the result is the same run's.
    longer = _settings(tiny_models, max_train_steps=6, checkpointing_steps=3)
    resumed = train_lora(longer, pairs, tmp_path / "run")
    assert resumed.resumed_from_step == 2 and resumed.superseded_checkpoints is None

    # Another rank or other pairs make other weights: their checkpoints are moved aside.
    lines = []
    other_rank = train_lora(
        _settings(tiny_models, max_train_steps=6, rank=2), pairs, tmp_path / "run", log=lines.append
    )
    assert other_rank.resumed_from_step == 0
    assert other_rank.superseded_checkpoints == tmp_path / "run" / "checkpoints.superseded"
    assert (other_rank.superseded_checkpoints / "checkpoint-6").exists()
    assert any("training afresh" in line for line in lines)
    other_pairs = train_lora(_settings(tiny_models, max_train_steps=6, rank=2), pairs[:4], tmp_path / "run")
    assert other_pairs.resumed_from_step == 0 and other_pairs.superseded_checkpoints is not None
