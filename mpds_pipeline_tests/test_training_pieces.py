"""The shared training pieces of vision/, on the tiny models: frozen SD loading, latent
caching (decode failures reported), the diffusion loss (epsilon, v_prediction, unknown
types raise) and checkpoints (save, keep the newest, resume). Also: every device/precision
choice and every vision function stays small."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from mpds_pipeline.vision.checkpoints import RandomStates, latest_checkpoint, save_checkpoint
from mpds_pipeline.vision.diffusion_loss import check_prediction_type, diffusion_loss, training_target
from mpds_pipeline.vision.frozen_sd import load_frozen_sd
from mpds_pipeline.vision.latent_cache import cache_latents
from mpds_pipeline.vision.lora_training import LoraSettings, train_lora
from mpds_pipeline.vision.tiny_sd import TINY_IMAGE_SIZE

from .image_samples import noise_image, undecodable_jpeg

REPO = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80


def _model_with_prediction_type(tiny_models, folder: Path, prediction_type: str) -> Path:
    """A copy of the tiny SD model whose scheduler predicts ``prediction_type``."""
    shutil.copytree(tiny_models.sd, folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": prediction_type}))
    return folder


def _images(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for name, body in (
        ("a.jpg", noise_image(40, 48, seed=1)),
        ("broken.jpg", undecodable_jpeg(noise_image(40, 48, seed=2))),
        ("b.png", noise_image(36, 36, fmt="PNG", seed=3)),
    ):
        (folder / name).write_bytes(body)
        paths.append(folder / name)
    return paths


def test_frozen_sd_is_frozen_on_its_device_in_its_dtype(tiny_models):
    sd = load_frozen_sd(str(tiny_models.sd), "cpu", torch.bfloat16, text_encoder_dtype=torch.float32)
    for module, dtype in ((sd.vae, torch.bfloat16), (sd.unet, torch.bfloat16), (sd.text_encoder, torch.float32)):
        parameters = list(module.parameters())
        assert parameters and not any(p.requires_grad for p in parameters)
        assert {p.dtype for p in parameters} == {dtype} and {p.device.type for p in parameters} == {"cpu"}
    assert sd.noise_scheduler.config.num_train_timesteps == 1000 and sd.device == "cpu"
    ids = sd.token_ids(["a red poster", "a"])
    assert ids.shape == (2, sd.tokenizer.model_max_length)


def test_unknown_prediction_type_raises_before_training(tiny_models, tmp_path):
    model = _model_with_prediction_type(tiny_models, tmp_path / "sd", "sample")
    with pytest.raises(ValueError, match="Unknown prediction type 'sample'"):
        load_frozen_sd(str(model), "cpu", torch.float32)
    settings = LoraSettings(pretrained_model=str(model), resolution=TINY_IMAGE_SIZE, max_train_steps=1, device="cpu")
    with pytest.raises(ValueError, match="Unknown prediction type"):
        train_lora(settings, [(tmp_path / "never-read.jpg", "a poster")], tmp_path / "lora")
    assert not (tmp_path / "lora" / "checkpoints").exists()


def test_latent_cache_encodes_what_decodes_and_reports_the_rest(tiny_models, tmp_path):
    sd = load_frozen_sd(str(tiny_models.sd), "cpu", torch.float32)
    paths = _images(tmp_path / "images")
    counted = []

    class Counter:
        def update(self, n=1, **_):
            counted.append(n)

    cache = cache_latents(sd.vae, paths, TINY_IMAGE_SIZE, Counter())
    assert cache.decoded == [0, 2] and sum(counted) == 3
    assert cache.outcomes[paths[0]] is None and cache.outcomes[paths[2]] is None
    assert list(cache.decode_failures) == [paths[1]] and cache.decode_failures[paths[1]].startswith("OSError")
    latent_side = TINY_IMAGE_SIZE // 2
    assert cache.mean.shape == cache.std.shape == (2, 4, latent_side, latent_side)
    assert cache.scaling_factor == sd.vae.config.scaling_factor
    # A draw is the cached distribution re-sampled: the same generator state gives the same latents.
    rows = torch.tensor([1, 0, 1])
    first = cache.sample(rows, torch.Generator().manual_seed(3))
    again = cache.sample(rows, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)
    draw = torch.randn(first.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, (cache.mean[rows] + cache.std[rows] * draw) * cache.scaling_factor)
    assert not torch.equal(first[0], first[2])  # two draws of one image differ

    empty = cache_latents(sd.vae, [paths[1]], TINY_IMAGE_SIZE)
    assert empty.decoded == [] and empty.mean is None and len(empty.decode_failures) == 1


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_diffusion_loss_is_the_mse_to_the_schedulers_target(tiny_models, tmp_path, prediction_type):
    model = _model_with_prediction_type(tiny_models, tmp_path / "sd", prediction_type)
    sd = load_frozen_sd(str(model), "cpu", torch.float32)
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    hidden = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(1))
    loss = diffusion_loss(sd.unet, sd.noise_scheduler, latents, hidden, torch.Generator().manual_seed(5))

    # The same draws by hand: noise, then timesteps, from the caller's generator.
    generator = torch.Generator().manual_seed(5)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(0, 1000, (2,), generator=generator)
    target = training_target(sd.noise_scheduler, latents, noise, timesteps)
    if prediction_type == "epsilon":
        assert torch.equal(target, noise)
    else:
        torch.testing.assert_close(target, sd.noise_scheduler.get_velocity(latents, noise, timesteps))
        assert not torch.allclose(target, noise)
    prediction = sd.unet(sd.noise_scheduler.add_noise(latents, noise, timesteps), timesteps, hidden, return_dict=False)[
        0
    ]
    torch.testing.assert_close(loss, torch.mean((prediction - target) ** 2))


def test_unknown_prediction_type_in_the_loss_raises(tiny_models):
    class Scheduler:
        class config:  # noqa: N801 (a diffusers config is read by attribute)
            prediction_type = "sample"

    with pytest.raises(ValueError, match="Unknown prediction type 'sample'.*epsilon, v_prediction"):
        check_prediction_type(Scheduler())
    with pytest.raises(ValueError, match="Unknown prediction type"):
        training_target(Scheduler(), torch.zeros(1), torch.zeros(1), torch.zeros(1))


def test_checkpoints_keep_the_newest_and_resume_what_was_saved(tmp_path):
    folder = tmp_path / "checkpoints"
    assert latest_checkpoint(folder) is None
    randomness = RandomStates(seed=7)
    for step in (2, 4, 6):
        torch.randn(3, generator=randomness.generator)  # the run draws between checkpoints
        weights = {"layer.weight": torch.full((2, 2), float(step), dtype=torch.bfloat16)}
        save_checkpoint(
            folder,
            step,
            {"lora": weights},
            {"random_states": randomness.state(), "optimizer": {"lr": step}},
            {"losses": [0.5] * step},
            keep=2,
        )
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-4", "checkpoint-6"]  # no staging left either
    expected_next = torch.randn(3, generator=randomness.generator)

    latest = latest_checkpoint(folder)
    assert latest.step == 6 and latest.record == {"step": 6, "losses": [0.5] * 6}
    weights = latest.weights("lora")["layer.weight"]
    assert weights.dtype == torch.float32 and torch.equal(weights, torch.full((2, 2), 6.0))
    assert latest.state("optimizer") == {"lr": 6} and latest.state("scaler") is None
    resumed = RandomStates(seed=0)
    resumed.restore(latest.state("random_states"))
    torch.testing.assert_close(torch.randn(3, generator=resumed.generator), expected_next)

    (folder / "checkpoint-8").mkdir()  # a folder without state.json is not a checkpoint
    assert latest_checkpoint(folder).step == 6


def test_no_module_chooses_a_device_or_precision_itself():
    """device.py is the only place that asks torch about CUDA or bf16."""
    pattern = re.compile(r"cuda\.is_available|is_bf16_supported|\"cuda\" if|'cuda' if")
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("mpds_pipeline", "benchmarks")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.name != "device.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_no_vision_function_is_over_80_lines():
    vision = sorted((REPO / "mpds_pipeline" / "vision").glob("*.py"))
    assert len(vision) > 15
    long = []
    for path in vision:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
