"""Where the vision stages run, and in which precision: the one rule, for every model.

``"auto"`` picks CUDA when torch sees a GPU and the best precision it supports, else the
CPU in fp32; anything explicit is taken as given, and anything unknown raises a
``ValueError`` naming the accepted values. See docs/generation.md.
"""

from __future__ import annotations

import re
from typing import Literal

Precision = Literal["auto", "no", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "no", "fp32", "fp16", "bf16")
DEVICE_HELP = "auto, cpu, cuda or cuda:<index>"

# Every accepted spelling -> the one precision name it means.
_PRECISION_NAMES = {
    "auto": "auto",
    "no": "fp32",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "bf16": "bf16",
    "bfloat16": "bf16",
}
_DEVICE = re.compile(r"(cpu|cuda(:\d+)?)")


def choose_device(device: str | None = "auto") -> str:
    """``"cuda"``/``"cuda:<n>"``/``"cpu"``: the device a stage runs on."""
    import torch

    text = "auto" if device is None else str(device).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not _DEVICE.fullmatch(text):
        raise ValueError(f"unknown device {device!r}: use {DEVICE_HELP}")
    return text


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def choose_precision(precision: str | None, device: str) -> str:
    """``"fp32"``, ``"fp16"`` or ``"bf16"`` for a model on ``device`` (see the module doc)."""
    import torch

    name = _PRECISION_NAMES.get("auto" if precision is None else str(precision).strip().lower())
    if name is None:
        raise ValueError(
            f"unknown precision {precision!r}: use {', '.join(PRECISIONS)} (or float32, float16, bfloat16)"
        )
    if name != "auto":
        return name
    if not is_cuda(device):
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def precision_dtype(precision: str):
    """The torch dtype of a precision name (``"no"``/``"fp32"``, ``"fp16"``, ``"bf16"``)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[_PRECISION_NAMES[precision]]


def choose_dtype(precision: str | None, device: str):
    """The torch dtype a model on ``device`` is loaded in."""
    return precision_dtype(choose_precision(precision, device))


def training_precision(precision: str | None, device: str) -> str:
    """The mixed precision a training run uses: as ``choose_precision`` on CUDA, fp32 on the CPU."""
    chosen = choose_precision(precision, device)  # validates the name on every device
    return chosen if is_cuda(device) else "fp32"
