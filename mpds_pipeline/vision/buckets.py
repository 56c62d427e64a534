"""Aspect-ratio buckets: train on posters at their own shape instead of a square crop.

The paper's square centre crop cuts a poster's credits and title block, the very text
the caption branch renders, so each training image goes to the bucket of nearest aspect
ratio and every batch comes from one bucket. The buckets and their sizes:
docs/beyond_the_paper.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DEFAULT_BUCKETS: tuple[str, ...] = ("512x768", "576x704", "512x512")
BUCKET_BASE = 512  # the resolution the bucket sizes are written for
DEFAULT_MULTIPLE = 64
POSTER_ASPECT = (2, 3)  # width : height of a poster; generation's default shape


def parse_size(text: str) -> tuple[int, int]:
    """'512x768' -> (512, 768) as (width, height)."""
    try:
        width, height = (int(part) for part in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"a bucket is WIDTHxHEIGHT in pixels, e.g. 512x768; got {text!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"a bucket needs a positive width and height; got {text!r}")
    return width, height


def format_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def bucket_sizes(
    resolution: int, buckets: Sequence[str] | None = DEFAULT_BUCKETS, multiple: int = DEFAULT_MULTIPLE
) -> list[tuple[int, int]]:
    """The (width, height) buckets for ``resolution``: ``buckets`` scaled by resolution/512
    and rounded to ``multiple``, or to an eighth of ``resolution`` when that is finer (the
    tiny 32 px models round to 4); no buckets: the square."""
    if not buckets:
        return [(resolution, resolution)]
    multiple = max(1, min(multiple, resolution // 8))
    scale = resolution / BUCKET_BASE
    sizes = []
    for text in buckets:
        width, height = parse_size(text)
        size = tuple(max(multiple, multiple * round(side * scale / multiple)) for side in (width, height))
        if size not in sizes:
            sizes.append(size)
    return sizes


def assign_bucket(width: int, height: int, sizes: Sequence[tuple[int, int]]) -> int:
    """Index of the bucket whose aspect ratio is nearest ``width/height`` (log ratio; ties: first)."""
    aspect = math.log(width / height)
    return min(range(len(sizes)), key=lambda i: abs(math.log(sizes[i][0] / sizes[i][1]) - aspect))


def cover_crop(image, size: tuple[int, int]):
    """``image`` resized to cover ``size`` (width, height), then centre-cropped to it."""
    from PIL import Image

    width, height = size
    scale = max(width / image.width, height / image.height)
    scaled = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(scaled, Image.Resampling.BILINEAR)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def poster_size(short_side: int, aspect: tuple[int, int] = POSTER_ASPECT, multiple: int = 8) -> tuple[int, int]:
    """(height, width) of a poster-shaped image whose short side is ``short_side``."""
    width, height = aspect
    long_side = multiple * round(short_side * max(width, height) / min(width, height) / multiple)
    return (long_side, short_side) if height >= width else (short_side, long_side)


def epoch_batches(bucket_of: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: each bucket's rows shuffled and cut into ``batch_size``
    (a bucket's last batch may be short), the batches then shuffled; a pure function of
    (seed, epoch), so a resumed run sees the batches an uninterrupted one would."""
    import torch

    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    members: dict[int, list[int]] = {}
    for row, bucket in enumerate(bucket_of):
        members.setdefault(int(bucket), []).append(row)
    batches = []
    for bucket in sorted(members):
        rows = members[bucket]
        order = [rows[i] for i in torch.randperm(len(rows), generator=generator).tolist()]
        batches += [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def batches_per_epoch(bucket_of: Sequence[int], batch_size: int) -> int:
    counts: dict[int, int] = {}
    for bucket in bucket_of:
        counts[int(bucket)] = counts.get(int(bucket), 0) + 1
    return sum(math.ceil(n / batch_size) for n in counts.values())
