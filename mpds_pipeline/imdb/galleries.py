"""Photo galleries: one extra request for actors whose person page shows too few photos.

For such an actor the gallery page is fetched once, by the same crawl engine, client
settings, archive and rules as the person pages; parsing merges its photos into the
person record. See docs/curation.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..net.client_settings import ClientSettings
from .archive import ArchiveMode, PageArchive
from .crawl import MAX_CONSECUTIVE_UNREACHABLE, CrawlResult, crawl_partition
from .ids import GALLERY_KIND
from .person_photos import solo_photo_count
from .records import PersonRecord

DEFAULT_MIN_SOLO_PHOTOS = 3


@dataclass
class GalleryCrawl:
    wanted: list[int]  # actors whose page shows fewer solo photos and have no gallery archived yet
    result: CrawlResult | None

    def metadata(self) -> dict:
        if self.result is None:
            return {"galleries_wanted": 0, "gallery_requests": 0}
        counts = self.result.status_counts()
        return {
            "galleries_wanted": len(self.wanted),
            "gallery_requests": self.result.requests_made,
            **{f"gallery_status_{status}": n for status, n in counts.items() if n},
        }


def actors_needing_gallery(archive_dir: Path, min_solo_photos: int = DEFAULT_MIN_SOLO_PHOTOS) -> list[int]:
    """Actors with a primary image archived in this partition whose page shows fewer than
    ``min_solo_photos`` photos of them alone, and whose gallery is not archived yet."""
    from .parsing import parse_page

    archive = PageArchive(archive_dir, repair=False)  # a reader: only the lock holder repairs
    done = archive.archived_ids(GALLERY_KIND)
    wanted: set[int] = set()
    for response in archive.iter_responses():
        if response.kind != "person" or response.status != "ok" or response.id in done:
            continue
        record = parse_page(response.body, kind="person")
        if not isinstance(record, PersonRecord) or not record.is_actor or not record.image_url:
            continue
        if solo_photo_count(record.photos, record.id, record.name) < min_solo_photos:
            wanted.add(record.id)
        else:
            wanted.discard(record.id)  # a newer page of the same id has enough
    return sorted(wanted)


def crawl_galleries(
    archive_dir: Path,
    settings: ClientSettings,
    *,
    min_solo_photos: int = DEFAULT_MIN_SOLO_PHOTOS,
    archive_mode: ArchiveMode = "full",
    max_consecutive_blocks: int = 5,
    max_consecutive_unreachable: int = MAX_CONSECUTIVE_UNREACHABLE,
    should_stop: Callable[[], str | None] | None = None,
    log=None,
    label: str | None = None,
    run_id: str | None = None,
) -> GalleryCrawl:
    """Fetch the galleries ``actors_needing_gallery`` names into the partition's archive.

    Raises what the page crawl raises, after recording outcomes: ``ImdbBlockingError``
    when IMDb blocks, ``CrawlStopped``, ``PartitionBusy``."""
    wanted = actors_needing_gallery(archive_dir, min_solo_photos)
    if not wanted:
        return GalleryCrawl(wanted, None)
    result = crawl_partition(
        GALLERY_KIND,
        wanted,
        settings,
        archive_dir,
        archive_mode=archive_mode,
        max_consecutive_blocks=max_consecutive_blocks,
        max_consecutive_unreachable=max_consecutive_unreachable,
        should_stop=should_stop,
        log=log,
        label=label,
        run_id=run_id,
    )
    return GalleryCrawl(wanted, result)
