"""``mpds demo``: the pipeline end to end through Dagster, against the bundled sample server.

It starts the sample server on loopback, launches each stage's named job as a user
would, follows each run to its end and prints where the outputs are. The data directory
keeps what later commands need (the runs, and the demo's settings in ``settings.env``).
What it does step by step: docs/demo.md.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..base import jobnames
from ..base.layout import DataLayout
from ..base.settings import write_settings_file
from ..imdb.partitions import id_ranges
from .local import RunFailed, instance_environment, job_command, launch_and_follow, venv_command

DEMO_PARTITION_SIZE = 200
# The tiny models work at 32 px; steps are cut so the chain runs in about a minute on a CPU.
# Posters keep their 2:3 shape at that scale: aspect buckets 32x48, 36x44 and 32x32 (sides
# rounded to an eighth of the resolution), caption controls and images at 32x48.
TINY_GENERATION_CONFIG = {
    "ops": {
        "lora_weights": {
            "config": {
                "resolution": 32,
                "max_train_steps": 20,
                "n_pairs": 40,
                "checkpointing_steps": 10,
                "learning_rate": 1e-3,
                # A LoRA subset (docs/beyond_the_paper.md): the sample posters of these genres.
                "subset_genres": ["Drama", "Comedy", "Action", "Thriller"],
            }
        },
        "benchmark_prompts": {"config": {"n_prompts": 6}},
        "actor_embeddings": {
            "config": {
                "resolution": 32,
                "max_train_steps": 10,
                "train_batch_size": 2,
                "max_actors": 4,
            }
        },
        "caption_controls": {"config": {"size": 32, "height": 48}},
        "benchmark_images": {"config": {"num_inference_steps": 5, "height": 48, "width": 32}},
        "benchmark_report": {"config": {"fid_resize": 32}},
        "swap_ablations": {"config": {"num_inference_steps": 5, "height": 48, "width": 32}},
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
        [sys.executable, "-m", "mpds_pipeline.cli.main", "sample-server", "--host", "127.0.0.1", "--port", str(port)],
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


def write_demo_settings(layout: DataLayout, titles: int, persons: int) -> dict[str, str]:
    """The settings every run over the demo's data uses, now and later, in settings.env."""
    values = {
        "MPDS_TITLE_IDS": f"1-{titles}",
        "MPDS_PERSON_IDS": f"1-{persons}",
        "MPDS_PARTITION_SIZE": str(DEMO_PARTITION_SIZE),
        "MPDS_BLIP2_MODEL": os.environ.get("MPDS_BLIP2_MODEL") or str(tiny_blip2_dir(layout)),
        **tiny_diffusion_settings(layout),
    }
    write_settings_file(
        layout.settings_file,
        values,
        "Written by `mpds demo`: the tiny random models and id ranges its runs used.\n"
        "Every run over this data directory reads it; a variable set in the environment wins.",
    )
    return values


# The sample server's stand-in OMDb accepts this key; a real key is never written anywhere.
DEMO_OMDB_KEY = "sample-omdb-key"
# The sources a 2026 user has: archived pages (live IMDb answers every script with a WAF
# challenge), then OMDb for what no archive holds.
DEMO_PAGE_SOURCES = "common_crawl,wayback"


def demo_environment(layout: DataLayout, port: int) -> dict[str, str]:
    """What only the demo's own runs need: the sample server (gone afterwards) standing in
    for IMDb, Common Crawl, the Wayback Machine, OMDb and Wikimedia, and brisk rates."""
    base = f"http://127.0.0.1:{port}"
    # The sample server is ours: brisker rates than the real hosts' defaults.
    rate = os.environ.get("MPDS_RATE", "25")
    return {
        **instance_environment(layout.root, own_instance=True),
        "HF_HUB_OFFLINE": "1",
        "MPDS_IMDB_BASE_URL": base,
        "MPDS_IMDB_DATASETS_URL": f"{base}/datasets",
        "MPDS_RATE": rate,
        "MPDS_BACKOFF_BASE_S": "0.2",
        "MPDS_PAGE_SOURCES": os.environ.get("MPDS_PAGE_SOURCES", DEMO_PAGE_SOURCES),
        "MPDS_CC_INDEX_URL": f"{base}/cc-index",
        "MPDS_CC_DATA_URL": f"{base}/cc-data",
        "MPDS_WAYBACK_URL": f"{base}/wayback",
        "MPDS_CC_INDEX_RATE": "50",
        "MPDS_CC_DATA_RATE": "50",
        "MPDS_WAYBACK_RATE": "50",
        "MPDS_OMDB_URL": f"{base}/omdb",
        "MPDS_OMDB_API_KEY": DEMO_OMDB_KEY,
        "MPDS_WIKIDATA_URL": f"{base}/wikidata",
        "MPDS_WIKIDATA_SPARQL_URL": f"{base}/sparql",
        "MPDS_COMMONS_URL": f"{base}/commons",
        "MPDS_WIKIMEDIA_RATE": "0",
        "MPDS_CONTACT": os.environ.get("MPDS_CONTACT", "mpds-demo@localhost"),
    }


