"""The benchmark report's tables, grid, protocol rows and JSON document.

What report.py writes: the methods table and the PickScore preference table (CSV and
Markdown), the Fig.-4 style image grid, and ``benchmark_report.json``, which records
the protocol (models, sizes, sample counts, features) next to every number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd

from .fid import FidResult
from .pickscore import pairwise_preference


def benchmark_table(per_image: pd.DataFrame, fid_by_method: dict[str, FidResult]) -> pd.DataFrame:
    """Rows methods (in first-seen order): mean CLIP score (100 scale), mean CLIP-S (2.5
    scale), FID and its generated-sample count, mean raw PickScore, images scored."""
    import pandas as pd

    methods = list(dict.fromkeys(per_image["method"]))
    grouped = per_image.groupby("method", sort=False)
    table = pd.DataFrame(
        {
            "CLIP score": grouped["clip_score"].mean().reindex(methods),
            "CLIP-S": grouped["clip_s"].mean().reindex(methods),
            "FID": pd.Series({m: fid_by_method[m].value if m in fid_by_method else np.nan for m in methods}),
            "FID n": pd.Series({m: fid_by_method[m].n_fake if m in fid_by_method else 0 for m in methods}),
            "PickScore": grouped["pickscore"].mean().reindex(methods),
            "n_images": grouped.size().reindex(methods),
        }
    )
    table.index.name = "method"
    return table


def preference_table(per_image: pd.DataFrame, baselines: Sequence[str]) -> pd.DataFrame:
    """Every method against every baseline (not itself), over the prompts both have images for:
    columns method, baseline, n_prompts, win_share, mean_probability."""
    import pandas as pd

    scores = per_image.pivot_table(index="prompt_id", columns="method", values="pickscore", aggfunc="first")
    rows = []
    for method in dict.fromkeys(per_image["method"]):
        for baseline in baselines:
            if baseline == method or baseline not in scores:
                continue
            both = scores[[method, baseline]].dropna()
            rows.append(
                {
                    "method": method,
                    "baseline": baseline,
                    **pairwise_preference(both[method].to_numpy(), both[baseline].to_numpy()),
                }
            )
    return pd.DataFrame(rows, columns=["method", "baseline", "n_prompts", "win_share", "mean_probability"])


def image_grid(manifest: pd.DataFrame, path: Path, prompt_ids: Sequence[str] | None = None, thumb: int = 160) -> Path:
    """Fig.-4 style grid: a column per method, a row per prompt, the method names on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = manifest[manifest["image_path"].notna()]
    methods = list(dict.fromkeys(rows["method"]))
    prompt_ids = list(prompt_ids or list(dict.fromkeys(rows["prompt_id"]))[:4])
    fig, axes = plt.subplots(
        len(prompt_ids), len(methods), figsize=(1.8 * len(methods), 1.8 * len(prompt_ids)), squeeze=False, dpi=100
    )
    for r, prompt_id in enumerate(prompt_ids):
        for c, method in enumerate(methods):
            ax = axes[r][c]
            ax.axis("off")
            hit = rows[(rows["method"] == method) & (rows["prompt_id"] == prompt_id)]
            if len(hit):
                with Image.open(hit.iloc[0]["image_path"]) as image:
                    ax.imshow(image.convert("RGB").resize((thumb, thumb)))
            if r == 0:
                ax.set_title(method, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def protocol_rows(settings, fid_extractor, pick_scale: float, baselines: Sequence[str], n_real: int) -> list[dict]:
    resize = f"{settings.metric_image_size}x{settings.metric_image_size} bicubic, then the model's processor"
    return [
        {
            "metric": "CLIP score",
            "formula": "100 * max(cos(image, text), 0) (torchmetrics CLIPScore)",
            "model": settings.clip_model,
            "images": resize,
        },
        {
            "metric": "CLIP-S",
            "formula": "2.5 * max(cos(image, text), 0) (Hessel et al. 2021)",
            "model": settings.clip_s_model,
            "images": resize,
        },
        {
            "metric": "PickScore",
            "formula": f"mean of logit_scale.exp() * cos(text, image), logit_scale.exp() = {pick_scale:.4g}",
            "model": f"{settings.pickscore_model} (processor {settings.pickscore_processor})",
            "images": resize,
        },
        {
            "metric": "PickScore preference",
            "formula": "per prompt, method vs baseline only: win share (ties half), mean two-way softmax",
            "model": "baselines: " + (", ".join(baselines) or "none"),
            "images": resize,
        },
        {
            "metric": "FID",
            "formula": f"Frechet distance of {fid_extractor.feature_dim}-d features "
            f"against {n_real} real held-out posters",
            "model": fid_extractor.name,
            "images": f"{settings.fid_resize}x{settings.fid_resize} {settings.fid_resize_method}",
        },
    ]


def method_rows(rows: pd.DataFrame, manifest: pd.DataFrame, metric_size: int) -> list[dict]:
    out = []
    for method, group in manifest.groupby("method", sort=False):
        scored = rows[rows["method"] == method]
        sizes = sorted(
            {
                f"{int(w)}x{int(h)}"
                for w, h in zip(scored.get("width", []), scored.get("height", []))
                if w == w and h == h
            }
        )
        out.append(
            {
                "method": method,
                "kind": group["kind"].iloc[0] if "kind" in group else "",
                "images_scored": int(len(scored)),
                "images_missing": int(len(group) - len(scored)),
                "made_at": ", ".join(sizes) or "unknown",
                "scored_at": f"{metric_size}x{metric_size}",
            }
        )
    return out


def report_document(table, preference, fids, protocol, methods, settings, warnings, fid_extractor) -> dict:
    """benchmark_report.json: every number with the protocol it was measured under."""
    by_metric = {row["metric"]: row for row in protocol}
    method_info = {row["method"]: row for row in methods}
    results = {}
    for method, row in table.iterrows():
        n = int(row["n_images"])
        image_size = method_info.get(method, {}).get("scored_at")
        made_at = method_info.get(method, {}).get("made_at")
        fid = fids.get(method)
        results[method] = {
            "kind": method_info.get(method, {}).get("kind"),
            "made_at": made_at,
            "clip_score": {
                "value": _number(row["CLIP score"]),
                "scale": "100*max(cos,0)",
                "model": settings.clip_model,
                "image_size": image_size,
                "n": n,
            },
            "clip_s": {
                "value": _number(row["CLIP-S"]),
                "scale": "2.5*max(cos,0)",
                "model": settings.clip_s_model,
                "image_size": image_size,
                "n": n,
            },
            "pickscore": {
                "value": _number(row["PickScore"]),
                "statistic": "mean raw PickScore",
                "model": settings.pickscore_model,
                "processor": settings.pickscore_processor,
                "image_size": image_size,
                "n": n,
            },
            "fid": None
            if fid is None
            else {
                "value": fid.value,
                "n_real": fid.n_real,
                "n_fake": fid.n_fake,
                "feature_dim": fid.feature_dim,
                "feature_extractor": fid.protocol["feature_extractor"],
                "resize": fid.protocol["resize"],
                "resize_method": fid.protocol["resize_method"],
                "warning": fid.warning,
            },
            "preference": {
                p["baseline"]: {
                    "win_share": _number(p["win_share"]),
                    "mean_probability": _number(p["mean_probability"]),
                    "n_prompts": int(p["n_prompts"]),
                    "model": settings.pickscore_model,
                }
                for p in preference[preference["method"] == method].to_dict("records")
            },
        }
    return {
        "results": results,
        "table": json.loads(table.reset_index().to_json(orient="records")),
        "preference": json.loads(preference.to_json(orient="records")),
        "protocol": {"metrics": by_metric, "methods": methods, "fid_feature_extractor": fid_extractor.name},
        "fid": {m: asdict(r) for m, r in fids.items()},
        "settings": asdict(settings),
        "warnings": warnings,
    }


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def benchmark_markdown(table) -> str:
    header = "| method | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    for method, row in table.iterrows():
        cells = [
            "—"
            if isinstance(v, float) and np.isnan(v)
            else str(int(v))
            if column in ("n_images", "FID n")
            else f"{v:.3f}"
            if column == "CLIP-S"
            else f"{v:.2f}"
            if isinstance(v, float)
            else str(v)
            for column, v in row.items()
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def preference_markdown(preference: pd.DataFrame) -> str:
    """Methods down, baselines across; each cell 'win share / mean two-way probability' in %."""
    if preference.empty:
        return "_no baseline to compare against_\n"
    baselines = list(dict.fromkeys(preference["baseline"]))
    lines = [
        "PickScore preference vs each baseline (win % / mean two-way probability %):",
        "",
        "| method | " + " | ".join(f"vs {b}" for b in baselines) + " |",
        "|" + "---|" * (len(baselines) + 1),
    ]
    for method, group in preference.groupby("method", sort=False):
        cells = {
            r["baseline"]: f"{100 * r['win_share']:.0f} / {100 * r['mean_probability']:.0f}"
            for r in group.to_dict("records")
        }
        lines.append(f"| {method} | " + " | ".join(cells.get(b, "—") for b in baselines) + " |")
    return "\n".join(lines) + "\n"
