"""The localized attention constraint (Brush Your Text, Zhang et al., AAAI 2024) on the stock UNet.

A diffusers attention processor, set on the UNet's cross-attention for one sampling
call, ties each caption phrase's tokens to the boxes where it is drawn and the actor
tokens to the rest of the poster. With the constraint off it is never installed.
What is constrained and what it costs: docs/generation.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .sampling_settings import LocalizedAttentionSettings

MASK_ALIGNMENT = 8  # elements; the memory-efficient attention kernel's stride alignment for a bias
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image


@dataclass
class TokenConstraint:
    """Token positions of one row that attend only inside (``inside=True``) or only
    outside the union of ``boxes``."""

    positions: list[int]
    boxes: list[Box]
    inside: bool
    label: str = ""


@dataclass
class RowConstraints:
    constraints: list[TokenConstraint] = field(default_factory=list)


def prompt_token_ids(tokenizer, prompt: str) -> list[int]:
    """The ids the pipeline's text encoder sees for ``prompt`` (BOS first, truncated to 77)."""
    return tokenizer(prompt, truncation=True, max_length=tokenizer.model_max_length).input_ids


def find_phrase(ids: Sequence[int], phrase_ids: Sequence[int], taken: set[int] | None = None) -> list[int]:
    """Positions of every occurrence of ``phrase_ids`` in ``ids`` not overlapping ``taken``."""
    taken = taken if taken is not None else set()
    n = len(phrase_ids)
    found: list[int] = []
    if n == 0:
        return found
    i = 0
    while i + n <= len(ids):
        window = range(i, i + n)
        if list(ids[i : i + n]) == list(phrase_ids) and not taken.intersection(window):
            found.extend(window)
            i += n
        else:
            i += 1
    taken.update(found)
    return found


def row_constraints(
    tokenizer,
    prompt: str,
    caption_phrases: Sequence[tuple[str, list[Box]]],
    actor_phrases: Sequence[str],
    caption_boxes: list[Box],
    convert=None,
) -> RowConstraints:
    """The constraints of one row: each caption phrase to its own boxes, actor tokens outside
    ``caption_boxes``. ``convert`` is the pipeline's textual-inversion prompt conversion
    (``maybe_convert_prompt``), applied to the prompt and phrases as ``encode_prompt`` does."""
    convert = convert or (lambda text: text)
    ids = prompt_token_ids(tokenizer, convert(prompt))
    taken: set[int] = {0}  # BOS is never constrained: every query keeps a token to attend to
    row = RowConstraints()
    for phrase in actor_phrases:  # placeholders first: they are exact, unambiguous tokens
        positions = find_phrase(ids, _phrase_ids(tokenizer, convert(phrase)), taken)
        if positions:
            row.constraints.append(TokenConstraint(positions, caption_boxes, inside=False, label=phrase))
    for text, boxes in caption_phrases:
        positions = find_phrase(ids, _phrase_ids(tokenizer, convert(text)), taken)
        if positions:
            row.constraints.append(TokenConstraint(positions, boxes, inside=True, label=text))
    return row


def _phrase_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids if text.strip() else []


