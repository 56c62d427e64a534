"""``mpds demo``: the pipeline end to end through Dagster, against the bundled sample server.

Starts the sample IMDb server on a free loopback port, then materialises each stage
with ``dagster asset materialize`` exactly as a user or CI would, and prints where the
outputs are. Runs are recorded in ``<data dir>/.dagster`` so ``dagster dev`` with that
DAGSTER_HOME shows them afterwards.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .imdb.partitions import id_ranges

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
DEMO_PARTITION_SIZE = 200
GENERATION_ASSETS = ["lora_weights", "benchmark_prompts", "actor_embeddings", "caption_controls", "benchmark_images",
                     "benchmark_report", "swap_ablations"]
# The tiny models work at 32 px; steps are cut so the chain runs in about a minute on a CPU.
TINY_GENERATION_CONFIG = {
    "ops": {
        "lora_weights": {"config": {"resolution": 32, "max_train_steps": 20, "n_pairs": 40, "checkpointing_steps": 10, "learning_rate": 1e-3}},
        "benchmark_prompts": {"config": {"n_prompts": 6}},
        "actor_embeddings": {"config": {"resolution": 32, "max_train_steps": 10, "train_batch_size": 2, "max_actors": 4, "initializer_token": "the"}},
        "benchmark_images": {"config": {"num_inference_steps": 5, "height": 32, "width": 32}},
        "benchmark_report": {"config": {"fid_resize": 32}},
        "swap_ablations": {"config": {"num_inference_steps": 5, "height": 32, "width": 32}},
    },
    # One process for the whole chain: a process per step would import torch and diffusers
    # again for each of the seven steps (about 7 s each here), longer than the tiny models run.
    "execution": {"config": {"in_process": {}}},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sample_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "mpds_pipeline.cli", "sample-server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the sample server exited with code {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/robots.txt", timeout=1.0)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the sample server did not answer within 30 s")


def demo_environment(data_dir: Path, port: int, titles: int, persons: int) -> dict[str, str]:
    home = data_dir / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_DAGSTER_YAML, home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "MPDS_DATA_DIR": str(data_dir),
        "MPDS_IMDB_BASE_URL": f"http://127.0.0.1:{port}",
        "MPDS_IMDB_DATASETS_URL": f"http://127.0.0.1:{port}/datasets",
        "MPDS_TITLE_IDS": f"1-{titles}",
        "MPDS_PERSON_IDS": f"1-{persons}",
        "MPDS_PARTITION_SIZE": str(DEMO_PARTITION_SIZE),
        # The sample server is ours: a brisker rate than IMDb's 1 request/s default.
        "MPDS_RATE": os.environ.get("MPDS_RATE", "25"),
        "MPDS_BACKOFF_BASE_S": "0.2",
        "MPDS_BLIP2_MODEL": os.environ.get("MPDS_BLIP2_MODEL") or str(tiny_blip2_dir(data_dir)),
        **tiny_diffusion_env(data_dir),
    }


def tiny_diffusion_env(data_dir: Path) -> dict[str, str]:
    """Tiny random SD, ControlNet and CLIP models (32 px), built once and loaded by path."""
    from .vision.tiny_sd import ensure_tiny_models

    paths = ensure_tiny_models(data_dir / "models" / "tiny-diffusion")
    return {
        "MPDS_SD_MODEL": str(paths.sd),
        "MPDS_CONTROLNET_MODEL": str(paths.controlnet),
        "MPDS_CLIP_MODEL": str(paths.clip),
        "MPDS_CLIP_S_MODEL": str(paths.clip),
        "MPDS_PICKSCORE_MODEL": str(paths.clip),
        "MPDS_PICKSCORE_PROCESSOR": str(paths.clip),
        "MPDS_DEVICE": "cpu",
        # pytorch-fid's Inception weights cannot be downloaded offline: CLIP features here.
        "MPDS_FID_FEATURES": "clip",
    }


def tiny_blip2_dir(data_dir: Path) -> Path:
    """A tiny randomly initialised BLIP-2, saved once, loaded through the real code path."""
    from .vision.tiny_blip2 import save_tiny_blip2

    folder = data_dir / "models" / "tiny-blip2"
    if not (folder / "config.json").exists():
        save_tiny_blip2(folder)
    return folder


def materialize(select: str, env: dict[str, str], partition: str | None = None, config: dict | None = None) -> None:
    command = ["dagster", "asset", "materialize", "-m", "mpds_pipeline", "--select", select]
    if partition:
        command += ["--partition", partition]
    if config:
        command += ["--config-json", json.dumps(config)]
    print(f"$ {' '.join(command)}", flush=True)
    dagster = Path(sys.executable).with_name("dagster")
    command[0] = str(dagster) if dagster.exists() else "dagster"
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise SystemExit(f"dagster asset materialize --select {select} failed (exit {completed.returncode})")


def register_ranges(env: dict[str, str]) -> None:
    """The crawl's id ranges are dynamic partitions: register the configured ones."""
    mpds = Path(sys.executable).with_name("mpds")
    print("$ mpds ranges", flush=True)
    subprocess.run([str(mpds) if mpds.exists() else "mpds", "ranges"], env=env, check=True, capture_output=True)


