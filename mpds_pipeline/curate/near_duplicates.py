"""Near-duplicate posters: perceptual hashes, and groups of posters within a Hamming distance.

Re-releases, regional variants and DVD covers of one poster would over-weight a few
films in training and leak benchmark posters into it, so every poster gets a group and
its distance to the group's representative. The hashes, the band index and the defaults
with their measurements: docs/beyond_the_paper.md.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from ..base.progress import Progress, ProgressLog

# Bits of 64; docs/beyond_the_paper.md has the measurements. 7 is also the largest
# threshold the 4-band index answers with one-bit flips (fast at 400k posters).
DEFAULT_PHASH_THRESHOLD = 7
DEFAULT_DHASH_THRESHOLD = 7
# The other hash "does not object" within this: below the closest different images measured.
DEFAULT_SECOND_OPINION = 20
BANDS = 4
BAND_BITS = 64 // BANDS
NEAR_DUPLICATE_COLUMNS = ["id", "group", "distance", "dhash_distance", "group_size", "representative"]
HASH_COLUMNS = ["id", "phash", "dhash"]

_DCT_SIZE, _DCT_KEEP = 32, 8
# Only the 8 lowest DCT-II frequencies are kept: an 8x32 basis (unnormalised like scipy's
# dct: a constant factor does not move a value across the median).
_DCT_BASIS = np.cos(np.pi * np.arange(_DCT_KEEP)[:, None] * (2 * np.arange(_DCT_SIZE)[None, :] + 1) / (2 * _DCT_SIZE))
_BIT_WEIGHTS = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _bits_to_int(bits: np.ndarray) -> int:
    """64 booleans, row-major, first bit most significant (imagehash's hex order) -> signed int64."""
    value = int((bits.reshape(-1).astype(np.uint64) * _BIT_WEIGHTS).sum(dtype=np.uint64))
    return value - (1 << 64) if value >= 1 << 63 else value


def _grey(image, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(image.convert("L").resize(size, Image.Resampling.LANCZOS), dtype=np.float64)


def phash(image) -> int:
    """The 64-bit DCT perceptual hash of a Pillow image, as a signed int64 (Parquet-friendly)."""
    low = _DCT_BASIS @ _grey(image, (_DCT_SIZE, _DCT_SIZE)) @ _DCT_BASIS.T
    return _bits_to_int(low > np.median(low))


def dhash(image) -> int:
    """The 64-bit difference hash (left-to-right steps of a 9x8 thumbnail), as a signed int64."""
    pixels = _grey(image, (9, 8))
    return _bits_to_int(pixels[:, 1:] > pixels[:, :-1])


def image_hashes(image) -> tuple[int, int]:
    """(pHash, dHash) of a decoded Pillow image."""
    return phash(image), dhash(image)


def hash_file(path) -> tuple[int, int]:
    """(pHash, dHash) of an image file; JPEGs decode at reduced scale (the hashes use 32 px)."""
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (64, 64))
        return image_hashes(image)


def hamming(a, b) -> np.ndarray:
    """Bits that differ between int64 hashes (arrays or scalars)."""
    # Unsigned: numpy counts the bits of a signed integer's absolute value.
    xor = np.bitwise_xor(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)).view(np.uint64)
    return np.bitwise_count(xor).astype(np.int64)


def _flip_masks(bits: int, radius: int) -> list[int]:
    """Every mask of at most ``radius`` set bits among ``bits`` (0 first)."""
    return [sum(1 << b for b in chosen) for r in range(radius + 1) for chosen in combinations(range(bits), r)]


def _band_matches(keys: np.ndarray, order: np.ndarray, starts: np.ndarray, sizes: np.ndarray, mask: int):
    """Pairs (i, j), i < j, whose band values differ exactly by ``mask``; ``order`` sorts
    ``keys``, and ``starts``/``sizes`` say where each of the 65,536 values sits in it."""
    query = keys ^ mask
    low, counts = starts[query], sizes[query]
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    left = np.repeat(np.arange(len(keys), dtype=np.int64), counts)
    offsets = np.repeat(low - (np.cumsum(counts) - counts), counts)
    right = order[offsets + np.arange(total, dtype=np.int64)]
    keep = left < right  # each unordered pair once (a flip finds it from both ends)
    return left[keep], right[keep]