def box_mask(boxes: Sequence[Box], height: int, width: int) -> torch.Tensor:
    """(height * width,) bool: the grid cells that overlap any box (row-major, like the queries)."""
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    mask = torch.zeros(height, width, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        in_rows = (rows / height < y1) & ((rows + 1) / height > y0)
        in_cols = (cols / width < x1) & ((cols + 1) / width > x0)
        mask |= in_rows[:, None] & in_cols[None, :]
    return mask.reshape(-1)


def grid_for(query_length: int, latent_height: int, latent_width: int) -> tuple[int, int]:
    """The (h, w) of a UNet level with ``query_length`` positions: the latent halved k times,
    rounding up as stride-2 convolutions do."""
    h, w = latent_height, latent_width
    for _ in range(16):
        if h * w == query_length:
            return h, w
        if h == 1 and w == 1:
            break
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    raise ValueError(f"no UNet level of a {latent_height}x{latent_width} latent has {query_length} positions")


class LocalizedAttention:
    """The per-call state shared by every ``attn2`` processor: rows, their constraints, and
    the additive masks built once per resolution."""

    def __init__(
        self, rows: Sequence[RowConstraints], latent_size: tuple[int, int], settings: LocalizedAttentionSettings
    ):
        self.rows = list(rows)
        self.latent_size = latent_size
        self.settings = settings
        self.record: list[dict] | None = None  # tests: set to [] to keep each layer's probabilities
        self._masks: dict[tuple, torch.Tensor] = {}

    @property
    def active(self) -> bool:
        return any(row.constraints for row in self.rows)

    @property
    def n_constrained_tokens(self) -> int:
        """Token positions under a constraint, summed over the rows."""
        return sum(len(c.positions) for row in self.rows for c in row.constraints)

    def disallowed(self, query_length: int, key_length: int) -> torch.Tensor:
        """(rows, queries, keys) bool: the (query, token) pairs the constraint removes."""
        h, w = grid_for(query_length, *self.latent_size)
        out = torch.zeros(len(self.rows), query_length, key_length, dtype=torch.bool)
        for b, row in enumerate(self.rows):
            for constraint in row.constraints:
                region = box_mask(constraint.boxes, h, w)
                outside = ~region if constraint.inside else region
                positions = [p for p in constraint.positions if p < key_length]
                out[b][:, positions] |= outside[:, None]
        return out

    def additive_mask(self, query_length: int, key_length: int, dtype, device) -> torch.Tensor:
        """(rows, 1, queries, keys): 0 where allowed, the penalty where not."""
        key = (query_length, key_length, dtype, device)
        if key not in self._masks:
            blocked = self.disallowed(query_length, key_length).to(device)
            # A slice of a buffer whose rows are 8-aligned: the memory-efficient SDPA kernel
            # takes it as it is, instead of padding a copy expanded over every head.
            aligned = -(-key_length // MASK_ALIGNMENT) * MASK_ALIGNMENT
            buffer = torch.zeros(len(self.rows), 1, query_length, aligned, dtype=dtype, device=device)
            mask = buffer[..., :key_length]
            mask.masked_fill_(blocked[:, None], self.settings.penalty)
            self._masks[key] = mask
        return self._masks[key]


class LocalizedCrossAttnProcessor:
    """``AttnProcessor2_0`` for cross-attention, plus the state's additive mask."""

    def __init__(self, state: LocalizedAttention, name: str = ""):
        self.state = state
        self.name = name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        if encoder_hidden_states is None:
            raise ValueError("the localized attention processor is for cross-attention (attn2) layers only")
        batch_size, query_length, _ = hidden_states.shape
        if batch_size != len(self.state.rows):
            raise ValueError(f"{self.name}: batch of {batch_size} rows, constraints for {len(self.state.rows)}")
        key_length = encoder_hidden_states.shape[1]

        mask = self.state.additive_mask(query_length, key_length, hidden_states.dtype, hidden_states.device)
        if attention_mask is not None:
            prepared = attn.prepare_attention_mask(attention_mask, key_length, batch_size)
            mask = mask + prepared.view(batch_size, attn.heads, -1, prepared.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if self.state.record is None:
            hidden_states = F.scaled_dot_product_attention(
                query, key, value, attn_mask=mask, dropout_p=0.0, scale=attn.scale
            )
        else:  # explicit maps, for tests: the same attention, with the probabilities kept
            scores = (query @ key.transpose(-1, -2)) * attn.scale
            probabilities = (scores + mask).softmax(dim=-1)
            hidden_states = probabilities @ value
            self.state.record.append(
                {
                    "layer": self.name,
                    "scores": scores.detach().cpu(),
                    "probabilities": probabilities.detach().cpu(),
                    "grid": grid_for(query_length, *self.state.latent_size),
                }
            )

        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def cross_attention_modules(unet) -> Iterator[tuple[str, object]]:
    """The UNet's cross-attention layers (``...attn2``)."""
    for name, module in unet.named_modules():
        if name.endswith("attn2") and getattr(module, "is_cross_attention", False):
            yield name, module


@contextmanager
def localized_attention(unet, state: LocalizedAttention):
    """Install the constraint on every ``attn2`` of ``unet`` for the block; restore after."""
    previous = {}
    try:
        for name, module in cross_attention_modules(unet):
            previous[name] = module.processor
            module.set_processor(LocalizedCrossAttnProcessor(state, name))
        if not previous:
            raise ValueError("the UNet has no cross-attention (attn2) layers to constrain")
        yield state
    finally:
        modules = dict(cross_attention_modules(unet))
        for name, processor in previous.items():
            modules[name].set_processor(processor)
