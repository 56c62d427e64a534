"""The held-out benchmark set: export posters the LoRA never trained on.

The paper scores generations on prompts of movies outside the fine-tuning set; here the
LoRA stage records its training ids, and the benchmark draws from the rest with a fixed
seed, so both stages agree without sharing state beyond files. With the near-duplicate
groups (``curate.near_duplicates``) the split is leak-free: no held-out poster shares a
group with a training poster (re-releases, regional variants, DVD covers).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..base.files import write_atomic
from ..base.folders import ExportFolder, LoraFolder
from ..base.settings import setting


@dataclass
class HeldOutPoster:
    prompt_id: str  # "tt0000123": the file name of every generated image for this prompt
    movie_id: int
    prompt: str  # the posters.csv text
    title: str
    actors: list[str] = field(default_factory=list)  # top-billed names, aligned with actor_ids
    actor_ids: list[int] = field(default_factory=list)
    image_path: str = ""  # the real poster (FID reference)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HoldoutSettings:
    """How the benchmark's held-out posters are drawn (``held_out_posters``)."""

    n_prompts: int = setting(100, "held-out posters to generate for")
    seed: int = setting(0, "seed of the draw")
    actors_per_poster: int = setting(3, "top-billed actors kept per held-out poster", config_name="max_actors")


def write_train_ids(lora_dir: Path, pairs: list[tuple[Path, str]]) -> Path:
    ids = sorted(int(Path(p).stem) for p, _ in pairs)
    path = LoraFolder(Path(lora_dir)).train_ids
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(ids))
    return path


def read_train_ids(lora_dir: Path) -> set[int]:
    path = LoraFolder(Path(lora_dir)).train_ids
    return set(json.loads(path.read_text())) if path.exists() else set()


def held_out_posters(
    export_dir: Path,
    n: int,
    seed: int,
    exclude_ids: set[int],
    max_actors: int = 3,
    groups: dict[int, int] | None = None,
) -> list[HeldOutPoster]:
    """Draw ``n`` posters of the export not in ``exclude_ids`` (the LoRA's training set)
    and, with ``groups`` (poster id -> near-duplicate group), sharing no group with them:
    a re-release of a training poster is not a held-out poster."""
    import pandas as pd

    from ..imdb.ids import parse_person_id, title_code

    export = ExportFolder(Path(export_dir))
    posters = pd.read_csv(export.posters_csv)
    meta = pd.read_csv(export.meta_csv).set_index("id")
    groups = groups or {}
    training_groups = {groups.get(int(i), int(i)) for i in exclude_ids}
    candidates = sorted(
        int(i) for i in posters["id"] if int(i) not in exclude_ids and groups.get(int(i), int(i)) not in training_groups
    )
    picked = sorted(random.Random(seed).sample(candidates, min(n, len(candidates))))
    texts = dict(zip(posters["id"].astype(int), posters["text"]))
    held_out = []
    for movie_id in picked:
        row = meta.loc[movie_id]
        cast = list(json.loads(row["actors"]).items())[:max_actors] if isinstance(row["actors"], str) else []
        held_out.append(
            HeldOutPoster(
                prompt_id=title_code(movie_id),
                movie_id=movie_id,
                prompt=texts[movie_id],
                title=str(row["title"]),
                actors=[name for name, _ in cast],
                actor_ids=[parse_person_id(url) or 0 for _, url in cast],
                image_path=str(export.poster(movie_id)),
            )
        )
    return held_out
