"""The GPU stages as Dagster assets, on CPU with tiny random models: LoRA, held-out
prompts, actor embeddings, caption controls, benchmark images and the report."""

from __future__ import annotations

import json

import pandas as pd
from dagster import DagsterInstance, materialize
from PIL import Image

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.export_actor_photos import write_actor_photos_export
from mpds_pipeline.curate.store import write_table
from mpds_pipeline.defs.assets.ablations import swap_ablations
from mpds_pipeline.defs.assets.generation import benchmark_prompts, generation_assets
from mpds_pipeline.defs.resources import DataDirResource, ModelsResource
from mpds_pipeline.imdb.ids import person_url
from mpds_pipeline.vision.lora_training import sample_pairs

from .image_samples import noise_image, saved_noise_jpeg, undecodable_jpeg

TINY = {
    "lora_weights": {
        "resolution": 32,
        "max_train_steps": 4,
        "n_pairs": 6,
        "checkpointing_steps": 2,
        "learning_rate": 1e-3,
    },
    "benchmark_prompts": {"n_prompts": 3},
    "actor_embeddings": {
        "resolution": 32,
        "max_train_steps": 2,
        "train_batch_size": 1,
        "max_actors": 2,
        "initializer_token": "the",
    },
    "caption_controls": {"size": 128},
    "benchmark_images": {"num_inference_steps": 2, "height": 32, "width": 32},
    "swap_ablations": {"num_inference_steps": 1, "height": 32, "width": 32, "n_actors": 2, "n_prompts": 2},
    "benchmark_report": {"fid_resize": 32},
}


def make_export(root):
    """A nine-movie export with real JPEGs and actor photos, written by the core exporter."""
    import numpy as np

    rng = np.random.default_rng(0)
    posters = root / "images" / "posters" / "tt0000001-tt0000050"
    actors_dir = root / "images" / "actors"
    posters.mkdir(parents=True)
    actors_dir.mkdir(parents=True)
    movies, manifest, actor_rows, actor_manifest = [], [], [], []
    for movie_id in range(1, 10):
        cast = {f"Actor {a}": person_url(a) for a in (movie_id, movie_id + 1)}
        movies.append(
            {
                "id": movie_id,
                "title": f"Movie {movie_id}",
                "genres": ["Drama"],
                "actors": cast,
                "poster_url": f"https://m.media-amazon.com/images/M/x{movie_id}._V1_.jpg",
                "synopsis": "A story.",
                "is_adult": False,
                "title_type": "movie",
            }
        )
        manifest.append(saved_noise_jpeg(rng, posters, movie_id, width=64, height=96, url=movies[-1]["poster_url"]))
    for actor_id in range(1, 11):
        actor_rows.append(
            {
                "id": actor_id,
                "name": f"Actor {actor_id}",
                "image_url": f"https://m.media-amazon.com/images/M/a{actor_id}._V1_.jpg",
            }
        )
        actor_manifest.append(
            saved_noise_jpeg(rng, actors_dir, actor_id, width=64, height=64, url=actor_rows[-1]["image_url"])
        )
    pd.DataFrame(manifest).to_parquet(posters / "manifest.parquet")
    pd.DataFrame(actor_manifest).to_parquet(actors_dir / "manifest.parquet")
    write_export(
        pd.DataFrame(movies), pd.DataFrame(manifest), [posters], pd.DataFrame(actor_rows), actors_dir, root / "export"
    )
    crops, photos = root / "images" / "actor_crops", []
    crops.mkdir(parents=True)
    for actor_id in range(1, 11):
        for rank in range(1, 4 if actor_id % 2 else 3):  # odd actors 3 crops, even ones 2
            path = crops / f"{actor_id}_{rank}.jpg"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, quality=95)
            photos.append(
                {
                    "actor_id": actor_id,
                    "rank": rank,
                    "source": "primary" if rank == 1 else "strip",
                    "url": f"https://m.media-amazon.com/images/M/p{actor_id}x{rank}._V1_.jpg",
                    "caption": None,
                    "crop_box": [0, 0, 64, 64],
                    "path": str(path),
                    "sha256": "",
                    "bytes": path.stat().st_size,
                    "width": 64,
                    "height": 64,
                }
            )
    write_actor_photos_export(pd.DataFrame(photos), root / "export")


