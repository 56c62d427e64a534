"""Benchmark metrics on the paper's Table 1 scales: CLIP score, CLIP-S, FID, PickScore.

Every number is computed so that a method's row depends only on that method's images
(and the prompts and real posters): adding a baseline or an ablation changes no other
row. Images are embedded per method, texts once per prompt, padded to the full window.

- CLIP score = 100 x max(cos(image, text), 0), torchmetrics' ``CLIPScore`` scale, with
  the ``clip_model`` (ViT-L/14 by default); computed here from ``CLIPModel`` features
  because torchmetrics' CLIPScore breaks on transformers 5.
- CLIP-S = 2.5 x max(cos, 0) (Hessel et al. 2021), with its own ``clip_s_model``,
  ViT-B/32 as in that paper. The MPDS paper's 0.77-0.85 are on this scale.
- PickScore (``yuvalkirstain/PickScore_v1``) = ``logit_scale.exp() x cos(text, image)``
  per image; the table reports its mean per method. Preference of a method against a
  baseline is judged per prompt over that pair only: the share of prompts where its
  PickScore is higher (win share, ties count half) and the mean two-way softmax
  probability. (A softmax over all methods of a prompt would make every row depend on
  the others.)
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
  n and the features are recorded with the value, with a warning below 2,048 samples.

Images of every method (SD2.1 at 768 px, folders of DALL-E or Firefly outputs at their
own size) are resized to ``metric_image_size`` square (bicubic) before CLIP and
PickScore, and straight to ``fid_resize`` for FID; ``benchmark_report.json`` records
this protocol (models, sizes, sample counts, features) next to every number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd

from ..base.layout import ReportFolder
from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from .device import choose_device

BASELINE_KINDS = ("sd", "folder")  # generation's method kinds that are models from elsewhere

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
DEFAULT_CLIP_S_MODEL = "openai/clip-vit-base-patch32"  # Hessel et al. 2021
CLIP_SCORE_SCALE = 100.0  # torchmetrics CLIPScore
CLIP_S_SCALE = 2.5  # CLIP-S
DEFAULT_PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
DEFAULT_PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
STABLE_FID_MIN_SAMPLES = 2048


# --- loading ------------------------------------------------------------------------


def load_clip(model_id: str, processor_id: str | None = None, device: str | None = None):
    """A ``CLIPModel`` and ``CLIPProcessor`` (Pillow image processor: no torchvision)."""
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    device = choose_device(device)
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


def _text_embeddings(texts: Sequence[str], model, processor) -> np.ndarray:
    """Padded to the full window, so a text's embedding does not depend on its batch-mates."""
    import torch

    device = next(model.parameters()).device
    inputs = processor(text=list(texts), return_tensors="pt", padding="max_length", truncation=True)
    with torch.no_grad():
        text = _features(
            model.get_text_features(
                input_ids=inputs["input_ids"].to(device), attention_mask=inputs["attention_mask"].to(device)
            )
        )
    return text.float().cpu().numpy()


def _image_embeddings(images: Sequence[Image.Image], model, processor) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    inputs = processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
    with torch.no_grad():
        image = _features(model.get_image_features(pixel_values=inputs["pixel_values"].to(device, model.dtype)))
    return image.float().cpu().numpy()


def _clip_embeddings(images: Sequence[Image.Image], texts: Sequence[str], model, processor):
    return _image_embeddings(images, model, processor), _text_embeddings(texts, model, processor)


def _batched(function, items: Sequence, batch_size: int, *args) -> np.ndarray:
    return np.concatenate([function(items[i : i + batch_size], *args) for i in range(0, len(items), batch_size)])


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# --- CLIP score and PickScore ------------------------------------------------------------


def clip_score_from_embeddings(
    image_embeds: np.ndarray, text_embeds: np.ndarray, scale: float = CLIP_SCORE_SCALE
) -> np.ndarray:
    """``scale`` x max(cos, 0) row by row: 100 for CLIPScore, 2.5 for CLIP-S."""
    cos = np.sum(_normalise(image_embeds) * _normalise(text_embeds), axis=-1)
    return scale * np.maximum(cos, 0.0)


