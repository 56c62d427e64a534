"""Download, check and store posters and actor photos through the polite client.

Each body is checked as it arrives (image_checks.py), written atomically under its id and
described in the folder's manifest, so a rerun never fetches a verified file twice and a
killed run keeps what it fetched. A long, fast download is split over worker processes.
Verification, checkpoints and when it uses several processes: docs/curation.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from ..base.folders import ImageFolder
from ..base.progress import Progress, ProgressLog
from ..base.workers import Workers
from ..net.client import HostNotAllowed, PoliteClient
from ..net.client_settings import ClientSettings
from ..net.optout import OPTED_OUT_PREFIX, OptOutPolicy, origin_of, read_tdmrep
from ..net.robots import rules_from_response
from .filters import as_text
from .image_checks import (
    BLOCKED,
    OK,
    VERIFY_MODES,
    ImageLimits,
    VerifyMode,
)
from .image_fetch import KnownBad, fetch_and_store
from .manifest import (
    MANIFEST_SCHEMA,
    decode_failed_hashes,
    merge_into_manifest,
    read_manifest,
    verification_counts,
)

# More processes only pay off when one process would be the bottleneck: measured here,
# one process checks and stores about 1,000 images/s, so below these a second one only
# adds its start-up (about 0.2 s).
PARALLEL_MIN_ITEMS = 2000
PARALLEL_MIN_RATE = 200.0  # requests/s; 0 (no limit) counts as above it
MAX_AUTO_PROCESSES = 4
DEFAULT_CHECKPOINT_S = 60.0


@dataclass
class DownloadResult:
    manifest: pd.DataFrame  # the rows of this call's items (MANIFEST_SCHEMA columns)
    manifest_path: Path
    status_counts: dict[str, int]
    fetched: int  # items requested over the network in this call
    reused: int  # items skipped because a verified file was already there
    bytes_written: int
    elapsed_s: float
    blocked: bool = False  # a WAF challenge stopped the run; unattempted items stay out of the manifest
    reasons: dict[str, int] = field(default_factory=dict)
    verify: VerifyMode = "structure"
    processes: int = 1
    verification: dict[str, int] = field(default_factory=dict)  # the whole folder's manifest (verification_counts)
    ai_optout: bool = True  # whether AI opt-out signals were honoured (the export says which setting built it)

    def metadata(self) -> dict[str, Any]:
        return {
            "ai_optout": "honoured" if self.ai_optout else "ignored (research setting)",
            "items": len(self.manifest),
            "fetched": self.fetched,
            "reused": self.reused,
            "bytes_written": self.bytes_written,
            "elapsed_s": round(self.elapsed_s, 2),
            "images_per_s": round(self.fetched / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0,
            "blocked": self.blocked,
            "verify": self.verify,
            "processes": self.processes,
            **{f"status_{k}": v for k, v in sorted(self.status_counts.items())},
            **self.verification,
        }


def download_images(
    items: list[tuple[int, str]],
    dest_dir: Path,
    settings: ClientSettings,
    *,
    limits: ImageLimits = ImageLimits(),
    verify: VerifyMode = "structure",
    processes: int | None = None,
    log: ProgressLog | None = None,
    ai_optout: bool = True,
) -> DownloadResult:
    """Fetch ``(id, url)`` items into ``dest_dir/<id>.jpg``; see the module docstring."""
    return download_variants(
        [(i, 1, u) for i, u in items],
        Path(dest_dir),
        settings,
        limits,
        verify=verify,
        processes=processes,
        log=log,
        ai_optout=ai_optout,
    )


def download_actor_images(
    actors: pd.DataFrame,
    dest_dir: Path,
    settings: ClientSettings,
    *,
    per_actor: int = 2,
    limits: ImageLimits = ImageLimits(),
    verify: VerifyMode = "structure",
    processes: int | None = None,
    log: ProgressLog | None = None,
    ai_optout: bool = True,
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
    return download_variants(
        items, Path(dest_dir), settings, limits, verify=verify, processes=processes, log=log, ai_optout=ai_optout
    )


def download_variants(
    items: list[tuple[int, int, str]],
    dest_dir: Path,
    settings: ClientSettings,
    limits: ImageLimits,
    *,
    verify: VerifyMode = "structure",
    processes: int | None = None,
    log: ProgressLog | None = None,
    checkpoint_s: float = DEFAULT_CHECKPOINT_S,
    ai_optout: bool = True,
) -> DownloadResult:
    """The general form: ``(id, variant, url)`` items, variant 1 named ``<id>.jpg``.

    ``processes``: None picks (see ``choose_processes``); 1 stays in this process.
    ``ai_optout``: honour the rights holders' AI opt-out signals (net/optout.py); each
    origin's tdmrep.json is read once here, before the downloads (and their workers) start.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"unknown verify mode {verify!r}: use one of {VERIFY_MODES}")
    started = time.perf_counter()
    dest_dir.mkdir(parents=True, exist_ok=True)
    earlier = read_manifest(dest_dir)
    done = _verified_files(earlier, dest_dir)
    wanted = set(items)
    todo = [(i, v, u) for i, v, u in dict.fromkeys(items) if done.get((i, v)) != u]
    reused = len(wanted) - len(todo)
    workers = choose_processes(len(todo), settings, processes)
    if workers > 1 and settings.obey_robots and _crawl_delay_asked(todo, settings):
        workers = 1

    optout = OptOutPolicy(enabled=ai_optout)
    if ai_optout and todo:
        optout.tdmrep = _read_tdmrep(todo, settings, log)
    record_download_settings(dest_dir, ai_optout)
    rows: list[dict] = []
    last_saved = [time.monotonic()]
    progress = Progress(f"images {dest_dir.name}", len(todo), log, unit="images")

    def on_row(row: dict) -> None:  # on one thread at a time
        rows.append(row)
        progress.update(status=row["status"])
        if time.monotonic() - last_saved[0] >= checkpoint_s:
            merge_into_manifest(dest_dir, pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names))
            last_saved[0] = time.monotonic()

    with progress:
        known_bad = decode_failed_hashes(earlier)
        if workers > 1:
            blocked, fetched = _fetch_in_processes(
                todo, dest_dir, settings, limits, verify, known_bad, workers, on_row, optout
            )
        else:
            blocked, fetched = fetch_and_store(
                todo, dest_dir, settings, limits, verify, on_row, known_bad=known_bad, optout=optout
            )
    this_call = pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)
    merged = (
        merge_into_manifest(dest_dir, this_call)
        if len(rows) or not ImageFolder(dest_dir).manifest.exists()
        else earlier
    )
    reused_rows = merged[
        [(i, v) in done and (i, v, u) in wanted for i, v, u in zip(merged["id"], merged["variant"], merged["url"])]
    ]
    combined = pd.concat([reused_rows, this_call], ignore_index=True) if len(reused_rows) else this_call
    statuses = Counter(this_call["status"])
    if reused:
        statuses[OK] += reused
    return DownloadResult(
        manifest=combined,
        manifest_path=ImageFolder(dest_dir).manifest,
        status_counts=dict(statuses),
        fetched=fetched,
        reused=reused,
        bytes_written=int(this_call.loc[this_call["status"] == OK, "bytes"].sum()),
        elapsed_s=time.perf_counter() - started,
        blocked=blocked,
        reasons=dict(Counter(reason_kind(r) for r in this_call["reason"] if isinstance(r, str))),
        verify=verify,
        processes=workers,
        verification=verification_counts(merged),
        ai_optout=ai_optout,
    )


