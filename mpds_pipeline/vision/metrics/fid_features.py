"""The feature extractors FID can use, and the setting string that picks one.

The usual Inception-v3 pool features need torchvision, which does not import beside the
CPU torch here, so the default is ``inception.InceptionFidExtractor`` (the TF FID
Inception-v3 rebuilt in plain torch, comparable with published FID); a TorchScript FID
Inception, CLIP image embeddings ("CLIP-FID", comparable within one run only) and a tiny
random projection for tests are the alternatives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..device import choose_device
from .clip_models import load_clip, pooled_output
from .clip_score import DEFAULT_CLIP_MODEL


class FeatureExtractor(Protocol):
    """Maps a batch of uint8 RGB images (N, H, W, 3) to features (N, feature_dim)."""

    name: str
    feature_dim: int

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TinyFeatureExtractor:
    """A fixed random projection of 8x8 average-pooled pixels: for tests only."""

    def __init__(self, feature_dim: int = 16, seed: int = 0):
        self.name = f"tiny-random-projection-{feature_dim}"
        self.feature_dim = feature_dim
        self._projection = np.random.default_rng(seed).standard_normal((8 * 8 * 3, feature_dim)) / 14.0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, h, w, _ = batch.shape
        pooled = batch[:, : h - h % 8, : w - w % 8].reshape(n, 8, (h - h % 8) // 8, 8, (w - w % 8) // 8, 3)
        pooled = pooled.astype(np.float64).mean(axis=(2, 4)) / 255.0
        return np.tanh(pooled.reshape(n, -1) @ self._projection)


class ClipVisionExtractor:
    """CLIP image embeddings as FID features (documented fallback: no torchvision here)."""

    def __init__(self, model_id: str = DEFAULT_CLIP_MODEL, device: str | None = None, model=None, processor=None):
        if model is None:
            model, processor = load_clip(model_id, device=device)
        self.model, self.processor = model, processor
        self.name = f"clip-image-embeds:{model_id}"
        self.feature_dim = int(model.config.projection_dim)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        device = next(self.model.parameters()).device
        inputs = self.processor(images=[Image.fromarray(im) for im in batch], return_tensors="pt")
        with torch.no_grad():
            out = pooled_output(
                self.model.get_image_features(pixel_values=inputs["pixel_values"].to(device, self.model.dtype))
            )
        return out.float().cpu().numpy()


class TorchScriptInceptionExtractor:
    """The standard FID Inception-v3 as TorchScript (uint8 NCHW in, 2048 pool features out)."""

    def __init__(self, path: str | Path, device: str | None = None):
        import torch

        self.device = choose_device(device)
        self.module = torch.jit.load(str(path), map_location=self.device).eval()
        self.name = f"inception-v3-torchscript:{Path(path).name}"
        self.feature_dim = 2048

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        images = torch.from_numpy(batch.copy()).permute(0, 3, 1, 2).to(self.device)
        with torch.no_grad():
            features = self.module(images, return_features=True)
        return features.float().cpu().numpy()


def fid_extractor_from_setting(
    setting: str, device: str | None = None, clip=None, clip_model: str = DEFAULT_CLIP_MODEL
) -> FeatureExtractor:
    """The FID feature extractor a ``BenchmarkReportSettings.fid_extractor`` string names.

    "inception": the FID Inception-v3 with pytorch-fid's weights, downloaded once;
    "inception-random": the same network randomly initialised (offline demos and tests only);
    "clip": CLIP image embeddings of ``clip_model`` (reusing a loaded ``clip`` pair);
    an http(s) URL or a local ``.pth`` state dict: the FID Inception-v3 with those weights;
    a local ``.pt``: a TorchScript FID Inception (``TorchScriptInceptionExtractor``).
    """
    from ..inception import FID_WEIGHTS_URL, InceptionFidExtractor

    if setting == "inception":
        return InceptionFidExtractor(FID_WEIGHTS_URL, device=device)
    if setting == "inception-random":
        return InceptionFidExtractor(None, device=device)
    if setting == "clip":
        model, processor = clip if clip is not None else (None, None)
        return ClipVisionExtractor(clip_model, device=device, model=model, processor=processor)
    if setting.startswith(("http://", "https://")) or setting.endswith(".pth"):
        return InceptionFidExtractor(setting, device=device)
    if setting.endswith(".pt"):
        return TorchScriptInceptionExtractor(setting, device=device)
    raise ValueError(
        f"fid_extractor must be 'inception', 'inception-random', 'clip', a URL, a .pth or a .pt path, not {setting!r}"
    )
