"""The generation stages' steps between their settings and their metadata: which pairs
a LoRA trains on, which actors get an embedding, which methods the benchmark runs and
how their images sum up. The Dagster assets (defs/assets/generation.py) call these."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..curate.store import read_table
from ..curate.subsets import SubsetSpec, select_subset
from .generation import BenchmarkPrompt, MethodSpec
from .holdout import write_train_ids
from .localized_attention import LocalizedAttentionSettings
from .lora_training import sample_pairs


class NoTrainingPairs(ValueError):
    """Every pair of the export was filtered out (the message says at which stage)."""


def lora_training_pairs(
    export_dir: Path,
    movies_file: Path,
    lora_dir: Path,
    n_pairs: int,
    sample_seed: int,
    spec: SubsetSpec,
    one_per_group: bool,
) -> tuple[list[tuple[Path, str]], dict, object | None]:
    """The pairs drawn from the export (of ``spec``'s subset when it is not everything),
    recorded in ``lora_dir`` so the benchmark holds them out; also the count left at each
    stage and the subset (None: every poster)."""
    subset = None if spec.is_everything else select_subset(read_table(movies_file), spec)
    counts: dict = {}
    pairs = sample_pairs(
        export_dir, n_pairs, sample_seed, ids=subset.ids if subset else None, one_per_group=one_per_group, counts=counts
    )
    if not pairs:
        raise NoTrainingPairs(
            f"no training pair left: {counts} (subset: {subset.spec.describe() if subset else 'everything'})"
        )
    write_train_ids(lora_dir, pairs)
    return pairs, counts, subset


def read_benchmark_prompts(path: Path) -> tuple[list[dict], list[BenchmarkPrompt]]:
    """The held-out prompts as written by ``benchmark_prompts``: the rows and the prompts."""
    rows = json.loads(Path(path).read_text())
    return rows, [BenchmarkPrompt(r["prompt_id"], r["prompt"], r["title"], r["actors"], r["actor_ids"]) for r in rows]


def actors_to_train(rows: list[dict], photos: dict[str, list[Path]], max_actors: int | None) -> list[str]:
    """The benchmark prompts' actors that have face crops, in prompt order, at most ``max_actors``."""
    return list(dict.fromkeys(a for r in rows for a in r["actor_ids"] if a in photos))[:max_actors]


def embedding_tables(results: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per actor (photos used, trained, undecodable crops) and per aspect bucket (photos)."""
    used = pd.DataFrame(
        [
            {
                "actor_id": r.actor_id,
                "token": r.token,
                "photos": r.n_images,
                "trained": not r.skipped,
                "files": ", ".join(p.name for p in r.images),
                "undecodable": ", ".join(p.name for p in r.decode_failures),
            }
            for r in results
        ]
    )
    totals: dict[str, int] = {}
    for result in results:
        for bucket, count in result.bucket_counts.items():
            totals[bucket] = totals.get(bucket, 0) + count
    buckets = pd.DataFrame([{"bucket": b, "photos": n} for b, n in totals.items()], columns=["bucket", "photos"])
    return used, buckets


def benchmark_methods(
    stable_diffusion: str,
    controlnet: str,
    lora_dir: Path,
    embeddings_dir: Path,
    caption_controls: Path,
    baselines: list[str],
    image_folders: dict[str, str],
) -> list[MethodSpec]:
    """Base SD, the configured baselines, the LoRA model, the full multi-condition model
    and its three ablations, then the folders of images made elsewhere."""
    mpds = dict(
        model=stable_diffusion,
        lora_dir=lora_dir,
        embeddings_dir=embeddings_dir,
        controlnet=controlnet,
        caption_controls=caption_controls,
    )
    return [
        MethodSpec("SD1.5", "sd", model=stable_diffusion),
        *[MethodSpec(Path(m).name or m, "sd", model=m) for m in baselines],
        MethodSpec("SD1.5+LoRA", "lora", model=stable_diffusion, lora_dir=lora_dir),
        MethodSpec("MPDS (full)", "multicondition", **mpds),
        MethodSpec("MPDS w/o caption", "multicondition", **mpds, use_caption=False),
        MethodSpec("MPDS w/o actor", "multicondition", **mpds, use_actor=False),
        MethodSpec("MPDS w/o localized attention", "multicondition", **mpds, use_localized_attention=False),
        *[MethodSpec(name, "folder", folder=Path(folder)) for name, folder in image_folders.items()],
    ]


def attention_from_setting(setting: str, bias: float, branches: list[str]) -> LocalizedAttentionSettings:
    """'hard', 'bias' or 'off' (the asset's one switch) as the core's settings."""
    return LocalizedAttentionSettings(
        enabled=setting != "off", mode=setting if setting != "off" else "hard", bias=bias, branches=tuple(branches)
    )


def method_summary(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per method: images, sizes made at, prompts constrained or truncated, seconds.
    Adds a ``size`` column (WxH, '' where no image was made) to ``manifest``."""
    manifest["size"] = [f"{w:.0f}x{h:.0f}" if w == w else "" for w, h in zip(manifest["width"], manifest["height"])]
    return (
        manifest.groupby("method", sort=False)
        .agg(
            kind=("kind", "first"),
            images=("status", "size"),
            made_at=("size", lambda v: ", ".join(sorted(set(v) - {""}))),
            constrained_prompts=("constrained_tokens", lambda v: int((v > 0).sum())),
            mean_constrained_tokens=("constrained_tokens", "mean"),
            truncated_prompts=("truncated_tokens", lambda v: int((v > 0).sum())),
            seconds=("seconds", "sum"),
        )
        .round(2)
        .reset_index()
    )


def ran_unconstrained(summary: pd.DataFrame, method: str = "MPDS (full)") -> bool:
    """True when localized attention found no token to constrain in any of ``method``'s prompts."""
    row = summary[summary["method"] == method]
    return bool(len(row)) and row["constrained_prompts"].iloc[0] == 0
