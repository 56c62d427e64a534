"""Benchmark metrics: CLIP score, FID, PickScore; the Table-1 style table and Fig.-4 grid.

- CLIP score = 100 x max(cos(image, text), 0) from ``CLIPModel`` features, computed here
  because torchmetrics' CLIPScore breaks on transformers 5.
- FID = Fréchet distance between Gaussian fits of real and generated image features. The
  feature extractor is pluggable (``FeatureExtractor``). The usual Inception-v3 pool
  features need torchvision (torch-fidelity, pytorch-fid, timm), which does not import
  beside the CPU torch here, so:
    * ``inception.InceptionFidExtractor`` (default, setting "inception"): the TF FID
      Inception-v3 rebuilt in plain torch, loading pytorch-fid's
      ``pt_inception-2015-12-05-6726825d.pth`` (downloaded, or a local path); numbers
      comparable with pytorch-fid / published FID (up to the resize protocol recorded);
    * ``TorchScriptInceptionExtractor(path)`` runs the standard FID Inception exported as
      TorchScript (the ``inception-2015-12-05.pt`` used by StyleGAN/clean-fid, 2048-d), when
      such a file is at hand; also comparable with papers;
    * ``ClipVisionExtractor`` (setting "clip"; ``openai/clip-vit-large-patch14`` image embeddings)
      gives a "CLIP-FID", comparable between methods of one run, not with published FID;
    * ``TinyFeatureExtractor`` for tests.
  The protocol (extractor, resize, sample counts) is recorded with the value, with a
  warning when either sample count is below the feature dimension or 2,048.
- PickScore = softmax over the candidate images of one prompt of
  ``logit_scale.exp() * cos(text, image)`` (``yuvalkirstain/PickScore_v1``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
DEFAULT_PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
DEFAULT_PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
STABLE_FID_MIN_SAMPLES = 2048


# --- loading ------------------------------------------------------------------------

def load_clip(model_id: str, processor_id: str | None = None, device: str | None = None):
    """A ``CLIPModel`` and ``CLIPProcessor`` (Pillow image processor: no torchvision)."""
    import torch
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    processor_id = processor_id or model_id
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil.from_pretrained(processor_id),
        tokenizer=CLIPTokenizer.from_pretrained(processor_id),
    )
    return CLIPModel.from_pretrained(model_id).to(device).eval(), processor


def _features(output):
    """``get_*_features`` returns a tensor in transformers 4 and a ModelOutput in 5."""
    if hasattr(output, "pooler_output"):
        return output.pooler_output
    return output


def _clip_embeddings(images: Sequence[Image.Image], texts: Sequence[str], model, processor):
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        text_inputs = processor(text=list(texts), return_tensors="pt", padding=True, truncation=True)
        image_inputs = processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        text = _features(
            model.get_text_features(
                input_ids=text_inputs["input_ids"].to(device), attention_mask=text_inputs["attention_mask"].to(device)
            )
        )
        image = _features(model.get_image_features(pixel_values=image_inputs["pixel_values"].to(device, model.dtype)))
    return image.float().cpu().numpy(), text.float().cpu().numpy()


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# --- CLIP score and PickScore ------------------------------------------------------------

def clip_score_from_embeddings(image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
    """100 x max(cos, 0) row by row."""
    cos = np.sum(_normalise(image_embeds) * _normalise(text_embeds), axis=-1)
    return 100.0 * np.maximum(cos, 0.0)


def clip_score(images: Sequence[Image.Image], texts: Sequence[str], model, processor, batch_size: int = 32) -> np.ndarray:
    """Per-image CLIP score of image i against text i."""
    if len(images) != len(texts):
        raise ValueError("clip_score needs one text per image")
    scores = []
    for start in range(0, len(images), batch_size):
        image, text = _clip_embeddings(images[start : start + batch_size], texts[start : start + batch_size], model, processor)
        scores.append(clip_score_from_embeddings(image, text))
    return np.concatenate(scores) if scores else np.zeros(0)


def pick_probabilities_from_embeddings(image_embeds: np.ndarray, text_embed: np.ndarray, logit_scale: float) -> np.ndarray:
    """softmax_i(logit_scale * cos(text, image_i)): preference probability among candidates."""
    logits = logit_scale * (_normalise(image_embeds) @ _normalise(text_embed.reshape(-1)))
    logits = logits - logits.max()
    return np.exp(logits) / np.exp(logits).sum()


def pick_scores(images: Sequence[Image.Image], text: str, model, processor) -> np.ndarray:
    """PickScore preference probabilities of ``images`` (one per method) for one prompt."""
    image, text_embed = _clip_embeddings(images, [text], model, processor)
    return pick_probabilities_from_embeddings(image, text_embed[0], float(model.logit_scale.exp().item()))


# --- FID ----------------------------------------------------------------------------------

def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2) for covariance matrices S1, S2.

    tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), a symmetric PSD root computed by
    eigendecomposition (scipy is not installed; this is also more stable than sqrtm).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def frechet_distance_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """The same Fréchet distance from raw features, exact and cheap when samples < dims.

    With A = (X_real - mean) / sqrt(n_r - 1) and B likewise, S1 = A^T A and S2 = B^T B, so
    tr(S1) = ||A||^2, tr(S2) = ||B||^2 and tr((S1 S2)^1/2) is the sum of the singular
    values of A B^T, an n_r x n_f matrix instead of two d x d ones.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    a = (real - real.mean(0)) / np.sqrt(len(real) - 1)
    b = (fake - fake.mean(0)) / np.sqrt(len(fake) - 1)
    diff = real.mean(0) - fake.mean(0)
    trace_root = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * trace_root)


