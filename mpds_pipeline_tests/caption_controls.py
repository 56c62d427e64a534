"""A caption control for tests: the sketch and its canny edges, as the caption_controls
asset draws them (``render_caption_controls`` also writes the layout and files)."""

from __future__ import annotations

from PIL import Image

from mpds_pipeline.vision.caption_control import canny_edges, render_caption_sketch


def render_caption_control(
    title: str, actors: list[str], size: int = 512, font_path: str | None = None
) -> tuple[Image.Image, Image.Image]:
    """The caption sketch and its canny edges, both ``size`` x ``size`` RGB."""
    sketch = render_caption_sketch(title, actors, size=size, font_path=font_path)
    return sketch, canny_edges(sketch)
