"""Resumable training checkpoints: ``<dir>/checkpoint-<step>/``.

A checkpoint (weights, training states, ``state.json``) is written aside and renamed into
place, so a checkpoint folder is always complete; a resumed run draws exactly what an
uninterrupted one would, and checkpoints of other settings or data are set aside rather
than resumed. See docs/generation.md.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
PREFIX = "checkpoint-"
FINGERPRINT = "fingerprint"  # the key in state.json
SUPERSEDED_SUFFIX = ".superseded"


def _step_of(path: Path) -> int:
    return int(path.name.removeprefix(PREFIX))


def _complete(checkpoints_dir: Path) -> list[Path]:
    found = [p for p in Path(checkpoints_dir).glob(f"{PREFIX}*") if (p / STATE_FILE).exists()]
    return sorted(found, key=_step_of)


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    record: dict  # state.json

    def weights(self, name: str) -> dict:
        from safetensors.torch import load_file

        return load_file(self.path / f"{name}.safetensors")

    def state(self, name: str, default: Any = None) -> Any:
        """A saved training state, or ``default`` when this checkpoint has none of that name."""
        import torch

        path = self.path / f"{name}.pt"
        return torch.load(path, weights_only=False) if path.exists() else default


def latest_checkpoint(checkpoints_dir: Path) -> Checkpoint | None:
    """The complete checkpoint of the highest step, or None."""
    found = _complete(checkpoints_dir)
    if not found:
        return None
    record = json.loads((found[-1] / STATE_FILE).read_text())
    return Checkpoint(found[-1], _step_of(found[-1]), record)


def fingerprint(**parts: Any) -> str:
    """A short digest of what a run's checkpoints depend on (JSON-able parts)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def set_aside_other_runs(checkpoints_dir: Path, run_fingerprint: str) -> Path | None:
    """Move the checkpoints out of the way when the newest was made with another
    fingerprint (to ``<dir>.superseded``, replacing an older set); return where they went,
    or None when they belong to this run (or predate fingerprints, and are kept)."""
    checkpoints_dir = Path(checkpoints_dir)
    newest = latest_checkpoint(checkpoints_dir)
    recorded = newest.record.get(FINGERPRINT) if newest else None
    if recorded is None or recorded == run_fingerprint:
        return None
    aside = checkpoints_dir.with_name(checkpoints_dir.name + SUPERSEDED_SUFFIX)
    shutil.rmtree(aside, ignore_errors=True)
    checkpoints_dir.rename(aside)
    return aside


def save_checkpoint(
    checkpoints_dir: Path, step: int, weights: dict[str, dict], states: dict[str, Any], record: dict, keep: int
) -> Path:
    """Write ``checkpoint-<step>`` (``record`` gets the step), then drop all but the newest ``keep``."""
    import torch
    from safetensors.torch import save_file

    checkpoints_dir = Path(checkpoints_dir)
    target = checkpoints_dir / f"{PREFIX}{step}"
    staging = checkpoints_dir / f".tmp-{PREFIX}{step}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, tensors in weights.items():
        save_file(
            {k: v.detach().float().contiguous().cpu() for k, v in tensors.items()}, staging / f"{name}.safetensors"
        )
    for name, state in states.items():
        torch.save(state, staging / f"{name}.pt")
    (staging / STATE_FILE).write_text(json.dumps({"step": step, **record}))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # a checkpoint is visible only once complete
    older = sorted((p for p in checkpoints_dir.glob(f"{PREFIX}*") if p != target), key=_step_of)
    for stale in older[: max(0, len(older) - keep + 1)]:
        shutil.rmtree(stale, ignore_errors=True)
    return target


class RandomStates:
    """A seeded CPU generator for a run's draws, plus torch's global state, to checkpoint."""

    def __init__(self, seed: int):
        import torch

        self.generator = torch.Generator().manual_seed(seed)

    def state(self) -> dict:
        import torch

        return {"noise": self.generator.get_state(), "torch": torch.get_rng_state()}

    def restore(self, state: dict) -> None:
        import torch

        self.generator.set_state(state["noise"])
        torch.set_rng_state(state["torch"])
