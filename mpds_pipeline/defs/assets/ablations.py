"""``swap_ablations``: the paper's Fig. 5 grids (one caption with different actors, one
actor with different captions), as PNGs under benchmark/swaps and inline in the UI."""

import json

import pandas as pd
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from ...base.files import write_atomic
from ...vision.sampling_settings import GuidanceScales, SwapSettings
from ..resources import DataDirResource, ModelsResource
from ..settings_models import config_fields, derived, to_settings
from .generation import GENERATION_GROUP, actor_embeddings, benchmark_prompts, lora_weights
from .metadata import plot_image, preview_table, tabulate


class SwapAblationsConfig(
    derived(
        Config,
        config_fields(SwapSettings, ["n_actors", "n_prompts", "num_inference_steps", "height", "width", "seed"]),
        config_fields(GuidanceScales, ["prompt", "actor"]),
    )
):
    pass


@asset(group_name=GENERATION_GROUP, deps=[lora_weights, benchmark_prompts, actor_embeddings], kinds={"pytorch", "png"})
def swap_ablations(
    context: AssetExecutionContext, config: SwapAblationsConfig, models: ModelsResource, data_dir: DataDirResource
) -> MaterializeResult:
    """Fig. 5: one benchmark caption with each trained actor cast as its lead, and one
    actor cast in several captions; same seed in every cell."""
    from ...vision.swap_ablation import ACTOR_SWAP, CAPTION_SWAP, swap_ablation_grids

    layout = data_dir.layout
    rows = json.loads(layout.benchmark_prompts_file.read_text())
    # No caption branch in these grids: its scale is 0, whatever benchmark_images uses.
    scales = to_settings(GuidanceScales, config, caption=0.0)
    settings = to_settings(SwapSettings, config, scales=scales, device=models.device)
    lora = layout.lora_dir
    result = swap_ablation_grids(
        rows,
        models.stable_diffusion,
        lora if lora.exists() else None,
        layout.actor_embeddings_dir,
        layout.swaps.path,
        settings,
        context.log.info,
    )
    cells = pd.DataFrame(result.cells)
    write_atomic(layout.swaps.cells_csv, cells.to_csv(index=False))
    if result.metadata()["actor_prompt_cut_words"]:
        context.log.warning(
            f"{result.metadata()['actor_prompt_cut_words']} prompt words were cut "
            "to keep the actor tokens in CLIP's window"
        )
    return MaterializeResult(
        metadata=tabulate(
            {
                **result.metadata(),
                "one_caption_different_actors": plot_image(
                    context, result.grids[CAPTION_SWAP], "one caption, different actors"
                ),
                "one_actor_different_captions": plot_image(
                    context, result.grids[ACTOR_SWAP], "one actor, different captions"
                ),
                "cells_table": preview_table(cells[["grid", "column", "prompt_id", "actor_prompt"]], limit=20),
                "folder": MetadataValue.path(str(layout.swaps.path)),
            }
        )
    )
