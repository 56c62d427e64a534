"""Actor photos: 3-5 head-and-shoulders face crops per actor, as the paper's actor branch uses.

For each actor it picks candidate photos (the primary image, then the person record's
photos of this person alone), downloads a bounded number, finds and matches the faces
(``curate.faces``) and keeps the first that pass, cropped to 512x512. The candidate order
and every drop reason: docs/curation.md.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from ..base.workers import Workers
from ..imdb.person_photos import ALONE, NOT_NAMED, UNCAPTIONED, WITH_OTHERS, photo_subject
from ..imdb.records import STRIP, PersonPhoto
from .face_crops import (
    DROP_REASONS,
    KEPT,
    NAMES_OTHERS,
    NOT_THIS_PERSON,
    OVER_CANDIDATE_CAP,
    PRIMARY,
    Candidate,
    crop_actor,
    decision_row,
)
from .faces import FaceAnalyzer, FaceSettings
from .filters import as_text
from .image_checks import FACE_CROPS
from .manifest import DecodeRecord, record_decode_results

ACTOR_PHOTO_COLUMNS = [
    "actor_id",
    "rank",
    "source",
    "url",
    "caption",
    "crop_box",
    "path",
    "sha256",
    "bytes",
    "width",
    "height",
    "face_score",
    "match_distance",
]
# fingerprint: the actor's candidates and settings, so that a rerun can take the actor over.
DECISION_COLUMNS = ["actor_id", "variant", "source", "url", "caption", "subject", "decision", "detail", "fingerprint"]


@dataclass(frozen=True)
class ActorPhotoSettings:
    min_photos: int = setting(3, "fewer crops than this are reported per actor (the paper trains on 3-5)")
    max_photos: int = setting(5, "crops kept per actor, best sources first")
    max_candidates: int = setting(8, "photos downloaded per actor, the primary image included")
    faces: FaceSettings | None = None  # None: FaceSettings' defaults


@dataclass
class PhotoPlan:
    candidates: dict[int, list[Candidate]]  # actor id -> candidates in priority order
    decisions: list[dict] = field(default_factory=list)  # photos dropped before any download

    def downloads(self) -> list[tuple[int, int, str]]:
        """(actor id, variant, url) of the strip and gallery candidates (the primary is
        ``actor_images``' download)."""
        return [(c.actor_id, c.variant, c.url) for cands in self.candidates.values() for c in cands if c.variant > 1]


def _photos_of(value) -> list[PersonPhoto]:
    """Person-record photos as read back from Parquet (dicts) or as dataclasses."""
    if value is None or isinstance(value, float):
        return []
    photos = []
    for item in value:
        if isinstance(item, PersonPhoto):
            photos.append(item)
        elif isinstance(item, dict) and as_text(item.get("url")):
            tagged = item.get("tagged_ids")
            photos.append(
                PersonPhoto(
                    url=item["url"],
                    caption=as_text(item.get("caption")),
                    width=item.get("width"),
                    height=item.get("height"),
                    tagged_ids=None if tagged is None else [int(t) for t in tagged],
                    source=item.get("source") or STRIP,
                )
            )
    return photos


_PRIORITY = {(ALONE, True): 0, (ALONE, False): 1, (UNCAPTIONED, False): 2}


def plan_actor_photos(
    actors: pd.DataFrame, persons: pd.DataFrame, settings: ActorPhotoSettings = ActorPhotoSettings()
) -> PhotoPlan:
    """The candidates of every actor, and the photos the tags and captions rule out."""
    photos_by_id = (
        {int(i): _photos_of(p) for i, p in zip(persons["id"], persons["photos"])} if "photos" in persons else {}
    )
    plan = PhotoPlan({})
    for actor in actors.to_dict("records"):
        actor_id, name = int(actor["id"]), as_text(actor.get("name"))
        primary = as_text(actor.get("image_url"))
        ranked: list[tuple[int, int, PersonPhoto, str]] = []
        seen = {primary}
        for order, photo in enumerate(photos_by_id.get(actor_id, [])):
            if photo.url in seen:
                continue
            seen.add(photo.url)
            subject = photo_subject(photo, actor_id, name)
            if subject in (WITH_OTHERS, NOT_NAMED):
                reason = NAMES_OTHERS if subject == WITH_OTHERS else NOT_THIS_PERSON
                plan.decisions.append(
                    decision_row(actor_id, None, photo.source, photo.url, photo.caption, subject, reason)
                )
                continue
            ranked.append((_PRIORITY[(subject, bool(photo.tagged_ids))], order, photo, subject))
        ranked.sort(key=lambda item: item[:2])
        cands = [Candidate(actor_id, 1, PRIMARY, primary, None, ALONE)] if primary else []
        for _, _, photo, subject in ranked:
            if len(cands) >= settings.max_candidates:
                plan.decisions.append(
                    decision_row(actor_id, None, photo.source, photo.url, photo.caption, subject, OVER_CANDIDATE_CAP)
                )
                continue
            cands.append(Candidate(actor_id, len(cands) + 1, photo.source, photo.url, photo.caption, subject))
        plan.candidates[actor_id] = cands
    return plan


def attach_files(
    plan: PhotoPlan, primary_manifest: pd.DataFrame, primary_dir: Path, photo_manifest: pd.DataFrame, photos_dir: Path
) -> None:
    """Point each candidate at its verified file: the primary in ``actor_images``'
    folder, the others in this step's download folder."""

    def verified(manifest: pd.DataFrame) -> dict[tuple[int, int], dict]:
        return {(int(r["id"]), int(r["variant"])): r for r in manifest.to_dict("records")}

    primaries, others = verified(primary_manifest), verified(photo_manifest)
    for cands in plan.candidates.values():
        for cand in cands:
            row = (primaries if cand.variant == 1 else others).get(
                (cand.actor_id, 1 if cand.variant == 1 else cand.variant)
            )
            folder = primary_dir if cand.variant == 1 else photos_dir
            if row is None or row["url"] != cand.url:
                cand.missing = "no download of this URL"
            elif row["status"] != "ok":
                cand.missing = f"{row['status']}: {row.get('reason') or ''}".strip(": ")
            else:
                cand.path, cand.sha256 = Path(folder) / row["file_name"], row.get("sha256")


# --- faces ------------------------------------------------------------------------------


@dataclass
class ActorPhotosResult:
    photos: pd.DataFrame  # ACTOR_PHOTO_COLUMNS: the kept crops
    decisions: pd.DataFrame  # DECISION_COLUMNS: every candidate and every dropped photo
    actor_ids: list[int]  # every actor planned, with or without a candidate
    matching: str  # "on", or why face matching is off
    min_photos: int
    decode_failures: dict[str, str] = field(default_factory=dict)  # file path -> error
    manifest_updates: DecodeRecord = field(default_factory=DecodeRecord)  # what the decodes changed in the manifests

    @property
    def actors(self) -> int:
        return len(self.actor_ids)

    def photos_per_actor(self) -> dict[int, int]:
        return Counter(int(a) for a in self.photos["actor_id"])

    def metadata(self) -> dict:
        per_actor = self.photos_per_actor()
        dropped = self.decisions[self.decisions["decision"] != KEPT]
        under = sum(1 for a in self.actor_ids if per_actor.get(a, 0) < self.min_photos)
        return {
            "actors": self.actors,
            "photos_kept": len(self.photos),
            "actors_with_min_photos": self.actors - under,
            "actors_under_min_photos": under,
            "mean_photos_per_actor": round(len(self.photos) / self.actors, 2) if self.actors else 0.0,
            "face_matching": self.matching,
            **{f"dropped_{reason}": int((dropped["decision"] == reason).sum()) for reason in DROP_REASONS},
        }


def crop_actor_photos(
    plan: PhotoPlan,
    crops_dir: Path,
    settings: ActorPhotoSettings = ActorPhotoSettings(),
    log: ProgressLog | None = None,
    *,
    previous: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    workers: int | None = None,
) -> ActorPhotosResult:
    """Find the faces in every actor's downloaded candidates and write the kept crops as
    ``crops_dir/<actor id>_<rank>.jpg``.

    ``previous`` (photos, decisions) of an earlier run: an actor whose candidates (URLs
    and file hashes) and settings are unchanged, and whose crops are all still there, is
    taken over as it was, without decoding anything. ``workers``: processes for the
    face work (dlib's recognition network is slow per face: docs/benchmarks.md);
    None: one per core when there are enough actors.

    Every photo decoded here is reported to the manifest of the folder it was downloaded
    to (``record_decode_results``, stage ``face_crops``): one that does not decode turns
    ``invalid`` there, so the export and a rerun of the download leave it out."""
    face_settings = settings.faces or FaceSettings()
    crops_dir = Path(crops_dir)
    crops_dir.mkdir(parents=True, exist_ok=True)
    photos: list[dict] = []
    decisions = list(plan.decisions)
    decodes: dict[str, str | None] = {}  # file path -> None (decoded) or the error
    reusable = _reusable(previous, crops_dir)
    todo = []
    with Progress("actor_photos faces", len(plan.candidates), log, unit="actors") as progress:

        def done(kept: list[dict], rows: list[dict], status: str) -> None:
            photos.extend(kept)
            decisions.extend(rows)
            progress.update(
                status=status
                if status == "reused"
                else "enough photos"
                if len(kept) >= settings.min_photos
                else "too few photos"
            )

        for actor_id, cands in plan.candidates.items():
            print_ = _fingerprint(cands, settings, face_settings)
            earlier = reusable.get(actor_id)
            if earlier is not None and earlier[0] == print_:
                done(earlier[1], earlier[2], "reused")
            else:
                todo.append((actor_id, cands, print_))
        workers = workers if workers is not None else (min(os.cpu_count() or 1, 4) if len(todo) >= 16 else 1)
        workers = min(workers, len(todo))  # a worker loads the face models: none idle
        if workers > 1:
            setup = (face_settings, settings.max_photos, crops_dir)
            with Workers("mpds_pipeline.curate.face_crops:face_worker", workers, setup, label="face") as pool:
                for kept, rows, decoded in pool.map(todo):
                    decodes.update(decoded)
                    done(kept, rows, "")
        else:
            analyzer = FaceAnalyzer(face_settings)
            for actor_id, cands, print_ in todo:
                kept, rows = crop_actor(
                    analyzer, face_settings, settings.max_photos, actor_id, cands, crops_dir, decodes, print_
                )
                done(kept, rows, "")
    for stale in set(crops_dir.glob("*.jpg")) - {Path(p["path"]) for p in photos}:
        stale.unlink()  # crops of an earlier run that this one did not keep
    photos.sort(key=lambda row: (row["actor_id"], row["rank"]))
    return ActorPhotosResult(
        photos=pd.DataFrame(photos, columns=ACTOR_PHOTO_COLUMNS),
        decisions=pd.DataFrame(decisions, columns=DECISION_COLUMNS),
        actor_ids=sorted(plan.candidates),
        matching=matching_state(face_settings),
        min_photos=settings.min_photos,
        decode_failures={path: error for path, error in decodes.items() if error is not None},
        manifest_updates=record_face_crop_decodes(decodes),
    )


def record_face_crop_decodes(decodes: dict[str, str | None]) -> DecodeRecord:
    """Each decoded photo's outcome (None: it decoded; else the error) in the manifest of
    the folder it lies in: actor_images' primaries, or this step's downloads."""
    by_folder: dict[Path, dict[str, str | None]] = {}
    for path, error in decodes.items():
        by_folder.setdefault(Path(path).parent, {})[Path(path).name] = error
    record = DecodeRecord()
    for folder, outcomes in by_folder.items():
        record = record.add(record_decode_results(folder, outcomes, FACE_CROPS))
    return record


def matching_state(face_settings) -> str:
    """ "on", or why face matching is off, as ``FaceAnalyzer`` decides it."""
    from .faces import matching_off_reason

    reason = matching_off_reason(face_settings)
    return "on" if reason is None else f"off ({reason})"


def _fingerprint(cands: list[Candidate], settings: ActorPhotoSettings, face_settings) -> str:
    parts = [repr((c.variant, c.url, c.sha256, c.missing, c.subject)) for c in cands]
    parts.append(repr((settings.min_photos, settings.max_photos, face_settings)))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _reusable(previous, crops_dir: Path) -> dict[int, tuple[str, list[dict], list[dict]]]:
    """actor id -> (fingerprint, kept rows, decision rows) of an earlier run whose crops
    are all still on disk with the recorded hash."""
    if previous is None:
        return {}
    photos, decisions = previous
    if photos.empty or decisions.empty or "fingerprint" not in decisions.columns:
        return {}
    found: dict[int, tuple[str, list[dict], list[dict]]] = {}
    kept_by_actor: dict[int, list[dict]] = {}
    for row in photos.to_dict("records"):
        row["crop_box"] = [int(v) for v in row["crop_box"]]
        row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        kept_by_actor.setdefault(int(row["actor_id"]), []).append(row)
    for actor_id, rows in decisions[decisions["variant"].notna()].groupby("actor_id"):
        prints = set(rows["fingerprint"])
        kept = kept_by_actor.get(int(actor_id), [])
        if len(prints) == 1 and all(_crop_intact(Path(k["path"]), k["sha256"], crops_dir) for k in kept):
            records = [
                {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                for r in rows.to_dict("records")
            ]
            for record in records:
                record["variant"] = int(record["variant"])
            found[int(actor_id)] = (prints.pop(), kept, records)
    return found


def _crop_intact(path: Path, sha256: str, crops_dir: Path) -> bool:
    return path.parent == crops_dir and path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256


# --- the whole step ---------------------------------------------------------------------


def build_actor_photos(
    actors: pd.DataFrame,
    persons: pd.DataFrame,
    primary_dir: Path,
    photos_dir: Path,
    crops_dir: Path,
    client_settings,
    settings: ActorPhotoSettings = ActorPhotoSettings(),
    limits=None,
    log: ProgressLog | None = None,
    *,
    previous: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    workers: int | None = None,
    ai_optout: bool = True,
):
    """Plan, download (through the polite client, into ``photos_dir`` with a manifest),
    and crop (``crop_actor_photos``). Returns (ActorPhotosResult, the download's
    DownloadResult); when the download was blocked the result is None and nothing is
    cropped."""
    from .image_checks import ImageLimits
    from .images import download_variants
    from .manifest import read_manifest

    plan = plan_actor_photos(actors, persons, settings)
    download = download_variants(
        plan.downloads(), Path(photos_dir), client_settings, limits or ImageLimits(), ai_optout=ai_optout
    )
    if download.blocked:
        return None, download
    attach_files(plan, read_manifest(primary_dir), primary_dir, download.manifest, photos_dir)
    return crop_actor_photos(plan, crops_dir, settings, log, previous=previous, workers=workers), download


def contact_sheet(photos: pd.DataFrame, path: Path, max_actors: int = 6, thumb: int = 96) -> Path | None:
    """A PNG with one row of crops per actor (the first ``max_actors``), for the UI."""
    if photos.empty:
        return None
    actor_ids = list(dict.fromkeys(int(a) for a in photos["actor_id"]))[:max_actors]
    columns = int(photos[photos["actor_id"].isin(actor_ids)].groupby("actor_id").size().max())
    sheet = Image.new("RGB", (columns * thumb, len(actor_ids) * thumb), "white")
    for row, actor_id in enumerate(actor_ids):
        mine = photos[photos["actor_id"] == actor_id].sort_values("rank")
        for column, crop in enumerate(mine["path"]):
            with Image.open(crop) as image:
                sheet.paste(image.convert("RGB").resize((thumb, thumb)), (column * thumb, row * thumb))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
