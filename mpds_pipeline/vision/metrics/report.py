"""The benchmark report: score a generation manifest with every metric and write Table 1.

Every number is computed so that a method's row depends only on that method's images
(and the prompts and real posters): texts are embedded once per prompt, images per
method. Images are resized to ``metric_image_size`` (bicubic) before CLIP and PickScore
and straight to ``fid_resize`` for FID; the files are written by report_render.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd

from ...base.folders import ReportFolder
from ...base.progress import Progress, ProgressLog
from ...base.settings import setting
from .clip_models import batched, image_embeddings, load_clip, text_embeddings
from .clip_score import (
    CLIP_S_SCALE,
    CLIP_SCORE_SCALE,
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_S_MODEL,
    clip_score_from_embeddings,
)
from .fid import FidFeatures, FidResult, ResizeMethod, fid_from_features, image_features
from .fid_features import FeatureExtractor, fid_extractor_from_setting
from .pickscore import DEFAULT_PICKSCORE_MODEL, DEFAULT_PICKSCORE_PROCESSOR, pickscore_from_embeddings
from .report_render import (
    benchmark_markdown,
    benchmark_table,
    image_grid,
    method_rows,
    preference_markdown,
    preference_table,
    protocol_rows,
    report_document,
)

BASELINE_KINDS = ("sd", "folder")  # generation's method kinds that are models from elsewhere


@dataclass
class BenchmarkReportSettings:
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_s_model: str = DEFAULT_CLIP_S_MODEL
    pickscore_model: str = DEFAULT_PICKSCORE_MODEL
    pickscore_processor: str = DEFAULT_PICKSCORE_PROCESSOR
    fid_extractor: FidFeatures | str = "inception"  # see fid_extractor_from_setting
    fid_resize: int = setting(299, "side the images are resized to for FID's features (Inception's 299)")
    fid_resize_method: ResizeMethod = setting("bicubic", "how images are resized for FID")
    metric_image_size: int = setting(512, "every image is resized to this square (bicubic) before CLIP and PickScore")
    baselines: list[str] | None = setting(
        None, "methods the PickScore preference compares against; default: the sd and folder methods"
    )
    grid_prompts: int = setting(4, "prompts (rows) in the Fig. 4-style grid")
    device: str | None = None


@dataclass
class BenchmarkReportResult:
    table: pd.DataFrame
    per_image: pd.DataFrame
    fid: dict[str, FidResult]
    table_csv: Path
    table_markdown: Path
    grid_png: Path
    report_json: Path
    warnings: list[str] = field(default_factory=list)
    preference: pd.DataFrame | None = None
    protocol: list[dict] = field(default_factory=list)  # one row per metric: what it is, on what
    methods: list[dict] = field(default_factory=list)  # one row per method: kind, sizes, counts

    def metadata(self) -> dict:
        return {"n_methods": len(self.table), "n_images": len(self.per_image), "n_warnings": len(self.warnings)}


def _comparability_notes(settings: BenchmarkReportSettings, fid_extractor: FeatureExtractor) -> list[str]:
    notes = []
    if settings.clip_s_model != DEFAULT_CLIP_S_MODEL:
        notes.append(
            f"CLIP-S uses {settings.clip_s_model}, not {DEFAULT_CLIP_S_MODEL} (Hessel et al.): "
            "not comparable with published CLIP-S"
        )
    if not fid_extractor.name.startswith("inception-v3") or "random" in fid_extractor.name:
        notes.append(
            f"FID features {fid_extractor.name} are not the standard FID Inception-v3: compare only within this run"
        )
    return notes


def _scoring_models(settings: BenchmarkReportSettings, clip, clip_s, pickscore) -> tuple:
    """The (model, processor) pairs not passed in, loaded from ``settings``; CLIP-S reuses
    the CLIP pair when both name the same model."""
    clip = clip or load_clip(settings.clip_model, device=settings.device)
    if clip_s is None:
        same = settings.clip_s_model == settings.clip_model
        clip_s = clip if same else load_clip(settings.clip_s_model, device=settings.device)
    pickscore = pickscore or load_clip(settings.pickscore_model, settings.pickscore_processor, device=settings.device)
    return clip, clip_s, pickscore


def benchmark_report(
    manifest: pd.DataFrame,
    real_images: Sequence[Path],
    out_dir: Path,
    settings: BenchmarkReportSettings | None = None,
    clip=None,
    pickscore=None,
    fid_extractor: FeatureExtractor | None = None,
    clip_s=None,
    log: ProgressLog | None = None,
    text_accuracy=None,
) -> BenchmarkReportResult:
    """Score a ``generate_benchmark_images`` manifest; write the tables, grid and JSON report.

    ``clip``/``clip_s``/``pickscore`` are optional preloaded (model, processor) pairs; by
    default they load from ``settings`` (CLIP-S reuses the CLIP pair when both name the
    same model). ``log`` gets a progress line per method scored. ``text_accuracy`` (a
    ``text_accuracy.TextAccuracyResult``) adds its OCR columns to every row, its upper
    bound (the caption sketches) as a last row of the CSV and Markdown tables, and its
    entry to the JSON report.
    """
    settings = settings or BenchmarkReportSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip, clip_s, pickscore = _scoring_models(settings, clip, clip_s, pickscore)
    if fid_extractor is None:
        fid_extractor = fid_extractor_from_setting(settings.fid_extractor, settings.device, clip, settings.clip_model)
    rows = manifest[manifest["image_path"].notna()].copy()
    size = settings.metric_image_size

    # Texts once per prompt, in a fixed order; images per method: no row depends on another.
    prompts = rows.drop_duplicates("prompt_id").sort_values("prompt_id")
    text_index = {pid: i for i, pid in enumerate(prompts["prompt_id"])}
    texts = list(prompts["prompt"])
    text_embeds = {
        "clip": batched(text_embeddings, texts, 32, *clip),
        "clip_s": batched(text_embeddings, texts, 32, *clip_s),
        "pickscore": batched(text_embeddings, texts, 32, *pickscore),
    }
    pick_scale = float(pickscore[0].logit_scale.exp().item())
    real_features = (
        image_features(real_images, fid_extractor, settings.fid_resize, settings.fid_resize_method)
        if len(real_images) >= 2
        else None
    )

    models = {"clip": clip, "clip_s": clip_s, "pickscore": pickscore}
    fids, warnings = _score_methods(
        rows, models, text_index, text_embeds, pick_scale, fid_extractor, real_features, settings, log
    )
    warnings += _comparability_notes(settings, fid_extractor)

    kinds = dict(zip(rows["method"], rows["kind"])) if "kind" in rows else {}
    baselines = (
        settings.baselines if settings.baselines is not None else [m for m, k in kinds.items() if k in BASELINE_KINDS]
    )
    warnings += [f"baseline {b!r} has no scored images: no preference against it" for b in baselines if b not in kinds]
    table = benchmark_table(rows, fids)
    preference = preference_table(rows, baselines)
    protocol = protocol_rows(settings, fid_extractor, pick_scale, baselines, len(real_images))
    methods = method_rows(rows, manifest, size)

    files = ReportFolder(out_dir)
    table, shown = _with_text_accuracy(table, text_accuracy)
    table_csv = files.table_csv
    shown.to_csv(table_csv)
    preference.to_csv(files.preference_csv, index=False)
    table_markdown = files.table_markdown
    table_markdown.write_text(benchmark_markdown(shown) + "\n" + preference_markdown(preference))
    grid = image_grid(rows, files.grid, list(dict.fromkeys(rows["prompt_id"]))[: settings.grid_prompts])
    report_json = files.report_json
    document = report_document(table, preference, fids, protocol, methods, settings, warnings, fid_extractor)
    report_json.write_text(json.dumps(_add_text_accuracy(document, text_accuracy), indent=1))
    per_image = rows.reset_index(drop=True)
    per_image.to_csv(files.per_image_csv, index=False)
    return BenchmarkReportResult(
        shown, per_image, fids, table_csv, table_markdown, grid, report_json, warnings, preference, protocol, methods
    )


def _with_text_accuracy(table: pd.DataFrame, text_accuracy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the methods' table with the OCR columns, the same plus the upper-bound row: what
    the CSV and Markdown show); both the table itself without ``text_accuracy``."""
    if text_accuracy is None:
        return table, table
    import pandas as pd

    table = table.join(text_accuracy.methods_table().drop(columns="OCR images"))
    bound = text_accuracy.table.drop(index=table.index, errors="ignore").drop(columns="OCR images")
    shown = pd.concat([table, bound])
    shown["n_images"] = shown["n_images"].fillna(text_accuracy.table["OCR images"]).astype(int)
    shown["FID n"] = shown["FID n"].fillna(0).astype(int)
    shown.index.name = "method"
    return table, shown


