"""OCR text accuracy: how much of the intended caption text a generated poster shows.

Table 1 never measures whether the rendered title can be read, so every benchmark image
is read back with RapidOCR and compared with the title and names the caption branch was
asked to draw. The measures and their upper bound: docs/beyond_the_paper.md.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..base.progress import Progress, ProgressLog

OCR_PACKAGE = "rapidocr-onnxruntime"
OPENCV_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
UPPER_BOUND = "caption sketch (upper bound)"
WORDS_COLUMN, CER_COLUMN = "OCR words %", "OCR CER"


def opencv_distributions() -> list[str]:
    """The OpenCV wheels installed in this environment (exactly one is right)."""
    from importlib import metadata

    found = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def load_ocr():
    """RapidOCR with the PP-OCRv4 models its wheel ships; a clear error when it is missing."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as error:
        raise ImportError(
            f"OCR text accuracy needs {OCR_PACKAGE}: `make install` installs it (without opencv-python, "
            "see docs/beyond_the_paper.md); or set the report's ocr: false"
        ) from error
    return RapidOCR()


def normalise(text: str) -> str:
    """'Amélie  Poulain!' -> 'AMELIE POULAIN': ASCII letters and digits, single spaces."""
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").upper()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


def intended_words(title: str, actors: Sequence[str]) -> list[str]:
    """The caption's words in reading order: the names (top of the poster), then the title."""
    return [w for text in [*actors, title] for w in normalise(text).split()]


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass
class TextScore:
    words_total: int
    words_read: int
    cer: float
    read: str  # what OCR read, normalised

    @property
    def word_accuracy(self) -> float:
        return self.words_read / self.words_total if self.words_total else float("nan")


def score_text(words: Sequence[str], read_lines: Sequence[str]) -> TextScore:
    """Word accuracy and CER of the intended ``words`` against the OCR's ``read_lines``."""
    read = " ".join(normalise(line) for line in read_lines if normalise(line))
    remaining = read.replace(" ", "")
    found = 0
    for word in sorted(words, key=len, reverse=True):
        at = remaining.find(word)
        if word and at >= 0:
            found += 1
            remaining = remaining[:at] + "|" + remaining[at + len(word) :]  # each occurrence counts once
    intended = "".join(words)
    cer = levenshtein(intended, read.replace(" ", "")) / len(intended) if intended else float("nan")
    return TextScore(len(words), found, cer, read)


def read_lines(engine, image: Image.Image) -> list[str]:
    """The text lines OCR finds in ``image``, in its reading order (top to bottom)."""
    result, _ = engine(np.asarray(image.convert("RGB")))
    return [str(text) for _, text, _ in result or []]


@dataclass
class TextAccuracyResult:
    per_image: pd.DataFrame  # method, prompt_id, words_total, words_read, word_accuracy, cer, read, seconds
    table: pd.DataFrame  # index method: OCR words %, OCR CER, OCR images (upper bound row included)
    cpu_seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def images_per_cpu_second(self) -> float:
        return len(self.per_image) / self.cpu_seconds if self.cpu_seconds else 0.0

    def methods_table(self) -> pd.DataFrame:
        return self.table.drop(index=UPPER_BOUND, errors="ignore")

    def upper_bound(self) -> dict:
        row = self.table.loc[UPPER_BOUND] if UPPER_BOUND in self.table.index else None
        return {} if row is None else {"word_accuracy_pct": _float(row[WORDS_COLUMN]), "cer": _float(row[CER_COLUMN])}

    def report(self) -> dict:
        """The benchmark_report.json entry: per method, the upper bound, and how it was measured."""
        return {
            "methods": {
                m: {
                    "word_accuracy_pct": _float(r[WORDS_COLUMN]),
                    "cer": _float(r[CER_COLUMN]),
                    "n": int(r["OCR images"]),
                }
                for m, r in self.methods_table().iterrows()
            },
            "upper_bound": self.upper_bound(),
            "images_per_cpu_second": round(self.images_per_cpu_second, 3),
            "protocol": {
                "ocr": f"{OCR_PACKAGE} (PP-OCRv4 det + rec, ONNX, CPU)",
                "intended_text": "top-billed actor names, then the title",
                "normalisation": "NFKD to ASCII, upper case, letters and digits only, spaces ignored",
                "word_accuracy": "intended words found in the read text (each occurrence once), summed per method",
                "cer": "Levenshtein(intended, read) / len(intended), mean per image",
                **self.settings,
            },
        }

    def metadata(self) -> dict:
        return {
            "ocr_images": len(self.per_image),
            "ocr_images_per_cpu_second": round(self.images_per_cpu_second, 3),
            **{f"ocr_upper_bound_{k}": v for k, v in self.upper_bound().items()},
        }


def _float(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 4)


def _summary(per_image: pd.DataFrame) -> pd.DataFrame:
    grouped = per_image.groupby("method", sort=False)
    table = pd.DataFrame(
        {
            WORDS_COLUMN: 100 * grouped["words_read"].sum() / grouped["words_total"].sum().replace(0, np.nan),
            CER_COLUMN: grouped["cer"].mean(),
            "OCR images": grouped.size(),
        }
    )
    table.index.name = "method"
    return table


def measure_text_accuracy(
    manifest: pd.DataFrame,
    prompts: Sequence[dict],
    sketch_size: tuple[int, int] = (512, 768),
    font_path: str | None = None,
    engine=None,
    log: ProgressLog | None = None,
) -> TextAccuracyResult:
    """Read every image of a benchmark ``manifest`` (method, prompt_id, image_path) and the
    caption sketch of every prompt (``prompts``: prompt_id, title, actors), and score them."""
    from .caption_control import render_caption_layout

    engine = engine or load_ocr()
    by_id = {p["prompt_id"]: p for p in prompts}
    rows = manifest[manifest["image_path"].notna() & manifest["prompt_id"].isin(list(by_id))]
    jobs = [(m, pid, Path(path)) for m, pid, path in zip(rows["method"], rows["prompt_id"], rows["image_path"])]
    jobs += [(UPPER_BOUND, pid, None) for pid in by_id]
    records = []
    started_cpu = time.process_time()
    with Progress("benchmark_report: OCR", len(jobs), log, unit="images") as progress:
        for method, prompt_id, path in jobs:
            prompt = by_id[prompt_id]
            if path is None:
                image = render_caption_layout(prompt["title"], prompt["actors"], sketch_size, font_path)[0]
            else:
                with Image.open(path) as opened:
                    image = opened.convert("RGB")
            started = time.perf_counter()
            score = score_text(intended_words(prompt["title"], prompt["actors"]), read_lines(engine, image))
            records.append(
                {
                    "method": method,
                    "prompt_id": prompt_id,
                    "words_total": score.words_total,
                    "words_read": score.words_read,
                    "word_accuracy": score.word_accuracy,
                    "cer": score.cer,
                    "read": score.read,
                    "seconds": time.perf_counter() - started,
                }
            )
            progress.update()
    per_image = pd.DataFrame(records)
    table = _summary(per_image) if len(per_image) else pd.DataFrame(columns=[WORDS_COLUMN, CER_COLUMN, "OCR images"])
    return TextAccuracyResult(
        per_image,
        table,
        time.process_time() - started_cpu,
        {"sketch_size": f"{sketch_size[0]}x{sketch_size[1]}"},
    )
