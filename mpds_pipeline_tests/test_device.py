"""The one device/precision rule (vision/device.py): auto picks CUDA when present, bf16
where the GPU supports it else fp16, fp32 on the CPU; explicit values are honoured;
anything else is a clear error."""

from __future__ import annotations

import pytest
import torch

from mpds_pipeline.vision import device as device_rule
from mpds_pipeline.vision.device import (
    choose_device,
    choose_dtype,
    choose_precision,
    precision_dtype,
    training_precision,
)


@pytest.fixture
def gpu(monkeypatch):
    """Pretend torch sees a GPU; ``gpu(bf16=False)`` makes it one without bf16."""

    def pretend(bf16: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)

    return pretend


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_device_is_cuda_when_present_else_cpu(gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("auto") == choose_device(None) == "cpu"
    gpu()
    assert choose_device("auto") == choose_device(None) == choose_device(" AUTO ") == "cuda"


def test_explicit_devices_are_honoured(no_gpu):
    assert choose_device("cpu") == "cpu"
    assert choose_device("cuda") == "cuda"  # asked for: the caller's torch call says if it is missing
    assert choose_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "tpu", "", "cpu,cuda"])
def test_unknown_device_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"unknown device .*auto, cpu, cuda or cuda:<index>"):
        choose_device(bad)


def test_auto_precision_bf16_where_supported_else_fp16_on_cuda_fp32_on_cpu(gpu):
    assert choose_precision("auto", "cpu") == choose_precision(None, "cpu") == "fp32"
    gpu(bf16=True)
    assert choose_precision("auto", "cuda") == "bf16" and choose_dtype(None, "cuda:0") is torch.bfloat16
    gpu(bf16=False)
    assert choose_precision("auto", "cuda") == "fp16" and choose_dtype("auto", "cuda") is torch.float16
    assert choose_dtype("auto", "cpu") is torch.float32


@pytest.mark.parametrize(
    ("given", "dtype"),
    [
        ("fp16", torch.float16),
        ("float16", torch.float16),
        ("half", torch.float16),
        ("bf16", torch.bfloat16),
        ("BFloat16", torch.bfloat16),
        ("fp32", torch.float32),
        ("no", torch.float32),
        ("float32", torch.float32),
    ],
)
def test_explicit_precision_is_honoured_on_any_device(gpu, given, dtype):
    assert choose_dtype(given, "cpu") is dtype
    gpu(bf16=False)
    assert choose_dtype(given, "cuda") is dtype


@pytest.mark.parametrize("bad", ["fp8", "int8", "double", "bf32"])
def test_unknown_precision_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"unknown precision .*auto, no, fp32, fp16, bf16"):
        choose_precision(bad, "cpu")
    with pytest.raises(ValueError, match="unknown precision"):
        training_precision(bad, "cpu")  # checked on the CPU too, where training ignores it


def test_training_uses_mixed_precision_on_cuda_only(gpu):
    assert [training_precision(p, "cpu") for p in ("auto", "fp16", "bf16", "no")] == ["fp32"] * 4
    gpu(bf16=True)
    assert [training_precision(p, "cuda") for p in ("auto", "fp16", "bf16", "no")] == ["bf16", "fp16", "bf16", "fp32"]


def test_every_precision_name_has_a_dtype():
    assert {precision_dtype(p) for p in device_rule.PRECISIONS if p != "auto"} == {
        torch.float32,
        torch.float16,
        torch.bfloat16,
    }
