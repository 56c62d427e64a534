"""Download, verify and store posters and actor photos through the polite client.

Every file is decoded with Pillow before it is kept: caps on bytes and pixels stop
decompression bombs, ``verify()`` plus a full ``load()`` catch truncated or corrupt
files (a JPEG kept as is is decoded at 1/8 scale: every coded block is still read),
and an HTML page served as an image fails to decode. Files are written
atomically as ``<dest_dir>/<id>.jpg`` and described in ``<dest_dir>/manifest.parquet``,
which a rerun consults so that a verified file is never fetched twice.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import tempfile
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from ..imdb.classify import is_waf_challenge
from ..imdb.client import ClientSettings, FetchResponse, HostNotAllowed, PoliteClient, RobotsDisallowed
from .filters import as_text

MANIFEST_NAME = "manifest.parquet"
MANIFEST_SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("variant", pa.int64()),  # 1 = the page image; 2.. = further photos (actors)
    ("file_name", pa.string()),
    ("url", pa.string()),
    ("bytes", pa.int64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("format", pa.string()),
    ("sha256", pa.string()),
    ("status", pa.string()),  # ok, too_small, invalid, http_error, refused, failed, blocked
    ("reason", pa.string()),
])
DEFAULT_MIN_BYTES = 5120
DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class ImageLimits:
    min_bytes: int = DEFAULT_MIN_BYTES
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    resize_to: int | None = None  # longest side in pixels; None keeps the original


@dataclass(frozen=True)
class Verified:
    """The outcome of checking one body: ``data`` is what to write, when ok."""

    status: str
    reason: str | None
    data: bytes = b""
    width: int | None = None
    height: int | None = None
    format: str | None = None


@dataclass
class DownloadResult:
    manifest: pd.DataFrame  # this call's rows (MANIFEST_SCHEMA columns)
    manifest_path: Path
    status_counts: dict[str, int]
    fetched: int  # items requested over the network in this call
    reused: int  # items skipped because a verified file was already there
    bytes_written: int
    elapsed_s: float
    blocked: bool = False  # a WAF challenge stopped the run; unattempted items stay out of the manifest
    reasons: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "items": len(self.manifest),
            "fetched": self.fetched,
            "reused": self.reused,
            "bytes_written": self.bytes_written,
            "elapsed_s": round(self.elapsed_s, 2),
            "blocked": self.blocked,
            **{f"status_{k}": v for k, v in sorted(self.status_counts.items())},
        }


# --- verification ----------------------------------------------------------------

def verify_image(content: bytes, limits: ImageLimits = ImageLimits()) -> Verified:
    """Decode ``content`` fully; return what to write (JPEG bytes) or why it was rejected."""
    size = len(content)
    if size == 0:
        return Verified("invalid", "empty body")
    if size > limits.max_bytes:
        return Verified("invalid", f"{size} bytes is over the {limits.max_bytes}-byte cap")
    if size < limits.min_bytes:
        return Verified("too_small", f"{size} bytes is under the {limits.min_bytes}-byte minimum")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as probe:
                width, height, fmt = probe.width, probe.height, probe.format
                # Before any pixel is decoded: a small file may claim a huge canvas.
                if width * height > limits.max_pixels:
                    return Verified("invalid", f"decompression bomb: {width}x{height} pixels is over the "
                                               f"{limits.max_pixels}-pixel cap", width=width, height=height, format=fmt)
                if fmt == "JPEG" and not limits.resize_to and probe.mode in ("RGB", "L"):
                    # Kept as is. (verify() does nothing for JPEG, so no second open.) libjpeg
                    # still entropy-decodes every block, so a truncated or broken stream fails
                    # exactly as in a full decode; only the inverse DCT (at 1/8 scale) and the
                    # colour conversion (grey) are skipped: 2.7x cheaper.
                    probe.draft("L", (max(1, width // 8), max(1, height // 8)))
                    probe.load()
                    return Verified("ok", None, content, width, height, fmt)
                probe.verify()
            with Image.open(io.BytesIO(content)) as image:
                image.load()  # verify() checks structure only; load() decodes every pixel
                data, width, height = _to_jpeg(image, limits.resize_to)
                return Verified("ok", None, data, width, height, fmt)
    except Image.DecompressionBombError as error:
        return Verified("invalid", f"decompression bomb: {error}")
    except UnidentifiedImageError:
        return Verified("invalid", f"not an image ({_sniff(content)})")
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Truncated streams raise OSError ("image file is truncated"), broken headers SyntaxError.
        return Verified("invalid", f"corrupt image: {error}")


def _to_jpeg(image: Image.Image, resize_to: int | None) -> tuple[bytes, int, int]:
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA").convert("RGB") if "A" in image.getbands() or image.mode == "P" \
            else image.convert("RGB")
    if resize_to and max(image.size) > resize_to:
        image = image.copy()
        image.thumbnail((resize_to, resize_to), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue(), image.width, image.height


def _sniff(content: bytes) -> str:
    head = content[:256].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page"
    return f"starts with {content[:8]!r}"


# --- download --------------------------------------------------------------------

def file_name_for(item_id: int, variant: int = 1) -> str:
    return f"{item_id}.jpg" if variant == 1 else f"{item_id}_{variant}.jpg"


def read_manifest(dest_dir: Path) -> pd.DataFrame:
    path = Path(dest_dir) / MANIFEST_NAME
    if not path.is_file():
        return MANIFEST_SCHEMA.empty_table().to_pandas()
    return pq.read_table(path).to_pandas()


def download_images(
    items: list[tuple[int, str]],
    dest_dir: Path,
    settings: ClientSettings,
    *,
    min_bytes: int = DEFAULT_MIN_BYTES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    resize_to: int | None = None,
) -> DownloadResult:
    """Fetch ``(id, url)`` items into ``dest_dir/<id>.jpg``; see the module docstring."""
    limits = ImageLimits(min_bytes, max_bytes, max_pixels, resize_to)
    return download_variants([(i, 1, u) for i, u in items], Path(dest_dir), settings, limits)


def download_actor_images(
    actors: pd.DataFrame,
    dest_dir: Path,
    settings: ClientSettings,
    *,
    per_actor: int = 2,
    limits: ImageLimits = ImageLimits(),
) -> DownloadResult:
    """One to ``per_actor`` photos per actor: ``image_url`` first, then any ``image_urls``.

    The person page carries one image; a second photo exists only where the actors
    table has an ``image_urls`` list (e.g. from a media gallery). Missing is fine.
    """
    items: list[tuple[int, int, str]] = []
    for record in actors.to_dict("records"):
        urls = [as_text(record.get("image_url"))]
        extra = record.get("image_urls")
        if extra is not None and not isinstance(extra, (str, float)):
            urls.extend(as_text(u) for u in list(extra))
        unique = list(dict.fromkeys(u for u in urls if u))[:per_actor]
        items.extend((int(record["id"]), n, url) for n, url in enumerate(unique, start=1))
    return download_variants(items, Path(dest_dir), settings, limits)


def download_variants(
    items: list[tuple[int, int, str]], dest_dir: Path, settings: ClientSettings, limits: ImageLimits
) -> DownloadResult:
    """The general form: ``(id, variant, url)`` items, variant 1 named ``<id>.jpg``."""
    started = time.perf_counter()
    dest_dir.mkdir(parents=True, exist_ok=True)
    earlier = read_manifest(dest_dir)
    done = _verified_files(earlier, dest_dir)
    wanted = set(items)
    todo = [(i, v, u) for i, v, u in dict.fromkeys(items) if done.get((i, v)) != u]
    reused = len(wanted) - len(todo)
    rows, blocked, fetched = asyncio.run(_download_all(todo, dest_dir, settings, limits))
    this_call = pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)
    reused_rows = earlier[[(i, v) in done and (i, v, u) in wanted
                           for i, v, u in zip(earlier["id"], earlier["variant"], earlier["url"])]]
    _write_manifest(earlier, this_call, dest_dir)
    combined = pd.concat([reused_rows, this_call], ignore_index=True) if len(reused_rows) else this_call
    statuses = Counter(this_call["status"])
    if reused:
        statuses["ok"] += reused
    return DownloadResult(
        manifest=combined,
        manifest_path=dest_dir / MANIFEST_NAME,
        status_counts=dict(statuses),
        fetched=fetched,
        reused=reused,
        bytes_written=int(this_call.loc[this_call["status"] == "ok", "bytes"].sum()),
        elapsed_s=time.perf_counter() - started,
        blocked=blocked,
        reasons=dict(Counter(_reason_kind(r) for r in this_call["reason"] if isinstance(r, str))),
    )


def _verified_files(manifest: pd.DataFrame, dest_dir: Path) -> dict[tuple[int, int], str]:
    """(id, variant) -> url of manifest rows whose file is present with the recorded sha256."""
    done: dict[tuple[int, int], str] = {}
    for row in manifest[manifest["status"] == "ok"].to_dict("records"):
        path = dest_dir / row["file_name"]
        if path.is_file() and _sha256_file(path) == row["sha256"]:
            done[(int(row["id"]), int(row["variant"]))] = row["url"]
    return done


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def _download_all(
    todo: list[tuple[int, int, str]], dest_dir: Path, settings: ClientSettings, limits: ImageLimits
) -> tuple[list[dict], bool, int]:
    queue: asyncio.Queue = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    rows: list[dict] = []
    state = {"blocked": False, "fetched": 0}
    loop = asyncio.get_running_loop()
    # Decoding and hashing release the GIL, so threads keep every core busy while the
    # event loop keeps the network busy.
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        async with PoliteClient(settings) as client:
            async def worker() -> None:
                while not queue.empty() and not state["blocked"]:
                    item_id, variant, url = queue.get_nowait()
                    state["fetched"] += 1
                    row = await _fetch_one(client, item_id, variant, url)
                    if row is None:
                        continue
                    if "response" in row:
                        resp = row.pop("response")
                        row.update(await loop.run_in_executor(pool, _verify_and_store, resp, row, dest_dir, limits))
                    if row["status"] == "blocked":
                        state["blocked"] = True
                    rows.append(row)

            await asyncio.gather(*(worker() for _ in range(max(1, settings.concurrency))))
    return rows, state["blocked"], state["fetched"]


async def _fetch_one(client: PoliteClient, item_id: int, variant: int, url: str) -> dict:
    row = {"id": item_id, "variant": variant, "file_name": file_name_for(item_id, variant), "url": url,
           "bytes": None, "width": None, "height": None, "format": None, "sha256": None,
           "status": None, "reason": None}
    try:
        resp: FetchResponse = await client.fetch(url, follow_redirects=True)
    except (HostNotAllowed, RobotsDisallowed) as refusal:
        return {**row, "status": "refused", "reason": str(refusal)}
    if resp.status_code == 200 and resp.error is None:
        # Verified off the event loop, where the WAF check on the body happens too.
        return {**row, "response": resp, "bytes": len(resp.content)}
    if is_waf_challenge(resp):
        return {**row, **_blocked(resp)}
    if resp.error and resp.status_code is None:
        return {**row, "status": "failed", "reason": resp.error}
    return {**row, "status": "http_error", "reason": f"HTTP {resp.status_code}", "bytes": len(resp.content)}


def _blocked(resp: FetchResponse) -> dict:
    return {"status": "blocked", "reason": f"WAF challenge (HTTP {resp.status_code}); stopped"}


def _verify_and_store(resp: FetchResponse, row: dict, dest_dir: Path, limits: ImageLimits) -> dict:
    """Runs on a worker thread: verify a 200 body, rule out a WAF challenge, then write."""
    verdict = verify_image(resp.content, limits)
    # A body that decodes as an image is no challenge page, so only the status and the
    # headers can still say WAF; scanning every image for the page markers cost 8% of
    # the CPU. Anything that does not decode gets the full check.
    if is_waf_challenge(dataclasses.replace(resp, content=b"") if verdict.status == "ok" else resp):
        return {**_blocked(resp), "bytes": None}
    update = {"status": verdict.status, "reason": verdict.reason, "width": verdict.width,
              "height": verdict.height, "format": verdict.format}
    if verdict.status != "ok":
        return update
    _write_atomic(dest_dir / row["file_name"], verdict.data)
    return {**update, "bytes": len(verdict.data), "sha256": hashlib.sha256(verdict.data).hexdigest()}


def _write_atomic(path: Path, data: bytes) -> None:
    # No running writer shares this name (process and thread in it); one left by a killed
    # run is overwritten. mkstemp's random names cost more than the write itself here.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.part"
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_manifest(earlier: pd.DataFrame, this_call: pd.DataFrame, dest_dir: Path) -> None:
    """Merge: this call's rows replace earlier rows of the same (id, variant)."""
    replaced = set(zip(this_call["id"], this_call["variant"]))
    keep = earlier[[(i, v) not in replaced for i, v in zip(earlier["id"], earlier["variant"])]]
    merged = pd.concat([keep, this_call], ignore_index=True) if len(keep) else this_call
    merged = merged.sort_values(["id", "variant"], kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(merged, schema=MANIFEST_SCHEMA, preserve_index=False)
    path = dest_dir / MANIFEST_NAME
    handle, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".manifest.", suffix=".part")
    os.close(handle)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reason_kind(reason: str) -> str:
    """A short bucket for counting reasons: the text before the first ':' or digit."""
    head = reason.split(":", 1)[0]
    return head if len(head) < 40 else head[:40]