def _add_text_accuracy(document: dict, text_accuracy) -> dict:
    if text_accuracy is not None:
        document["text_accuracy"] = text_accuracy.report()
        for method, entry in document["results"].items():
            entry["text_accuracy"] = document["text_accuracy"]["methods"].get(method)
    return document


def _score_methods(
    rows,
    models: dict,
    text_index: dict,
    text_embeds: dict,
    pick_scale: float,
    fid_extractor,
    real_features,
    settings: BenchmarkReportSettings,
    log: ProgressLog | None,
):
    """Fill ``rows``' clip_score, clip_s and pickscore per image, method by method; return
    each method's FID (two images or more) and the warnings."""
    rows["clip_score"] = rows["clip_s"] = rows["pickscore"] = np.nan
    warnings: list[str] = []
    clip, clip_s, pickscore = models["clip"], models["clip_s"], models["pickscore"]
    size = settings.metric_image_size
    fids: dict[str, FidResult] = {}
    with Progress("benchmark_report", rows["method"].nunique(), log, unit="methods", every_n=1) as progress:
        for method, group in rows.groupby("method", sort=False):
            images = []
            for path in group["image_path"]:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            resized = [im.resize((size, size), Image.Resampling.BICUBIC) for im in images]
            t = [text_index[pid] for pid in group["prompt_id"]]
            rows.loc[group.index, "clip_score"] = clip_score_from_embeddings(
                batched(image_embeddings, resized, 32, *clip), text_embeds["clip"][t], CLIP_SCORE_SCALE
            )
            rows.loc[group.index, "clip_s"] = clip_score_from_embeddings(
                batched(image_embeddings, resized, 32, *clip_s), text_embeds["clip_s"][t], CLIP_S_SCALE
            )
            rows.loc[group.index, "pickscore"] = pickscore_from_embeddings(
                batched(image_embeddings, resized, 32, *pickscore), text_embeds["pickscore"][t], pick_scale
            )
            if len(group) >= 2 and real_features is not None:
                fake = image_features(images, fid_extractor, settings.fid_resize, settings.fid_resize_method)
                fids[method] = fid_from_features(
                    real_features, fake, fid_extractor, settings.fid_resize, settings.fid_resize_method
                )
                if fids[method].warning:
                    warnings.append(f"{method}: FID {fids[method].warning}")
            else:
                warnings.append(f"{method}: fewer than 2 images (or real posters), no FID")
            progress.update()
    return fids, warnings