def _read_tdmrep(todo: list[tuple[int, int, str]], settings: ClientSettings, log: ProgressLog | None):
    origins = {origin_of(url) for _, _, url in todo}

    async def read():
        async with PoliteClient(settings) as client:
            return await read_tdmrep(client, origins, log)

    return asyncio.run(read())


def record_download_settings(dest_dir: Path, ai_optout: bool) -> None:
    """Beside the manifest: whether the folder's last download honoured AI opt-outs
    (the export and its dataset card say which setting built them)."""
    from ..base.files import write_atomic

    write_atomic(ImageFolder(Path(dest_dir)).download_settings, json.dumps({"ai_optout": ai_optout}).encode())


def read_download_settings(dest_dir: Path) -> dict:
    """What ``record_download_settings`` wrote ({} when the folder has no record)."""
    path = ImageFolder(Path(dest_dir)).download_settings
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def choose_processes(items: int, settings: ClientSettings, requested: int | None = None) -> int:
    """How many download processes: ``requested`` when given, else more than one only
    for a long list at a rate one process cannot keep up with (never at IMDb's 1/s)."""
    if requested is not None:
        return max(1, min(int(requested), max(1, items)))
    fast = settings.rate_per_second <= 0 or settings.rate_per_second >= PARALLEL_MIN_RATE
    if not fast or items < PARALLEL_MIN_ITEMS:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_PROCESSES, settings.concurrency))


