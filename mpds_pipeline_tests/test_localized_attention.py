"""The localized attention constraint on the tiny UNet: where constrained tokens may be
attended, per guidance row, hard and biased; and that off means the stock images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mpds_pipeline.vision.caption_control import CaptionLayout, TextRegion
from mpds_pipeline.vision.localized_attention import (
    LocalizedAttentionSettings,
    box_mask,
    find_phrase,
    grid_for,
    prompt_token_ids,
)
from mpds_pipeline.vision.multicondition import MultiConditionPipeline
from mpds_pipeline.vision.sampling_settings import GuidanceScales
from mpds_pipeline.vision.tiny_sd import TINY_IMAGE_SIZE

from .caption_controls import render_caption_control

PROMPT = "heat, a crime film starring al pacino"
ACTOR = "<nm0000199>"
ACTOR_PROMPT = f"heat, a crime film starring {ACTOR}"
# Title on the left half, the name in the top-right quarter (pixels of a 100x100 control).
LAYOUT = CaptionLayout(
    100, 100, [TextRegion("title", "Heat", [(0, 0, 50, 100)]), TextRegion("name", "Al Pacino", [(50, 0, 100, 25)])]
)
GRID = 8  # the tiny UNet's cross-attention runs on the 16x16 latent halved once
COLUMNS = np.tile(np.arange(GRID), GRID)
ROWS = np.repeat(np.arange(GRID), GRID)
TITLE_CELLS = COLUMNS < GRID // 2
NAME_CELLS = (COLUMNS >= GRID // 2) & (ROWS < GRID // 4)


@pytest.fixture(scope="module")
def pipeline(tiny_models, tmp_path_factory):
    from safetensors.torch import save_file

    pipe = MultiConditionPipeline.from_pretrained(tiny_models.sd, controlnet=tiny_models.controlnet, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():  # a fresh from_unet ControlNet outputs zeros: give it weights so c matters
        for block in [*pipe.controlnet.controlnet_down_blocks, pipe.controlnet.controlnet_mid_block]:
            block.weight.normal_(0, 0.3)
    embedding = tmp_path_factory.mktemp("ti") / "nm0000199.safetensors"
    save_file({ACTOR: torch.randn(1, pipe.base.text_encoder.config.hidden_size)}, str(embedding))
    pipe.base.load_textual_inversion(str(embedding), token=ACTOR)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def control_image():
    return render_caption_control("Heat", ["Al Pacino"], size=TINY_IMAGE_SIZE * 4)[1]


def _run(pipe, control_image, attention=None, record=False, **kwargs):
    """Both branches on (rows 0, p, a, c); returns the image and, with ``record``, the maps."""
    records = []
    if record:
        from mpds_pipeline.vision import localized_attention as module

        original = module.LocalizedAttention.__init__

        def recording_init(self, *args, **kw):
            original(self, *args, **kw)
            self.record = records

        module.LocalizedAttention.__init__ = recording_init
    try:
        image = pipe(
            PROMPT,
            actor_prompt=ACTOR_PROMPT,
            control_image=control_image,
            scales=GuidanceScales(7.5, 2.0, 2.0),
            num_inference_steps=2,
            height=TINY_IMAGE_SIZE,
            width=TINY_IMAGE_SIZE,
            generator=torch.Generator().manual_seed(3),
            output_type="np",
            caption_layout=kwargs.pop("layout", LAYOUT),
            actor_tokens=[ACTOR],
            attention=attention,
            **kwargs,
        )
    finally:
        if record:
            module.LocalizedAttention.__init__ = original
    return image, records


def _positions(pipe, prompt, phrase):
    ids = prompt_token_ids(pipe.base.tokenizer, pipe.base.maybe_convert_prompt(prompt, pipe.base.tokenizer))
    found = find_phrase(ids, pipe.base.tokenizer(phrase, add_special_tokens=False).input_ids)
    assert found, phrase
    return found


def test_phrases_grids_and_boxes():
    assert find_phrase([0, 5, 6, 7, 5, 6, 1], [5, 6]) == [1, 2, 4, 5]
    assert find_phrase([0, 5, 6, 7], [5, 6], taken={2}) == []
    assert grid_for(64 * 64, 64, 64) == (64, 64) and grid_for(8 * 8, 64, 64) == (8, 8)
    assert grid_for(12 * 16, 96, 128) == (12, 16) and grid_for(5 * 3, 9, 5) == (5, 3)  # odd sizes round up
    with pytest.raises(ValueError):
        grid_for(7, 64, 64)
    mask = box_mask([(0.0, 0.0, 0.5, 0.25)], 4, 4).reshape(4, 4)
    assert mask[0, :2].all() and not mask[1:].any() and not mask[:, 2:].any()
    assert box_mask([(0.3, 0.3, 0.35, 0.35)], 2, 2).sum() == 1  # a small box still claims its cell


def test_hard_constraint_zeroes_constrained_tokens_outside_their_region(pipeline, control_image):
    _, records = _run(pipeline, control_image, LocalizedAttentionSettings(mode="hard"), record=True)
    assert records and all(r["grid"] == (GRID, GRID) for r in records)
    title_p = _positions(pipeline, PROMPT, "heat")
    name_p = _positions(pipeline, PROMPT, "al pacino")
    title_a = _positions(pipeline, ACTOR_PROMPT, "heat")
    actor_a = _positions(pipeline, ACTOR_PROMPT, ACTOR)
    for record in records:
        probabilities, scores = record["probabilities"], record["scores"]
        assert probabilities.shape[0] == 4  # rows 0, p, a, c in one batch
        # row 0 (the empty prompt) is untouched: a plain softmax
        torch.testing.assert_close(probabilities[0], scores[0].softmax(-1))
        for row, title, names in ((1, title_p, name_p), (2, title_a, []), (3, title_a, [])):
            maps = probabilities[row]  # (heads, queries, tokens)
            assert (maps[:, ~TITLE_CELLS][..., title] == 0).all()
            assert (maps[:, TITLE_CELLS][..., title] > 0).all()
            if names:
                assert (maps[:, ~NAME_CELLS][..., names] == 0).all()
                assert (maps[:, NAME_CELLS][..., names] > 0).all()
        for row in (2, 3):  # the actor token stays off the lettering
            maps = probabilities[row]
            assert (maps[:, TITLE_CELLS | NAME_CELLS][..., actor_a] == 0).all()
            assert (maps[:, ~(TITLE_CELLS | NAME_CELLS)][..., actor_a] > 0).all()
        assert torch.isfinite(probabilities).all()


def test_bias_mode_lowers_logits_by_the_set_bias(pipeline, control_image):
    bias = 3.0
    _, records = _run(pipeline, control_image, LocalizedAttentionSettings(mode="bias", bias=bias), record=True)
    title, names = _positions(pipeline, PROMPT, "heat"), _positions(pipeline, PROMPT, "al pacino")
    assert records
    for record in records:
        scores, probabilities = record["scores"][1], record["probabilities"][1]  # row p
        expected_bias = torch.zeros(scores.shape[1:])
        expected_bias[torch.from_numpy(~TITLE_CELLS)[:, None] & _columns(title, scores.shape[-1])] = -bias
        expected_bias[torch.from_numpy(~NAME_CELLS)[:, None] & _columns(names, scores.shape[-1])] = -bias
        torch.testing.assert_close(probabilities, (scores + expected_bias).softmax(-1))
        # odds of a title token against BOS, outside the title: exp(-bias) times the free odds
        q = int(np.flatnonzero(~TITLE_CELLS)[0])
        odds = probabilities[:, q, title[0]] / probabilities[:, q, 0]
        free = torch.exp(scores[:, q, title[0]] - scores[:, q, 0])
        torch.testing.assert_close(odds, free * math.exp(-bias))
        assert (probabilities[:, torch.from_numpy(~TITLE_CELLS)][..., title] > 0).all()


def _columns(positions, length):
    columns = torch.zeros(length, dtype=torch.bool)
    columns[positions] = True
    return columns[None, :]


def test_recorded_maps_are_what_the_sdpa_path_computes(pipeline, control_image):
    settings = LocalizedAttentionSettings(mode="hard")
    fast, _ = _run(pipeline, control_image, settings)
    explicit, _ = _run(pipeline, control_image, settings, record=True)
    np.testing.assert_allclose(fast, explicit, atol=1e-5)


def test_off_is_bitwise_the_stock_path_and_processors_come_back(pipeline, control_image):
    processors = dict(pipeline.base.unet.attn_processors)
    stock, _ = _run(pipeline, control_image, attention=None, layout=None)
    off, _ = _run(pipeline, control_image, LocalizedAttentionSettings(enabled=False))
    np.testing.assert_array_equal(off, stock)
    constrained, _ = _run(pipeline, control_image, LocalizedAttentionSettings())
    assert np.abs(constrained - stock).max() > 1e-4
    assert dict(pipeline.base.unet.attn_processors) == processors  # the very same objects
    again, _ = _run(pipeline, control_image, attention=None, layout=None)
    np.testing.assert_array_equal(again, stock)


def test_branches_choose_the_constrained_rows(pipeline, control_image):
    _, records = _run(pipeline, control_image, LocalizedAttentionSettings(branches=("c",)), record=True)
    record = records[0]
    for row in (0, 1, 2):
        torch.testing.assert_close(record["probabilities"][row], record["scores"][row].softmax(-1))
    assert (record["probabilities"][3][:, ~TITLE_CELLS][..., _positions(pipeline, ACTOR_PROMPT, "heat")] == 0).all()
    with pytest.raises(ValueError):
        LocalizedAttentionSettings(branches=("x",))
    with pytest.raises(ValueError):
        LocalizedAttentionSettings(mode="soft")


# --- in benchmark generation ------------------------------------------------------------


def _controls(tmp_path, name, prompts, **settings):
    from mpds_pipeline.vision.caption_control import CaptionControlSettings, render_caption_controls

    folder = tmp_path / name
    render_caption_controls(
        [(p.prompt_id, p.title, p.actors) for p in prompts], folder, CaptionControlSettings(**settings)
    )
    return folder


def test_generation_reads_the_caption_controls_asset_files(tiny_models, tmp_path, monkeypatch):
    from matplotlib import font_manager

    from mpds_pipeline.vision.caption_control import read_caption_control
    from mpds_pipeline.vision.generation import BenchmarkPrompt, MethodSpec, generate_benchmark_images
    from mpds_pipeline.vision.sampling_settings import GenerationSettings

    prompts = [BenchmarkPrompt("tt0000001", PROMPT, "Heat", ["Al Pacino"], [199])]
    serif = font_manager.findfont(font_manager.FontProperties(family="DejaVu Serif"))
    folders = {
        "sans": _controls(tmp_path, "sans", prompts, size=96),
        "serif": _controls(tmp_path, "serif", prompts, size=64, font_path=serif),
    }
    seen = {}
    original = MultiConditionPipeline.__call__

    def spy(self, prompt, **kwargs):
        seen[current] = kwargs
        return original(self, prompt, **kwargs)

    monkeypatch.setattr(MultiConditionPipeline, "__call__", spy)
    settings = GenerationSettings(num_inference_steps=1, height=32, width=32, device="cpu")
    for current, folder in folders.items():
        method = MethodSpec(
            "ours",
            "multicondition",
            model=str(tiny_models.sd),
            controlnet=str(tiny_models.controlnet),
            caption_controls=folder,
        )
        generate_benchmark_images([method], prompts, tmp_path / current, settings)
    for name, folder in folders.items():
        written = read_caption_control(folder, "tt0000001")
        np.testing.assert_array_equal(np.asarray(seen[name]["control_image"]), np.asarray(written.canny))
        assert seen[name]["caption_layout"] == written.layout
    assert seen["sans"]["control_image"].size == (96, 96) and seen["serif"]["control_image"].size == (64, 64)
    assert seen["sans"]["caption_layout"].normalised() != seen["serif"]["caption_layout"].normalised()


def test_generation_off_switch_is_bitwise_and_the_ablation_row_differs(tiny_models, tmp_path):
    from PIL import Image

    from mpds_pipeline.vision.generation import BenchmarkPrompt, MethodSpec, generate_benchmark_images
    from mpds_pipeline.vision.sampling_settings import GenerationSettings

    prompts = [BenchmarkPrompt("tt0000001", PROMPT, "Heat", ["Al Pacino"], [199])]
    mpds = dict(
        model=str(tiny_models.sd),
        controlnet=str(tiny_models.controlnet),
        caption_controls=_controls(tmp_path, "c", prompts, size=64),
    )
    methods = [
        MethodSpec("full", "multicondition", **mpds),
        MethodSpec("w/o localized attention", "multicondition", **mpds, use_localized_attention=False),
    ]

    def images(attention):
        settings = GenerationSettings(num_inference_steps=2, height=32, width=32, device="cpu", attention=attention)
        manifest = generate_benchmark_images(methods, prompts, tmp_path / f"out-{attention.enabled}", settings)
        return [np.asarray(Image.open(path)) for path in manifest["image_path"]]

    full_on, without_on = images(LocalizedAttentionSettings())
    full_off, without_off = images(LocalizedAttentionSettings(enabled=False))
    np.testing.assert_array_equal(full_off, without_on)  # off by config == the ablation row == stock
    np.testing.assert_array_equal(without_off, without_on)
    assert np.abs(full_on.astype(int) - without_on.astype(int)).max() > 0
