"""Checks on a downloaded image body: its structure (nearly free) or a full decode.

``check_structure`` reads the container and headers without decoding a pixel, so a
truncated transfer, a bomb, an error page or a placeholder fails for microseconds per
image; ``decode_image`` decodes every pixel. It also owns the image statuses and the
verification levels. What each check looks at: docs/curation.md.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Final, Literal, get_args

from PIL import Image, UnidentifiedImageError

from ..base.settings import setting

# A manifest row's ``status``: a check's verdict (ok, too_small, too_large, invalid), or
# why the download had nothing to check (http_error, refused, failed, blocked), or the
# rights holder's AI opt-out refused the image (opted_out; reason ``opted_out:<signal>``).
ImageStatus = Literal[
    "ok", "too_small", "too_large", "invalid", "http_error", "refused", "failed", "blocked", "opted_out"
]
OK: Final = "ok"
TOO_SMALL: Final = "too_small"
TOO_LARGE: Final = "too_large"
INVALID: Final = "invalid"
HTTP_ERROR: Final = "http_error"
REFUSED: Final = "refused"
FAILED: Final = "failed"
BLOCKED: Final = "blocked"
OPTED_OUT: Final = "opted_out"
# How far an ok image was verified (``verified``): its structure only, or every pixel decoded.
VerificationLevel = Literal["structure", "decoded"]
STRUCTURE: Final = "structure"
DECODED: Final = "decoded"
# Where a full decode happened (``decoded_by``): the download itself (verify="decode"), or
# a user of the pixels reporting through manifest.record_decode_results.
DecodeStage = Literal["download", "captioning", "lora_latents", "face_crops"]
DOWNLOAD_STAGE: Final = "download"
CAPTIONING: Final = "captioning"
LORA_LATENTS: Final = "lora_latents"
FACE_CROPS: Final = "face_crops"
# What a download checks (``verify``); the manifest records the level it reached.
VerifyMode = Literal["structure", "decode"]
VERIFY_MODES: tuple[VerifyMode, ...] = get_args(VerifyMode)
DEFAULT_MIN_BYTES = 5120
DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = 50_000_000
# What Pillow raises for a file it cannot decode (truncated streams raise OSError,
# broken headers SyntaxError); the users of pixels catch these and report them.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAMES = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
_JPEG_OTHER_FRAMES = frozenset(range(0xC3, 0xD0)) - {0xC4, 0xC8, 0xCC}  # lossless, arithmetic, ...
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length


@dataclass(frozen=True)
class ImageLimits:
    min_bytes: int = setting(DEFAULT_MIN_BYTES, "files smaller than this are dropped (the paper's 5 KB)")
    max_bytes: int = setting(DEFAULT_MAX_BYTES, "files larger than this are dropped, unread past the cap")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "images with more pixels are dropped (decompression bombs)")
    resize_to: int | None = setting(None, "longest side in pixels; None (the default) keeps the original")


@dataclass(frozen=True)
class Verified:
    """The outcome of checking one body: ``data`` is what to write, when ok."""

    status: ImageStatus
    reason: str | None
    data: bytes = b""
    width: int | None = None
    height: int | None = None
    format: str | None = None
    level: VerificationLevel | None = None  # when ok
    keep_as_is: bool = False  # ok structurally and needs no conversion to be stored as a JPEG


class _Malformed(ValueError):
    """A header or container that is cut short or inconsistent; the message says where."""


# --- the two checks ----------------------------------------------------------------


def verify_body(
    content: bytes, limits: ImageLimits = ImageLimits(), mode: VerifyMode = "structure", content_type: str | None = None
) -> Verified:
    """What a download keeps: a structurally sound JPEG as is (``mode="structure"``), or
    the decoded image (``mode="decode"``, and always for a format that is converted)."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"unknown verify mode {mode!r}: use one of {VERIFY_MODES}")
    verdict = check_structure(content, limits, content_type)
    if verdict.status != OK or (mode == "structure" and verdict.keep_as_is and not limits.resize_to):
        return verdict
    return decode_image(content, limits)


def check_structure(content: bytes, limits: ImageLimits = ImageLimits(), content_type: str | None = None) -> Verified:
    """The container and header checks of the module docstring; no pixel is decoded."""
    size = len(content)
    if size == 0:
        return Verified(INVALID, "empty body")
    if size > limits.max_bytes:
        return Verified(TOO_LARGE, f"{size} bytes is over the {limits.max_bytes}-byte cap")
    if content_type and "html" in content_type.lower():
        return Verified(INVALID, f"not an image (Content-Type {content_type.split(';')[0].strip()})")
    kind = _container(content)
    if kind is None:
        return Verified(INVALID, f"not an image ({_sniff(content)})")
    if size < limits.min_bytes:
        return Verified(TOO_SMALL, f"{size} bytes is under the {limits.min_bytes}-byte minimum", format=kind)
    try:
        width, height, plain = _HEADER_READERS[kind](content)
    except _Malformed as problem:
        return Verified(INVALID, f"corrupt {kind}: {problem}", format=kind)
    if width * height > limits.max_pixels:
        return Verified(
            INVALID,
            f"decompression bomb: {width}x{height} pixels is over the {limits.max_pixels}-pixel cap",
            width=width,
            height=height,
            format=kind,
        )
    return Verified(OK, None, content, width, height, kind, STRUCTURE, keep_as_is=kind == "JPEG" and plain)


