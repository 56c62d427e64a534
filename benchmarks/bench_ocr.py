"""OCR throughput and the sketch upper bound of the benchmark's text accuracy.

Draws the caption sketches of ``--n`` made-up posters (title, two names) at 512x768,
reads them with rapidocr-onnxruntime (its shipped PP-OCRv4 models, CPU) and prints images
per CPU-second and the word accuracy / CER the report's upper-bound row would show.

    python benchmarks/bench_ocr.py [--n 12]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpds_pipeline.vision.caption_control import render_caption_layout
from mpds_pipeline.vision.text_accuracy import intended_words, load_ocr, opencv_distributions, read_lines, score_text

TITLE_WORDS = "night harbour green planet last winter silent river golden city lost signal red garden".split()
NAMES = "Nicole Kidman|Tom Hanks|Ana Lopez|Kenji Sato|Maria Rossi|Idris Okafor|Lena Berg|Omar Haddad".split("|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12)
    args = parser.parse_args()
    rng = random.Random(0)
    print(f"OpenCV wheels installed: {opencv_distributions()}")
    started = time.process_time()
    engine = load_ocr()
    print(f"OCR load: {time.process_time() - started:.2f} CPU-s")
    read = total = 0
    cers, cpu = [], 0.0
    for _ in range(args.n):
        title = " ".join(rng.sample(TITLE_WORDS, rng.randint(1, 4))).title()
        actors = rng.sample(NAMES, 2)
        sketch, _ = render_caption_layout(title, actors, (512, 768))
        started = time.process_time()
        lines = read_lines(engine, sketch)
        cpu += time.process_time() - started
        score = score_text(intended_words(title, actors), lines)
        read, total = read + score.words_read, total + score.words_total
        cers.append(score.cer)
    print(
        f"{args.n} sketches at 512x768: {args.n / cpu:.2f} images per CPU-second; "
        f"words read {100 * read / total:.1f}% ({read}/{total}), mean CER {sum(cers) / len(cers):.3f}"
    )


if __name__ == "__main__":
    main()
