"""Near-duplicate groups: real near-duplicates made from one photograph (re-encoded,
resized, a few pixels cropped) group together, different posters do not; the index finds
exactly the pairs a full comparison does; groups reach the export, the LoRA draw and the
benchmark split."""

from __future__ import annotations

import io
import json
from itertools import combinations

import pandas as pd
import pytest
from PIL import Image

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.near_duplicates import (
    group_near_duplicates,
    hamming,
    image_hashes,
    leaking_groups,
    near_duplicate_pairs,
    one_per_group,
    read_groups,
    read_hashes,
    synthetic_hashes,
    verified_posters,
    write_near_duplicates,
)
from mpds_pipeline.curate.store import write_table
from mpds_pipeline.imdb.ids import person_url
from mpds_pipeline.sample_server.images import render_jpeg
from mpds_pipeline.vision.holdout import held_out_posters
from mpds_pipeline.vision.lora_training import sample_pairs


def _poster(image: Image.Image) -> Image.Image:
    """A centred 2:3 crop, 240x360: a poster-shaped real photograph."""
    image = image.convert("RGB")
    width = min(image.width, image.height * 2 // 3)
    left, top = (image.width - width) // 2, (image.height - width * 3 // 2) // 2
    return image.crop((left, top, left + width, top + width * 3 // 2)).resize((240, 360))


def _jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


@pytest.fixture(scope="module")
def posters() -> dict[str, Image.Image]:
    """Three near-duplicates of one photograph and five different posters."""
    from skimage import data

    original = _poster(Image.fromarray(data.astronaut()))
    made = {
        "original": original,
        "re-encoded": _jpeg(original, quality=40),
        "half size": original.resize((120, 180), Image.Resampling.BILINEAR),
        "cropped": original.crop((3, 3, 237, 357)),
    }
    for name in ("coffee", "chelsea", "rocket"):
        made[name] = _poster(Image.fromarray(getattr(data, name)()))
    for movie_id in (3, 11):
        made[f"sample {movie_id}"] = _poster(Image.open(io.BytesIO(render_jpeg(f"MV5Bt{movie_id}s{movie_id}n"))))
    return made


def test_real_near_duplicates_group_and_different_posters_do_not(posters):
    names = list(posters)
    hashes = pd.DataFrame(
        [(i + 1, *image_hashes(image)) for i, image in enumerate(posters.values())], columns=["id", "phash", "dhash"]
    )
    result = group_near_duplicates(hashes)
    table = result.table.set_index("id")
    group_of = {name: int(table.loc[i + 1, "group"]) for i, name in enumerate(names)}
    copies = ["original", "re-encoded", "half size", "cropped"]
    assert {group_of[n] for n in copies} == {1}  # the earliest id represents the group
    assert len({group_of[n] for n in names if n not in copies} | {1}) == len(names) - len(copies) + 1
    assert table.loc[1, "representative"] and table.loc[[1, 2, 3, 4], "group_size"].tolist() == [4] * 4
    assert (table.loc[[2, 3, 4], "distance"] <= 7).all()  # pHash distance to the representative
    assert result.metadata()["posters_in_duplicate_groups"] == 4 and result.group_size_histogram() == {"1": 5, "4": 1}
    # Different posters are far apart in both hashes: what the default thresholds rely on.
    different = [i + 1 for i, n in enumerate(names) if n not in copies] + [1]
    for a, b in combinations(different, 2):
        pair = hashes.set_index("id").loc[[a, b]]
        assert hamming(*pair["phash"]) > 12 and hamming(*pair["dhash"]) > 12


def test_title_and_year_break_the_tie_when_the_hashes_disagree():
    # pHash finds the pair (3 bits) but dHash objects (40 bits, as on a flat poster).
    hashes = pd.DataFrame({"id": [1, 2], "phash": [0, 0b111], "dhash": [0, (1 << 40) - 1]})
    assert group_near_duplicates(hashes).table["group"].tolist() == [1, 2]
    same = pd.DataFrame({"id": [1, 2], "title": ["Amélie", "AMELIE!"], "year": [2001, 2001]})
    grouped = group_near_duplicates(hashes, titles=same)
    assert grouped.table["group"].tolist() == [1, 1] and grouped.title_year_confirmed == 1
    other_year = same.assign(year=[2001, 2019])
    assert group_near_duplicates(hashes, titles=other_year).table["group"].tolist() == [1, 2]
    # The representative is the earliest poster, whatever its id.
    agreeing = hashes.assign(dhash=[0, 0b1])
    later_first = pd.DataFrame({"id": [1, 2], "title": ["Amelie", "Amelie"], "year": [2005, 2001]})
    assert group_near_duplicates(agreeing, titles=later_first).table["group"].tolist() == [2, 2]


def test_the_band_index_finds_exactly_the_pairs_a_full_comparison_finds():
    values = synthetic_hashes(3000, seed=4, duplicate_share=0.1, flips=5)
    for threshold in (3, 7, 9):
        left, right, distance = near_duplicate_pairs(values, threshold)
        everything = {
            (i, j)
            for i, j in combinations(range(len(values)), 2)
            if bin((int(values[i]) ^ int(values[j])) & (2**64 - 1)).count("1") <= threshold
        }
        assert set(zip(left.tolist(), right.tolist())) == everything and len(everything) > 20
        assert (distance <= threshold).all()


def test_one_per_group_and_the_leak_check():
    groups = {1: 1, 2: 1, 3: 1, 4: 4, 5: 5, 6: 5}
    kept = one_per_group([1, 2, 3, 4, 5, 6, 7], groups, seed=0)
    assert len(kept) == 4 and 4 in kept and 7 in kept  # one of 1-3, 4, one of 5-6, 7 (its own group)
    assert kept == one_per_group([1, 2, 3, 4, 5, 6, 7], groups, seed=0)
    assert leaking_groups([2, 4], [1, 7], groups) == {2: [1]}
    assert leaking_groups([4, 7], [1, 5], groups) == {}


def test_groups_reach_the_export_the_lora_draw_and_a_leak_free_benchmark(posters, tmp_path):
    root = tmp_path / "data"
    layout = DataLayout(root)
    folder = layout.poster_images_dir("tt0000001-tt0000010")
    folder.mkdir(parents=True)
    manifest, movies = [], []
    # Posters 1-4 are one photograph (a re-release, a DVD cover...); 5-9 are different films.
    for movie_id, image in enumerate(posters.values(), start=1):
        image.save(folder / f"{movie_id}.jpg", quality=92)
        manifest.append(
            {
                "id": movie_id,
                "variant": 1,
                "file_name": f"{movie_id}.jpg",
                "url": f"https://m.media-amazon.com/images/M/x{movie_id}._V1_.jpg",
                "bytes": (folder / f"{movie_id}.jpg").stat().st_size,
                "width": image.width,
                "height": image.height,
                "format": "JPEG",
                "sha256": "",
                "status": "ok",
                "reason": None,
            }
        )
        movies.append(
            {
                "id": movie_id,
                "title": "Space Walk" if movie_id <= 4 else f"Film {movie_id}",
                "year": 1990 + movie_id,
                "genres": ["Drama"],
                "actors": {f"Actor {movie_id}": person_url(movie_id)},
                "poster_url": manifest[-1]["url"],
                "synopsis": "A story.",
                "is_adult": False,
                "title_type": "movie",
            }
        )
    pd.DataFrame(manifest).to_parquet(folder / "manifest.parquet")
    write_table(pd.DataFrame(movies), layout.movies_file)
    # Captioning hashed two posters already; the rest are hashed by the grouping run.
    hashes_file = layout.poster_hashes_file(folder.name)
    hashes_file.parent.mkdir(parents=True)
    pd.DataFrame(
        [(i, *image_hashes(Image.open(folder / f"{i}.jpg"))) for i in (1, 5)], columns=["id", "phash", "dhash"]
    ).to_parquet(hashes_file)

    run = write_near_duplicates(
        verified_posters(layout.poster_images_root),
        layout.poster_hashes_file,
        layout.movies_file,
        layout.near_duplicates_file,
    )
    assert run.hashed_here == 7 and len(read_hashes(hashes_file)) == 9
    groups = read_groups(layout.near_duplicates_file)
    assert [groups[i] for i in range(1, 10)] == [1, 1, 1, 1, 5, 6, 7, 8, 9]

    from mpds_pipeline.defs.assets.near_duplicates import with_duplicate_groups

    write_export(
        pd.DataFrame(movies),
        pd.DataFrame(manifest),
        [folder],
        pd.DataFrame(columns=["id", "name", "image_url"]),
        None,
        root / "export",
        extra_poster_columns=with_duplicate_groups(None, layout.near_duplicates_file),
    )
    lines = [json.loads(line) for line in (root / "export" / "posters" / "metadata.jsonl").read_text().splitlines()]
    assert {line["file_name"]: line["duplicate_group"] for line in lines}["3.jpg"] == 1
    exported = pd.read_parquet(root / "export" / "posters.parquet")["duplicate_group"].tolist()
    assert exported == [1, 1, 1, 1, 5, 6, 7, 8, 9]

    counts: dict = {}
    pairs = sample_pairs(root / "export", 100, seed=0, one_per_group=True, counts=counts)
    drawn = [int(path.stem) for path, _ in pairs]
    assert len([i for i in drawn if i <= 4]) == 1 and {5, 6, 7, 8, 9} <= set(drawn)
    assert counts == {"exported": 9, "in_subset": 9, "groups_known": True, "one_per_group": 6, "drawn": 6}
    assert len(sample_pairs(root / "export", 100, seed=0)) == 9  # the paper's draw, with the copies

    # The benchmark never holds a copy of a training poster.
    train = {drawn[0]} if drawn[0] <= 4 else {next(i for i in drawn if i <= 4)}
    held = held_out_posters(root / "export", 9, seed=0, exclude_ids=train, groups=groups)
    assert {p.movie_id for p in held} == {5, 6, 7, 8, 9}
    assert not leaking_groups([p.movie_id for p in held], train, groups)
    leaky = held_out_posters(root / "export", 9, seed=0, exclude_ids=train)  # without groups
    assert leaking_groups([p.movie_id for p in leaky], train, groups)
