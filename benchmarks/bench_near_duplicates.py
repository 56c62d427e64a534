"""Near-duplicate posters: where to put the threshold, how fast hashing and grouping are.

1. Distances on real images: the colour photographs scikit-image ships (astronaut,
   coffee, rocket, ...) cut to a poster's 2:3, and the sample server's posters. Each is
   made into the near-duplicates a poster site holds (JPEG re-encode at quality 40, half
   size, a few pixels cropped off each edge, 3% cropped, a new title line drawn over it as a
   regional variant does) and compared with its original; every pair of different images
   gives the other side. Prints the pHash and dHash distance quantiles of both sides.
2. Hashes per CPU-second: pHash + dHash of decoded 400x600 posters.
3. Grouping 400k synthetic hashes (5% near copies, 3 bits flipped) on one core.

    python benchmarks/bench_near_duplicates.py [--n 400000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpds_pipeline.curate.near_duplicates import (
    accept_pairs,
    group_near_duplicates,
    hamming,
    image_hashes,
    near_duplicate_pairs,
    synthetic_hashes,
)

SKIMAGE_PHOTOS = (
    "astronaut chelsea coffee rocket hubble_deep_field immunohistochemistry motorcycle_left retina "
    "colorwheel logo camera moon page text coins horse brick grass gravel cell clock"
).split()


def poster_crop(image: Image.Image) -> Image.Image:
    """The largest centred 2:3 (portrait) crop, as RGB."""
    image = image.convert("RGB")
    width = min(image.width, image.height * 2 // 3)
    height = width * 3 // 2
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def real_images() -> dict[str, Image.Image]:
    from skimage import data

    from mpds_pipeline.sample_server.images import render_jpeg

    images = {}
    for name in SKIMAGE_PHOTOS:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            array = loader()
        except Exception:  # a fetcher without its file here
            continue
        images[name] = poster_crop(Image.fromarray(np.asarray(array)))
    for movie_id in range(1, 41):
        body = render_jpeg(f"MV5Bt{movie_id}s{movie_id * 7}n")
        if body:
            images[f"sample poster {movie_id}"] = poster_crop(Image.open(io.BytesIO(body)))
    return images


def variants(image: Image.Image) -> dict[str, Image.Image]:
    def reencode(quality: int) -> Image.Image:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        return Image.open(io.BytesIO(out.getvalue())).convert("RGB")

    w, h = image.size
    retitled = image.copy()
    draw = ImageDraw.Draw(retitled)
    draw.rectangle((0, int(h * 0.85), w, h), fill="black")
    draw.text((w * 0.1, h * 0.88), "EDICION ESPECIAL", fill="white")
    return {
        "jpeg q40": reencode(40),
        "half size": image.resize((w // 2, h // 2), Image.Resampling.BILINEAR),
        "crop 4 px": image.crop((4, 4, w - 4, h - 4)),
        "crop 3%": image.crop((int(w * 0.03), int(h * 0.03), w - int(w * 0.03), h - int(h * 0.03))),
        "new title band": retitled,
    }


def distances() -> None:
    images = real_images()
    hashes = {name: image_hashes(image) for name, image in images.items()}
    same = []
    for name, image in images.items():
        for kind, variant in variants(image).items():
            ph, dh = image_hashes(variant)
            same.append((kind, int(hamming(ph, hashes[name][0])), int(hamming(dh, hashes[name][1]))))
    different = [
        (int(hamming(hashes[a][0], hashes[b][0])), int(hamming(hashes[a][1], hashes[b][1])))
        for a, b in combinations(hashes, 2)
    ]
    frame = pd.DataFrame(same, columns=["variant", "phash", "dhash"])
    print(
        f"{len(images)} real images ({sum(not n.startswith('sample') for n in images)} photographs, "
        "the rest sample posters)"
    )
    print("near-duplicates: pHash / dHash distance to the original (max, 95th percentile, median)")
    for kind, group in frame.groupby("variant", sort=False):
        print(
            f"  {kind:15s} pHash max {group.phash.max():2d} p95 {group.phash.quantile(0.95):4.1f} "
            f"median {group.phash.median():4.1f} | "
            f"dHash max {group.dhash.max():2d} p95 {group.dhash.quantile(0.95):4.1f}"
        )
    apart = pd.DataFrame(different, columns=["phash", "dhash"])
    print(
        f"different images ({len(apart)} pairs): pHash min {apart.phash.min()} p1 {apart.phash.quantile(0.01):.1f} "
        f"p5 {apart.phash.quantile(0.05):.1f} median {apart.phash.median():.0f}; "
        f"dHash min {apart.dhash.min()} p1 {apart.dhash.quantile(0.01):.1f} median {apart.dhash.median():.0f}"
    )
    for threshold in (4, 6, 7, 8, 10, 12):
        caught = (frame.phash <= threshold).mean()
        false = (apart.phash <= threshold).mean()
        print(f"  pHash <= {threshold:2d} alone: near-duplicates caught {caught:6.1%}, different pairs {false:7.3%}")
    # The rule group_near_duplicates applies, with no title known (the tie-breaker cannot help).
    for second in (16, 20, 24):
        kept, _ = accept_pairs(frame.phash, frame.dhash, False, second_opinion=second)
        false, _ = accept_pairs(apart.phash, apart.dhash, False, second_opinion=second)
        by_kind = ", ".join(
            f"{k} {v:.0%}" for k, v in pd.Series(kept).groupby(frame.variant.values, sort=False).mean().items()
        )
        print(
            f"  default rule, second opinion {second}: caught {kept.mean():6.1%} ({by_kind}); "
            f"different pairs {false.mean():.3%}"
        )
    # Same title and year (the same film): the tie-breaker keeps a pair the two hashes disagree on.
    kept, by_title = accept_pairs(frame.phash, frame.dhash, True)
    print(
        f"  default rule with the same title and year: caught {kept.mean():6.1%} ({by_title.sum()} by the tie-breaker)"
    )


def hashing_rate(n: int = 200) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (60, 40, 3), dtype=np.uint8)
    images = [
        Image.fromarray(
            np.clip(base.repeat(10, 0).repeat(10, 1) + rng.integers(0, 20, (600, 400, 3)), 0, 255).astype("uint8")
        )
        for _ in range(n)
    ]
    started = time.process_time()
    for image in images:
        image_hashes(image)
    seconds = time.process_time() - started
    print(f"hashing: {n / seconds:,.0f} posters per CPU-second (pHash + dHash of a decoded 400x600 image)")


def grouping(n: int) -> None:
    hashes = synthetic_hashes(n)
    started = time.process_time()
    left, _, _ = near_duplicate_pairs(hashes)
    pairs_seconds = time.process_time() - started
    started = time.process_time()
    result = group_near_duplicates(pd.DataFrame({"id": np.arange(n), "phash": hashes, "dhash": hashes}))
    seconds = time.process_time() - started
    print(
        f"grouping {n:,} synthetic hashes on one core: pairs {pairs_seconds:.1f} CPU-s ({len(left):,} found), "
        f"whole grouping {seconds:.1f} CPU-s, {result.groups:,} groups"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400_000)
    parser.add_argument("--grouping-only", action="store_true")
    args = parser.parse_args()
    if not args.grouping_only:
        distances()
        hashing_rate()
    grouping(args.n)


if __name__ == "__main__":
    main()