def _groups_table(groups: list[int]) -> pd.DataFrame:
    """A near_duplicates table: poster i + 1 in group ``groups[i]``."""
    sizes = pd.Series(groups).map(pd.Series(groups).value_counts())
    return pd.DataFrame(
        {
            "id": range(1, len(groups) + 1),
            "group": groups,
            "distance": 0,
            "dhash_distance": 0,
            "group_size": sizes,
            "representative": [g == i + 1 for i, g in enumerate(groups)],
        }
    )


def test_benchmark_prompts_leave_out_near_duplicates_of_training_posters(tmp_path):
    root = tmp_path / "data"
    make_export(root)
    layout = DataLayout(root)
    layout.lora_dir.mkdir(parents=True)
    (layout.lora_dir / "train_ids.json").write_text(json.dumps([1, 2, 3, 4, 5]))
    # 6 is a re-release of training poster 2; 7 and 8 are one film's two posters, neither trained.
    write_table(_groups_table([1, 2, 3, 4, 5, 2, 7, 7, 9]), layout.near_duplicates_file)
    result = materialize(
        [benchmark_prompts],
        instance=DagsterInstance.ephemeral(),
        resources={"data_dir": DataDirResource(path=str(root))},
        run_config={"ops": {"benchmark_prompts": {"config": {"n_prompts": 10}}}},
    )
    assert result.success
    prompts = json.loads(layout.benchmark_prompts_file.read_text())
    assert sorted(p["movie_id"] for p in prompts) == [7, 8, 9]
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "benchmark_leak_free" and check.passed


