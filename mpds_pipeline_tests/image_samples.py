"""Image bodies for the download and verification tests: good ones, and one of each
failure a check must catch (built in code, small)."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def noise_image(width: int, height: int, fmt: str = "JPEG", seed: int = 0, **options) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * 3)))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}), **options)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 20_000) -> bytes:
    """A small PNG whose header claims side x side grey pixels (400 M by default)."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)  # only a few rows' worth; the claim is what matters
    padding = png_chunk(b"tEXt", b"pad\x00" + b"x" * 8000)  # over the 5 KB minimum
    return b"\x89PNG\r\n\x1a\n" + header + padding + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int, jpeg: bytes) -> bytes:
    """``jpeg`` with its SOF0 frame header rewritten to claim ``width`` x ``height``."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]


def undecodable_jpeg(jpeg: bytes) -> bytes:
    """A structurally complete JPEG (every header, the scan, the end marker) whose first
    component names a quantization table that is never defined: only a decode finds it."""
    at = jpeg.index(b"\xff\xc0")  # FF C0, length, precision, height, width, count, then id/sampling/table
    broken = bytearray(jpeg)
    broken[at + 12] = 3
    return bytes(broken)


def with_exif_thumbnail(jpeg: bytes, thumbnail: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding a whole JPEG (its own end-of-image marker)."""
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def saved_noise_jpeg(rng: np.random.Generator, folder: Path, item_id: int, width: int, height: int, url: str) -> dict:
    """Write ``<item_id>.jpg`` (noise from ``rng``) into ``folder`` and return its download
    manifest row, as the downloader records a verified image."""
    path = folder / f"{item_id}.jpg"
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path, quality=95)
    return {
        "id": item_id,
        "variant": 1,
        "file_name": path.name,
        "url": url,
        "bytes": path.stat().st_size,
        "width": width,
        "height": height,
        "format": "JPEG",
        "sha256": "",
        "status": "ok",
        "reason": None,
    }
