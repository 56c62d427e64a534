"""Caption control: the poster's text drawn as a sketch, then canny edges for ControlNet.

The layout follows a typical poster: actor names in a row across the top, the title big
in the lower third, wrapped onto as many lines as it needs. The font is matplotlib's
bundled DejaVu Sans Bold unless a TrueType path is given. Edges come from
controlnet-aux's ``CannyDetector`` when it imports (it needs torchvision, which does not
install beside the CPU torch here), else from OpenCV with the same recipe: resize the
short side to a multiple of 64, ``cv2.Canny(image, 100, 200)``, back to RGB.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CANNY_LOW, CANNY_HIGH = 100, 200


def default_font_path() -> str:
    """matplotlib's bundled DejaVu Sans Bold (always installed with matplotlib)."""
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold"))


def _fit_font(draw, text: str, font_path: str, max_width: float, start_size: int, min_size: int = 8):
    """The largest font not above ``start_size`` whose rendering of ``text`` fits ``max_width``."""
    size = start_size
    while True:
        font = ImageFont.truetype(font_path, size)
        if size <= min_size or draw.textlength(text, font=font) <= max_width:
            return font
        size = max(min_size, int(size * 0.9))


def _wrap(draw, words: list[str], font, max_width: float) -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def render_caption_sketch(title: str, actors: list[str], size: int = 512, font_path: str | None = None) -> Image.Image:
    """Black text on white in a poster layout, ``size`` x ``size`` RGB."""
    font_path = font_path or default_font_path()
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    margin = size * 0.06
    usable = size - 2 * margin

    names = [a.strip().upper() for a in actors if a and a.strip()]
    if names:
        row = "   ".join(names)
        font = _fit_font(draw, row, font_path, usable, start_size=max(8, size // 22))
        draw.text((size / 2, margin), row, fill="black", font=font, anchor="mt")

    words = title.upper().split()
    if words:
        # Shrink until the wrapped title fits its band (the lower third) in at most 3 lines.
        band_top, band_bottom = size * 2 / 3, size - margin
        font_size = max(10, size // 7)
        while True:
            font = ImageFont.truetype(font_path, font_size)
            lines = _wrap(draw, words, font, usable)
            line_height = font_size * 1.15
            widest = max(draw.textlength(line, font=font) for line in lines)
            fits = widest <= usable and len(lines) * line_height <= band_bottom - band_top
            if fits or font_size <= 10:
                break
            font_size = int(font_size * 0.9)
        top = band_top + (band_bottom - band_top - len(lines) * line_height) / 2
        for i, line in enumerate(lines):
            draw.text((size / 2, top + i * line_height), line, fill="black", font=font, anchor="mt")
    return image


def canny_edges(image: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Image.Image:
    """Canny edges as an RGB image of the input's size (controlnet-aux if importable, else OpenCV)."""
    try:  # optional extra; importing it needs torchvision
        from controlnet_aux.canny import CannyDetector

        return CannyDetector()(image.convert("RGB"), low_threshold=low, high_threshold=high).resize(image.size)
    except Exception:
        pass
    import cv2

    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    scale = (64 * max(1, round(min(height, width) / 64))) / min(height, width)
    resized = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    edges = cv2.Canny(resized, low, high)
    edges = cv2.resize(cv2.cvtColor(edges, cv2.COLOR_GRAY2RGB), (width, height), interpolation=cv2.INTER_NEAREST)
    return Image.fromarray(edges)


def render_caption_control(
    title: str, actors: list[str], size: int = 512, font_path: str | None = None
) -> tuple[Image.Image, Image.Image]:
    """The caption sketch and its canny edges, both ``size`` x ``size`` RGB."""
    sketch = render_caption_sketch(title, actors, size=size, font_path=font_path)
    return sketch, canny_edges(sketch)


@dataclass
class CaptionControlSettings:
    size: int = 512
    font_path: str | None = None
    save_sketch: bool = True


@dataclass
class CaptionControlsResult:
    output_dir: Path
    control_paths: dict[str, Path] = field(default_factory=dict)  # item id -> canny PNG
    mean_edge_fraction: float = 0.0  # share of edge pixels, a sanity figure for metadata

    def metadata(self) -> dict:
        return {
            "n_controls": len(self.control_paths),
            "output_dir": str(self.output_dir),
            "mean_edge_fraction": round(self.mean_edge_fraction, 4),
        }


def render_caption_controls(
    items: list[tuple[str, str, list[str]]], output_dir: Path, settings: CaptionControlSettings | None = None
) -> CaptionControlsResult:
    """Write ``<id>.png`` (canny) and ``<id>_sketch.png`` for each (id, title, actor names)."""
    settings = settings or CaptionControlSettings()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = CaptionControlsResult(output_dir=output_dir)
    fractions = []
    for item_id, title, actors in items:
        sketch, canny = render_caption_control(title, actors, size=settings.size, font_path=settings.font_path)
        path = output_dir / f"{item_id}.png"
        canny.save(path)
        if settings.save_sketch:
            sketch.save(output_dir / f"{item_id}_sketch.png")
        result.control_paths[str(item_id)] = path
        fractions.append(float((np.asarray(canny)[..., 0] > 0).mean()))
    result.mean_edge_fraction = float(np.mean(fractions)) if fractions else 0.0
    (output_dir / "controls.json").write_text(
        json.dumps({k: str(v.name) for k, v in result.control_paths.items()}, indent=1)
    )
    return result
