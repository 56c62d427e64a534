"""The plain-torch FID Inception-v3: pytorch-fid weight layout, parameter count, loading, FID."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mpds_pipeline.vision.inception import FID_WEIGHTS_URL, FidInceptionV3, InceptionFidExtractor
from mpds_pipeline.vision.metrics.fid import fid
from mpds_pipeline.vision.metrics.fid_features import fid_extractor_from_setting
from mpds_pipeline.vision.metrics.report import BenchmarkReportSettings


@pytest.fixture(scope="module")
def random_extractor() -> InceptionFidExtractor:
    return InceptionFidExtractor(None, device="cpu")


def _images(kind: str, n: int, size=(64, 48), seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        arrays = [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)]
    else:  # smooth horizontal gradients of random colours
        ramp = np.linspace(0, 1, size[0])[None, :, None]
        arrays = [(255 * ramp * rng.random(3)).repeat(size[1], 0).astype(np.uint8) for _ in range(n)]
    return [Image.fromarray(a) for a in arrays]


def test_random_init_gives_2048_features_for_any_image_size(random_extractor):
    batch = np.stack([np.asarray(im) for im in _images("noise", 3, size=(80, 120))])
    features = random_extractor(batch)
    assert features.shape == (3, 2048)
    assert np.isfinite(features).all()
    # Pool3 follows a ReLU; the variance-preserving init keeps it O(1), not vanishing.
    assert features.min() >= 0 and 0.01 < features.mean() < 100
    assert random_extractor.feature_dim == 2048
    assert random_extractor.name == "inception-v3-fid:random-init"


def test_random_init_is_seeded_and_leaves_the_global_rng_alone():
    def weight(seed: int) -> torch.Tensor:
        return InceptionFidExtractor(None, device="cpu", seed=seed).model.Mixed_6b.branch7x7_2.conv.weight

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, other = weight(0), weight(1)
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.equal(first, weight(0)) and not torch.equal(first, other)


# The pytorch-fid file is a state dict of torchvision's Inception3(num_classes=1008,
# aux_logits=False): every convolution is `<block>.<branch>.conv.weight` plus a batch norm
# `<block>.<branch>.bn.{weight,bias,running_mean,running_var,num_batches_tracked}`.
BN_SUFFIXES = ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
BRANCHES = {
    "Mixed_5b": [
        "branch1x1",
        "branch5x5_1",
        "branch5x5_2",
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        "branch3x3dbl_3",
        "branch_pool",
    ],
    "Mixed_6a": ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
    "Mixed_6e": [
        "branch1x1",
        "branch7x7_1",
        "branch7x7_2",
        "branch7x7_3",
        "branch7x7dbl_1",
        "branch7x7dbl_2",
        "branch7x7dbl_3",
        "branch7x7dbl_4",
        "branch7x7dbl_5",
        "branch_pool",
    ],
    "Mixed_7a": ["branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"],
    "Mixed_7c": [
        "branch1x1",
        "branch3x3_1",
        "branch3x3_2a",
        "branch3x3_2b",
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        "branch3x3dbl_3a",
        "branch3x3dbl_3b",
        "branch_pool",
    ],
}
TOP_LEVEL = [
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
    "fc",
]


def test_state_dict_has_the_pytorch_fid_layout(random_extractor):
    state = random_extractor.model.state_dict()
    assert list(dict.fromkeys(key.split(".")[0] for key in state)) == TOP_LEVEL
    assert not any("AuxLogits" in key for key in state)
    assert list(state)[:6] == ["Conv2d_1a_3x3.conv.weight"] + [f"Conv2d_1a_3x3.{s}" for s in BN_SUFFIXES]
    for block, branches in BRANCHES.items():
        expected = {f"{block}.{b}.{s}" for b in branches for s in ["conv.weight", *BN_SUFFIXES]}
        assert {key for key in state if key.startswith(block + ".")} == expected, block
    # 94 conv+bn layers (stem 5, A 3x7, B 4, C 4x10, D 6, E 2x9) x 6 tensors, plus fc.
    assert len(state) == 94 * 6 + 2
    shapes = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6e.branch7x7_2.conv.weight": (192, 192, 1, 7),
        "Mixed_6e.branch7x7_3.conv.weight": (192, 192, 7, 1),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
        "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert random_extractor.model.Conv2d_1a_3x3.bn.eps == pytest.approx(1e-3)


def _conv_bn(cin: int, cout: int, kh: int, kw: int | None = None) -> int:
    """Parameters of one bias-free convolution and its batch norm (gamma, beta)."""
    return cin * cout * kh * (kh if kw is None else kw) + 2 * cout


def _mixed_a(cin: int, pool: int) -> int:
    return (
        _conv_bn(cin, 64, 1)
        + _conv_bn(cin, 48, 1)
        + _conv_bn(48, 64, 5)
        + _conv_bn(cin, 64, 1)
        + _conv_bn(64, 96, 3)
        + _conv_bn(96, 96, 3)
        + _conv_bn(cin, pool, 1)
    )


def _mixed_c(c: int) -> int:
    return (
        _conv_bn(768, 192, 1)
        + _conv_bn(768, c, 1)
        + _conv_bn(c, c, 1, 7)
        + _conv_bn(c, 192, 7, 1)
        + _conv_bn(768, c, 1)
        + 3 * _conv_bn(c, c, 1, 7)
        + _conv_bn(c, 192, 1, 7)
        + _conv_bn(768, 192, 1)
    )


def _mixed_e(cin: int) -> int:
    return (
        _conv_bn(cin, 320, 1)
        + _conv_bn(cin, 384, 1)
        + 2 * _conv_bn(384, 384, 1, 3)
        + _conv_bn(cin, 448, 1)
        + _conv_bn(448, 384, 3)
        + 2 * _conv_bn(384, 384, 1, 3)
        + _conv_bn(cin, 192, 1)
    )


def test_parameter_count_matches_the_architecture_and_torchvision():
    """Counted independently from the channel table of the Inception-v3 paper/graph.

    Cross-check: torchvision documents 27,161,264 parameters for inception_v3, which also
    has the auxiliary classifier (1x1 768->128, 5x5 128->768, fc 768->1000) and a
    1000-way fc; removing those leaves the same 21,785,568 feature parameters.
    """
    stem = _conv_bn(3, 32, 3) + _conv_bn(32, 32, 3) + _conv_bn(32, 64, 3) + _conv_bn(64, 80, 1) + _conv_bn(80, 192, 3)
    mixed_5 = _mixed_a(192, 32) + _mixed_a(256, 64) + _mixed_a(288, 64)
    mixed_6a = _conv_bn(288, 384, 3) + _conv_bn(288, 64, 1) + _conv_bn(64, 96, 3) + _conv_bn(96, 96, 3)
    mixed_6 = _mixed_c(128) + 2 * _mixed_c(160) + _mixed_c(192)
    mixed_7a = (
        _conv_bn(768, 192, 1)
        + _conv_bn(192, 320, 3)
        + _conv_bn(768, 192, 1)
        + 2 * _conv_bn(192, 192, 1, 7)
        + _conv_bn(192, 192, 3)
    )
    features = stem + mixed_5 + mixed_6a + mixed_6 + mixed_7a + _mixed_e(1280) + _mixed_e(2048)
    assert features == 21_785_568
    torchvision_aux = _conv_bn(768, 128, 1) + _conv_bn(128, 768, 5) + 768 * 1000 + 1000
    assert 27_161_264 - torchvision_aux - (2048 * 1000 + 1000) == features

    model = FidInceptionV3()
    counted = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("fc."))
    assert counted == features
    assert sum(p.numel() for p in model.parameters()) == features + 2048 * 1008 + 1008 == 23_850_960


def test_weights_round_trip_through_a_pth_path(tmp_path, random_extractor):
    saved = InceptionFidExtractor(None, device="cpu", seed=7).model.state_dict()
    path = tmp_path / "pt_inception-test.pth"
    torch.save(saved, path)

    loaded = fid_extractor_from_setting(str(path), device="cpu")
    assert isinstance(loaded, InceptionFidExtractor) and loaded.name == "inception-v3-fid:pt_inception-test.pth"
    assert loaded.model.state_dict().keys() == saved.keys()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    batch = np.stack([np.asarray(im) for im in _images("noise", 2)])
    assert not np.allclose(loaded(batch), random_extractor(batch))  # other weights, other features

    without_fc = {k: v for k, v in saved.items() if not k.startswith("fc.")}
    torch.save(without_fc, tmp_path / "no_fc.pth")
    with pytest.raises(RuntimeError, match="fc.weight"):
        InceptionFidExtractor(tmp_path / "no_fc.pth", device="cpu")


def test_inception_setting_downloads_the_pytorch_fid_weights(monkeypatch, random_extractor):
    requested = []

    def fake_download(url, **kwargs):
        requested.append(url)
        return random_extractor.model.state_dict()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    extractor = fid_extractor_from_setting(BenchmarkReportSettings().fid_extractor, device="cpu")
    assert requested == [FID_WEIGHTS_URL]
    assert FID_WEIGHTS_URL.endswith("/pt_inception-2015-12-05-6726825d.pth")
    assert extractor.name == "inception-v3-fid:pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(ValueError, match="fid_extractor must be"):
        fid_extractor_from_setting("weights.bin")
    assert fid_extractor_from_setting("inception-random", device="cpu").name == "inception-v3-fid:random-init"


def test_fid_with_the_random_inception(random_extractor):
    noise, smooth = _images("noise", 3, seed=1), _images("smooth", 3, seed=2)
    result = fid(noise, smooth, random_extractor)
    assert result.feature_dim == 2048 and (result.n_real, result.n_fake) == (3, 3)
    assert np.isfinite(result.value) and result.value > 1e-3
    assert result.protocol == {
        "feature_extractor": "inception-v3-fid:random-init",
        "resize": 299,
        "resize_method": "bicubic",
        "n_real": 3,
        "n_fake": 3,
    }
    assert "only 3 samples for 2048-d features" in result.warning
    # Same value as the distance of the features computed directly (2048-d Frechet
    # distances cost ~10-25 s each here, so only one goes through fid()).
    real = random_extractor(np.stack([np.asarray(im.resize((299, 299), Image.Resampling.BICUBIC)) for im in noise]))
    fake = random_extractor(np.stack([np.asarray(im.resize((299, 299), Image.Resampling.BICUBIC)) for im in smooth]))
    mean_gap = float(np.sum((real.mean(0) - fake.mean(0)) ** 2))
    assert mean_gap <= result.value + 1e-6  # the covariance term tr(S1 + S2 - 2 (S1 S2)^1/2) is >= 0
