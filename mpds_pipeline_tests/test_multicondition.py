"""Multi-condition guidance: equals CFG without actor and caption; each scale moves the output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mpds_pipeline.vision.multicondition import MultiConditionPipeline, prompt_with_actor_tokens
from mpds_pipeline.vision.sampling_settings import GuidanceScales
from mpds_pipeline.vision.tiny_sd import TINY_IMAGE_SIZE

from .caption_controls import render_caption_control

PROMPT = "the red poster of an action film"
STEPS = 3


@pytest.fixture(scope="module")
def pipeline(tiny_models):
    pipe = MultiConditionPipeline.from_pretrained(tiny_models.sd, controlnet=tiny_models.controlnet, device="cpu")
    # A fresh from_unet ControlNet has zero output convolutions; give them weights so c matters.
    torch.manual_seed(0)
    with torch.no_grad():
        for block in [*pipe.controlnet.controlnet_down_blocks, pipe.controlnet.controlnet_mid_block]:
            block.weight.normal_(0, 0.3)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def control_image():
    return render_caption_control("Heat", ["Al Pacino"], size=TINY_IMAGE_SIZE * 4)[1]


def _run(pipe, **kwargs):
    return pipe(
        PROMPT,
        num_inference_steps=STEPS,
        height=TINY_IMAGE_SIZE,
        width=TINY_IMAGE_SIZE,
        generator=torch.Generator().manual_seed(7),
        output_type="np",
        **kwargs,
    )


def test_without_actor_and_caption_it_is_classifier_free_guidance(pipeline):
    for s1 in (1.5, 7.5):
        stock = pipeline.base(
            PROMPT,
            num_inference_steps=STEPS,
            guidance_scale=s1,
            height=TINY_IMAGE_SIZE,
            width=TINY_IMAGE_SIZE,
            generator=torch.Generator().manual_seed(7),
            output_type="np",
        ).images
        ours = _run(pipeline, scales=GuidanceScales(prompt=s1, actor=5.0, caption=5.0))
        np.testing.assert_array_equal(ours, stock)


def test_each_scale_moves_the_output(pipeline, control_image):
    actor_prompt = PROMPT + ", starring a b c"
    reference = _run(
        pipeline, actor_prompt=actor_prompt, control_image=control_image, scales=GuidanceScales(7.5, 2.0, 2.0)
    )
    assert reference.shape == (1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)
    for changed in (GuidanceScales(3.0, 2.0, 2.0), GuidanceScales(7.5, 6.0, 2.0), GuidanceScales(7.5, 2.0, 6.0)):
        moved = _run(pipeline, actor_prompt=actor_prompt, control_image=control_image, scales=changed)
        assert np.abs(moved - reference).max() > 1e-4, changed


def test_zero_extra_scales_match_cfg_and_latents_are_seeded(pipeline, control_image):
    plain = _run(pipeline, scales=GuidanceScales(7.5))
    silent = _run(
        pipeline,
        actor_prompt=PROMPT + ", starring a",
        control_image=control_image,
        scales=GuidanceScales(7.5, 0.0, 0.0),
    )
    # s2 = s3 = 0 cancels the extra branches up to batched-kernel rounding
    np.testing.assert_allclose(silent, plain, atol=1e-4)
    np.testing.assert_array_equal(_run(pipeline, scales=GuidanceScales(7.5)), plain)


def test_caption_only_branch_and_prompt_with_tokens(pipeline, control_image):
    plain = _run(pipeline)
    captioned = _run(pipeline, control_image=control_image, scales=GuidanceScales(7.5, 2.0, 4.0))
    assert np.abs(captioned - plain).max() > 1e-4
    # A name in the prompt becomes its token; an absent one's token goes first, where no cut reaches it.
    assert prompt_with_actor_tokens("Heat, starring Al Pacino", ["Al Pacino", "Val Kilmer"], ["<nm1>", "<nm2>"]) == (
        "<nm2>, Heat, starring <nm1>"
    )