def clip_score(
    images: Sequence[Image.Image],
    texts: Sequence[str],
    model,
    processor,
    batch_size: int = 32,
    scale: float = CLIP_SCORE_SCALE,
) -> np.ndarray:
    """Per-image CLIP score of image i against text i (``scale`` 2.5 gives CLIP-S)."""
    if len(images) != len(texts):
        raise ValueError("clip_score needs one text per image")
    scores = []
    for start in range(0, len(images), batch_size):
        image, text = _clip_embeddings(
            images[start : start + batch_size], texts[start : start + batch_size], model, processor
        )
        scores.append(clip_score_from_embeddings(image, text, scale))
    return np.concatenate(scores) if scores else np.zeros(0)


def pickscore_from_embeddings(image_embeds: np.ndarray, text_embeds: np.ndarray, logit_scale: float) -> np.ndarray:
    """PickScore per image: logit_scale x cos(text_i, image_i) (raw, not a probability)."""
    return logit_scale * np.sum(_normalise(image_embeds) * _normalise(text_embeds), axis=-1)


def pick_probabilities_from_embeddings(
    image_embeds: np.ndarray, text_embed: np.ndarray, logit_scale: float
) -> np.ndarray:
    """softmax_i(logit_scale * cos(text, image_i)): preference among the given candidates."""
    logits = logit_scale * (_normalise(image_embeds) @ _normalise(text_embed.reshape(-1)))
    logits = logits - logits.max()
    return np.exp(logits) / np.exp(logits).sum()


def pick_scores(images: Sequence[Image.Image], text: str, model, processor) -> np.ndarray:
    """Raw PickScore of each of ``images`` for one prompt."""
    image, text_embed = _clip_embeddings(images, [text], model, processor)
    return pickscore_from_embeddings(
        image, np.repeat(text_embed, len(image), axis=0), float(model.logit_scale.exp().item())
    )


def pairwise_preference(scores: np.ndarray, baseline_scores: np.ndarray) -> dict:
    """A method against a baseline, prompt by prompt (aligned arrays of PickScores).

    win_share: share of prompts where the method scores higher (a tie counts half);
    mean_probability: mean of the two-way softmax exp(s) / (exp(s) + exp(s_baseline)).
    """
    scores, baseline_scores = np.asarray(scores, np.float64), np.asarray(baseline_scores, np.float64)
    if len(scores) != len(baseline_scores):
        raise ValueError("pairwise_preference needs one baseline score per score")
    if len(scores) == 0:
        return {"n_prompts": 0, "win_share": float("nan"), "mean_probability": float("nan")}
    wins = (scores > baseline_scores) + 0.5 * (scores == baseline_scores)
    probability = 1.0 / (1.0 + np.exp(baseline_scores - scores))
    return {
        "n_prompts": int(len(scores)),
        "win_share": float(wins.mean()),
        "mean_probability": float(probability.mean()),
    }


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
            out = _features(
                self.model.get_image_features(pixel_values=inputs["pixel_values"].to(device, self.model.dtype))
            )
        return out.float().cpu().numpy()


class TorchScriptInceptionExtractor:
    """The standard FID Inception-v3 as TorchScript (uint8 NCHW in, 2048 pool features out)."""

    def __init__(self, path: str | Path, device: str | None = None):
        import torch

        self.device = choose_device(device)
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


# How images are resized to the FID network's input (PIL's filters).
ResizeMethod = Literal["bicubic", "bilinear", "lanczos", "nearest"]
# The named FID feature settings; a URL or a .pth/.pt path also works (fid_extractor_from_setting).
FidFeatures = Literal["inception", "inception-random", "clip"]
_RESAMPLING: dict[ResizeMethod, Image.Resampling] = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


def image_features(
    images: Sequence[Image.Image | Path],
    extractor: FeatureExtractor,
    resize: int,
    resize_method: ResizeMethod,
    batch_size: int = 32,
) -> np.ndarray:
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
    resize_method: ResizeMethod = "bicubic",
) -> FidResult:
    """FID between two image sets (PIL images or paths), with its protocol and a sample-size warning."""
    if len(real_images) < 2 or len(fake_images) < 2:
        raise ValueError("FID needs at least two real and two generated images")
    real = image_features(real_images, feature_extractor, resize, resize_method)
    fake = image_features(fake_images, feature_extractor, resize, resize_method)
    return _fid_from_features(real, fake, feature_extractor, resize, resize_method)


