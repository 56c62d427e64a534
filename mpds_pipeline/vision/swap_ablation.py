"""The paper's Fig. 5 swap ablations: what the actor branch changes, and what it keeps.

Two grids from the same seed: one caption with different actors, and one actor across
different captions. See docs/generation.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..base.folders import SwapsFolder
from ..base.progress import Progress, ProgressLog
from ..curate.prompts import actor_prompt
from .device import choose_device
from .sampling_settings import SwapSettings
from .textual_inversion import embedding_file_name, placeholder_token

CAPTION_SWAP, ACTOR_SWAP = "one_caption_different_actors", "one_actor_different_captions"


@dataclass
class SwapResult:
    grids: dict[str, Path]  # CAPTION_SWAP / ACTOR_SWAP -> PNG
    cells: list[dict]  # grid, column, prompt_id, actor_id, prompt, actor_prompt, image_path, cut_words

    def metadata(self) -> dict:
        return {
            "cells": len(self.cells),
            "actors": len({c["actor_id"] for c in self.cells if c["actor_id"]}),
            "prompts": len({c["prompt_id"] for c in self.cells}),
            "actor_prompt_cut_words": sum(c["cut_words"] for c in self.cells),
        }


def trained_actors(embeddings_dir: Path, actor_ids: list[int]) -> list[int]:
    """The actors of ``actor_ids`` (in order, once) that have an embedding file."""
    return [a for a in dict.fromkeys(actor_ids) if (Path(embeddings_dir) / embedding_file_name(a)).exists()]


def _render_cell(pipe, settings: SwapSettings, grid: str, column: str, row: dict, actor_id, path: Path) -> dict:
    """One image of a grid: ``row``'s prompt, with ``actor_id``'s token in place of its lead."""
    import torch

    fitted = None
    if actor_id is not None:
        fitted = actor_prompt(row["prompt"], row["actors"][:1], [placeholder_token(actor_id)], pipe.base.tokenizer)
    image = pipe(
        row["prompt"],
        actor_prompt=fitted.text if fitted else None,
        scales=settings.scales,
        num_inference_steps=settings.num_inference_steps,
        height=settings.height,
        width=settings.width,
        generator=torch.Generator().manual_seed(settings.seed),
    )[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return {
        "grid": grid,
        "column": column,
        "prompt_id": row["prompt_id"],
        "actor_id": actor_id,
        "prompt": row["prompt"],
        "actor_prompt": fitted.text if fitted else None,
        "image_path": str(path),
        "cut_words": fitted.cut_words if fitted else 0,
    }


def swap_ablation_grids(
    prompts: list[dict],
    base_model: str,
    lora_dir: Path | None,
    embeddings_dir: Path,
    out_dir: Path,
    settings: SwapSettings | None = None,
    log: ProgressLog | None = None,
) -> SwapResult:
    """Both grids for benchmark ``prompts`` (``benchmark_prompts``' rows: prompt_id,
    prompt, actors, actor_ids); PNGs and cells under ``out_dir``."""
    from .multicondition import MultiConditionPipeline

    settings = settings or SwapSettings()
    actors = trained_actors(embeddings_dir, [a for p in prompts for a in p["actor_ids"]])
    if not actors:
        raise ValueError(
            f"no actor embeddings in {embeddings_dir} for these prompts: materialise actor_embeddings first"
        )
    leads = [p for p in prompts if p["actors"]]
    if not leads:
        raise ValueError("no benchmark prompt names an actor")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    embeddings = {placeholder_token(a): Path(embeddings_dir) / embedding_file_name(a) for a in actors}
    pipe = MultiConditionPipeline.from_pretrained(
        base_model, lora_dir=lora_dir, embeddings=embeddings, device=choose_device(settings.device)
    )
    pipe.set_progress_bar_config(disable=True)

    caption_row = leads[0]
    plan = [(CAPTION_SWAP, "no actor", caption_row, None)]
    plan += [(CAPTION_SWAP, placeholder_token(a), caption_row, a) for a in actors[: settings.n_actors]]
    star = actors[0]
    plan += [(ACTOR_SWAP, p["prompt_id"], p, star) for p in leads[: settings.n_prompts]]

    cells = []
    with Progress("swap_ablations", len(plan), log, unit="images") as progress:
        for grid, column, row, actor_id in plan:
            path = SwapsFolder(out_dir).cell(grid, len([c for c in cells if c["grid"] == grid]))
            cells.append(_render_cell(pipe, settings, grid, column, row, actor_id, path))
            progress.update()
    titles = {
        CAPTION_SWAP: f"one caption ({caption_row['prompt_id']}), different actors",
        ACTOR_SWAP: f"one actor ({placeholder_token(star)}), different captions",
    }
    grids = {
        name: draw_grid(
            [c for c in cells if c["grid"] == name], titles[name], SwapsFolder(out_dir).grid(name), settings.thumb
        )
        for name in (CAPTION_SWAP, ACTOR_SWAP)
    }
    return SwapResult(grids, cells)


def draw_grid(cells: list[dict], title: str, path: Path, thumb: int) -> Path:
    """One row of images (``thumb`` wide, in their own shape) with a label under each and a title above."""
    from PIL import Image, ImageDraw

    label_h, title_h = 22, 26
    images = []
    for cell in cells:
        with Image.open(cell["image_path"]) as image:
            height = max(1, round(thumb * image.height / image.width))
            images.append(image.convert("RGB").resize((thumb, height), Image.Resampling.NEAREST))
    tallest = max((image.height for image in images), default=thumb)
    sheet = Image.new("RGB", (max(1, len(cells)) * thumb, title_h + tallest + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 6), title, fill="black")
    for index, (cell, image) in enumerate(zip(cells, images)):
        sheet.paste(image, (index * thumb, title_h))
        draw.text((index * thumb + 4, title_h + tallest + 4), str(cell["column"])[:28], fill="black")
    sheet.save(path)
    return path
