"""Caption control: the poster's text drawn as a sketch, then canny edges for ControlNet.

It lays out the actor names and the title as on a typical poster, draws them, takes the
edges, and keeps the layout beside each image: generation reads both, and the layout
places the localized attention constraint. See docs/generation.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..base.files import write_atomic
from ..base.folders import CaptionControlsFolder
from ..base.progress import Progress, ProgressLog
from ..base.settings import setting

CANNY_LOW, CANNY_HIGH = 100, 200


def default_font_path() -> str:
    """matplotlib's bundled DejaVu Sans Bold (always installed with matplotlib)."""
    from matplotlib import font_manager

    # findfont returns a str subclass (with a face index) that does not unpickle: keep the path.
    return str(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold")))


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


@dataclass
class TextRegion:
    """Where one piece of the caption is drawn: ``kind`` "title" or "name", the text as
    given (the prompt spells it the same way; the CLIP tokenizer lowercases both), and
    its boxes (x0, y0, x1, y1) in pixels of the control image, one per drawn line."""

    kind: str
    text: str
    boxes: list[tuple[float, float, float, float]]


@dataclass
class CaptionLayout:
    """The drawn caption: image size and the regions of the title and of each name.

    The localized attention constraint reads it: caption tokens attend inside these
    regions, actor tokens outside them."""

    width: int
    height: int
    regions: list[TextRegion] = field(default_factory=list)

    def normalised(self) -> list[TextRegion]:
        """The regions with boxes as fractions of the image (0..1), size independent."""
        return [
            TextRegion(
                r.kind,
                r.text,
                [(x0 / self.width, y0 / self.height, x1 / self.width, y1 / self.height) for x0, y0, x1, y1 in r.boxes],
            )
            for r in self.regions
        ]

    def to_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "regions": [asdict(r) for r in self.regions]}

    @classmethod
    def from_dict(cls, data: dict) -> CaptionLayout:
        regions = [TextRegion(r["kind"], r["text"], [tuple(b) for b in r["boxes"]]) for r in data.get("regions", [])]
        return cls(int(data["width"]), int(data["height"]), regions)


def render_caption_sketch(
    title: str, actors: list[str], size: int | tuple[int, int] = 512, font_path: str | None = None
) -> Image.Image:
    """Black text on white in a poster layout: ``size`` square, or (width, height)."""
    return render_caption_layout(title, actors, size, font_path)[0]


