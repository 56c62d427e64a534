"""The image manifest: one row per (id, variant) in ``<dest_dir>/manifest.parquet``.

Every download writes it, and every user of pixels reports what it decoded, so an image
that fails its decode is kept out of the export. Two assets may update one manifest at
once, so each update holds a lock and re-reads the file. See docs/curation.md.
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..base.files import atomic_path
from ..base.folders import ImageFolder, image_file_name
from .image_checks import (
    DECODED,
    DOWNLOAD_STAGE,
    INVALID,
    OK,
    STRUCTURE,
    DecodeStage,
)
from .image_fetch import ROW_FIELDS

MANIFEST_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("variant", pa.int64()),  # 1 = the page image; 2.. = further photos (actors)
        ("file_name", pa.string()),
        ("url", pa.string()),
        ("bytes", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("format", pa.string()),
        ("sha256", pa.string()),
        ("status", pa.string()),  # image_checks' verdicts, or image_fetch's HTTP_ERROR, REFUSED, FAILED, BLOCKED
        ("reason", pa.string()),
        ("verified", pa.string()),  # ok rows: STRUCTURE or DECODED
        ("decoded_by", pa.string()),  # the stage whose full decode set ``verified`` or found the failure
    ]
)
assert tuple(MANIFEST_SCHEMA.names) == ROW_FIELDS


def read_manifest(dest_dir: Path) -> pd.DataFrame:
    """The manifest of ``dest_dir`` (empty with every column when there is none).

    A manifest written before the verification columns existed came from a download
    that decoded every image, so its ok rows read as decoded.
    """
    path = ImageFolder(Path(dest_dir)).manifest
    if not path.is_file():
        return MANIFEST_SCHEMA.empty_table().to_pandas()
    table = pq.read_table(path)
    if "verified" not in table.column_names:
        ok = pc.equal(table["status"], OK)
        table = table.append_column("verified", pc.if_else(ok, DECODED, pa.scalar(None, pa.string())))
        table = table.append_column("decoded_by", pc.if_else(ok, DOWNLOAD_STAGE, pa.scalar(None, pa.string())))
    return table.select(MANIFEST_SCHEMA.names).to_pandas()


@contextmanager
def manifest_lock(dest_dir: Path) -> Iterator[None]:
    """Exclusive across processes and threads (each holder opens its own descriptor)."""
    Path(dest_dir).mkdir(parents=True, exist_ok=True)
    handle = os.open(
        ImageFolder(Path(dest_dir)).manifest_lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644
    )
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def merge_into_manifest(dest_dir: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Under the lock: ``rows`` replace the manifest's rows of the same (id, variant)."""
    with manifest_lock(dest_dir):
        current = read_manifest(dest_dir)
        replaced = set(zip(rows["id"], rows["variant"]))
        keep = current[[(i, v) not in replaced for i, v in zip(current["id"], current["variant"])]]
        merged = pd.concat([keep, rows], ignore_index=True) if len(keep) else rows
        merged = merged.sort_values(["id", "variant"], kind="stable").reset_index(drop=True)
        _write(dest_dir, merged)
        return merged


