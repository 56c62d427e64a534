"""Actor photos with real faces, made from photos that installed packages bundle.

Every sample actor is one of two public-domain portraits shipped by scikit-image and
matplotlib, each photo a different framing of it, so face detection and matching see
what they would in a real photo strip; nothing is downloaded. See docs/curation.md.
"""

from __future__ import annotations

import random
from functools import cache
from importlib.resources import files
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

PHOTO_KINDS = ("self", "other", "pair", "scene")
IDENTITIES = 2
PORTRAIT_SIZE = (360, 450)  # width, height: a head-and-shoulders publicity photo
_SCENES = ("coffee.png", "chelsea.png", "rocket.jpg")


@cache
def _source(identity: int) -> tuple[Image.Image, tuple[int, int, int]]:
    """A bundled portrait and its face box (left, top, side), measured with dlib's HOG
    detector on the bundled file."""
    if identity % IDENTITIES == 0:
        image = Image.open(files("skimage") / "data" / "astronaut.png").convert("RGB")
        return image, (179, 83, 88)
    import matplotlib

    image = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    return image, (180, 139, 187)


@cache
def _scene(name: str) -> Image.Image:
    return Image.open(files("skimage") / "data" / name).convert("RGB")


def portrait(identity: int, rng: random.Random, size: tuple[int, int] = PORTRAIT_SIZE) -> Image.Image:
    """One framing of ``identity``'s face: the face fills 28-40% of the width."""
    image, (left, top, side) = _source(identity)
    width = side / rng.uniform(0.28, 0.40)
    height = width * size[1] / size[0]
    centre_x = left + side / 2 + rng.uniform(-0.1, 0.1) * width
    centre_y = top + side / 2 + rng.uniform(0.05, 0.18) * height  # room for the shoulders
    width, height = min(width, image.width), min(height, image.height)
    x0 = min(max(0.0, centre_x - width / 2), image.width - width)
    y0 = min(max(0.0, centre_y - height / 2), image.height - height)
    out = image.crop((round(x0), round(y0), round(x0 + width), round(y0 + height)))
    out = out.resize(size, Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.85, 1.15))
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.7, 1.3))
    return out.rotate(rng.uniform(-5, 5), resample=Image.Resampling.BICUBIC, fillcolor=(24, 24, 24))


def _scene_name(seed_text: str) -> str:
    return _SCENES[int.from_bytes(seed_text.encode()[-4:], "big") % len(_SCENES)]


def photo_size(kind: str, seed_text: str) -> tuple[int, int]:
    """(width, height) of ``render_photo(kind, …, seed_text)`` without drawing it."""
    if kind in ("self", "other"):
        return PORTRAIT_SIZE
    if kind == "pair":
        return 2 * PORTRAIT_SIZE[0], PORTRAIT_SIZE[1]
    if kind == "scene":
        return _scene(_scene_name(seed_text)).size
    raise ValueError(f"unknown photo kind {kind!r}; expected one of {PHOTO_KINDS}")


def render_photo(kind: str, identity: int, seed_text: str) -> Image.Image:
    """The picture of one photo: ``kind`` of PHOTO_KINDS for an actor of ``identity``."""
    rng = random.Random(seed_text)
    if kind == "self":
        return portrait(identity, rng)
    if kind == "other":
        return portrait(identity + 1, rng)
    if kind == "pair":
        width, height = PORTRAIT_SIZE
        canvas = Image.new("RGB", (2 * width, height))
        canvas.paste(portrait(identity, rng), (0, 0))
        canvas.paste(portrait(identity + 1, rng), (width, 0))
        return canvas
    if kind == "scene":
        return ImageEnhance.Brightness(_scene(_scene_name(seed_text))).enhance(rng.uniform(0.85, 1.15))
    raise ValueError(f"unknown photo kind {kind!r}; expected one of {PHOTO_KINDS}")