def tiny_diffusion_settings(layout: DataLayout) -> dict[str, str]:
    """Tiny random SD, ControlNet and CLIP models (32 px), built once and loaded by path."""
    from ..sample_server.content import english_words
    from ..vision.tiny_sd import ensure_tiny_models

    # The sample pages' words are whole tokens, as real words are in the real CLIP vocabulary.
    paths = ensure_tiny_models(layout.tiny_diffusion_dir, extra_words=english_words())
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


def tiny_blip2_dir(layout: DataLayout) -> Path:
    """A tiny randomly initialised BLIP-2, saved once, loaded through the real code path."""
    from ..vision.tiny_blip2 import ensure_tiny_blip2

    return ensure_tiny_blip2(layout.tiny_blip2_dir)


@dataclass(frozen=True)
class Step:
    label: str
    command: list[str]
    env: tuple[tuple[str, str], ...] = ()  # set for this step only (e.g. the edition)


LICENCE_CLEAN = (("MPDS_EDITION", "licence_clean"),)


def job_step(job: str, partition: str | None = None, config: Path | None = None, env=()) -> Step:
    label = f"{job} {partition}" if partition else job
    if env:
        label += " (" + ", ".join(f"{k}={v}" for k, v in env) + ")"
    return Step(label, job_command("launch", job, partition, config), tuple(env))


def demo_steps(titles: int, persons: int, generation_config: Path) -> list[Step]:
    title_keys = [r.key for r in id_ranges("title", 1, titles, DEMO_PARTITION_SIZE)]
    person_keys = [r.key for r in id_ranges("person", 1, persons, DEMO_PARTITION_SIZE)]
    return [
        # The crawl's id ranges are dynamic partitions: register the configured ones.
        Step("ranges", ["mpds", "ranges"]),
        job_step(jobnames.REFRESH_INDEX),
        *[job_step(jobnames.TITLE_CRAWL, key) for key in title_keys],
        *[job_step(jobnames.PERSON_CRAWL, key) for key in person_keys],
        job_step(jobnames.CURATE),
        *[job_step(jobnames.CAPTION, key) for key in title_keys],
        job_step(jobnames.EXPORT),
        job_step(jobnames.GENERATE, config=generation_config),
        # The licence-clean edition: the same assets, Commons images under allowlisted licences.
        job_step(jobnames.WIKIMEDIA),
        job_step(jobnames.CURATE, env=LICENCE_CLEAN),
        *[
            Step(
                f"poster_images {key} (licence_clean)",
                ["dagster", "asset", "materialize", "-m", "mpds_pipeline", "--select", "poster_images"]
                + ["--partition", key],
                LICENCE_CLEAN,
            )
            for key in title_keys
        ],
        job_step(jobnames.EXPORT, env=LICENCE_CLEAN),
    ]


def run_step(step: Step, env: dict[str, str], echo) -> None:
    """A job is launched (so the Overview page lists its run) and followed to its end,
    its progress lines echoed; other commands just run."""
    echo("$ " + " ".join([*(f"{k}={v}" for k, v in step.env), *(_quoted(part) for part in step.command)]))
    env = {**env, **dict(step.env)}
    if step.command[:3] == ["dagster", "job", "launch"]:
        try:
            launch_and_follow(step.command, env, echo)
        except RunFailed as failed:
            sys.stderr.write(f"{failed}\n")
            raise SystemExit(f"{step.label} failed: {' '.join(step.command)}") from None
        return
    completed = subprocess.run(
        [venv_command(step.command[0]), *step.command[1:]], env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise SystemExit(f"{step.label} failed (exit {completed.returncode}): {' '.join(step.command)}")


def _quoted(part: str) -> str:
    return f"'{part}'" if any(c in part for c in ' {}"') else part


def run_demo(data_dir: str | None, titles: int, persons: int) -> int:
    from tqdm import tqdm

    # The tiny models are built in this process: keep their progress bars out of the output.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    layout = DataLayout(Path(data_dir or os.environ.get("MPDS_DATA_DIR") or "data/demo").resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    write_demo_settings(layout, titles, persons)
    generation_config = layout.demo_generation_config
    generation_config.write_text(json.dumps(TINY_GENERATION_CONFIG, indent=1))  # JSON is YAML
    port = free_port()
    server = start_sample_server(port)
    try:
        env = demo_environment(layout, port)
        print(
            f"sample IMDb server on http://127.0.0.1:{port}; data in {layout.root}; settings in {layout.settings_file}",
            flush=True,
        )
        steps = demo_steps(titles, persons, generation_config)
        with tqdm(steps, desc="mpds demo", unit="run", file=sys.stderr, disable=None) as bar:
            for step in bar:
                bar.set_postfix_str(step.label)
                run_step(step, env, bar.write)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print_summary(layout.root)
    return 0


def _crawl_skips(layout) -> dict[str, int]:
    """What the dataset index kept the last title crawl from requesting (from its metadata)."""
    from dagster import AssetKey, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(layout.dagster_home)
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("title_pages"))
    if event is None:
        return {}
    metadata = event.asset_materialization.metadata
    return {k: v.value for k, v in metadata.items() if k.startswith("skipped_") or k == "requests_per_ok_page"}