def _write(dest_dir: Path, manifest: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(manifest[MANIFEST_SCHEMA.names], schema=MANIFEST_SCHEMA, preserve_index=False)
    with atomic_path(ImageFolder(Path(dest_dir)).manifest) as tmp:
        pq.write_table(table, tmp)


# --- decode results from the users of pixels ------------------------------------------


@dataclass
class DecodeRecord:
    """What one ``record_decode_results`` call changed."""

    decoded: int = 0  # ok rows raised to DECODED
    failed: int = 0  # ok rows turned INVALID
    unchanged: int = 0  # already decoded, or already invalid
    unknown: int = 0  # file names the manifest does not list (ignored)

    def add(self, other: DecodeRecord) -> DecodeRecord:
        return DecodeRecord(
            self.decoded + other.decoded,
            self.failed + other.failed,
            self.unchanged + other.unchanged,
            self.unknown + other.unknown,
        )


def record_decode_results(
    dest_dir: Path,
    outcomes: Mapping[str | Path, str | None] | Iterable[tuple[str | Path, str | None]],
    stage: DecodeStage,
) -> DecodeRecord:
    """Record full decodes of files in ``dest_dir``: ``{file: None}`` decoded fine,
    ``{file: "error text"}`` failed. Call it from every step that decodes pixels.

    A file is its manifest ``file_name`` (a path: its name). A failure marks the row
    ``invalid`` (reason ``does not decode (<stage>): <error>``), so the export leaves
    the image out and a rerun of the download does not bring the same bytes back.
    """
    pairs = list(outcomes.items() if isinstance(outcomes, Mapping) else outcomes)
    record = DecodeRecord()
    if not pairs or not ImageFolder(Path(dest_dir)).manifest.is_file():
        record.unknown = len(pairs)
        return record
    with manifest_lock(dest_dir):
        manifest = read_manifest(dest_dir)
        row_of = {name: n for n, name in enumerate(manifest["file_name"])}
        status, reason = manifest["status"].to_numpy(copy=True), manifest["reason"].to_numpy(copy=True)
        verified, decoded_by = manifest["verified"].to_numpy(copy=True), manifest["decoded_by"].to_numpy(copy=True)
        for file, error in pairs:
            row = row_of.get(Path(file).name)
            if row is None:
                record.unknown += 1
            elif status[row] != OK or (error is None and verified[row] == DECODED):
                record.unchanged += 1
            elif error is None:
                verified[row], decoded_by[row] = DECODED, stage
                record.decoded += 1
            else:
                status[row], reason[row] = INVALID, f"does not decode ({stage}): {error}"[:500]
                verified[row], decoded_by[row] = None, stage
                record.failed += 1
        if record.decoded or record.failed:
            manifest = manifest.assign(status=status, reason=reason, verified=verified, decoded_by=decoded_by)
            _write(dest_dir, manifest)
    return record


def record_poster_decode_results(
    posters_root: Path, outcomes: Mapping[int, str | None], stage: DecodeStage
) -> DecodeRecord:
    """The same for posters known by movie id (e.g. read from the export, whose files are
    links to the downloads): each id is recorded in the partition folder(s) under
    ``posters_root`` whose id range holds it."""
    from ..imdb.partitions import parse_partition_key

    ranges = []
    for folder in sorted(Path(posters_root).iterdir()) if Path(posters_root).is_dir() else []:
        try:
            ranges.append((parse_partition_key(folder.name), folder))
        except ValueError:
            continue  # not a partition folder
    by_folder: dict[Path, dict[str, str | None]] = {}
    record = DecodeRecord()
    for movie_id, error in outcomes.items():
        homes = [folder for key, folder in ranges if key.first <= int(movie_id) <= key.last]
        if not homes:
            record.unknown += 1
        for folder in homes:
            by_folder.setdefault(folder, {})[image_file_name(int(movie_id))] = error
    for folder, folder_outcomes in by_folder.items():
        record = record.add(record_decode_results(folder, folder_outcomes, stage))
    return record


def verification_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """Ok rows by verification level, and the images a later full decode rejected."""
    ok = manifest[manifest["status"] == OK]
    levels = Counter(ok["verified"].fillna(STRUCTURE))
    failed = int(((manifest["status"] == INVALID) & manifest["decoded_by"].notna()).sum())
    return {
        "verified_decoded": levels.get(DECODED, 0),
        "verified_structure_only": levels.get(STRUCTURE, 0),
        "decode_failures": failed,
    }


def decode_failed_hashes(manifest: pd.DataFrame) -> dict[tuple[int, int], tuple[str, str, str]]:
    """(id, variant) -> (sha256, reason, decoded_by) of rows a later full decode rejected."""
    failed = manifest[(manifest["status"] == INVALID) & manifest["decoded_by"].notna() & manifest["sha256"].notna()]
    return {(int(r.id), int(r.variant)): (r.sha256, r.reason, r.decoded_by) for r in failed.itertuples()}