def _crawl_delay_asked(todo: list[tuple[int, int, str]], settings: ClientSettings) -> bool:
    """Whether the robots.txt of any origin in ``todo`` asks us for a Crawl-delay (one
    request per origin, under the rate limit; an unreadable file asks nothing here: the
    workers' own clients then refuse that origin)."""
    origins = sorted({f"{u.scheme}://{u.netloc}" for u in (urlsplit(url) for _, _, url in todo)})

    async def read() -> bool:
        async with PoliteClient(dataclasses.replace(settings, obey_robots=False, concurrency=1)) as client:
            for origin in origins:
                try:
                    resp = await client.fetch(origin + "/robots.txt")
                except HostNotAllowed:
                    continue
                rules = (
                    rules_from_response(resp.status_code, resp.content)
                    if resp.status_code is not None and not resp.too_large
                    else None
                )
                if rules is not None and rules.crawl_delay(settings.user_agent):
                    return True
        return False

    return asyncio.run(read())


def _verified_files(manifest: pd.DataFrame, dest_dir: Path) -> dict[tuple[int, int], str]:
    """(id, variant) -> url of manifest rows whose file is present with the recorded sha256."""
    done: dict[tuple[int, int], str] = {}
    present = set(os.listdir(dest_dir)) if dest_dir.is_dir() else set()
    for row in manifest[manifest["status"] == OK].itertuples():
        if row.file_name in present and _sha256_file(dest_dir / row.file_name) == row.sha256:
            done[(int(row.id), int(row.variant))] = row.url
    return done


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def reason_kind(reason: str) -> str:
    """A short bucket for counting reasons: the text before the first ':' or digit
    (``opted_out:<signal>`` whole: each signal is counted on its own)."""
    if reason.startswith(OPTED_OUT_PREFIX):
        return reason
    head = reason.split(":", 1)[0]
    return head if len(head) < 40 else head[:40]


# --- several processes --------------------------------------------------------------


def _fetch_in_processes(
    todo,
    dest_dir: Path,
    settings: ClientSettings,
    limits: ImageLimits,
    verify: VerifyMode,
    known_bad: KnownBad,
    workers: int,
    on_row: Callable[[dict], None],
    optout: OptOutPolicy | None = None,
) -> tuple[bool, int]:
    """Split ``todo`` over ``workers`` download_worker processes; rows stream back as they
    are known. Each gets 1/``workers`` of the rate and of the concurrency, so the run as
    a whole stays within both. A WAF challenge in any of them stops them all."""
    share = dataclasses.replace(
        settings,
        rate_per_second=settings.rate_per_second / workers,
        concurrency=max(1, settings.concurrency // workers),
    )
    shards = []
    for number in range(workers):
        shard = todo[number::workers]
        keys = {(i, v) for i, v, _ in shard}
        shards.append((shard, {key: bad for key, bad in known_bad.items() if key in keys}))
    setup = (dest_dir, share, limits, verify, optout or OptOutPolicy())
    blocked, fetched = False, 0
    with Workers("mpds_pipeline.curate.download_worker:download_share", workers, setup, label="download") as pool:

        def row_came(row: dict) -> None:
            on_row(row)
            if row["status"] == BLOCKED:
                pool.stop()

        for shard_blocked, shard_fetched in pool.map(shards, on_message=row_came):
            blocked |= shard_blocked
            fetched += shard_fetched
    return blocked, fetched