def test_generation_chain_with_tiny_models(tmp_path, tiny_models):
    root = tmp_path / "data"
    make_export(root)
    # One crop of every odd actor (each benchmark movie has one) stops decoding after the export.
    for crop in (root / "export" / "actor_photos").glob("*_3.jpg"):
        crop.write_bytes(undecodable_jpeg(noise_image(64, 64, seed=3)))
    # The near-duplicate groups (every poster its own, but two the LoRA will not draw):
    # the leak-free check reads them. Exclusion itself: test_benchmark_prompts_leave_out_...
    untrained = sorted(set(range(1, 10)) - {int(p.stem) for p, _ in sample_pairs(root / "export", 6, 0)})
    groups = [untrained[0] if i == untrained[1] else i for i in range(1, 10)]
    write_table(_groups_table(groups), DataLayout(root).near_duplicates_file)
    tiny = tiny_models
    models = ModelsResource(
        stable_diffusion=str(tiny.sd),
        controlnet=str(tiny.controlnet),
        clip=str(tiny.clip),
        clip_s=str(tiny.clip),
        pickscore=str(tiny.clip),
        pickscore_processor=str(tiny.clip),
        device="cpu",
        fid_features="clip",
    )
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [*generation_assets, swap_ablations],
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(root)), "models": models},
        run_config={"ops": {name: {"config": config} for name, config in TINY.items()}},
    )
    assert result.success

    lora_dir = root / "models" / "lora"
    assert (lora_dir / "pytorch_lora_weights.safetensors").exists()
    train_ids = set(json.loads((lora_dir / "train_ids.json").read_text()))
    prompts = json.loads((root / "benchmark" / "prompts.json").read_text())
    assert len(prompts) == 3 and not {p["movie_id"] for p in prompts} & train_ids  # held out
    [leak_check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "benchmark_leak_free"]
    assert leak_check.passed and leak_check.metadata["grouped_posters"].value == 9
    lora = result.asset_materializations_for_node("lora_weights")[0].metadata
    # The posters are 64x96 (2:3): all in the 32x48 bucket of the tiny models' 32 px.
    buckets = {r.data["name"]: int(r.data["value"]) for r in lora["aspect_buckets"].value.records}
    assert buckets == {"32x48": len(train_ids), "36x44": 0, "32x32": 0}
    assert list((root / "models" / "actor_embeddings").glob("nm*.safetensors"))
    trained = result.asset_materializations_for_node("actor_embeddings")[0].metadata
    assert trained["actors_trained"].value == 2
    # Face crops are square: every photo trained on sits in the square bucket.
    photos = sum(int(row.data["photos"]) for row in trained["photos_per_actor"].value.records)
    buckets = {row.data["bucket"]: int(row.data["photos"]) for row in trained["aspect_buckets"].value.records}
    assert buckets == {"32x48": 0, "36x44": 0, "32x32": photos} and photos == 4
    assert any("_1.jpg, " in row.data["files"] for row in trained["photos_per_actor"].value.records)
    # Decode at use: the odd actor trained on its two good crops; the broken one is reported.
    assert trained["photo_decode_failures"].value == 1
    [odd] = [row.data for row in trained["photos_per_actor"].value.records if row.data["undecodable"]]
    assert odd["undecodable"].endswith("_3.jpg") and odd["trained"] and odd["photos"] == 2
    assert odd["files"].split(", ") == [odd["undecodable"].replace("_3", "_1"), odd["undecodable"].replace("_3", "_2")]
    manifest = pd.read_csv(root / "benchmark" / "images" / "manifest.csv")
    assert set(manifest["method"]) == {
        "SD1.5",
        "SD1.5+LoRA",
        "MPDS (full)",
        "MPDS w/o caption",
        "MPDS w/o actor",
        "MPDS w/o localized attention",
    }
    assert (manifest["status"] == "generated").all()
    images = result.asset_materializations_for_node("benchmark_images")[0].metadata
    assert images["truncated_prompts"].value == 0 and (manifest["truncated_tokens"] == 0).all()
    swaps = result.asset_materializations_for_node("swap_ablations")[0].metadata
    for grid in ("one_caption_different_actors", "one_actor_different_captions"):
        assert swaps[grid].value.startswith("![one ") and "data:image/png;base64," in swaps[grid].value
    assert swaps["cells"].value == 3 + 2 and swaps["actor_prompt_cut_words"].value == 0
    by_method = manifest.groupby("method")["constrained_tokens"].min()
    assert by_method["MPDS (full)"] > 0 and by_method["MPDS w/o localized attention"] == 0 == by_method["SD1.5"]
    controls = root / "benchmark" / "caption_controls"
    assert {p.stem for p in controls.glob("tt*.json")} == {p["prompt_id"] for p in prompts}  # layouts beside the canny
    with Image.open(controls / f"{prompts[0]['prompt_id']}.png") as control:
        assert control.size == (128, 192)  # poster-shaped: 2:3 of the configured width
    report = json.loads((root / "benchmark" / "report" / "benchmark_report.json").read_text())
    assert {row["method"] for row in report["table"]} == set(manifest["method"])
    # OCR text accuracy: a column for every Table 1 row, and the caption sketches' upper bound.
    assert all(row["OCR words %"] is not None and row["OCR CER"] is not None for row in report["table"])
    assert set(report["text_accuracy"]["methods"]) == set(manifest["method"])
    assert report["text_accuracy"]["upper_bound"]["word_accuracy_pct"] >= 90
    markdown = DataLayout(root).benchmark_report.table_markdown.read_text()
    assert "OCR words %" in markdown and "| caption sketch (upper bound) |" in markdown
    full = report["results"]["MPDS (full)"]
    assert full["clip_s"]["model"] == str(tiny.clip) and full["fid"]["n_fake"] == 3
    assert set(full["preference"]) == {"SD1.5"}  # the only baseline here
    metadata = result.asset_materializations_for_node("benchmark_report")[0].metadata
    # Tables, shown inline in the UI.
    columns = lambda name: [c.name for c in metadata[name].value.schema.columns]  # noqa: E731
    rows = lambda name: [r.data for r in metadata[name].value.records]  # noqa: E731
    assert {"method", "CLIP score", "CLIP-S", "PickScore"} <= set(columns("table"))
    assert {r["baseline"] for r in rows("preference")} == {"SD1.5"}
    assert columns("protocol")[:4] == ["metric", "formula", "model", "images"]
    assert "CLIP-S" in {r["metric"] for r in rows("protocol")} and any("FID" in r["warning"] for r in rows("warnings"))
    assert str(metadata["report"].value).endswith("benchmark_report.json")
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(m.startswith("benchmark_images MPDS (full): 3/3 images") for m in logs)  # progress at INFO
    assert any(m.startswith("actor_embeddings: 4/4 steps") for m in logs)
    assert any(m.startswith("1 actor face crops did not decode: left out of training") for m in logs)
