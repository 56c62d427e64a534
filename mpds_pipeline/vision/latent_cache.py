"""Training images encoded once by the frozen VAE, and re-sampled every step.

The VAE does not train, so each image's latent distribution (mean and standard
deviation) is computed once; a step draws a fresh latent from it, as the reference
training loops do when they encode every step. Images are read with Pillow and turned
into tensors with numpy (torchvision does not import beside the CPU torch here).

Caching decodes every image in full: one that does not decode is left out and reported
in ``LatentCache.outcomes`` (path -> error, None when it decoded). The caller records
the outcomes where the image came from (``curate.manifest.record_decode_results``, via
``record_poster_decode_results`` for posters) and trains on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mpds_pipeline.curate.image_checks import DECODE_ERRORS
from mpds_pipeline.progress import Progress

ENCODE_BATCH = 8  # images per VAE call


def load_image_tensor(path: Path, resolution: int):
    """Pillow -> RGB, short side resized to ``resolution``, centre crop, CHW float in [-1, 1]."""
    import torch
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = resolution / min(image.size)
        size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
        left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
        image = image.crop((left, top, left + resolution, top + resolution))
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


@dataclass
class LatentCache:
    """The latent distributions of the images that decoded, in input order."""

    mean: object  # (n, c, h, w) tensors on the VAE's device, in its dtype; None when nothing decoded
    std: object
    scaling_factor: float
    decoded: list[int] = field(default_factory=list)  # input positions of the rows, in order
    outcomes: dict[Path, str | None] = field(default_factory=dict)  # every input: error, or None when it decoded

    @property
    def decode_failures(self) -> dict[Path, str]:
        return {path: error for path, error in self.outcomes.items() if error is not None}

    def sample(self, rows, generator):
        """Scaled latents of cache ``rows`` (a LongTensor), one draw per row from ``generator``."""
        import torch

        mean, std = self.mean[rows], self.std[rows]
        draw = torch.randn(mean.shape, generator=generator).to(mean.device, mean.dtype)
        return (mean + std * draw) * self.scaling_factor


def cache_latents(vae, paths: Sequence[Path], resolution: int, progress: Progress | None = None) -> LatentCache:
    """Encode every image of ``paths`` that decodes (``ENCODE_BATCH`` per VAE call) on the
    VAE's device and dtype; ``progress`` counts the images read."""
    import torch

    device, dtype = vae.device, vae.dtype
    means, stds, decoded, outcomes = [], [], [], {}
    with torch.no_grad():
        for start in range(0, len(paths), ENCODE_BATCH):
            tensors = []
            for position in range(start, min(start + ENCODE_BATCH, len(paths))):
                path = Path(paths[position])
                try:
                    tensors.append(load_image_tensor(path, resolution))
                except DECODE_ERRORS as error:
                    outcomes[path] = f"{type(error).__name__}: {error}"
                    continue
                outcomes[path] = None
                decoded.append(position)
            if tensors:
                distribution = vae.encode(torch.stack(tensors).to(device, dtype=dtype)).latent_dist
                means.append(distribution.mean)
                stds.append(distribution.std)
            if progress is not None:
                progress.update(min(ENCODE_BATCH, len(paths) - start))
    mean = torch.cat(means) if means else None
    std = torch.cat(stds) if stds else None
    return LatentCache(mean, std, vae.config.scaling_factor, decoded, outcomes)
