"""Deterministic JPEG posters and portraits.

A poster (and a non-actor's portrait) is drawn with Pillow: shapes, gradients and grain,
so its JPEG weighs 10-80 KB like a real poster; a "small" one is a tiny flat image under
5 KB (the paper drops those). An actor's primary image and strip photos show a real face
(``photos.py``).
"""

from __future__ import annotations

import io
import random
import re
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter

_TOKEN_RE = re.compile(r"^MV5B([tp])(\d+)s(\d+)([tn])")
_PHOTO_TOKEN_RE = re.compile(r"^MV5Bf(\d+)x(\d+)s(\d+)n")
_RESIZE_RE = re.compile(r"U([XY])(\d+)")
FULL_SIZE = {"t": (400, 600), "p": (320, 440)}


def decode_token(token: str) -> tuple[str, int, int, bool] | None:
    """(kind letter, id, seed, small) encoded in an image token, or None."""
    match = _TOKEN_RE.match(token)
    if not match:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3)), match.group(4) == "t"


@lru_cache(maxsize=256)
def render_jpeg(token: str, resize_ops: str = "") -> bytes | None:
    """The JPEG for an image URL's token and its resize ops ('' = full size)."""
    picture = _picture(token)
    if picture is None:
        return None
    image, small = picture
    resize = _RESIZE_RE.search(resize_ops)
    if resize:
        axis, size = resize.group(1), int(resize.group(2))
        w, h = image.size
        scale = size / (w if axis == "X" else h)
        if scale < 1:
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=40 if small else 85)
    return out.getvalue()


def _picture(token: str) -> tuple[Image.Image, bool] | None:
    """(image, small) for a token."""
    from .content import person_photo, sample_person
    from .photos import render_photo

    if match := _PHOTO_TOKEN_RE.match(token):
        person_id, index, seed = (int(g) for g in match.groups())
        photo = person_photo(person_id, index, seed)
        return (render_photo(photo["kind"], photo["identity"], token), False) if photo else None
    decoded = decode_token(token)
    if decoded is None:
        return None
    letter, item_id, seed, small = decoded
    if letter == "p" and not small:
        person = sample_person(item_id, seed)
        if person["status"] == "ok" and person["is_actor"]:
            return render_photo("self", person["identity"], token), False
    return _draw(letter, item_id, seed, small), small


def _draw(letter: str, item_id: int, seed: int, small: bool) -> Image.Image:
    rng = random.Random(f"img:{seed}:{letter}:{item_id}")
    if small:
        return Image.new("RGB", (60, 90), tuple(rng.randrange(256) for _ in range(3)))
    width, height = FULL_SIZE[letter]
    top = [rng.randrange(256) for _ in range(3)]
    bottom = [rng.randrange(256) for _ in range(3)]
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), tuple(bottom)), Image.new("RGB", (width, height), tuple(top)), gradient
    )
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(25, 60)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randint(10, width // 2), y0 + rng.randint(10, height // 2)
        color = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.random()
        if shape < 0.4:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif shape < 0.8:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            draw.line((x0, y0, x1, y1), fill=color, width=rng.randint(2, 8))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    # Grain: real photos are never flat, and flat images compress to almost nothing.
    # Drawn from the seeded rng (Pillow's effect_noise is not seeded, so not reproducible).
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    return Image.blend(image, noise, rng.uniform(0.04, 0.10))
