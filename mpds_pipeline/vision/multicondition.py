"""Multi-condition guided generation (MPDS appendix, eq. 1-3).

Classifier-free guidance extended to the prompt, the actor's learned token and the
caption's ControlNet, all branches in one batched UNet call per step, on top of a stock
``StableDiffusionPipeline``. The equation and how the branches are batched:
docs/generation.md.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from .device import choose_device, choose_dtype
from .localized_attention import (
    LocalizedAttention,
    LocalizedAttentionSettings,
    RowConstraints,
    localized_attention,
    row_constraints,
)
from .sampling_settings import GuidanceScales


def prompt_with_actor_tokens(prompt: str, actor_names: list[str], actor_tokens: list[str], tokenizer=None) -> str:
    """The ``a`` prompt: each actor's name replaced by its token, tokens whose name is
    absent in front, every token inside CLIP's window (``curate.prompts.actor_prompt``;
    pass the pipeline's tokenizer, which knows the tokens, for an exact count)."""
    from ..curate.prompts import actor_prompt

    return actor_prompt(prompt, actor_names, actor_tokens, tokenizer).text


class MultiConditionPipeline:
    """Stable Diffusion + optional ControlNet with the MPDS multi-condition guidance."""

    def __init__(self, base, controlnet=None):
        self.base = base  # a diffusers StableDiffusionPipeline
        self.controlnet = controlnet
        self.last_constraint: LocalizedAttention | None = None  # the last call's, for tests and reports
        # The last call's text tokens beyond the encoder's window (prompt and actor
        # prompt together): CLIP drops them, and with them any actor token they held.
        self.last_truncated_tokens = 0

    def truncated_tokens(self, text: str | None) -> int:
        """How many of ``text``'s tokens the text encoder would drop (BOS/EOS counted)."""
        if not text:
            return 0
        tokenizer = self.base.tokenizer
        return max(0, len(tokenizer(text, truncation=False)["input_ids"]) - tokenizer.model_max_length)

    @classmethod
    def from_pretrained(
        cls,
        base_model: str | Path,
        controlnet: str | Path | None = None,
        lora_dir: str | Path | None = None,
        embeddings: dict[str, Path] | None = None,
        device: str | None = None,
        torch_dtype: torch.dtype | None = None,
    ) -> MultiConditionPipeline:
        """Load the base model, its LoRA, actor embeddings (token -> file) and the ControlNet."""
        from diffusers import ControlNetModel, StableDiffusionPipeline

        device = choose_device(device)
        dtype = torch_dtype or choose_dtype("auto", device)
        base = StableDiffusionPipeline.from_pretrained(
            base_model, dtype=dtype, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
        if lora_dir is not None:
            base.load_lora_weights(lora_dir)
        for token, path in (embeddings or {}).items():
            base.load_textual_inversion(path, token=token)
        net = ControlNetModel.from_pretrained(controlnet, dtype=dtype).to(device) if controlnet else None
        return cls(base.to(device), net)

    @property
    def device(self) -> torch.device:
        return self.base.unet.device

    def set_progress_bar_config(self, **kwargs) -> None:
        self.base.set_progress_bar_config(**kwargs)

    def _control_tensor(self, image, height: int, width: int) -> torch.Tensor:
        # ControlNet expects RGB in [0, 1], as diffusers' control image processor gives it.
        from diffusers.image_processor import VaeImageProcessor

        processor = VaeImageProcessor(
            vae_scale_factor=self.base.vae_scale_factor, do_convert_rgb=True, do_normalize=False
        )
        tensor = processor.preprocess(image, height=height, width=width).to(dtype=torch.float32)
        return tensor.to(self.device, dtype=self.controlnet.dtype)

    def _constraint(self, branch_prompts, layout, actor_tokens, attention, latent_size) -> LocalizedAttention | None:
        """The per-row constraint, or None when there is nothing to constrain (stock processors)."""
        if layout is None or attention is None or not attention.enabled:
            return None
        regions = layout.normalised()
        caption_phrases = [(region.text, region.boxes) for region in regions]
        caption_boxes = [box for region in regions for box in region.boxes]
        convert = getattr(self.base, "maybe_convert_prompt", None)
        tokenizer = self.base.tokenizer
        rows = [
            row_constraints(
                tokenizer,
                text,
                caption_phrases,
                actor_tokens,
                caption_boxes,
                convert=(lambda t: convert(t, tokenizer)) if convert else None,
            )
            if branch in attention.branches and text is not None
            else RowConstraints()
            for branch, text in branch_prompts
        ]
        state = LocalizedAttention(rows, latent_size, attention)
        return state if state.active else None

    def _constrained(self, constraint: LocalizedAttention | None):
        if constraint is None:
            return contextlib.nullcontext()
        return localized_attention(self.base.unet, constraint)

    def _text_branches(self, prompt, actor_prompt, negative_prompt, with_control: bool):
        """The text embeddings of the guidance rows [0, p] (+ [a]) (+ [c]: the caption adds
        to the last branch, so it repeats that row's text), and each row's (branch, prompt)."""
        device = self.device
        prompt_embeds, negative_embeds = self.base.encode_prompt(
            prompt, device, 1, True, negative_prompt=negative_prompt
        )
        rows, branch_prompts = [negative_embeds, prompt_embeds], [("0", None), ("p", prompt)]
        if actor_prompt is not None:
            rows.append(self.base.encode_prompt(actor_prompt, device, 1, False)[0])
            branch_prompts.append(("a", actor_prompt))
        if with_control:
            rows.append(rows[-1])
            branch_prompts.append(("c", branch_prompts[-1][1]))
        return torch.cat(rows), branch_prompts

    def _guided_noise(
        self, latents, t, text_batch, control, conditioning_scale: float, scales: GuidanceScales, has_actor: bool
    ):
        """One batched UNet call over every row (the ControlNet on the last row only, zero
        residuals for the others) combined by the nested guidance of eq. 1-3."""
        base, n_rows = self.base, text_batch.shape[0]
        model_input = base.scheduler.scale_model_input(torch.cat([latents] * n_rows), t)
        residuals = {}
        if control is not None:
            down, mid = self.controlnet(
                model_input[-1:],
                t,
                encoder_hidden_states=text_batch[-1:],
                controlnet_cond=control,
                conditioning_scale=conditioning_scale,
                return_dict=False,
            )

            def only_last_row(residual):
                zeros = residual.new_zeros((n_rows - 1, *residual.shape[1:]))
                return torch.cat([zeros, residual])

            residuals = {
                "down_block_additional_residuals": [only_last_row(r) for r in down],
                "mid_block_additional_residual": only_last_row(mid),
            }
        noise = base.unet(model_input, t, encoder_hidden_states=text_batch, return_dict=False, **residuals)[0]
        branches = noise.chunk(n_rows)
        noise_pred = branches[0] + scales.prompt * (branches[1] - branches[0])
        previous = branches[1]
        if has_actor:
            noise_pred = noise_pred + scales.actor * (branches[2] - previous)
            previous = branches[2]
        if control is not None:
            noise_pred = noise_pred + scales.caption * (branches[-1] - previous)
        return noise_pred

    @torch.no_grad()
    def __call__(
        self,
        prompt: str,
        actor_prompt: str | None = None,
        control_image=None,
        scales: GuidanceScales | None = None,
        num_inference_steps: int = 50,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        negative_prompt: str | None = None,
        controlnet_conditioning_scale: float = 1.0,
        output_type: str = "pil",
        caption_layout=None,
        actor_tokens: list[str] | None = None,
        attention: LocalizedAttentionSettings | None = None,
    ):
        """One image for ``prompt``; ``actor_prompt`` adds the actor branch, ``control_image`` the caption branch.

        ``caption_layout`` (a ``caption_control.CaptionLayout``) with ``attention`` enabled
        turns on the localized attention constraint for the rows ``attention.branches``
        names; ``actor_tokens`` are the placeholders (``<nm0000206>``) it keeps outside
        the caption boxes.

        Returns what ``output_type`` asks for, as diffusers does: a list of PIL images,
        an (1, H, W, 3) numpy array for "np", or the final latents for "latent".
        """
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps

        base, scales = self.base, scales or GuidanceScales()
        if control_image is not None and self.controlnet is None:
            raise ValueError("a caption control image needs a ControlNet")
        height = height or base.unet.config.sample_size * base.vae_scale_factor
        width = width or base.unet.config.sample_size * base.vae_scale_factor
        device = self.device

        self.last_truncated_tokens = self.truncated_tokens(prompt) + self.truncated_tokens(actor_prompt)
        text_batch, branch_prompts = self._text_branches(
            prompt, actor_prompt, negative_prompt, control_image is not None
        )
        control = self._control_tensor(control_image, height, width) if control_image is not None else None
        constraint = self._constraint(
            branch_prompts,
            caption_layout,
            actor_tokens or [],
            attention,
            (height // base.vae_scale_factor, width // base.vae_scale_factor),
        )

        timesteps, num_inference_steps = retrieve_timesteps(base.scheduler, num_inference_steps, device)
        latents = base.prepare_latents(
            1, base.unet.config.in_channels, height, width, text_batch.dtype, device, generator, latents
        )
        extra_step_kwargs = base.prepare_extra_step_kwargs(generator, 0.0)

        with base.progress_bar(total=num_inference_steps) as progress, self._constrained(constraint):
            for t in timesteps:
                noise_pred = self._guided_noise(
                    latents,
                    t,
                    text_batch,
                    control,
                    controlnet_conditioning_scale,
                    scales,
                    has_actor=actor_prompt is not None,
                )
                latents = base.scheduler.step(noise_pred, t, latents, **extra_step_kwargs, return_dict=False)[0]
                progress.update()

        self.last_constraint = constraint
        if output_type == "latent":
            return latents
        image = base.vae.decode(latents / base.vae.config.scaling_factor, return_dict=False, generator=generator)[0]
        return base.image_processor.postprocess(image, output_type=output_type, do_denormalize=[True])