class FeatureExtractor(Protocol):
    """Maps a batch of uint8 RGB images (N, H, W, 3) to features (N, feature_dim)."""

    name: str
    feature_dim: int

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TinyFeatureExtractor:
    """A fixed random projection of 8x8 average-pooled pixels: for tests only."""

    def __init__(self, feature_dim: int = 16, seed: int = 0):
        self.name = f"tiny-random-projection-{feature_dim}"
        self.feature_dim = feature_dim
        self._projection = np.random.default_rng(seed).standard_normal((8 * 8 * 3, feature_dim)) / 14.0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        n, h, w, _ = batch.shape
        pooled = batch[:, : h - h % 8, : w - w % 8].reshape(n, 8, (h - h % 8) // 8, 8, (w - w % 8) // 8, 3)
        pooled = pooled.astype(np.float64).mean(axis=(2, 4)) / 255.0
        return np.tanh(pooled.reshape(n, -1) @ self._projection)


class ClipVisionExtractor:
    """CLIP image embeddings as FID features (documented fallback: no torchvision here)."""

    def __init__(self, model_id: str = DEFAULT_CLIP_MODEL, device: str | None = None, model=None, processor=None):
        if model is None:
            model, processor = load_clip(model_id, device=device)
        self.model, self.processor = model, processor
        self.name = f"clip-image-embeds:{model_id}"
        self.feature_dim = int(model.config.projection_dim)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        device = next(self.model.parameters()).device
        inputs = self.processor(images=[Image.fromarray(im) for im in batch], return_tensors="pt")
        with torch.no_grad():
            out = _features(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(device, self.model.dtype)))
        return out.float().cpu().numpy()


class TorchScriptInceptionExtractor:
    """The standard FID Inception-v3 as TorchScript (uint8 NCHW in, 2048 pool features out)."""

    def __init__(self, path: str | Path, device: str | None = None):
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.module = torch.jit.load(str(path), map_location=self.device).eval()
        self.name = f"inception-v3-torchscript:{Path(path).name}"
        self.feature_dim = 2048

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        images = torch.from_numpy(batch.copy()).permute(0, 3, 1, 2).to(self.device)
        with torch.no_grad():
            features = self.module(images, return_features=True)
        return features.float().cpu().numpy()


@dataclass
class FidResult:
    value: float
    n_real: int
    n_fake: int
    feature_dim: int
    protocol: dict
    warning: str | None = None


_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


