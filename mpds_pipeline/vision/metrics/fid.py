"""FID: the Fréchet distance between Gaussian fits of real and generated image features.

Images are resized straight to ``resize`` (a PIL filter) and passed to a pluggable
``FeatureExtractor`` (fid_features.py); the result carries its protocol (extractor,
resize, sample counts) and a warning when there are too few samples for the features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from .fid_features import FeatureExtractor

STABLE_FID_MIN_SAMPLES = 2048


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
    return fid_from_features(real, fake, feature_extractor, resize, resize_method)


def fid_from_features(
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
