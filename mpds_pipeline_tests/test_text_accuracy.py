"""OCR text accuracy: the real PP-OCRv4 models of rapidocr-onnxruntime read a rendered
poster on CPU; the scoring (normalisation, word accuracy, CER) on known strings; exactly
one OpenCV build in the environment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFilter

from mpds_pipeline.vision.caption_control import render_caption_layout
from mpds_pipeline.vision.text_accuracy import (
    CER_COLUMN,
    UPPER_BOUND,
    WORDS_COLUMN,
    intended_words,
    levenshtein,
    load_ocr,
    measure_text_accuracy,
    normalise,
    opencv_distributions,
    read_lines,
    score_text,
)


@pytest.fixture(scope="module")
def ocr():
    return load_ocr()


def test_exactly_one_opencv_build_is_installed():
    # rapidocr-onnxruntime asks for opencv-python; the project's build is the headless one.
    assert opencv_distributions() == ["opencv-python-headless"]
    import cv2

    assert cv2.Canny is not None


def test_scoring_normalises_and_counts_words_and_characters():
    assert normalise("  Amélie — Poulain! ") == "AMELIE POULAIN"
    assert intended_words("The Green Planet", ["Nicole Kidman"]) == ["NICOLE", "KIDMAN", "THE", "GREEN", "PLANET"]
    assert levenshtein("KITTEN", "SITTING") == 3 and levenshtein("", "AB") == 2
    words = intended_words("The Green Planet", ["Nicole Kidman"])
    # OCR reads a line without its spaces: every word still counts.
    perfect = score_text(words, ["NICOLEKIDMAN", "THE GREEN", "PLANET"])
    assert perfect.words_read == 5 and perfect.word_accuracy == 1.0 and perfect.cer == 0.0
    partial = score_text(words, ["NIC0LE KIDMAN", "THE GREFN PLANET"])
    assert partial.words_read == 3 and partial.cer == pytest.approx(2 / len("NICOLEKIDMANTHEGREENPLANET"))
    assert score_text(words, []).word_accuracy == 0.0 and score_text(words, []).cer == 1.0
    # A word found once counts once.
    assert score_text(["THE", "THE"], ["THE"]).words_read == 1


def _poster(title: str, actors: list[str]) -> Image.Image:
    """A poster-like image: a dark gradient with a blurred shape, the caption drawn in light text."""
    sketch, _ = render_caption_layout(title, actors, (400, 600))
    gradient = np.linspace(20, 90, 600, dtype=np.float32)[:, None, None] * np.array([1.0, 0.6, 1.3])
    background = Image.fromarray(np.broadcast_to(gradient, (600, 400, 3)).clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(background).ellipse((80, 150, 320, 380), fill=(150, 60, 40))
    background = background.filter(ImageFilter.GaussianBlur(6))
    text = Image.eval(sketch.convert("L"), lambda v: 255 - v)  # the glyphs as a mask
    background.paste(Image.new("RGB", background.size, (245, 235, 200)), mask=text)
    return background


def test_ocr_reads_the_title_and_names_of_a_rendered_poster(ocr):
    poster = _poster("The Green Planet", ["Nicole Kidman"])
    lines = read_lines(ocr, poster)
    score = score_text(intended_words("The Green Planet", ["Nicole Kidman"]), lines)
    assert score.word_accuracy == 1.0 and score.cer < 0.1, lines
    blank = Image.new("RGB", (400, 600), (30, 30, 60))
    assert read_lines(ocr, blank) == []


def test_a_method_row_per_method_and_the_sketch_upper_bound(ocr, tmp_path):
    prompts = [
        {"prompt_id": "tt0000001", "title": "The Green Planet", "actors": ["Nicole Kidman"]},
        {"prompt_id": "tt0000002", "title": "Night Harbour", "actors": ["Tom Hanks", "Ana Lopez"]},
    ]
    rows = []
    for prompt in prompts:
        good, noise = tmp_path / f"good_{prompt['prompt_id']}.png", tmp_path / f"noise_{prompt['prompt_id']}.png"
        _poster(prompt["title"], prompt["actors"]).save(good)
        Image.new("RGB", (64, 96), (90, 40, 40)).save(noise)
        rows += [
            {"method": "readable", "prompt_id": prompt["prompt_id"], "image_path": str(good)},
            {"method": "no text", "prompt_id": prompt["prompt_id"], "image_path": str(noise)},
        ]
    rows.append({"method": "no text", "prompt_id": "tt0000003", "image_path": None})  # missing: not scored
    result = measure_text_accuracy(pd.DataFrame(rows), prompts, engine=ocr)
    table = result.table
    assert list(table.index) == ["readable", "no text", UPPER_BOUND]
    assert table.loc["readable", WORDS_COLUMN] >= 90 and table.loc["no text", WORDS_COLUMN] == 0
    assert table.loc["no text", CER_COLUMN] == 1.0 and table.loc["readable", CER_COLUMN] < 0.15
    assert result.upper_bound()["word_accuracy_pct"] >= 90  # the goal on the sketches themselves
    report = result.report()
    assert set(report["methods"]) == {"readable", "no text"} and report["methods"]["readable"]["n"] == 2
    assert report["images_per_cpu_second"] > 0 and report["protocol"]["sketch_size"] == "512x768"