def near_duplicate_pairs(hashes: Sequence[int] | np.ndarray, threshold: int = DEFAULT_PHASH_THRESHOLD):
    """Index pairs (i, j), i < j, of ``hashes`` (int64) within ``threshold`` bits, and their distances.

    Sub-quadratic (see the module doc); exact: no pair within the threshold is missed.
    """
    if threshold < 0 or threshold > 63:
        raise ValueError(f"threshold must be 0..63 bits, got {threshold}")
    values = np.asarray(hashes, dtype=np.int64)
    unsigned = values.view(np.uint64)
    masks = _flip_masks(BAND_BITS, threshold // BANDS)
    found_left, found_right = [], []
    for band in range(BANDS):
        keys = ((unsigned >> np.uint64(band * BAND_BITS)) & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(keys, kind="stable").astype(np.int64)
        sizes = np.bincount(keys, minlength=1 << BAND_BITS)
        starts = np.cumsum(sizes) - sizes
        for mask in masks:
            left, right = _band_matches(keys, order, starts, sizes, mask)
            close = hamming(values[left], values[right]) <= threshold
            found_left.append(left[close])
            found_right.append(right[close])
    if not found_left:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    codes = np.unique(np.concatenate(found_left) * len(values) + np.concatenate(found_right))
    left, right = np.divmod(codes, len(values)) if len(values) else (codes, codes)
    return left, right, hamming(values[left], values[right])


def normalise_title(title) -> str:
    """Lower case, accents and punctuation dropped, spaces collapsed: 'Amélie!' -> 'amelie'."""
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return ""
    text = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected component label (its smallest index) of each of ``n`` nodes."""
    labels = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return labels
    while True:  # min-label propagation with pointer jumping: a few rounds for poster-sized groups
        low = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        labels = labels[labels]
        if np.array_equal(labels, before):
            return labels


@dataclass
class GroupingResult:
    table: pd.DataFrame  # NEAR_DUPLICATE_COLUMNS, one row per poster
    candidate_pairs: int  # pairs within the pHash or the dHash threshold
    found_by_phash: int
    found_by_dhash: int
    title_year_confirmed: int  # accepted by title and year where the two hashes disagreed
    rejected: int  # candidates the other hash objected to, without the same title and year
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def groups(self) -> int:
        return int(self.table["group"].nunique()) if len(self.table) else 0

    @property
    def duplicated_posters(self) -> int:
        """Posters in a group of two or more."""
        return int((self.table["group_size"] > 1).sum()) if len(self.table) else 0

    def group_size_histogram(self) -> dict[str, int]:
        """Group size -> how many groups have it."""
        if not len(self.table):
            return {}
        sizes = self.table.drop_duplicates("group")["group_size"].value_counts().sort_index()
        return {str(int(size)): int(count) for size, count in sizes.items()}

    def metadata(self) -> dict:
        return {
            "posters": len(self.table),
            "groups": self.groups,
            "posters_in_duplicate_groups": self.duplicated_posters,
            "largest_group": int(self.table["group_size"].max()) if len(self.table) else 0,
            "candidate_pairs": self.candidate_pairs,
            "pairs_found_by_phash": self.found_by_phash,
            "pairs_found_by_dhash": self.found_by_dhash,
            "pairs_confirmed_by_title_and_year": self.title_year_confirmed,
            "pairs_rejected": self.rejected,
            "grouping_seconds": round(self.seconds, 3),
            **{f"setting_{k}": v for k, v in self.settings.items()},
        }


def accept_pairs(
    phash_distance,
    dhash_distance,
    same_title_and_year,
    threshold: int = DEFAULT_PHASH_THRESHOLD,
    dhash_threshold: int = DEFAULT_DHASH_THRESHOLD,
    second_opinion: int = DEFAULT_SECOND_OPINION,
):
    """Which candidate pairs are near-duplicates: one hash within its threshold and the
    other not objecting (within ``second_opinion``), or, where the two hashes disagree,
    the same normalised title and year. Returns (accepted, by title and year) masks."""
    ph, dh = np.asarray(phash_distance), np.asarray(dhash_distance)
    found = (ph <= threshold) | (dh <= dhash_threshold)
    agreed = ((ph <= threshold) & (dh <= second_opinion)) | ((dh <= dhash_threshold) & (ph <= second_opinion))
    by_title = found & ~agreed & np.asarray(same_title_and_year, dtype=bool)
    return agreed | by_title, by_title


def group_near_duplicates(
    hashes: pd.DataFrame,
    threshold: int = DEFAULT_PHASH_THRESHOLD,
    dhash_threshold: int = DEFAULT_DHASH_THRESHOLD,
    titles: pd.DataFrame | None = None,
    second_opinion: int = DEFAULT_SECOND_OPINION,
) -> GroupingResult:
    """Group posters (``hashes``: id, phash, dhash) that ``accept_pairs`` calls near-duplicates.

    Candidates are the pairs within ``threshold`` bits of pHash or ``dhash_threshold`` of
    dHash (each from its own band index). ``titles`` (id, title, year; optional) gives the
    tie-breaker and the representative order. Returns one row per poster: its group (the
    representative's id), pHash and dHash distance to the representative, the group's
    size and whether it is the representative.
    """
    started = time.perf_counter()
    frame = hashes[HASH_COLUMNS].drop_duplicates("id").sort_values("id").reset_index(drop=True)
    ids = frame["id"].to_numpy(np.int64)
    ph = frame["phash"].to_numpy(np.int64)
    dh = frame["dhash"].to_numpy(np.int64)
    info = (
        titles.drop_duplicates("id").set_index("id").reindex(ids)
        if titles is not None and len(titles)
        else pd.DataFrame(index=ids, columns=["title", "year"])
    )
    names = np.array([normalise_title(t) for t in info.get("title", pd.Series(index=ids, dtype=object))], dtype=object)
    years = pd.to_numeric(info.get("year", pd.Series(index=ids, dtype=float)), errors="coerce").to_numpy(np.float64)

    p_left, p_right, _ = near_duplicate_pairs(ph, threshold)
    d_left, d_right, _ = near_duplicate_pairs(dh, dhash_threshold)
    codes = np.unique(np.concatenate([p_left * len(ids) + p_right, d_left * len(ids) + d_right]))
    left, right = np.divmod(codes, max(1, len(ids)))
    same_title = (names[left] == names[right]) & (names[left] != "")
    same_year = (years[left] == years[right]) | np.isnan(years[left]) | np.isnan(years[right])
    accepted, by_title = accept_pairs(
        hamming(ph[left], ph[right]),
        hamming(dh[left], dh[right]),
        same_title & same_year,
        threshold,
        dhash_threshold,
        second_opinion,
    )
    labels = _components(len(ids), left[accepted], right[accepted])

    # The representative: the earliest poster of its group (year, then id; no year sorts last).
    rank = np.lexsort((ids, np.nan_to_num(years, nan=np.inf)))
    first_by_rank = {}
    for position in rank:
        first_by_rank.setdefault(int(labels[position]), int(position))
    representative = np.array([first_by_rank[int(label)] for label in labels], dtype=np.int64)
    sizes = np.bincount(labels, minlength=len(ids))[labels] if len(ids) else np.empty(0, np.int64)
    table = pd.DataFrame(
        {
            "id": ids,
            "group": ids[representative] if len(ids) else ids,
            "distance": hamming(ph, ph[representative]) if len(ids) else ids,
            "dhash_distance": hamming(dh, dh[representative]) if len(ids) else ids,
            "group_size": sizes.astype(np.int64),
            "representative": representative == np.arange(len(ids)),
        },
        columns=NEAR_DUPLICATE_COLUMNS,
    )
    return GroupingResult(
        table=table,
        candidate_pairs=int(len(left)),
        found_by_phash=int(len(p_left)),
        found_by_dhash=int(len(d_left)),
        title_year_confirmed=int(by_title.sum()),
        rejected=int((~accepted).sum()),
        seconds=time.perf_counter() - started,
        settings={
            "phash_threshold": threshold,
            "dhash_threshold": dhash_threshold,
            "second_opinion": second_opinion,
            "bands": BANDS,
        },
    )


def read_hashes(path) -> pd.DataFrame:
    """The hash table at ``path`` (id, phash, dhash; empty when absent)."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in HASH_COLUMNS})
    return pd.read_parquet(path, columns=HASH_COLUMNS)


def merge_hashes(path, new: pd.DataFrame) -> None:
    """Add ``new`` hashes to the table at ``path`` (a re-hashed id replaces its row), atomically."""
    from pathlib import Path

    from ..base.files import atomic_path

    path = Path(path)
    old = read_hashes(path)
    frames = [f for f in (old[~old["id"].isin(new["id"])], new[HASH_COLUMNS]) if len(f)]
    merged = pd.concat(frames, ignore_index=True).astype("int64").sort_values("id")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        merged.to_parquet(tmp, index=False)


def hash_missing(
    items: Sequence[tuple[int, object]], known: pd.DataFrame | None = None, log: ProgressLog | None = None
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Hashes of the (id, path) ``items`` not in ``known`` (id, phash, dhash), decoding
    each file; returns (all hashes of the items, id -> error of those that did not decode)."""
    from .image_checks import DECODE_ERRORS

    known = known if known is not None and len(known) else pd.DataFrame(columns=HASH_COLUMNS)
    have = set(known["id"].astype(int))
    rows, errors = [], {}
    todo = [(int(i), p) for i, p in items if int(i) not in have]
    with Progress("near_duplicates: hashing posters", len(todo), log, unit="posters") as progress:
        for movie_id, path in todo:
            try:
                rows.append((movie_id, *hash_file(path)))
            except (*DECODE_ERRORS, OSError) as error:
                errors[movie_id] = f"{type(error).__name__}: {error}"
            progress.update()
    wanted = {int(i) for i, _ in items}
    frames = [
        f for f in (known[known["id"].astype(int).isin(wanted)], pd.DataFrame(rows, columns=HASH_COLUMNS)) if len(f)
    ]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HASH_COLUMNS)
    return merged.astype({"id": "int64", "phash": "int64", "dhash": "int64"}), errors


def verified_posters(poster_images_root) -> dict[str, list[tuple[int, object]]]:
    """Partition key -> (id, path) of each verified poster (variant 1) in its manifest."""
    from pathlib import Path

    from .image_checks import OK
    from .manifest import read_manifest

    posters = {}
    for folder in sorted(p for p in Path(poster_images_root).glob("*") if p.is_dir()):
        manifest = read_manifest(folder)
        ok = manifest[(manifest["status"] == OK) & (manifest["variant"] == 1)]
        posters[folder.name] = [(int(i), folder / name) for i, name in zip(ok["id"], ok["file_name"])]
    return posters


@dataclass
class NearDuplicatesRun:
    grouping: GroupingResult
    hashed_here: int  # posters without a hash from captioning, hashed by this run
    hash_seconds: float
    undecodable: dict[int, str]  # id -> error: left out of the groups

    def metadata(self) -> dict:
        return {
            **self.grouping.metadata(),
            "hashed_here": self.hashed_here,
            "hashes_per_second_here": round(self.hashed_here / self.hash_seconds, 1) if self.hash_seconds else None,
            "undecodable": len(self.undecodable),
        }


def write_near_duplicates(
    posters: dict[str, list[tuple[int, object]]],
    hashes_file: Callable[[str], object],
    movies_file,
    out_file,
    threshold: int = DEFAULT_PHASH_THRESHOLD,
    dhash_threshold: int = DEFAULT_DHASH_THRESHOLD,
    second_opinion: int = DEFAULT_SECOND_OPINION,
    log: ProgressLog | None = None,
) -> NearDuplicatesRun:
    """Group the ``posters`` (partition -> (id, path)): hashes from ``hashes_file(partition)``
    (the captioner's), the missing ones computed and saved there; titles and years from
    ``movies_file``; the groups written to ``out_file``."""
    from pathlib import Path

    from .store import read_table, write_table

    hashes, undecodable, hashed, started = [], {}, 0, time.perf_counter()
    for partition, items in posters.items():
        path = Path(hashes_file(partition))
        known = read_hashes(path)
        table, errors = hash_missing(items, known, log)
        new = table[~table["id"].isin(known["id"])]
        if len(new):
            merge_hashes(path, new)
        hashed += len(new)
        undecodable.update(errors)
        hashes.append(table)
    seconds = time.perf_counter() - started
    frames = [h for h in hashes if len(h)]
    every = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HASH_COLUMNS)
    movies = read_table(Path(movies_file), missing_ok=True)
    titles = movies[[c for c in ("id", "title", "year") if c in movies.columns]] if len(movies) else None
    grouping = group_near_duplicates(every.astype("int64"), threshold, dhash_threshold, titles, second_opinion)
    write_table(grouping.table, Path(out_file))
    return NearDuplicatesRun(grouping, hashed, seconds, undecodable)


def read_groups(near_duplicates_file) -> dict[int, int]:
    """Poster id -> its group (the representative's id); empty when the table is absent."""
    from pathlib import Path

    path = Path(near_duplicates_file)
    if not path.exists():
        return {}
    table = pd.read_parquet(path, columns=["id", "group"])
    return dict(zip(table["id"].astype(int), table["group"].astype(int)))


def one_per_group(ids: Sequence[int], groups: dict[int, int], seed: int) -> list[int]:
    """At most one of ``ids`` per near-duplicate group (an id without a group is its own),
    the one kept chosen by ``seed``; the result keeps the input order."""
    import random

    members: dict[int, list[int]] = {}
    for movie_id in ids:
        members.setdefault(groups.get(int(movie_id), int(movie_id)), []).append(int(movie_id))
    rng = random.Random(seed)
    kept = {rng.choice(sorted(group)) for _, group in sorted(members.items())}
    return [int(i) for i in ids if int(i) in kept]


def leaking_groups(benchmark_ids: Sequence[int], train_ids: Sequence[int], groups: dict[int, int]) -> dict[int, list]:
    """Benchmark poster id -> the training posters that share its group (empty: leak-free)."""
    by_group: dict[int, list[int]] = {}
    for movie_id in train_ids:
        by_group.setdefault(groups.get(int(movie_id), int(movie_id)), []).append(int(movie_id))
    leaks = {}
    for movie_id in benchmark_ids:
        shared = by_group.get(groups.get(int(movie_id), int(movie_id)), [])
        if shared:
            leaks[int(movie_id)] = sorted(shared)
    return leaks


def synthetic_hashes(n: int, seed: int = 0, duplicate_share: float = 0.05, flips: int = 3) -> np.ndarray:
    """``n`` random 64-bit hashes of which ``duplicate_share`` are copies of others with up
    to ``flips`` bits flipped: the benchmark's data."""
    rng = np.random.default_rng(seed)
    values = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=n, dtype=np.int64, endpoint=True)
    copies = rng.choice(n, size=int(n * duplicate_share), replace=False)
    sources = rng.integers(0, n, size=len(copies))
    flipped = values[sources].view(np.uint64).copy()
    for _ in range(flips):
        flipped ^= np.uint64(1) << rng.integers(0, 64, size=len(copies)).astype(np.uint64)
    values[copies] = flipped.view(np.int64)
    return values
