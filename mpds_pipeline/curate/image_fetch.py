"""The download engine: fetch ``(id, variant, url)`` items politely, check each body, and
write the kept ones atomically; one manifest row per item goes to ``on_row``.

It imports neither pandas nor the manifest, so a download worker process
(download_worker.py) starts in a fraction of a second; images.py drives it in process
or over several such workers, and owns the manifest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..base.files import write_atomic
from ..base.folders import image_file_name
from ..net.client import FetchResponse, HostNotAllowed, PoliteClient, RobotsDisallowed
from ..net.client_settings import ClientSettings
from ..net.optout import OptOutPolicy, opted_out_reason
from ..net.waf import is_waf_challenge
from .image_checks import (
    BLOCKED,
    DECODED,
    DOWNLOAD_STAGE,
    FAILED,
    HTTP_ERROR,
    INVALID,
    OK,
    OPTED_OUT,
    REFUSED,
    TOO_LARGE,
    ImageLimits,
    VerifyMode,
    verify_body,
)

ROW_FIELDS = (
    "id",
    "variant",
    "file_name",
    "url",
    "bytes",
    "width",
    "height",
    "format",
    "sha256",
    "status",
    "reason",
    "verified",
    "decoded_by",
)
# (id, variant) -> (sha256, reason, decoded_by) of bytes a later full decode rejected
KnownBad = dict[tuple[int, int], tuple[str, str, str]]


def fetch_and_store(
    todo: list[tuple[int, int, str]],
    dest_dir: Path,
    settings: ClientSettings,
    limits: ImageLimits,
    verify: VerifyMode,
    on_row: Callable[[dict], None],
    *,
    known_bad: KnownBad | None = None,
    stop: threading.Event | None = None,
    optout: OptOutPolicy | None = None,
) -> tuple[bool, int]:
    """Download ``todo`` into ``dest_dir``; returns (blocked, requested).

    A WAF challenge stops the run (items not yet started stay unattempted, with no
    row); so does ``stop`` being set. ``known_bad`` bytes are not kept again. An image
    whose answer carries an AI opt-out signal (``optout``; honoured unless disabled)
    is not kept: its row is ``opted_out`` with the reason ``opted_out:<signal>``.
    """
    return asyncio.run(
        _download_all(
            todo,
            Path(dest_dir),
            settings,
            limits,
            verify,
            on_row,
            known_bad or {},
            stop or threading.Event(),
            optout if optout is not None else OptOutPolicy(),
        )
    )


async def _download_all(
    todo,
    dest_dir: Path,
    settings: ClientSettings,
    limits: ImageLimits,
    verify: VerifyMode,
    on_row,
    known_bad: KnownBad,
    stop: threading.Event,
    optout: OptOutPolicy,
) -> tuple[bool, int]:
    queue: asyncio.Queue = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    state = {"blocked": False, "fetched": 0}
    loop = asyncio.get_running_loop()
    # Checking, hashing and writing release the GIL for the bulk of their work, so
    # threads keep every core busy while the event loop keeps the network busy.
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        async with PoliteClient(settings) as client:

            async def worker() -> None:
                while not queue.empty() and not state["blocked"] and not stop.is_set():
                    item_id, variant, url = queue.get_nowait()
                    state["fetched"] += 1
                    row = await _fetch_one(client, item_id, variant, url, limits.max_bytes, optout)
                    if "response" in row:
                        resp = row.pop("response")
                        bad = known_bad.get((item_id, variant))
                        row.update(
                            await loop.run_in_executor(pool, _check_and_store, resp, row, dest_dir, limits, verify, bad)
                        )
                    if row["status"] == BLOCKED:
                        state["blocked"] = True
                    on_row(row)

            await asyncio.gather(*(worker() for _ in range(max(1, settings.concurrency))))
    return state["blocked"], state["fetched"]


async def _fetch_one(
    client: PoliteClient, item_id: int, variant: int, url: str, max_bytes: int, optout: OptOutPolicy
) -> dict:
    row = dict.fromkeys(ROW_FIELDS)
    row.update(id=item_id, variant=variant, file_name=image_file_name(item_id, variant), url=url)
    try:
        resp: FetchResponse = await client.fetch(url, follow_redirects=True, max_bytes=max_bytes)
    except (HostNotAllowed, RobotsDisallowed) as refusal:
        return {**row, "status": REFUSED, "reason": str(refusal)}
    if resp.too_large:  # refused by the client before more than the cap was held
        return {**row, "status": TOO_LARGE, "reason": resp.error}
    if resp.status_code == 200 and resp.error is None:
        signal = optout.signal(url, resp.headers)
        if signal is not None:  # the bytes are dropped unchecked and never written
            return {**row, "status": OPTED_OUT, "reason": opted_out_reason(signal), "bytes": len(resp.content)}
        # Checked off the event loop, where the WAF check on the body happens too.
        return {**row, "response": resp, "bytes": len(resp.content)}
    if is_waf_challenge(resp.status_code, resp.headers, resp.content):
        return {**row, **_blocked(resp)}
    if resp.error and resp.status_code is None:
        return {**row, "status": FAILED, "reason": resp.error}
    return {**row, "status": HTTP_ERROR, "reason": f"HTTP {resp.status_code}", "bytes": len(resp.content)}


def _blocked(resp: FetchResponse) -> dict:
    return {"status": BLOCKED, "reason": f"WAF challenge (HTTP {resp.status_code}); stopped"}


def _check_and_store(
    resp: FetchResponse,
    row: dict,
    dest_dir: Path,
    limits: ImageLimits,
    verify: VerifyMode,
    known_bad: tuple[str, str, str] | None,
) -> dict:
    """Runs on a worker thread: check a 200 body, rule out a WAF challenge, then write."""
    verdict = verify_body(resp.content, limits, verify, resp.headers.get("content-type"))
    # A body that checks out as an image is no challenge page, so only the status and
    # the headers can still say WAF; scanning every image for the page markers cost 8%
    # of the CPU. Anything else gets the full check.
    if is_waf_challenge(resp.status_code, resp.headers, b"" if verdict.status == OK else resp.content):
        return {**_blocked(resp), "bytes": None}
    update = {
        "status": verdict.status,
        "reason": verdict.reason,
        "width": verdict.width,
        "height": verdict.height,
        "format": verdict.format,
    }
    if verdict.status != OK:
        return update
    digest = hashlib.sha256(verdict.data).hexdigest()
    if known_bad is not None and known_bad[0] == digest:
        # The same bytes failed a full decode before: the server has not fixed them.
        return {
            **update,
            "status": INVALID,
            "reason": known_bad[1],
            "decoded_by": known_bad[2],
            "sha256": digest,
            "bytes": len(verdict.data),
        }
    # No fsync: at thousands of images a minute it would cost more than the write. An image
    # a power cut loses or truncates fails its manifest sha256 on the next run and is
    # fetched again.
    write_atomic(dest_dir / row["file_name"], verdict.data, fsync=False)
    return {
        **update,
        "bytes": len(verdict.data),
        "sha256": digest,
        "verified": verdict.level,
        "decoded_by": DOWNLOAD_STAGE if verdict.level == DECODED else None,
    }
