"""The FID Inception-v3 in plain ``torch.nn`` (no torchvision), and an FID feature extractor.

FID is comparable with published figures only with the exact network of the original
TensorFlow FID code; this module rebuilds it so pytorch-fid's weights file loads
strictly. How it differs from the ImageNet Inception-v3, and the input protocol:
docs/generation.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import choose_device

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
FID_INPUT_SIZE = 299
FID_FEATURE_DIM = 2048
FID_NUM_CLASSES = 1008
BATCHNORM_EPS = 1e-3  # the TF graph's epsilon; torch's default 1e-5 would shift every activation


class ConvBlock(nn.Module):
    """Convolution without bias, batch norm, ReLU (the only layer type of Inception-v3)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BATCHNORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _row(in_channels: int, out_channels: int) -> ConvBlock:
    """A 1x7 convolution keeping the spatial size."""
    return ConvBlock(in_channels, out_channels, (1, 7), padding=(0, 3))


def _column(in_channels: int, out_channels: int) -> ConvBlock:
    """A 7x1 convolution keeping the spatial size."""
    return ConvBlock(in_channels, out_channels, (7, 1), padding=(3, 0))


def _same_pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    """3x3, stride 1, padded pool; the average excludes the padding as TensorFlow does."""
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pool branches (Mixed_5b-5d)."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBlock(in_channels, 64, 1)
        self.branch5x5_1 = ConvBlock(in_channels, 48, 1)
        self.branch5x5_2 = ConvBlock(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBlock(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBlock(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBlock(96, 96, 3, padding=1)
        self.branch_pool = ConvBlock(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        five = self.branch5x5_2(self.branch5x5_1(x))
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), five, double, self.branch_pool(_same_pool(x, "avg"))], 1)


class ReductionB(nn.Module):
    """35x35 -> 17x17 grid reduction (Mixed_6a)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = ConvBlock(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBlock(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBlock(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBlock(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class MixedC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b-6e)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c = channels_7x7
        self.branch1x1 = ConvBlock(in_channels, 192, 1)
        self.branch7x7_1 = ConvBlock(in_channels, c, 1)
        self.branch7x7_2 = _row(c, c)
        self.branch7x7_3 = _column(c, 192)
        self.branch7x7dbl_1 = ConvBlock(in_channels, c, 1)
        self.branch7x7dbl_2 = _column(c, c)
        self.branch7x7dbl_3 = _row(c, c)
        self.branch7x7dbl_4 = _column(c, c)
        self.branch7x7dbl_5 = _row(c, 192)
        self.branch_pool = ConvBlock(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_same_pool(x, "avg"))], 1)


class ReductionD(nn.Module):
    """17x17 -> 8x8 grid reduction (Mixed_7a)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = ConvBlock(in_channels, 192, 1)
        self.branch3x3_2 = ConvBlock(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBlock(in_channels, 192, 1)
        self.branch7x7x3_2 = _row(192, 192)
        self.branch7x7x3_3 = _column(192, 192)
        self.branch7x7x3_4 = ConvBlock(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([three, seven, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class MixedE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b, Mixed_7c); ``pool`` is "avg" or "max"."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = ConvBlock(in_channels, 320, 1)
        self.branch3x3_1 = ConvBlock(in_channels, 384, 1)
        self.branch3x3_2a = ConvBlock(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBlock(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBlock(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBlock(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBlock(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBlock(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBlock(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(three),
                self.branch3x3_2b(three),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(_same_pool(x, self.pool)),
            ],
            1,
        )


class FidInceptionV3(nn.Module):
    """Inception-v3 as in the TF FID graph; ``forward`` returns the 2048-d pool3 features.

    Expects (N, 3, 299, 299) float input in [-1, 1] (``InceptionFidExtractor`` prepares it).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBlock(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBlock(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBlock(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBlock(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBlock(80, 192, 3)
        self.Mixed_5b = MixedA(192, pool_features=32)  # -> 256 channels
        self.Mixed_5c = MixedA(256, pool_features=64)  # -> 288
        self.Mixed_5d = MixedA(288, pool_features=64)  # -> 288
        self.Mixed_6a = ReductionB(288)  # -> 768
        self.Mixed_6b = MixedC(768, channels_7x7=128)
        self.Mixed_6c = MixedC(768, channels_7x7=160)
        self.Mixed_6d = MixedC(768, channels_7x7=160)
        self.Mixed_6e = MixedC(768, channels_7x7=192)
        self.Mixed_7a = ReductionD(768)  # -> 1280
        self.Mixed_7b = MixedE(1280, pool="avg")  # -> 2048
        self.Mixed_7c = MixedE(2048, pool="max")  # the TF graph's max pool quirk
        self.fc = nn.Linear(FID_FEATURE_DIM, FID_NUM_CLASSES)  # only so the weights file loads strictly
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # Variance-preserving, so that random-init features stay O(1) through 48
                # layers (torch's default init shrinks them to ~1e-8): tests then get
                # meaningful distances. Real weights overwrite this.
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def load_fid_state_dict(weights: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local ``.pth`` file or an http(s) URL (cached by ``torch.hub``)."""
    text = str(weights)
    if text.startswith(("http://", "https://")):
        return torch.hub.load_state_dict_from_url(text, map_location="cpu", progress=False)
    return torch.load(Path(text), map_location="cpu", weights_only=True)


class InceptionFidExtractor:
    """``metrics.fid_features.FeatureExtractor``: uint8 RGB (N, H, W, 3) -> FID Inception pool3 (N, 2048).

    ``weights``: a local ``.pth`` state dict, an http(s) URL (default: pytorch-fid's
    release of the TF FID weights, downloaded once into the torch hub cache), or ``None``
    for a seeded random initialisation (tests; its FID means nothing). Loading is strict:
    a file that does not match the pytorch-fid layout, ``fc`` included, raises.
    Images of any size are resized inside to 299x299, bilinear (as pytorch-fid).
    """

    def __init__(
        self,
        weights: str | Path | None = FID_WEIGHTS_URL,
        device: str | None = None,
        batch_size: int = 64,
        seed: int = 0,
    ):
        self.device = choose_device(device)
        self.batch_size = batch_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FidInceptionV3()
        if weights is not None:
            model.load_state_dict(load_fid_state_dict(weights), strict=True)
        self.model = model.to(self.device).eval()
        source = "random-init" if weights is None else Path(str(weights)).name
        self.name = f"inception-v3-fid:{source}"
        self.feature_dim = FID_FEATURE_DIM

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected uint8 images (N, H, W, 3), got shape {batch.shape}")
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(batch), self.batch_size):
                images = torch.from_numpy(np.ascontiguousarray(batch[start : start + self.batch_size]))
                images = images.to(self.device).permute(0, 3, 1, 2).float() / 255.0
                if images.shape[-2:] != (FID_INPUT_SIZE, FID_INPUT_SIZE):
                    images = F.interpolate(
                        images, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False
                    )
                chunks.append(self.model(2.0 * images - 1.0).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, FID_FEATURE_DIM), dtype=np.float32)
