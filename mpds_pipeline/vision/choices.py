"""Words the localized attention settings accept, defined here once: localized_attention.py
loads torch, and the asset config that offers these choices must load without it (the
code location starts in about a second)."""

from __future__ import annotations

from typing import Literal, get_args

# "hard": -inf on the logits outside the region; "bias": -bias on them.
AttentionMode = Literal["hard", "bias"]
ATTENTION_MODES: tuple[AttentionMode, ...] = get_args(AttentionMode)
# The benchmark's setting: a mode, or "off" (no processor is installed).
AttentionSetting = Literal[AttentionMode, "off"]
# The conditional guidance rows (prompt, actor, caption); row 0, the empty prompt, has
# nothing to constrain.
GuidanceBranch = Literal["p", "a", "c"]
GUIDANCE_BRANCHES: tuple[GuidanceBranch, ...] = get_args(GuidanceBranch)