def _print_sources(layout) -> None:
    """Where the exported rows came from (provenance.parquet) and the images refused for an
    AI opt-out signal (the download manifests)."""
    import pandas as pd

    from ..curate.manifest import read_manifest

    provenance = layout.export.provenance
    if provenance.exists():
        rows = pd.read_parquet(provenance, columns=["kind", "source"])
        counts = rows.groupby(["kind", "source"]).size()
        print(f"provenance: {provenance} ({len(rows)} rows)")
        for (kind, source), count in counts.items():
            print(f"  {kind:12s} {source:18s} {count}")
    refused = []
    for folder in sorted(layout.poster_images_root.glob("*")) if layout.poster_images_root.exists() else []:
        manifest = read_manifest(folder)
        if "status" in manifest:
            refused += [
                (int(i), r)
                for i, r, st in zip(manifest["id"], manifest["reason"], manifest["status"])
                if st == "opted_out"
            ]
    if refused:
        print("AI opt-out: " + ", ".join(f"poster {i} refused ({reason})" for i, reason in refused))


def _print_licence_clean(root: Path) -> None:
    import pandas as pd

    from ..base.layout import LICENCE_CLEAN, DataLayout

    export = DataLayout(root, edition=LICENCE_CLEAN).export
    if not export.attribution_csv.exists():
        return
    attribution = pd.read_csv(export.attribution_csv)
    licences = attribution["licence"].value_counts().to_dict() if "licence" in attribution else {}
    print(
        f"licence-clean edition: {export.path} ({len(attribution)} attributed images; "
        + ", ".join(f"{name} {count}" for name, count in licences.items())
        + f"); dataset card {export.dataset_card}"
    )


def print_summary(root: Path) -> None:
    from ..base.layout import DataLayout
    from ..curate.store import read_table
    from ..imdb.record_store import read_records

    layout = DataLayout(root)
    titles = read_records(layout.records_dir("title"), "title")
    persons = read_records(layout.records_dir("person"), "person")
    decisions = read_table(layout.movie_decisions_file, missing_ok=True)
    print()
    print(f"title records:  {len(titles):5d} in {layout.records_dir('title')}")
    print(f"person records: {len(persons):5d} in {layout.records_dir('person')}")
    print(f"raw pages (WARC): {layout.crawl_dir}")
    crawl = _crawl_skips(layout)
    if crawl:
        print("title crawl with the dataset index: " + ", ".join(f"{k} {v}" for k, v in crawl.items()))
    if not decisions.empty:
        kept = int(decisions["kept"].sum())
        print(f"movies kept: {kept} of {len(decisions)}; dropped by reason:")
        for reason, count in decisions.loc[~decisions["kept"], "drop_reason"].value_counts().items():
            print(f"  {reason:12s} {count}")
    export = layout.export
    if export.posters_csv.exists():
        import pandas as pd

        posters = pd.read_csv(export.posters_csv)
        actors = pd.read_csv(export.actors_csv)
        print(
            f"export: {export.path}  ({len(posters)} posters, {len(actors)} actors; "
            "meta.csv, posters.csv, actors.csv, Parquet, posters/metadata.jsonl)"
        )
        print(f"statistics: {export.stats.path}")
    _print_sources(layout)
    photos = read_table(layout.actor_photos_file, missing_ok=True)
    if not photos.empty:
        per_actor = photos.groupby("actor_id").size()
        print(
            f"actor photos: {int(per_actor.between(3, 5).sum())} actors with 3-5 face crops (512x512), "
            f"{len(photos)} crops in {layout.actor_crops_dir}; {export.actor_photos_csv}"
        )
    swaps = sorted(layout.swaps.path.glob("*.png"))
    if swaps:
        print("swap ablations (Fig. 5): " + ", ".join(str(path) for path in swaps))
    _print_licence_clean(root)
    table = layout.benchmark_report.table_markdown
    if table.exists():
        print(
            f"benchmark ({layout.benchmark_report.path}; tiny random models, so the numbers only show the chain runs):"
        )
        print(table.read_text())
    if export.posters_csv.exists():
        print("note: the demo captions posters with a tiny randomly initialised BLIP-2, so its captions are noise;")
        print("      see README 'The real run' for the real model on a GPU.")
    print()
    print(
        "next (README 'After the demo'): point this shell at the demo's data and runs, "
        "then open the UI and the review page"
    )
    print(f"  export MPDS_DATA_DIR={layout.root} DAGSTER_HOME={layout.dagster_home}")
    print("  .venv/bin/mpds ui                      # Dagster's UI and daemon: http://127.0.0.1:3000")
    print("  .venv/bin/mpds review --reviewer ana   # the caption review page: http://127.0.0.1:8765")
