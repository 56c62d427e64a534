"""Cropping one actor's photos to head-and-shoulders face crops: the rules that keep or
drop each photo, and the work a face worker process does (``face_worker``).

actor_photos.py plans the candidates and runs this in process or over worker
processes (base/workers.py); both import it from here.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

import numpy as np
from PIL import Image

from ..base.files import write_atomic
from ..base.folders import crop_file_name
from ..imdb.person_photos import ALONE, UNCAPTIONED, PhotoSubject
from ..imdb.records import PhotoSource
from .faces import FaceSettings, crop_face, face_distance, head_and_shoulders_box
from .image_checks import DECODE_ERRORS

# Where a candidate comes from: the primary image (actor_images), or a person photo.
CandidateSource = Literal["primary", PhotoSource]
PRIMARY: Final = "primary"
# Why a photo is dropped, in the order the rules apply.
PhotoDropReason = Literal[
    "names_others",
    "not_this_person",
    "over_candidate_cap",
    "not_downloaded",
    "undecodable",
    "duplicate",
    "no_face",
    "several_faces",
    "face_mismatch",
    "face_too_small",
    "over_limit",
]
DROP_REASONS: tuple[PhotoDropReason, ...] = get_args(PhotoDropReason)
NAMES_OTHERS: Final = "names_others"
NOT_THIS_PERSON: Final = "not_this_person"
OVER_CANDIDATE_CAP: Final = "over_candidate_cap"
NOT_DOWNLOADED: Final = "not_downloaded"
UNDECODABLE: Final = "undecodable"
DUPLICATE: Final = "duplicate"
NO_FACE: Final = "no_face"
SEVERAL_FACES: Final = "several_faces"
FACE_MISMATCH: Final = "face_mismatch"
FACE_TOO_SMALL: Final = "face_too_small"
OVER_LIMIT: Final = "over_limit"
# A decision row's ``decision``: the photo was kept, or why it was not.
PhotoDecision = Literal["kept", PhotoDropReason]
KEPT: Final = "kept"


@dataclass
class Candidate:
    actor_id: int
    variant: int  # 1: the primary image; 2..: strip and gallery photos in priority order
    source: CandidateSource
    url: str
    caption: str | None
    subject: PhotoSubject  # ALONE or UNCAPTIONED (the others never become candidates)
    path: Path | None = None  # the downloaded file
    sha256: str | None = None
    missing: str | None = None  # why there is no file


def decision_row(actor_id, variant, source, url, caption, subject, decision, detail=None, fingerprint=None) -> dict:
    return {
        "actor_id": actor_id,
        "variant": variant,
        "source": source,
        "url": url,
        "caption": caption,
        "subject": subject,
        "decision": decision,
        "detail": detail,
        "fingerprint": fingerprint,
    }


def load_rgb(path: Path) -> np.ndarray:
    from PIL import ImageOps

    with Image.open(path) as image:
        # A phone photo may store its pixels sideways with an EXIF orientation tag; the
        # frontal face detector only finds upright faces.
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def crop_actor(
    analyzer,
    face_settings: FaceSettings,
    max_photos: int,
    actor_id: int,
    cands: list[Candidate],
    crops_dir: Path,
    decodes: dict[str, str | None],
    fingerprint: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """The kept crops (at most ``max_photos``) and the decision rows of one actor; each
    photo decoded goes into ``decodes`` (path -> None, or the error)."""

    kept: list[dict] = []
    rows: list[dict] = []
    hashes: set[str] = set()
    reference = None

    def drop(cand: Candidate, reason: PhotoDropReason, detail: str | None = None) -> None:
        rows.append(
            decision_row(
                actor_id, cand.variant, cand.source, cand.url, cand.caption, cand.subject, reason, detail, fingerprint
            )
        )

    for cand in cands:
        if len(kept) >= max_photos:
            drop(cand, OVER_LIMIT)
            continue
        if cand.path is None:
            drop(cand, NOT_DOWNLOADED, cand.missing)
            continue
        if cand.sha256 and cand.sha256 in hashes:
            drop(cand, DUPLICATE)
            continue
        try:
            pixels = load_rgb(cand.path)
        except DECODE_ERRORS as error:
            decodes[str(cand.path)] = f"{type(error).__name__}: {error}"
            drop(cand, UNDECODABLE, decodes[str(cand.path)])
            continue
        decodes[str(cand.path)] = None
        faces = analyzer.faces(pixels)
        if not faces:
            drop(cand, NO_FACE)
            continue
        if cand.subject == UNCAPTIONED and len(faces) > 1:
            drop(cand, SEVERAL_FACES, f"{len(faces)} faces and no caption or tag")
            continue
        distance = None
        if reference is not None:
            distances = [face_distance(reference, analyzer.descriptor(pixels, f)) for f in faces[:4]]
            best = int(np.argmin(distances))
            face, distance = faces[best], distances[best]
            if distance > face_settings.match_distance:
                drop(
                    cand,
                    FACE_MISMATCH,
                    f"nearest face {distance:.2f} from the primary's (limit {face_settings.match_distance})",
                )
                continue
        elif len(faces) > 1:
            drop(cand, SEVERAL_FACES, f"{len(faces)} faces and no reference face to tell which")
            continue
        else:
            face = faces[0]
        if face.side < face_settings.min_face_side:
            drop(cand, FACE_TOO_SMALL, f"{face.side} px face (minimum {face_settings.min_face_side})")
            continue
        if reference is None and cand.subject == ALONE and analyzer.can_match:
            # The primary image, or failing it the first kept photo named as this person.
            reference = analyzer.descriptor(pixels, face)
        height, width = pixels.shape[:2]
        box = head_and_shoulders_box(face, width, height, face_settings)
        data = jpeg_bytes(crop_face(Image.fromarray(pixels), box, face_settings.crop_size))
        rank = len(kept) + 1
        path = crops_dir / crop_file_name(actor_id, rank)
        # No fsync (many crops a minute): a crop a power cut loses fails its sha256 when
        # actor_photos checks for reuse, and the next run crops that actor again.
        write_atomic(path, data, fsync=False)
        if cand.sha256:
            hashes.add(cand.sha256)
        kept.append(
            {
                "actor_id": actor_id,
                "rank": rank,
                "source": cand.source,
                "url": cand.url,
                "caption": cand.caption,
                "crop_box": list(box),
                "path": str(path),
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "width": width,
                "height": height,
                "face_score": round(face.score, 3),
                "match_distance": None if distance is None else round(distance, 3),
            }
        )
        rows.append(
            decision_row(
                actor_id, cand.variant, cand.source, cand.url, cand.caption, cand.subject, KEPT, path.name, fingerprint
            )
        )
    return kept, rows


def jpeg_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def face_worker(setup, context):
    """A face worker's handler (base/workers.py): ``setup`` is (face settings,
    max_photos, crops folder); each task (actor id, candidates, fingerprint) gives
    (kept, decision rows, decodes). The face models load once per worker."""
    from .faces import FaceAnalyzer

    face_settings, max_photos, crops_dir = setup
    analyzer = FaceAnalyzer(face_settings)

    def crop(task):
        actor_id, cands, fingerprint = task
        decodes: dict[str, str | None] = {}
        kept, rows = crop_actor(analyzer, face_settings, max_photos, actor_id, cands, crops_dir, decodes, fingerprint)
        return kept, rows, decodes

    return crop
