"""Metric functions against hand-computed values, and an end-to-end tiny benchmark."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
# One thread: on a shared 2-core machine two torch threads per process thrash.
torch.set_num_threads(1)
from PIL import Image  # noqa: E402

from mpds_pipeline.vision.metrics import (  # noqa: E402
    BenchmarkReportSettings,
    TinyFeatureExtractor,
    benchmark_report,
    clip_score,
    clip_score_from_embeddings,
    fid,
    frechet_distance,
    load_clip,
    pick_probabilities_from_embeddings,
    pick_scores,
)


def test_clip_score_is_100_times_clipped_cosine():
    images = np.array([[1.0, 0.0], [3.0, 4.0], [-1.0, 0.0]])
    texts = np.array([[2.0, 0.0], [4.0, 3.0], [1.0, 0.0]])
    np.testing.assert_allclose(clip_score_from_embeddings(images, texts), [100.0, 96.0, 0.0])


def test_pick_probabilities_are_a_softmax_of_scaled_cosines():
    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    probabilities = pick_probabilities_from_embeddings(images, np.array([1.0, 1.0]), logit_scale=100.0)
    np.testing.assert_allclose(probabilities, [0.5, 0.5])
    probabilities = pick_probabilities_from_embeddings(images, np.array([1.0, 0.0]), logit_scale=2.0)
    expected = math.exp(2.0) / (math.exp(2.0) + 1.0)
    np.testing.assert_allclose(probabilities, [expected, 1 - expected])


def test_frechet_distance_of_known_gaussians():
    mu1, mu2 = np.zeros(2), np.array([3.0, 4.0])
    assert frechet_distance(mu1, np.eye(2), mu2, np.eye(2)) == pytest.approx(25.0)
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2
    s1, s2 = np.diag([4.0, 9.0]), np.diag([1.0, 1.0])
    assert frechet_distance(mu1, s1, mu1, s2) == pytest.approx((2 - 1) ** 2 + (3 - 1) ** 2)
    # 1-d: (m1-m2)^2 + (s1-s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([0.0]), np.array([[1.0]])) == pytest.approx(2.0)
    # a rotated, non-commuting pair against the closed form tr(S1+S2-2(S1^1/2 S2 S1^1/2)^1/2)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    s1, s2 = a @ a.T + np.eye(3), b @ b.T + np.eye(3)
    w, v = np.linalg.eigh(s1)
    root = v @ np.diag(np.sqrt(w)) @ v.T
    expected = np.trace(s1 + s2) - 2 * np.sqrt(np.linalg.eigvalsh(root @ s2 @ root)).sum()
    assert frechet_distance(np.zeros(3), s1, np.zeros(3), s2) == pytest.approx(expected)


def _images(seed, n, size=32, shift=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(np.clip(rng.integers(0, 200, (size, size, 3)) + shift, 0, 255).astype(np.uint8)) for _ in range(n)]


def test_fid_is_zero_for_identical_sets_and_warns_on_few_samples():
    extractor = TinyFeatureExtractor(feature_dim=8)
    real = _images(0, 12)
    same = fid(real, real, extractor, resize=32)
    assert same.value == pytest.approx(0.0, abs=1e-6)
    assert same.warning and "12 samples" in same.warning
    assert same.protocol == {
        "feature_extractor": extractor.name, "resize": 32, "resize_method": "bicubic", "n_real": 12, "n_fake": 12
    }
    shifted = fid(real, _images(1, 12, shift=50), extractor, resize=32)
    assert shifted.value > 0.1 and shifted.feature_dim == 8




def test_clip_and_pick_scores_from_a_clip_model(tiny_models):
    model, processor = load_clip(str(tiny_models.clip), device="cpu")
    images = _images(2, 3)
    scores = clip_score(images, ["a red film", "b", "c d"], model, processor)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 100))
    inputs = processor(text=["b"], images=[images[1]], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
    cos = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).item()
    assert scores[1] == pytest.approx(100 * max(cos, 0.0), abs=1e-4)
    probabilities = pick_scores(images, "a red film", model, processor)
    assert probabilities.shape == (3,) and probabilities.sum() == pytest.approx(1.0)


def test_generation_and_report_end_to_end(tiny_models, tmp_path):
    from mpds_pipeline.vision.generation import (
        BenchmarkPrompt,
        GenerationSettings,
        MethodSpec,
        generate_benchmark_images,
    )

    elsewhere = tmp_path / "dalle"
    elsewhere.mkdir()
    _images(5, 1)[0].save(elsewhere / "p0.jpg")
    prompts = [
        BenchmarkPrompt("p0", "heat, a crime film starring al pacino", "Heat", ["al pacino"], [199]),
        BenchmarkPrompt("p1", "alien, a horror film", "Alien", [], []),
    ]
    methods = [
        MethodSpec("sd", "sd", model=str(tiny_models.sd)),
        MethodSpec("ours", "multicondition", model=str(tiny_models.sd), controlnet=str(tiny_models.controlnet)),
        MethodSpec("dalle", "folder", folder=elsewhere),
    ]
    settings = GenerationSettings(num_inference_steps=2, height=32, width=32, device="cpu")
    manifest = generate_benchmark_images(methods, prompts, tmp_path / "images", settings)
    assert list(manifest["status"]) == ["generated", "generated", "generated", "generated", "copied", "missing"]
    assert Image.open(manifest.loc[0, "image_path"]).size == (32, 32)

    clip = load_clip(str(tiny_models.clip), device="cpu")
    report = benchmark_report(
        manifest, _images(9, 3), tmp_path / "report", BenchmarkReportSettings(fid_resize=32), clip=clip, pickscore=clip,
        fid_extractor=TinyFeatureExtractor(8),
    )
    assert list(report.table.index) == ["sd", "ours", "dalle"]
    assert list(report.table.columns[:3]) == ["CLIP score", "FID", "PickScore"]
    assert np.isnan(report.table.loc["dalle", "FID"]) and not np.isnan(report.table.loc["sd", "FID"])
    # PickScore sums to 1 over the methods of a prompt
    per_prompt = report.per_image.groupby("prompt_id")["pick_score"].sum()
    np.testing.assert_allclose(per_prompt.values, 1.0)
    assert report.grid_png.stat().st_size > 0 and report.report_json.exists()


def test_frechet_distance_from_features_equals_the_covariance_form():
    import numpy as np

    from mpds_pipeline.vision.metrics import frechet_distance, frechet_distance_from_features

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(12, 40)), rng.normal(loc=0.5, scale=1.5, size=(9, 40))
    expected = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert abs(frechet_distance_from_features(real, fake) - expected) < 1e-6 * max(1.0, abs(expected))
