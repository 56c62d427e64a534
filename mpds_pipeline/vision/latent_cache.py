"""Training images encoded once by the frozen VAE, and re-sampled every step.

The VAE does not train, so each image's latent distribution is computed once, per aspect
bucket; an image that does not decode is left out and reported, for the manifest.
See docs/generation.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..base.progress import Progress
from ..curate.image_checks import DECODE_ERRORS
from .buckets import assign_bucket, cover_crop, format_size

ENCODE_BATCH = 8  # images per VAE call


def load_image_tensor(path: Path, resolution: int | tuple[int, int]):
    """Pillow -> RGB, resized to cover ``resolution`` (a side, or (width, height)), centre
    crop, CHW float in [-1, 1]."""
    import torch
    from PIL import Image

    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    with Image.open(path) as image:
        image = cover_crop(image.convert("RGB"), size)
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


@dataclass
class LatentBucket:
    """The cached latents of one bucket: its size and the distributions of its images."""

    size: tuple[int, int]  # (width, height) in pixels
    mean: object = None  # (n, c, h, w) on the VAE's device, in its dtype
    std: object = None
    rows: list[int] = field(default_factory=list)  # the cache rows in this bucket, in order


@dataclass
class LatentCache:
    """The latent distributions of the images that decoded, in input order, by bucket.

    Row ``r`` of the cache is the ``r``-th decoded image; ``bucket_of[r]`` its bucket and
    ``position[r]`` its place in that bucket's tensors."""

    buckets: list[LatentBucket]
    scaling_factor: float
    decoded: list[int] = field(default_factory=list)  # input positions of the rows, in order
    outcomes: dict[Path, str | None] = field(default_factory=dict)  # every input: error, or None when it decoded
    bucket_of: list[int] = field(default_factory=list)
    position: list[int] = field(default_factory=list)

    @property
    def decode_failures(self) -> dict[Path, str]:
        return {path: error for path, error in self.outcomes.items() if error is not None}

    def _only_bucket(self, name: str):
        used = [b for b in self.buckets if b.rows]
        if not used:
            return None
        if len(used) > 1:
            raise ValueError(f"LatentCache.{name}: the images span {len(used)} buckets; read .buckets")
        return getattr(used[0], name)

    @property
    def mean(self):
        """The means when every image is in one bucket (None when nothing decoded)."""
        return self._only_bucket("mean")

    @property
    def std(self):
        return self._only_bucket("std")

    def bucket_counts(self) -> dict[str, int]:
        """'WIDTHxHEIGHT' -> images in that bucket (every bucket, empty ones too)."""
        return {format_size(b.size): len(b.rows) for b in self.buckets}

    def rows_by_bucket(self) -> list[list[int]]:
        return [b.rows for b in self.buckets if b.rows]

    def sample(self, rows, generator):
        """Scaled latents of cache ``rows`` (a LongTensor, all of one bucket), one draw per
        row from ``generator``."""
        import torch

        buckets = {self.bucket_of[int(r)] for r in rows}
        if len(buckets) != 1:
            raise ValueError(f"a batch must come from one bucket; rows {rows.tolist()} span {len(buckets)}")
        bucket = self.buckets[buckets.pop()]
        local = torch.tensor([self.position[int(r)] for r in rows], dtype=torch.long)
        mean, std = bucket.mean[local], bucket.std[local]
        draw = torch.randn(mean.shape, generator=generator).to(mean.device, mean.dtype)
        return (mean + std * draw) * self.scaling_factor


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def cache_latents(
    vae,
    paths: Sequence[Path],
    resolution: int,
    progress: Progress | None = None,
    buckets: Sequence[tuple[int, int]] | None = None,
) -> LatentCache:
    """Encode every image of ``paths`` that decodes (``ENCODE_BATCH`` per VAE call) on the
    VAE's device and dtype, each at the size of its aspect bucket (``buckets``: (width,
    height) sizes, ``buckets.bucket_sizes``; None: the ``resolution`` square); ``progress``
    counts the images read."""
    import torch

    sizes = list(buckets) if buckets else [(resolution, resolution)]
    device, dtype = vae.device, vae.dtype
    cache = LatentCache([LatentBucket(size) for size in sizes], vae.config.scaling_factor)
    pending: dict[int, list[tuple[int, object]]] = {i: [] for i in range(len(sizes))}
    means: dict[int, list] = {i: [] for i in range(len(sizes))}
    stds: dict[int, list] = {i: [] for i in range(len(sizes))}

    def encode(bucket: int) -> None:
        if not pending[bucket]:
            return
        batch = torch.stack([tensor for _, tensor in pending[bucket]]).to(device, dtype=dtype)
        distribution = vae.encode(batch).latent_dist
        means[bucket].append(distribution.mean)
        stds[bucket].append(distribution.std)
        pending[bucket].clear()

    rows_in: dict[int, list[int]] = {i: [] for i in range(len(sizes))}  # input positions per bucket, in order
    with torch.no_grad():
        for position, path in enumerate(Path(p) for p in paths):
            try:
                bucket = assign_bucket(*_image_size(path), sizes) if len(sizes) > 1 else 0
                tensor = load_image_tensor(path, sizes[bucket])
            except DECODE_ERRORS as error:
                cache.outcomes[path] = f"{type(error).__name__}: {error}"
            else:
                cache.outcomes[path] = None
                pending[bucket].append((position, tensor))
                rows_in[bucket].append(position)
                if len(pending[bucket]) >= ENCODE_BATCH:
                    encode(bucket)
            if progress is not None:
                progress.update(1)
        for bucket in pending:
            encode(bucket)
    # Rows follow the input order; each bucket's tensors follow it too.
    cache.decoded = sorted(p for positions in rows_in.values() for p in positions)
    row_of = {p: r for r, p in enumerate(cache.decoded)}
    cache.bucket_of = [0] * len(cache.decoded)
    cache.position = [0] * len(cache.decoded)
    for bucket, positions in rows_in.items():
        for local, p in enumerate(positions):
            cache.bucket_of[row_of[p]], cache.position[row_of[p]] = bucket, local
        cache.buckets[bucket].rows = [row_of[p] for p in positions]
        if means[bucket]:
            cache.buckets[bucket].mean = torch.cat(means[bucket])
            cache.buckets[bucket].std = torch.cat(stds[bucket])
    return cache