def image_features(images: Sequence[Image.Image | Path], extractor: FeatureExtractor, resize: int, resize_method: str, batch_size: int = 32) -> np.ndarray:
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = []
        for item in images[start : start + batch_size]:
            image = Image.open(item) if isinstance(item, (str, Path)) else item
            batch.append(np.asarray(image.convert("RGB").resize((resize, resize), _RESAMPLING[resize_method])))
        chunks.append(np.asarray(extractor(np.stack(batch)), dtype=np.float64))
    return np.concatenate(chunks)


def fid(
    real_images: Sequence[Image.Image | Path],
    fake_images: Sequence[Image.Image | Path],
    feature_extractor: FeatureExtractor,
    resize: int = 299,
    resize_method: str = "bicubic",
) -> FidResult:
    """FID between two image sets (PIL images or paths), with its protocol and a sample-size warning."""
    if len(real_images) < 2 or len(fake_images) < 2:
        raise ValueError("FID needs at least two real and two generated images")
    real = image_features(real_images, feature_extractor, resize, resize_method)
    fake = image_features(fake_images, feature_extractor, resize, resize_method)
    dim = real.shape[1]
    if min(len(real), len(fake)) < dim:
        value = frechet_distance_from_features(real, fake)
    else:
        value = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    fewest = min(len(real), len(fake))
    warning = None
    if fewest < max(dim, STABLE_FID_MIN_SAMPLES):
        warning = (
            f"only {fewest} samples for {dim}-d features (want >= {max(dim, STABLE_FID_MIN_SAMPLES)}): "
            "the covariance is rank-deficient or noisy and FID is biased; compare only within this run"
        )
    protocol = {
        "feature_extractor": feature_extractor.name,
        "resize": resize,
        "resize_method": resize_method,
        "n_real": len(real),
        "n_fake": len(fake),
    }
    return FidResult(float(value), len(real), len(fake), dim, protocol, warning)


# --- the report ---------------------------------------------------------------------------

def benchmark_table(per_image: "pd.DataFrame", fid_by_method: dict[str, FidResult]) -> "pd.DataFrame":
    """Rows methods (in first-seen order), columns CLIP score, FID, PickScore (means)."""
    import pandas as pd

    methods = list(dict.fromkeys(per_image["method"]))
    grouped = per_image.groupby("method", sort=False)
    table = pd.DataFrame(
        {
            "CLIP score": grouped["clip_score"].mean().reindex(methods),
            "FID": pd.Series({m: fid_by_method[m].value if m in fid_by_method else np.nan for m in methods}),
            "PickScore": grouped["pick_score"].mean().reindex(methods),
            "n_images": grouped.size().reindex(methods),
        }
    )
    table.index.name = "method"
    return table


def image_grid(manifest: "pd.DataFrame", path: Path, prompt_ids: Sequence[str] | None = None, thumb: int = 160) -> Path:
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


@dataclass
class BenchmarkReportSettings:
    clip_model: str = DEFAULT_CLIP_MODEL
    pickscore_model: str = DEFAULT_PICKSCORE_MODEL
    pickscore_processor: str = DEFAULT_PICKSCORE_PROCESSOR
    fid_extractor: str = "inception"  # see fid_extractor_from_setting
    fid_resize: int = 299
    fid_resize_method: str = "bicubic"
    grid_prompts: int = 4
    device: str | None = None


@dataclass
class BenchmarkReportResult:
    table: "pd.DataFrame"
    per_image: "pd.DataFrame"
    fid: dict[str, FidResult]
    table_csv: Path
    table_markdown: Path
    grid_png: Path
    report_json: Path
    warnings: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        return {"n_methods": len(self.table), "n_images": len(self.per_image), "warnings": self.warnings}


