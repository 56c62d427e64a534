"""Every data path comes from base/layout.py (and the folders' own layouts in base/folders.py):
no other module spells a data file's name."""

from __future__ import annotations

import re
from pathlib import Path

import mpds_pipeline
from mpds_pipeline.base.folders import ExportFolder, ImageFolder, PagesFolder, crop_file_name, image_file_name
from mpds_pipeline.base.layout import DataLayout

ROOT = Path(mpds_pipeline.__file__).parent
# The owners of the data paths: where the folders sit, and the files inside each folder.
LAYOUT_MODULES = {"base/layout.py", "base/folders.py"}
# A string literal naming a file of one of the data formats: "movies.parquet", f"{id}.jpg".
FILE_NAME = re.compile(
    r"""["'][\w{}\[\]'".-]*\w[\w{}\]]*\.(?:parquet|csv|jsonl|json|png|jpe?g|warc\.gz|lock|md|yaml|env)["']"""
)
# Names a library gives its own files (tokenizers, saved models), the repository's
# dagster.yaml, and the inner files of a training checkpoint and of the LoRA folder
# (vision/checkpoints.py and lora_training.py name them beside the code that writes
# and reads them; the folders themselves come from the layout).
ALLOWED = {
    "curate/prompts.py": {'"vocab.json"', '"tokenizer.json"'},
    "vision/tiny_sd.py": {'"vocab.json"'},
    "vision/tiny_blip2.py": {'"config.json"'},
    "cli/local.py": {'"dagster.yaml"'},
    "imdb/page_data.py": {'"_.jpg"'},  # the tail of an image URL, not a file
    "vision/checkpoints.py": {'"state.json"'},
    "vision/lora_training.py": {'"loss_curve.png"', '"training_state.json"'},
}


def test_no_module_but_layout_spells_a_data_file_name():
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in LAYOUT_MODULES or relative.startswith("sample_server/"):
            continue
        names = set(FILE_NAME.findall(path.read_text(encoding="utf-8"))) - ALLOWED.get(relative, set())
        if names:
            found[relative] = sorted(names)
    assert found == {}


def test_the_layout_names():
    layout = DataLayout(Path("/data"))
    assert layout.records_file("title", "tt0000001-tt0010000") == Path(
        "/data/crawl/title_records/tt0000001-tt0010000.parquet"
    )
    assert layout.pages("person", "k").outcomes == Path("/data/crawl/person_pages/k/outcomes.parquet")
    assert layout.pages_root("title") == layout.pages_dir("title", "k").parent
    assert layout.vision_prompts_file("k").parent == layout.vision_prompts_dir
    assert layout.poster_images_dir("k").parent == layout.poster_images_root
    assert PagesFolder(Path("p")).archive.name == "pages.warc.gz" and PagesFolder(Path("p")).lock.name == "crawl.lock"
    assert ImageFolder(Path("i")).image(7) == Path("i/7.jpg") and ImageFolder(Path("i")).image(7, 2) == Path(
        "i/7_2.jpg"
    )
    assert image_file_name(12) == "12.jpg" and crop_file_name(12, 1) == "12_1.jpg"
    export = ExportFolder(Path("e"))
    assert [export.csv(t).name for t in ("meta", "posters", "actors")] == ["meta.csv", "posters.csv", "actors.csv"]
    assert export.poster(5) == Path("e/posters/5.jpg") and export.posters_metadata == Path("e/posters/metadata.jsonl")
    assert export.actor_photo_file_name(3, 2) == "actor_photos/3_2.jpg"
    assert (export.path / export.actor_photo_file_name(3, 2)).parent == export.actor_photos_dir