def _fid_from_features(
    real: np.ndarray, fake: np.ndarray, extractor: FeatureExtractor, resize: int, resize_method: ResizeMethod
) -> FidResult:
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
        "feature_extractor": extractor.name,
        "resize": resize,
        "resize_method": resize_method,
        "n_real": len(real),
        "n_fake": len(fake),
    }
    return FidResult(float(value), len(real), len(fake), dim, protocol, warning)


# --- the report ---------------------------------------------------------------------------


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


def fid_extractor_from_setting(
    setting: str, device: str | None = None, clip=None, clip_model: str = DEFAULT_CLIP_MODEL
) -> FeatureExtractor:
    """The FID feature extractor a ``BenchmarkReportSettings.fid_extractor`` string names.

    "inception": the FID Inception-v3 with pytorch-fid's weights, downloaded once;
    "inception-random": the same network randomly initialised (offline demos and tests only);
    "clip": CLIP image embeddings of ``clip_model`` (reusing a loaded ``clip`` pair);
    an http(s) URL or a local ``.pth`` state dict: the FID Inception-v3 with those weights;
    a local ``.pt``: a TorchScript FID Inception (``TorchScriptInceptionExtractor``).
    """
    from .inception import FID_WEIGHTS_URL, InceptionFidExtractor

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
    raise ValueError(
        f"fid_extractor must be 'inception', 'inception-random', 'clip', a URL, a .pth or a .pt path, not {setting!r}"
    )


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
        "clip": _batched(_text_embeddings, texts, 32, *clip),
        "clip_s": _batched(_text_embeddings, texts, 32, *clip_s),
        "pickscore": _batched(_text_embeddings, texts, 32, *pickscore),
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
    protocol = _protocol_rows(settings, fid_extractor, pick_scale, baselines, len(real_images))
    methods = _method_rows(rows, manifest, size)

    files = ReportFolder(out_dir)
    table, shown = _with_text_accuracy(table, text_accuracy)
    table_csv = files.table_csv
    shown.to_csv(table_csv)
    preference.to_csv(files.preference_csv, index=False)
    table_markdown = files.table_markdown
    table_markdown.write_text(_markdown(shown) + "\n" + preference_markdown(preference))
    grid = image_grid(rows, files.grid, list(dict.fromkeys(rows["prompt_id"]))[: settings.grid_prompts])
    report_json = files.report_json
    document = _report_document(table, preference, fids, protocol, methods, settings, warnings, fid_extractor)
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
                _batched(_image_embeddings, resized, 32, *clip), text_embeds["clip"][t], CLIP_SCORE_SCALE
            )
            rows.loc[group.index, "clip_s"] = clip_score_from_embeddings(
                _batched(_image_embeddings, resized, 32, *clip_s), text_embeds["clip_s"][t], CLIP_S_SCALE
            )
            rows.loc[group.index, "pickscore"] = pickscore_from_embeddings(
                _batched(_image_embeddings, resized, 32, *pickscore), text_embeds["pickscore"][t], pick_scale
            )
            if len(group) >= 2 and real_features is not None:
                fake = image_features(images, fid_extractor, settings.fid_resize, settings.fid_resize_method)
                fids[method] = _fid_from_features(
                    real_features, fake, fid_extractor, settings.fid_resize, settings.fid_resize_method
                )
                if fids[method].warning:
                    warnings.append(f"{method}: FID {fids[method].warning}")
            else:
                warnings.append(f"{method}: fewer than 2 images (or real posters), no FID")
            progress.update()
    return fids, warnings


def _protocol_rows(settings, fid_extractor, pick_scale: float, baselines: Sequence[str], n_real: int) -> list[dict]:
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


def _method_rows(rows: pd.DataFrame, manifest: pd.DataFrame, metric_size: int) -> list[dict]:
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


def _report_document(table, preference, fids, protocol, methods, settings, warnings, fid_extractor) -> dict:
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


def _markdown(table) -> str:
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