def render_caption_layout(
    title: str, actors: list[str], size: int | tuple[int, int] = 512, font_path: str | None = None
) -> tuple[Image.Image, CaptionLayout]:
    """The sketch, and the boxes where the title and each name are drawn; ``size`` is a
    square's side or (width, height): at 2:3 the names sit in the top band and the title in
    the lower third of a poster-shaped page, where a poster has them."""
    font_path = font_path or default_font_path()
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    margin = min(width, height) * 0.06
    usable = width - 2 * margin
    layout = CaptionLayout(width, height)

    names = [a.strip() for a in actors if a and a.strip()]
    if names:
        separator = "   "
        row = separator.join(name.upper() for name in names)
        font = _fit_font(draw, row, font_path, usable, start_size=max(8, width // 22))
        draw.text((width / 2, margin), row, fill="black", font=font, anchor="mt")
        left, top, _, bottom = draw.textbbox((width / 2, margin), row, font=font, anchor="mt")
        x = left
        for name in names:
            name_width = draw.textlength(name.upper(), font=font)
            layout.regions.append(TextRegion("name", name, [(x, top, x + name_width, bottom)]))
            x += name_width + draw.textlength(separator, font=font)

    words = title.upper().split()
    if words:
        # Shrink until the wrapped title fits its band (the lower third) in at most 3 lines.
        band_top, band_bottom = height * 2 / 3, height - margin
        font_size = max(10, width // 7)
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
        boxes = []
        for i, line in enumerate(lines):
            position = (width / 2, top + i * line_height)
            draw.text(position, line, fill="black", font=font, anchor="mt")
            boxes.append(tuple(float(v) for v in draw.textbbox(position, line, font=font, anchor="mt")))
        layout.regions.append(TextRegion("title", title.strip(), boxes))
    return image, layout


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


@dataclass
class CaptionControlSettings:
    size: int = setting(512, "width; keep size and height equal to benchmark_images' width and height")
    font_path: str | None = setting(None, "TTF font; default matplotlib's DejaVu Sans")
    save_sketch: bool = True
    height: int | None = setting(
        None, "None: square here (the paper's); the caption_controls asset reads None as a poster's 2:3 (1.5 x size)"
    )

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of the controls: generation's size, so the caption regions sit where they will be drawn."""
        return self.size, self.height or self.size


@dataclass
class CaptionControl:
    """What generation reads for one prompt: the canny control image and the layout."""

    canny: Image.Image
    layout: CaptionLayout
    path: Path


def control_paths(output_dir: Path, item_id: str) -> dict[str, Path]:
    """The files ``render_caption_controls`` writes for one item (named in layout.py)."""
    folder = CaptionControlsFolder(Path(output_dir))
    return {"canny": folder.canny(item_id), "sketch": folder.sketch(item_id), "layout": folder.layout(item_id)}


def read_caption_control(output_dir: Path, item_id: str) -> CaptionControl:
    """The canny image and layout the ``caption_controls`` asset wrote for ``item_id``."""
    paths = control_paths(output_dir, item_id)
    missing = [str(paths[k]) for k in ("canny", "layout") if not paths[k].exists()]
    if missing:
        raise FileNotFoundError(
            f"no caption control for {item_id}: {', '.join(missing)} missing; materialise caption_controls first"
        )
    with Image.open(paths["canny"]) as image:
        canny = image.convert("RGB")
    layout = CaptionLayout.from_dict(json.loads(paths["layout"].read_text()))
    return CaptionControl(canny, layout, paths["canny"])


@dataclass
class CaptionControlsResult:
    output_dir: Path
    control_paths: dict[str, Path] = field(default_factory=dict)  # item id -> canny PNG
    mean_edge_fraction: float = 0.0  # share of edge pixels, a sanity figure for metadata
    mean_text_area: float = 0.0  # share of the image inside text boxes (the constrained region)

    def metadata(self) -> dict:
        return {
            "n_controls": len(self.control_paths),
            "output_dir": str(self.output_dir),
            "mean_edge_fraction": round(self.mean_edge_fraction, 4),
            "mean_text_area": round(self.mean_text_area, 4),
        }


def text_area_fraction(layout: CaptionLayout) -> float:
    """Share of the image covered by the text boxes (boxes of one caption do not overlap)."""
    area = sum((x1 - x0) * (y1 - y0) for r in layout.regions for x0, y0, x1, y1 in r.boxes)
    return float(area / (layout.width * layout.height))


def render_caption_controls(
    items: list[tuple[str, str, list[str]]],
    output_dir: Path,
    settings: CaptionControlSettings | None = None,
    log: ProgressLog | None = None,
) -> CaptionControlsResult:
    """For each (id, title, actor names) write ``<id>.png`` (canny), ``<id>.json`` (the
    layout: where the title and names are drawn) and ``<id>_sketch.png``."""
    settings = settings or CaptionControlSettings()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = CaptionControlsResult(output_dir=output_dir)
    fractions, areas = [], []
    with Progress("caption_controls", len(items), log, unit="controls") as progress:
        for item_id, title, actors in items:
            sketch, layout = render_caption_layout(
                title, actors, size=settings.dimensions, font_path=settings.font_path
            )
            canny = canny_edges(sketch)
            paths = control_paths(output_dir, str(item_id))
            canny.save(paths["canny"])
            paths["layout"].write_text(json.dumps(layout.to_dict(), indent=1))
            if settings.save_sketch:
                sketch.save(paths["sketch"])
            result.control_paths[str(item_id)] = paths["canny"]
            fractions.append(float((np.asarray(canny)[..., 0] > 0).mean()))
            areas.append(text_area_fraction(layout))
            progress.update()
    result.mean_edge_fraction = float(np.mean(fractions)) if fractions else 0.0
    result.mean_text_area = float(np.mean(areas)) if areas else 0.0
    index = {
        "settings": {
            "size": settings.size,
            "width": settings.dimensions[0],
            "height": settings.dimensions[1],
            "font_path": settings.font_path or default_font_path(),
        },
        "controls": {
            k: {name: p.name for name, p in control_paths(output_dir, k).items()} for k in result.control_paths
        },
    }
    write_atomic(CaptionControlsFolder(Path(output_dir)).index, json.dumps(index, indent=1))
    return result