def run_demo(data_dir: str | None, titles: int, persons: int) -> int:
    # The tiny models are built in this process: keep their progress bars out of the output.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    root = Path(data_dir or os.environ.get("MPDS_DATA_DIR") or "data/demo").resolve()
    port = free_port()
    server = start_sample_server(port)
    try:
        env = demo_environment(root, port, titles, persons)
        print(f"sample IMDb server on http://127.0.0.1:{port}; data in {root}", flush=True)
        title_keys = [r.key for r in id_ranges("title", 1, titles, DEMO_PARTITION_SIZE)]
        person_keys = [r.key for r in id_ranges("person", 1, persons, DEMO_PARTITION_SIZE)]
        register_ranges(env)
        materialize("imdb_index", env)
        for key in title_keys:
            materialize("title_pages,title_records", env, key)
        for key in person_keys:
            materialize("person_pages,person_records", env, key)
        materialize("movies,actors,actor_images,actor_photos,dataset_statistics", env)
        for key in title_keys:
            materialize("poster_images,vision_prompts", env, key)
        materialize("rectifications,poster_prompts,export", env)
        materialize(",".join(GENERATION_ASSETS), env, config=TINY_GENERATION_CONFIG)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print_summary(root)
    return 0


def _crawl_skips(layout) -> dict[str, int]:
    """What the dataset index kept the last title crawl from requesting (from its metadata)."""
    from dagster import AssetKey, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(layout.root / ".dagster")
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("title_pages"))
    if event is None:
        return {}
    metadata = event.asset_materialization.metadata
    return {k: v.value for k, v in metadata.items() if k.startswith("skipped_") or k == "requests_per_ok_page"}


def print_summary(root: Path) -> None:
    from .curate.store import read_table
    from .imdb.record_store import read_records
    from .layout import DataLayout

    layout = DataLayout(root)
    titles = read_records(layout.records_dir("title"), "title")
    persons = read_records(layout.records_dir("person"), "person")
    decisions = read_table(layout.curated_dir / "movie_decisions.parquet", missing_ok=True)
    print()
    print(f"title records:  {len(titles):5d} in {layout.records_dir('title')}")
    print(f"person records: {len(persons):5d} in {layout.records_dir('person')}")
    print(f"raw pages (WARC): {layout.root / 'crawl'}")
    crawl = _crawl_skips(layout)
    if crawl:
        print("title crawl with the dataset index: " + ", ".join(f"{k} {v}" for k, v in crawl.items()))
    if not decisions.empty:
        kept = int(decisions["kept"].sum())
        print(f"movies kept: {kept} of {len(decisions)}; dropped by reason:")
        for reason, count in decisions.loc[~decisions["kept"], "drop_reason"].value_counts().items():
            print(f"  {reason:12s} {count}")
    export = layout.export_dir
    if (export / "posters.csv").exists():
        import pandas as pd

        posters = pd.read_csv(export / "posters.csv")
        actors = pd.read_csv(export / "actors.csv")
        print(f"export: {export}  ({len(posters)} posters, {len(actors)} actors; meta.csv, posters.csv, actors.csv, Parquet, posters/metadata.jsonl)")
        print(f"statistics: {export / 'stats'}")
    photos = read_table(layout.curated_dir / "actor_photos.parquet", missing_ok=True)
    if not photos.empty:
        per_actor = photos.groupby("actor_id").size()
        print(f"actor photos: {int(per_actor.between(3, 5).sum())} actors with 3-5 face crops (512x512), "
              f"{len(photos)} crops in {layout.actor_crops_dir}; export/actor_photos.csv")
    swaps = sorted((layout.benchmark_dir / "swaps").glob("*.png"))
    if swaps:
        print("swap ablations (Fig. 5): " + ", ".join(str(path) for path in swaps))
    table = layout.benchmark_dir / "report" / "benchmark_table.md"
    if table.exists():
        print(f"benchmark ({layout.benchmark_dir / 'report'}; tiny random models, so the numbers only show the chain runs):")
        print(table.read_text())
    if (export / "posters.csv").exists():
        print("note: the demo captions posters with a tiny randomly initialised BLIP-2, so its captions are noise;")
        print("      see README 'The real run' for the real model on a GPU.")
    print(f"browse the runs: DAGSTER_HOME={layout.root / '.dagster'} DAGSTER_DISABLE_TELEMETRY=1 dagster dev -m mpds_pipeline")
