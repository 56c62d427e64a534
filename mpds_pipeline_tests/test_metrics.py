"""Metric functions against hand-computed values, and an end-to-end tiny benchmark."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mpds_pipeline.vision.metrics.clip_models import load_clip
from mpds_pipeline.vision.metrics.clip_score import clip_score, clip_score_from_embeddings
from mpds_pipeline.vision.metrics.fid import fid, frechet_distance
from mpds_pipeline.vision.metrics.fid_features import TinyFeatureExtractor
from mpds_pipeline.vision.metrics.pickscore import (
    pairwise_preference,
    pick_probabilities_from_embeddings,
    pick_scores,
    pickscore_from_embeddings,
)
from mpds_pipeline.vision.metrics.report import BenchmarkReportSettings, benchmark_report


def test_clip_score_is_100_times_clipped_cosine_and_clip_s_2_5_times():
    images = np.array([[1.0, 0.0], [3.0, 4.0], [-1.0, 0.0]])
    texts = np.array([[2.0, 0.0], [4.0, 3.0], [1.0, 0.0]])
    np.testing.assert_allclose(clip_score_from_embeddings(images, texts), [100.0, 96.0, 0.0])
    np.testing.assert_allclose(clip_score_from_embeddings(images, texts, scale=2.5), [2.5, 2.4, 0.0])


def test_raw_pickscore_and_pairwise_preference():
    images, texts = np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([[2.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(pickscore_from_embeddings(images, texts, logit_scale=100.0), [100.0, 60.0])
    preference = pairwise_preference(np.array([21.0, 20.0, 20.0]), np.array([20.0, 21.0, 20.0]))
    assert preference["n_prompts"] == 3 and preference["win_share"] == pytest.approx(0.5)  # a win, a loss, a tie
    sigmoid = 1 / (1 + math.exp(-1.0))
    assert preference["mean_probability"] == pytest.approx((sigmoid + (1 - sigmoid) + 0.5) / 3)


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
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([0.0]), np.array([[1.0]])) == pytest.approx(
        2.0
    )
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
    return [
        Image.fromarray(np.clip(rng.integers(0, 200, (size, size, 3)) + shift, 0, 255).astype(np.uint8))
        for _ in range(n)
    ]


def test_fid_is_zero_for_identical_sets_and_warns_on_few_samples():
    extractor = TinyFeatureExtractor(feature_dim=8)
    real = _images(0, 12)
    same = fid(real, real, extractor, resize=32)
    assert same.value == pytest.approx(0.0, abs=1e-6)
    assert same.warning and "12 samples" in same.warning
    assert same.protocol == {
        "feature_extractor": extractor.name,
        "resize": 32,
        "resize_method": "bicubic",
        "n_real": 12,
        "n_fake": 12,
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
    scores = pick_scores(images, "a red film", model, processor)
    inputs = processor(text=["a red film"], images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
    np.testing.assert_allclose(scores, out.logits_per_text[0].numpy(), rtol=1e-4)  # logit_scale.exp() * cos


def test_generation_and_report_end_to_end(tiny_models, tmp_path):
    from mpds_pipeline.vision.caption_control import CaptionControlSettings, render_caption_controls
    from mpds_pipeline.vision.generation import BenchmarkPrompt, MethodSpec, generate_benchmark_images
    from mpds_pipeline.vision.sampling_settings import GenerationSettings

    elsewhere = tmp_path / "dalle"
    elsewhere.mkdir()
    _images(5, 1)[0].save(elsewhere / "p0.jpg")
    prompts = [
        BenchmarkPrompt("p0", "heat, a crime film starring al pacino", "Heat", ["al pacino"], [199]),
        BenchmarkPrompt("p1", "alien, a horror film", "Alien", [], []),
    ]
    controls = tmp_path / "controls"
    render_caption_controls(
        [(p.prompt_id, p.title, p.actors) for p in prompts], controls, CaptionControlSettings(size=64)
    )
    methods = [
        MethodSpec("sd", "sd", model=str(tiny_models.sd)),
        MethodSpec(
            "ours",
            "multicondition",
            model=str(tiny_models.sd),
            controlnet=str(tiny_models.controlnet),
            caption_controls=controls,
        ),
        MethodSpec("dalle", "folder", folder=elsewhere),
    ]
    settings = GenerationSettings(num_inference_steps=2, height=24, width=24, device="cpu")
    lines = []
    manifest = generate_benchmark_images(methods, prompts, tmp_path / "images", settings, log=lines.append)
    assert list(manifest["status"]) == ["generated", "generated", "generated", "generated", "copied", "missing"]
    # "sd" runs at the model's native size (UNet sample size x VAE factor), the others at the settings'
    assert Image.open(manifest.loc[0, "image_path"]).size == (32, 32)
    assert Image.open(manifest.loc[2, "image_path"]).size == (24, 24)
    assert list(manifest["width"][:4]) == [32, 32, 24, 24]
    assert any(line.startswith("benchmark_images ours: 2/2 images") for line in lines), lines
    assert manifest.loc[2, "constrained_tokens"] > 0 and manifest.loc[0, "constrained_tokens"] == 0

    clip = load_clip(str(tiny_models.clip), device="cpu")
    tiny = str(tiny_models.clip)
    settings = BenchmarkReportSettings(
        clip_model=tiny, clip_s_model=tiny, pickscore_model=tiny, pickscore_processor=tiny, fid_resize=32
    )
    report = benchmark_report(
        manifest,
        _images(9, 3),
        tmp_path / "report",
        settings,
        clip=clip,
        pickscore=clip,
        fid_extractor=TinyFeatureExtractor(8),
    )
    assert list(report.table.index) == ["sd", "ours", "dalle"]
    assert list(report.table.columns) == ["CLIP score", "CLIP-S", "FID", "FID n", "PickScore", "n_images"]
    assert np.isnan(report.table.loc["dalle", "FID"]) and not np.isnan(report.table.loc["sd", "FID"])
    np.testing.assert_allclose(report.per_image["clip_s"], report.per_image["clip_score"] / 40)  # same model here
    # baselines are the "sd" and "folder" methods; nobody is compared with itself
    assert set(zip(report.preference["method"], report.preference["baseline"])) == {
        ("sd", "dalle"),
        ("ours", "sd"),
        ("ours", "dalle"),
        ("dalle", "sd"),
    }
    assert report.preference.set_index(["method", "baseline"]).loc[("ours", "dalle"), "n_prompts"] == 1
    document = json.loads(report.report_json.read_text())
    ours = document["results"]["ours"]
    assert ours["clip_s"]["model"] == tiny and BenchmarkReportSettings().clip_s_model == "openai/clip-vit-base-patch32"
    assert ours["clip_score"]["image_size"] == "512x512" and ours["clip_score"]["n"] == 2
    assert ours["fid"]["n_fake"] == 2 and ours["fid"]["feature_extractor"] == "tiny-random-projection-8"
    assert set(ours["preference"]) == {"sd", "dalle"}
    assert {row["method"]: row["made_at"] for row in document["protocol"]["methods"]}["sd"] == "32x32"
    assert any("CLIP-S uses" in w for w in report.warnings) and any("FID only 2 samples" in w for w in report.warnings)
    assert report.grid_png.stat().st_size > 0


def test_frechet_distance_from_features_equals_the_covariance_form():
    import numpy as np

    from mpds_pipeline.vision.metrics.fid import frechet_distance, frechet_distance_from_features

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(12, 40)), rng.normal(loc=0.5, scale=1.5, size=(9, 40))
    expected = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert abs(frechet_distance_from_features(real, fake) - expected) < 1e-6 * max(1.0, abs(expected))


def _folder_manifest(tmp_path, methods: dict[str, str]):
    """A manifest of ready-made images: method -> kind, three prompts, distinct images."""
    import zlib

    import pandas as pd

    rows = []
    for method, kind in methods.items():
        folder = tmp_path / "made" / method
        folder.mkdir(parents=True, exist_ok=True)
        seed = zlib.crc32(method.encode())  # a method's images are the same in every manifest
        for p, image in enumerate(_images(seed, 3, size=40 + 8 * (seed % 4))):
            path = folder / f"p{p}.png"
            image.save(path)
            rows.append(
                {
                    "method": method,
                    "kind": kind,
                    "prompt_id": f"p{p}",
                    "prompt": f"film number {p} of the red",
                    "image_path": str(path),
                    "status": "copied",
                    "width": image.width,
                    "height": image.height,
                }
            )
    return pd.DataFrame(rows)


def test_a_row_never_changes_when_another_is_added(tiny_models, tmp_path):
    import pandas as pd

    clip = load_clip(str(tiny_models.clip), device="cpu")
    settings = BenchmarkReportSettings(fid_resize=32, metric_image_size=32)
    real = _images(9, 3)

    def report(methods, name):
        return benchmark_report(
            _folder_manifest(tmp_path, methods),
            real,
            tmp_path / name,
            settings,
            clip=clip,
            pickscore=clip,
            clip_s=clip,
            fid_extractor=TinyFeatureExtractor(8),
        )

    small = report({"SD1.5": "sd", "MPDS (full)": "multicondition"}, "small")
    large = report(
        {
            "SD2.1": "sd",
            "SD1.5": "sd",
            "MPDS (full)": "multicondition",
            "MPDS w/o actor": "multicondition",
            "Firefly": "folder",
        },
        "large",
    )
    kept = ["SD1.5", "MPDS (full)"]
    pd.testing.assert_frame_equal(small.table.loc[kept], large.table.loc[kept])
    pairs = ["method", "baseline"]
    before = small.preference.set_index(pairs)
    after = large.preference.set_index(pairs).loc[before.index]
    assert len(before) > 0
    pd.testing.assert_frame_equal(before, after)
    assert len(large.preference) > len(small.preference)  # the new baselines add columns, not changes