def fid_extractor_from_setting(setting: str, device: str | None = None, clip=None, clip_model: str = DEFAULT_CLIP_MODEL) -> FeatureExtractor:
    """The FID feature extractor a ``BenchmarkReportSettings.fid_extractor`` string names.

    "inception": the FID Inception-v3 with pytorch-fid's weights, downloaded once;
    "inception-random": the same network randomly initialised (offline demos and tests only);
    "clip": CLIP image embeddings of ``clip_model`` (reusing a loaded ``clip`` pair);
    an http(s) URL or a local ``.pth`` state dict: the FID Inception-v3 with those weights;
    a local ``.pt``: a TorchScript FID Inception (``TorchScriptInceptionExtractor``).
    """
    from mpds_pipeline.vision.inception import FID_WEIGHTS_URL, InceptionFidExtractor

    if setting == "inception":
        return InceptionFidExtractor(FID_WEIGHTS_URL, device=device)
    if setting == "inception-random":
        return InceptionFidExtractor(None, device=device)
    if setting == "clip":
        model, processor = clip if clip is not None else (None, None)
        return ClipVisionExtractor(clip_model, device=device, model=model, processor=processor)
    if setting.startswith(("http://", "https://")) or setting.endswith(".pth"):
        return InceptionFidExtractor(setting, device=device)
    if setting.endswith(".pt"):
        return TorchScriptInceptionExtractor(setting, device=device)
    raise ValueError(f"fid_extractor must be 'inception', 'inception-random', 'clip', a URL, a .pth or a .pt path, not {setting!r}")


def benchmark_report(
    manifest: "pd.DataFrame",
    real_images: Sequence[Path],
    out_dir: Path,
    settings: BenchmarkReportSettings | None = None,
    clip=None,
    pickscore=None,
    fid_extractor: FeatureExtractor | None = None,
) -> BenchmarkReportResult:
    """Score a ``generate_benchmark_images`` manifest; write the table, grid and JSON report.

    ``clip``/``pickscore`` are optional preloaded (model, processor) pairs; by default
    they load from ``settings``.
    """
    settings = settings or BenchmarkReportSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = clip or load_clip(settings.clip_model, device=settings.device)
    pickscore = pickscore or load_clip(settings.pickscore_model, settings.pickscore_processor, device=settings.device)
    if fid_extractor is None:
        fid_extractor = fid_extractor_from_setting(settings.fid_extractor, settings.device, clip, settings.clip_model)
    rows = manifest[manifest["image_path"].notna()].copy()
    images = {path: Image.open(path).convert("RGB") for path in rows["image_path"]}
    rows["clip_score"] = clip_score([images[p] for p in rows["image_path"]], list(rows["prompt"]), *clip)
    rows["pick_score"] = np.nan
    for _, group in rows.groupby("prompt_id", sort=False):
        probabilities = pick_scores([images[p] for p in group["image_path"]], group["prompt"].iloc[0], *pickscore)
        rows.loc[group.index, "pick_score"] = probabilities
    warnings = []
    fids = {}
    for method, group in rows.groupby("method", sort=False):
        if len(group) >= 2 and len(real_images) >= 2:
            fids[method] = fid(real_images, [images[p] for p in group["image_path"]], fid_extractor, settings.fid_resize, settings.fid_resize_method)
            if fids[method].warning:
                warnings.append(f"{method}: {fids[method].warning}")
        else:
            warnings.append(f"{method}: fewer than 2 images, no FID")
    table = benchmark_table(rows, fids)
    table_csv = out_dir / "benchmark_table.csv"
    table.to_csv(table_csv)
    table_markdown = out_dir / "benchmark_table.md"
    table_markdown.write_text(_markdown(table))
    grid = image_grid(rows, out_dir / "benchmark_grid.png", list(dict.fromkeys(rows["prompt_id"]))[: settings.grid_prompts])
    report_json = out_dir / "benchmark_report.json"
    report_json.write_text(
        json.dumps(
            {
                "table": json.loads(table.reset_index().to_json(orient="records")),
                "fid": {m: asdict(r) for m, r in fids.items()},
                "settings": asdict(settings),
                "warnings": warnings,
            },
            indent=1,
        )
    )
    per_image = rows.reset_index(drop=True)
    per_image.to_csv(out_dir / "per_image_scores.csv", index=False)
    return BenchmarkReportResult(table, per_image, fids, table_csv, table_markdown, grid, report_json, warnings)


def _markdown(table) -> str:
    header = "| method | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    for method, row in table.iterrows():
        cells = [str(int(v)) if column == "n_images" else f"{v:.2f}" if isinstance(v, float) else str(v)
                 for column, v in row.items()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
