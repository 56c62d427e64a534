"""Caption control: a 512x512 RGB sketch in a poster layout and its canny edges."""

from __future__ import annotations

import numpy as np
import pytest

from mpds_pipeline.vision.caption_control import CaptionControlSettings, render_caption_controls

from .caption_controls import render_caption_control


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


def test_layout_boxes_hold_every_drawn_pixel_and_each_box_holds_ink():
    from mpds_pipeline.vision.caption_control import render_caption_layout

    sketch, layout = render_caption_layout("The Shawshank Redemption", ["Tim Robbins", "Morgan Freeman"], size=256)
    assert [(r.kind, r.text) for r in layout.regions] == [
        ("name", "Tim Robbins"),
        ("name", "Morgan Freeman"),
        ("title", "The Shawshank Redemption"),
    ]
    ink = np.asarray(sketch.convert("L")) < 128
    covered = np.zeros_like(ink)
    for region in layout.regions:
        for x0, y0, x1, y1 in region.boxes:
            box = ink[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            assert box.mean() > 0.05, region  # the box is where that text is drawn
            covered[int(y0) : int(np.ceil(y1)) + 1, int(x0) : int(np.ceil(x1)) + 1] = True
    assert not (ink & ~covered).any(), "ink outside every box"
    first, second = (r.boxes[0] for r in layout.regions[:2])
    assert first[2] < second[0], "names side by side, not overlapping"
    assert all(0 <= v <= 1 for r in layout.normalised() for box in r.boxes for v in box)


def test_written_controls_read_back_and_follow_the_font(tmp_path):
    from matplotlib import font_manager

    from mpds_pipeline.vision.caption_control import read_caption_control

    items = [("tt0000010", "Up", ["Ed Asner"])]
    render_caption_controls(items, tmp_path / "sans", CaptionControlSettings(size=128))
    serif = font_manager.findfont(font_manager.FontProperties(family="DejaVu Serif"))
    render_caption_controls(items, tmp_path / "serif", CaptionControlSettings(size=128, font_path=serif))
    sans, other = (
        read_caption_control(tmp_path / "sans", "tt0000010"),
        read_caption_control(tmp_path / "serif", "tt0000010"),
    )
    assert sans.canny.size == (128, 128) and sans.layout.width == 128
    assert (np.asarray(sans.canny) != np.asarray(other.canny)).any()
    assert sans.layout.regions[0].boxes != other.layout.regions[0].boxes
    with pytest.raises(FileNotFoundError, match="caption_controls"):
        read_caption_control(tmp_path / "sans", "tt0000011")
