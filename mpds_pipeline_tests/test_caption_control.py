"""Caption control: a 512x512 RGB sketch in a poster layout and its canny edges."""
from __future__ import annotations

import numpy as np

from mpds_pipeline.vision.caption_control import (
    CaptionControlSettings,
    render_caption_control,
    render_caption_controls,
)


def test_canny_control_is_512_rgb_with_edges_where_the_text_is():
    sketch, canny = render_caption_control(
        "The Shawshank Redemption of a Very Long Title", ["Tim Robbins", "Morgan Freeman"]
    )
    assert sketch.size == canny.size == (512, 512)
    assert sketch.mode == canny.mode == "RGB"
    edges = np.asarray(canny)[..., 0] > 0
    assert set(np.unique(np.asarray(canny))) <= {0, 255}
    assert 0.005 < edges.mean() < 0.3
    rows = edges.any(axis=1)
    assert rows[: 512 // 6].any(), "actor names across the top"
    assert rows[2 * 512 // 3 :].any(), "title in the lower third"
    assert not rows[512 // 6 : int(512 * 0.6)].any(), "nothing in the middle of the poster"


def test_no_actors_and_custom_size():
    sketch, canny = render_caption_control("Alien", [], size=256)
    edges = np.asarray(canny)[..., 0] > 0
    assert canny.size == (256, 256) and edges.any()
    assert not edges[: 256 // 2].any()


def test_batch_writer(tmp_path):
    result = render_caption_controls(
        [("10", "Up", ["Ed Asner"]), ("11", "Heat", ["Al Pacino", "Robert De Niro"])],
        tmp_path,
        CaptionControlSettings(size=128),
    )
    assert sorted(result.control_paths) == ["10", "11"]
    assert (tmp_path / "10.png").exists() and (tmp_path / "11_sketch.png").exists()
    assert result.metadata()["n_controls"] == 2 and result.mean_edge_fraction > 0