def decode_image(content: bytes, limits: ImageLimits = ImageLimits()) -> Verified:
    """Decode ``content`` fully (after the structure checks); return JPEG bytes to write."""
    verdict = check_structure(content, limits)
    if verdict.status != OK:
        return verdict
    fmt = verdict.format
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                if verdict.keep_as_is and not limits.resize_to:
                    # Kept as is: libjpeg entropy-decodes every block at any scale, so a
                    # corrupt stream fails exactly as in a full decode; the inverse DCT
                    # (at 1/8 scale) and the colour conversion (grey) are 2.7x cheaper.
                    image.draft("L", (max(1, image.width // 8), max(1, image.height // 8)))
                    image.load()
                    return Verified(OK, None, content, verdict.width, verdict.height, fmt, DECODED, True)
                image.load()
                data, width, height = _to_jpeg(image, limits.resize_to)
                return Verified(OK, None, data, width, height, fmt, DECODED)
    except UnidentifiedImageError:
        return Verified(INVALID, f"not an image ({_sniff(content)})")
    except Image.DecompressionBombError as error:
        return Verified(INVALID, f"decompression bomb: {error}")
    except DECODE_ERRORS as error:
        return Verified(INVALID, f"corrupt image: {error}", format=fmt)


def _to_jpeg(image: Image.Image, resize_to: int | None) -> tuple[bytes, int, int]:
    if image.mode not in ("RGB", "L"):
        image = (
            image.convert("RGBA").convert("RGB")
            if "A" in image.getbands() or image.mode == "P"
            else image.convert("RGB")
        )
    if resize_to and max(image.size) > resize_to:
        image = image.copy()
        image.thumbnail((resize_to, resize_to), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue(), image.width, image.height


def _container(content: bytes) -> str | None:
    """Pillow's format name for the magic bytes, or None."""
    if content[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if content[:8] == _PNG_SIGNATURE:
        return "PNG"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "WEBP"
    if content[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def _sniff(content: bytes) -> str:
    head = content[:256].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page"
    return f"starts with {content[:8]!r}"


# --- headers, per container: (width, height, stored as is) or _Malformed ------------


def _jpeg_header(data: bytes) -> tuple[int, int, bool]:
    """Walk the marker segments up to the first scan; the end-of-image marker must follow it.

    Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker,
    so the bytes FF D9 after the first scan header can only be the real end of the image;
    an embedded EXIF thumbnail's own EOI sits before the scan and does not count.
    """
    pos, end_of_data, frame = 2, len(data), None
    while True:
        if pos + 4 > end_of_data:
            raise _Malformed("truncated: the headers end before the first scan")
        if data[pos] != 0xFF:
            raise _Malformed(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            raise _Malformed("end of image before any scan")
        length = (data[pos + 2] << 8) | data[pos + 3]
        segment_end = pos + 2 + length
        if length < 2 or segment_end > end_of_data:
            raise _Malformed("truncated: a header segment runs past the end")
        if marker in _JPEG_OTHER_FRAMES:
            raise _Malformed(f"unsupported coding (SOF{marker - 0xC0})")
        if marker in _JPEG_FRAMES:
            if length < 8:
                raise _Malformed("frame header too short")
            precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 4)
            if precision != 8:
                raise _Malformed(f"unsupported {precision}-bit samples")
            if not width or not height:
                raise _Malformed(f"frame header claims {width}x{height} pixels")
            frame = (width, height, components in (1, 3))  # grey or YCbCr; CMYK is converted
        elif marker == 0xDA:
            if frame is None:
                raise _Malformed("a scan before the frame header")
            if data.rfind(b"\xff\xd9", segment_end) < 0:
                raise _Malformed("truncated: no end-of-image marker after the scan data")
            return frame
        pos = segment_end


def _png_header(data: bytes) -> tuple[int, int, bool]:
    """IHDR first (CRC checked), at least one IDAT, every chunk whole up to IEND."""
    if len(data) < 33:
        raise _Malformed("truncated: no complete IHDR")
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13:
        raise _Malformed("the first chunk is not IHDR")
    if zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        raise _Malformed("IHDR checksum mismatch")
    width, height = struct.unpack_from(">II", data, 16)
    if not width or not height:
        raise _Malformed(f"IHDR claims {width}x{height} pixels")
    pos, seen_data = 33, False
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        pos += 12 + length
        if pos > len(data):
            raise _Malformed(f"truncated: chunk {kind.decode('latin-1')!r} runs past the end")
        if kind == b"IDAT":
            seen_data = True
        elif kind == b"IEND":
            if not seen_data:
                raise _Malformed("no image data (IDAT)")
            return width, height, False
    raise _Malformed("truncated: no IEND chunk")


def _webp_header(data: bytes) -> tuple[int, int, bool]:
    """The RIFF size must fit the body; dimensions from the VP8, VP8L or VP8X header."""
    if len(data) < 30:
        raise _Malformed("truncated: no complete header")
    stated = struct.unpack_from("<I", data, 4)[0] + 8
    if stated > len(data):
        raise _Malformed(f"truncated: RIFF states {stated} bytes, the body has {len(data)}")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _Malformed("no VP8 start code")
        width, height = (v & 0x3FFF for v in struct.unpack_from("<HH", data, 26))
    elif chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _Malformed("no VP8L signature")
        bits = struct.unpack_from("<I", data, 21)[0]
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    else:
        raise _Malformed(f"unknown first chunk {chunk!r}")
    if not width or not height:
        raise _Malformed(f"header claims {width}x{height} pixels")
    return width, height, False


def _gif_header(data: bytes) -> tuple[int, int, bool]:
    """Logical screen size; the stream ends with the trailer byte (padding after it allowed)."""
    width, height = struct.unpack_from("<HH", data, 6)
    if not width or not height:
        raise _Malformed(f"header claims {width}x{height} pixels")
    if data.rstrip(b"\x00")[-1:] != b";":
        raise _Malformed("truncated: no trailer")
    return width, height, False


_HEADER_READERS = {"JPEG": _jpeg_header, "PNG": _png_header, "WEBP": _webp_header, "GIF": _gif_header}
