"""Faces in actor photos: detection, identity match and head-and-shoulders crops.

Detection is dlib's frontal face detector; identity uses dlib's face recognition models
from the ``face-recognition-models`` package (public domain), and matching is off, saying
so, when that package is absent. It lives in curate/ so that both the actor photos and
their workers can use it. Models, licences and thresholds: docs/curation.md.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..base.settings import setting

RECOGNITION_PACKAGE = "face-recognition-models"
_LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
_RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON_DISTANCE = 0.6


@dataclass(frozen=True)
class Face:
    """A detected face: its box (left, top, right, bottom) in the image's pixels."""

    box: tuple[int, int, int, int]
    score: float

    @property
    def side(self) -> int:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass(frozen=True)
class FaceSettings:
    detect_size: int = setting(640, "longest side of the image the face detector sees")
    upsample: int = setting(0, "detector pyramid upsampling: 1 finds 2x smaller faces at 4x the cost (dlib)")
    min_score: float = 0.0  # detector score threshold (dlib's adjust_threshold)
    min_face_side: int = setting(
        60, "faces smaller than this (px, in the photo) are not cropped: they make blurry 512 px crops"
    )
    match_faces: bool = setting(
        True, "keep only faces that match the actor's reference face, the primary headshot (dlib's face recognition)"
    )
    match_distance: float = setting(SAME_PERSON_DISTANCE, "largest descriptor distance of the same person (dlib's 0.6)")
    crop_size: int = setting(512, "side of the square crops written (the paper's 512x512 actor photos)")
    # The crop is centred below the face so that hair, neck and shoulders are in.
    margin: float = setting(0.8, "crop side = face side x (1 + 2 x margin): head and shoulders")
    shoulder_shift: float = 0.25  # the crop centre sits this many face sides below the face centre


def recognition_model_files() -> tuple[Path, Path] | None:
    """(landmark model, recognition model) from ``face-recognition-models``, or None."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = folder / _LANDMARKS_FILE, folder / _RECOGNITION_FILE
    return files if all(f.is_file() for f in files) else None


def matching_off_reason(settings: FaceSettings) -> str | None:
    """Why faces will not be matched with these settings here, or None when they will."""
    if not settings.match_faces:
        return "match_faces is off"
    if recognition_model_files() is None:
        return f"{RECOGNITION_PACKAGE} is not installed"
    return None


class FaceAnalyzer:
    """Finds faces and, where the recognition model is installed, describes them."""

    def __init__(self, settings: FaceSettings = FaceSettings()):
        import dlib

        self.settings = settings
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = self._recognition = None
        self.matching_off_reason = matching_off_reason(settings)
        if self.matching_off_reason is not None:
            return
        files = recognition_model_files()
        self._landmarks = dlib.shape_predictor(str(files[0]))
        self._recognition = dlib.face_recognition_model_v1(str(files[1]))

    @property
    def can_match(self) -> bool:
        return self._recognition is not None

    def faces(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 array, best score first, boxes in its own pixels."""
        height, width = image.shape[:2]
        scale = min(1.0, self.settings.detect_size / max(height, width))
        small = (
            image
            if scale == 1.0
            else np.asarray(
                Image.fromarray(image).resize(
                    (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR
                )
            )
        )
        boxes, scores, _ = self._detector.run(small, self.settings.upsample, self.settings.min_score)
        found = []
        for box, score in zip(boxes, scores):
            left, top = max(0, round(box.left() / scale)), max(0, round(box.top() / scale))
            right, bottom = min(width, round(box.right() / scale)), min(height, round(box.bottom() / scale))
            if right > left and bottom > top:
                found.append(Face((left, top, right, bottom), float(score)))
        return sorted(found, key=lambda f: -f.score)

    def descriptor(self, image: np.ndarray, face: Face) -> np.ndarray | None:
        """The face's 128-d identity descriptor, or None when matching is off."""
        if not self.can_match:
            return None
        import dlib

        rectangle = dlib.rectangle(*face.box)
        shape = self._landmarks(image, rectangle)
        return np.asarray(self._recognition.compute_face_descriptor(image, shape), dtype=np.float32)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def head_and_shoulders_box(
    face: Face, width: int, height: int, settings: FaceSettings = FaceSettings()
) -> tuple[int, int, int, int]:
    """A square around the face with margin, moved (never cut) to lie inside the image;
    smaller only when the image itself is smaller than the square."""
    left, top, right, bottom = face.box
    side_px = max(right - left, bottom - top)
    side = min(round(side_px * (1 + 2 * settings.margin)), width, height)
    centre_x = (left + right) / 2
    centre_y = (top + bottom) / 2 + settings.shoulder_shift * side_px
    x0 = int(round(min(max(0.0, centre_x - side / 2), width - side)))
    y0 = int(round(min(max(0.0, centre_y - side / 2), height - side)))
    return x0, y0, x0 + side, y0 + side


def crop_face(image: Image.Image, box: tuple[int, int, int, int], size: int = 512) -> Image.Image:
    """The box cut out and resized to ``size`` x ``size`` RGB."""
    return image.convert("RGB").crop(box).resize((size, size), Image.Resampling.LANCZOS)
