"""Which downloaded images go into the release, and putting them there.

An image is exported when its manifest row is ok and its file is in one of the image
folders; the export's image folders are then made exactly the wanted files, hard-linked
where the disk allows (the sources are replaced atomically, never rewritten in place).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Container, Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from ..base.folders import ExportFolder, ImageFolder, image_file_name
from ..base.progress import Progress
from .export_lookups import IdSet
from .image_checks import OK
from .manifest import read_manifest


class PosterNames:
    """The poster file names of the ids in ``ids`` (for ``remove_stale``), without a string per id."""

    def __init__(self, ids: IdSet, export: ExportFolder):
        self._ids, self._export = ids, export

    def __contains__(self, name: str) -> bool:
        stem = name.removesuffix(".jpg")
        return stem.isdigit() and int(stem) in self._ids and self._export.poster_file_name(int(stem)) == name


def as_dirs(dirs: Path | Sequence[Path] | None) -> list[Path]:
    if dirs is None:
        return []
    if isinstance(dirs, (str, Path)):
        return [Path(dirs)]
    return [Path(d) for d in dirs]


def _iter_verified(manifest: pd.DataFrame | None, dirs: list[Path]) -> Iterator[tuple[int, int, Path, str]]:
    """(id, variant, folder, file name) of each image whose manifest row is ok, found in ``dirs``.

    A row another step turned invalid (a decode failure at captioning, say) is not ok,
    so its image stays out even though the file is still there. Each folder is listed
    and its manifest read once, one folder at a time; rows are then looked up in memory
    (one dict look-up per row, whatever the number of folders). Later rows win.
    """
    if manifest is not None:  # rows of any of ``dirs``: the first folder holding the file wins
        listings = {folder: set(os.listdir(folder)) if folder.is_dir() else set() for folder in dirs}
        sources: Iterable = [(lambda: manifest, list(dirs))]
    else:  # each folder's own manifest describes that folder
        listings = None
        sources = ((lambda d=d: read_manifest(d), [d]) for d in dirs if ImageFolder(d).manifest.is_file())
    for load, folders in sources:
        frame = load()
        if frame is None or frame.empty:
            continue
        home: dict[str, Path] = {}  # file name -> the first of ``folders`` that holds it
        for folder in reversed(folders):
            names = listings[folder] if listings is not None else (os.listdir(folder) if folder.is_dir() else ())
            home.update(dict.fromkeys(names, folder))
        ok = frame[frame["status"] == OK]
        variants = ok["variant"].fillna(1).astype(int) if "variant" in ok else pd.Series(1, index=ok.index)
        names = ok["file_name"] if "file_name" in ok else pd.Series(None, index=ok.index, dtype=object)
        for item_id, variant, name in zip(ok["id"].astype(int), variants, names):
            name = name if isinstance(name, str) and name else image_file_name(item_id, variant)
            folder = home.get(name)
            if folder is not None:
                yield item_id, variant, folder, name


def verified_files(manifest: pd.DataFrame | None, dirs: list[Path]) -> dict[tuple[int, int], Path]:
    """(id, variant) -> path of each verified image (see ``_iter_verified``)."""
    return {(item_id, variant): folder / name for item_id, variant, folder, name in _iter_verified(manifest, dirs)}


class PosterIndex:
    """id -> the verified poster (variant 1), held compactly: a folder number per id and a
    file name only where it is not the standard one, not a path per poster."""

    def __init__(self, manifest: pd.DataFrame | None, dirs: list[Path]):
        self._folders: list[Path] = []
        numbers: dict[Path, int] = {}
        self._folder_of: dict[int, int] = {}
        self._odd_names: dict[int, str] = {}
        for item_id, variant, folder, name in _iter_verified(manifest, dirs):
            if variant != 1:
                continue
            if folder not in numbers:
                numbers[folder] = len(self._folders)
                self._folders.append(folder)
            self._folder_of[item_id] = numbers[folder]
            if name != image_file_name(item_id, 1):
                self._odd_names[item_id] = name
            else:
                self._odd_names.pop(item_id, None)

    def source(self, item_id: int) -> Path | None:
        number = self._folder_of.get(item_id)
        if number is None:
            return None
        return self._folders[number] / self._odd_names.get(item_id, image_file_name(item_id, 1))

    def count_in(self, ids: Iterable[int]) -> int:
        return len({i for i in ids if i in self._folder_of})


def sync_images(folder: Path, wanted: dict[str, Path], progress: Progress | None = None) -> None:
    """Make ``folder``'s .jpg files exactly ``wanted``, hard-linking where the disk allows;
    ``progress`` counts the images."""
    progress = progress or Progress(folder.name, len(wanted), unit="images")
    remove_stale(folder, wanted)
    with progress:
        link_images(folder, wanted, progress)


def remove_stale(folder: Path, wanted: Container[str]) -> None:
    """Remove ``folder``'s .jpg files not named in ``wanted``."""
    with os.scandir(folder) as entries:  # streamed: Path.glob lists 400k entries first
        for entry in entries:
            if entry.name.endswith(".jpg") and entry.name not in wanted:
                os.unlink(entry.path)


def link_images(folder: Path, wanted: dict[str, Path], progress: Progress) -> None:
    """Put each of ``wanted`` (file name -> source) into ``folder``; ``progress`` counts them."""
    for name, source in wanted.items():
        progress.update()
        target = folder / name
        if target.exists():
            if os.path.samefile(source, target):
                continue
            target.unlink()
        try:
            os.link(source, target)  # the sources are replaced atomically, never rewritten in place
        except OSError:
            shutil.copy2(source, target)
