"""BLIP-2 "vision-perceptive" captions of posters, with a confidence per caption.

Batched, deterministic and resumable; a poster that cannot be read becomes a row with an
error, and every decode outcome is recorded in the download manifest, since captioning
is where a poster's pixels are first decoded. See docs/captions-review.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ..base.files import atomic_path
from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from ..curate.image_checks import CAPTIONING, DECODE_ERRORS
from ..curate.manifest import record_decode_results
from ..curate.near_duplicates import HASH_COLUMNS, image_hashes, merge_hashes
from .device import Precision, choose_device, choose_dtype, is_cuda

DEFAULT_MODEL = "Salesforce/blip2-opt-2.7b"
CAPTION_COLUMNS = ["id", "caption", "confidence", "model", "settings", "created_at", "error"]
CAPTION_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("caption", pa.string()),
        ("confidence", pa.float64()),
        ("model", pa.string()),
        ("settings", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("error", pa.string()),
    ]
)


@dataclass(frozen=True)
class CaptionSettings:
    """Everything that decides a caption; recorded as JSON with every row."""

    model: str = DEFAULT_MODEL  # hub id or local folder with model + processor
    device: str = "auto"  # "auto": CUDA when present, else CPU
    dtype: Precision = setting("auto", "auto: bf16 where the GPU supports it, else fp16; fp32 on CPU")
    batch_size: int = setting(16, "posters per BLIP-2 batch")
    prompt: str | None = setting("a movie poster of", "text the caption continues (empty or None: no prompt)")
    prompt_in_caption: bool = True  # caption = prompt + continuation, a full phrase
    max_new_tokens: int = setting(30, "most tokens a caption adds to the prompt")
    min_new_tokens: int = 1
    num_beams: int = setting(1, "beam search width (1: greedy)")
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    seed: int = 0
    decode_workers: int = 4  # threads that decode and preprocess images

    def to_json(self, **resolved) -> str:
        return json.dumps({**asdict(self), **resolved}, sort_keys=True)


@dataclass
class CaptionRow:
    id: int
    caption: str | None
    confidence: float | None
    model: str
    settings_json: str
    created_at: datetime
    error: str | None = None
    decoded: bool | None = None  # the image decoded (True), did not (False), or was never read (None)
    hashes: tuple[int, int] | None = None  # (pHash, dHash) of the decoded poster (curate.near_duplicates)

    def to_record(self) -> dict:
        return {
            "id": self.id,
            "caption": self.caption,
            "confidence": self.confidence,
            "model": self.model,
            "settings": self.settings_json,
            "created_at": self.created_at,
            "error": self.error,
        }


@dataclass
class CaptionResult:
    """What one ``caption_partition`` call did."""

    out_path: Path
    count: int  # captioned in this call
    skipped: int  # already captioned before this call
    errors: int  # unreadable posters in this call
    decode_failures: int  # posters whose pixels did not decode (a subset of ``errors``)
    total_rows: int  # rows in the Parquet file now
    seconds: float  # captioning time (model load excluded)
    load_seconds: float
    preview: list[dict] = field(default_factory=list)  # a few {id, caption, confidence}

    @property
    def posters_per_s(self) -> float:
        done = self.count + self.errors
        return done / self.seconds if self.seconds > 0 else 0.0

    def metadata(self) -> dict:
        return {
            "count": self.count,
            "skipped": self.skipped,
            "errors": self.errors,
            "decode_failures": self.decode_failures,
            "total_rows": self.total_rows,
            "posters_per_s": round(self.posters_per_s, 2),
            "seconds": round(self.seconds, 2),
            "model_load_seconds": round(self.load_seconds, 2),
        }


class Captioner:
    """Loads BLIP-2 once; ``caption_images`` captions any number of posters.

    ``model``/``processor`` may be passed in (the benchmark builds a full-size random
    model in memory; it is moved to the device but keeps its dtype); otherwise both
    load with ``from_pretrained(settings.model)`` in the resolved dtype.
    """

    def __init__(self, settings: CaptionSettings | None = None, model=None, processor=None):
        import torch
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        self.settings = settings or CaptionSettings()
        self.device = choose_device(self.settings.device)
        self.dtype = choose_dtype(self.settings.dtype, self.device)
        started = time.perf_counter()
        if processor is None:
            processor = Blip2Processor.from_pretrained(self.settings.model)
        if model is None:
            # from_pretrained keeps the modules BLIP-2 wants in fp32 (query tokens, Q-Former);
            # a blanket .to(dtype) afterwards would undo that.
            model = Blip2ForConditionalGeneration.from_pretrained(self.settings.model, dtype=self.dtype)
        self.processor = processor
        self.model = model.to(self.device).eval()
        # A model passed in keeps its own dtype; images follow the vision tower's.
        self.dtype = next(self.model.vision_model.parameters()).dtype
        self.load_seconds = time.perf_counter() - started
        self.settings_json = self.settings.to_json(
            resolved_device=self.device, resolved_dtype=str(self.dtype).removeprefix("torch.")
        )
        size = processor.image_processor.size
        self._input_size = (int(size.get("width", 224)), int(size.get("height", 224)))
        # The prompt's ids (query-token placeholders, BOS, prompt text) are the same for
        # every poster: build them once with the processor itself.
        probe = processor(images=[Image.new("RGB", (8, 8))], text=[self.settings.prompt or ""])
        self._prompt_ids = torch.tensor(probe["input_ids"][0], dtype=torch.long)
        self._eos_id = model.config.text_config.eos_token_id

    # ------------------------------------------------------------------ public
    def caption_images(self, items: Iterable[tuple[int, Path] | Path]) -> Iterator[CaptionRow]:
        """Yield one ``CaptionRow`` per poster, in input order per batch.

        ``items`` are ``(id, path)`` pairs, or paths named ``<id>.<ext>``.
        """
        batches = _chunks([_as_item(item) for item in items], self.settings.batch_size)
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=max(1, self.settings.decode_workers)) as pool:
            pending = self._submit(pool, batches[0])
            for index in range(len(batches)):
                ready = [future.result() for future in pending]
                if index + 1 < len(batches):  # overlap: decode the next batch now
                    pending = self._submit(pool, batches[index + 1])
                yield from self._caption_batch(ready)

    # ------------------------------------------------------------------ internals
    def _submit(self, pool: ThreadPoolExecutor, batch: Sequence[tuple[int, Path]]) -> list[Future]:
        return [pool.submit(self._load_pixels, item) for item in batch]

    def _load_pixels(self, item: tuple[int, Path]) -> tuple[int, np.ndarray | None, str | None, bool | None, tuple]:
        """(id, pixels, error, decoded, hashes): ``decoded`` is None when the file could not
        be opened; ``hashes`` (pHash, dHash) are taken here, where the poster is decoded anyway."""
        movie_id, path = item
        try:
            handle = open(path, "rb")  # noqa: SIM115 (opened apart: an open error is not a decode error)
        except OSError as exc:  # missing or unreadable file: says nothing about its pixels
            return movie_id, None, f"{type(exc).__name__}: {exc}", None, None
        try:
            with handle, Image.open(handle) as image:
                # Decode big JPEGs at 1/2..1/8 scale: still at least the input size.
                image.draft("RGB", self._input_size)
                rgb = image.convert("RGB")
        except DECODE_ERRORS as exc:
            return movie_id, None, f"{type(exc).__name__}: {exc}", False, None
        try:
            hashes = image_hashes(rgb)
            pixels = self.processor.image_processor(rgb, return_tensors="np")["pixel_values"][0]
            return movie_id, pixels, None, True, hashes
        except Exception as exc:  # any other failure becomes an error row too
            return movie_id, None, f"{type(exc).__name__}: {exc}", True, None

    def _caption_batch(self, loaded: list[tuple]) -> list[CaptionRow]:
        import torch

        now = datetime.now(timezone.utc)
        rows: dict[int, CaptionRow] = {}
        good = [(i, entry) for i, entry in enumerate(loaded) if entry[1] is not None]
        for i, (movie_id, _, error, decoded, hashes) in enumerate(loaded):
            if error is not None:
                rows[i] = CaptionRow(
                    movie_id, None, None, self.settings.model, self.settings_json, now, error, decoded, hashes
                )
        if good:
            pixels = torch.from_numpy(np.stack([entry[1] for _, entry in good]))
            captions, confidences = self._generate(pixels)
            for (i, (movie_id, _, _, _, hashes)), caption, confidence in zip(good, captions, confidences):
                rows[i] = CaptionRow(
                    movie_id, caption, confidence, self.settings.model, self.settings_json, now, None, True, hashes
                )
        return [rows[i] for i in range(len(loaded))]

    def _generate(self, pixels) -> tuple[list[str], list[float]]:
        import torch

        s = self.settings
        batch = pixels.shape[0]
        if is_cuda(self.device):
            pixels = pixels.pin_memory()
        pixel_values = pixels.to(self.device, dtype=self.dtype, non_blocking=True)
        input_ids = self._prompt_ids.to(self.device).unsqueeze(0).expand(batch, -1)
        torch.manual_seed(s.seed)
        with torch.inference_mode():
            out = self.model.generate(
                pixel_values=pixel_values,
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                num_beams=s.num_beams,
                max_new_tokens=s.max_new_tokens,
                min_new_tokens=s.min_new_tokens,
                repetition_penalty=s.repetition_penalty,
                length_penalty=s.length_penalty,
                output_scores=True,
                return_dict_in_generate=True,
            )
            beams = s.num_beams > 1
            scores = self.model.compute_transition_scores(
                out.sequences,
                out.scores,
                beam_indices=out.beam_indices if beams else None,
                normalize_logits=not beams,  # beam scores are log-probabilities already
            )
        generated = out.sequences[:, input_ids.shape[1] :]
        scores = scores[:, : generated.shape[1]].float()  # both start at the first new token
        mask = _until_first(generated, self._eos_id)
        if beams:
            mask &= out.beam_indices[:, : generated.shape[1]] >= 0
        lengths = mask.sum(dim=1).clamp(min=1)
        confidence = (scores * mask).sum(dim=1) / lengths
        texts = self.processor.batch_decode(generated, skip_special_tokens=True)
        prefix = (s.prompt or "").strip()
        captions = [
            " ".join(f"{prefix} {text}".split()) if s.prompt_in_caption and prefix else " ".join(text.split())
            for text in texts
        ]
        return captions, [float(c) for c in confidence.cpu()]


def _until_first(tokens, eos_id: int | None):
    """Mask of generated positions up to and including the first EOS (the rest is padding)."""
    import torch

    if eos_id is None:
        return torch.ones_like(tokens, dtype=torch.bool)
    is_eos = (tokens == eos_id).int()
    eos_before = torch.cumsum(is_eos, dim=1) - is_eos  # EOS strictly before this position
    return eos_before == 0


def _as_item(item) -> tuple[int, Path]:
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        return int(path.stem), path
    movie_id, path = item
    return int(movie_id), Path(path)


def _chunks(items: list, size: int) -> list[list]:
    if size < 1:
        raise ValueError(f"batch_size must be positive, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------------- partitions


def read_captions(path: Path) -> pd.DataFrame:
    """The caption table at ``path`` (empty with the right columns when absent)."""
    path = Path(path)
    if not path.exists():
        return CAPTION_SCHEMA.empty_table().to_pandas()
    table = pq.read_table(path)
    if "error" not in table.column_names:  # files written without the error column
        table = table.append_column("error", pa.nulls(len(table), pa.string()))
    return table.select(CAPTION_COLUMNS).to_pandas()


def caption_partition(
    items: Iterable[tuple[int, Path] | Path],
    out_parquet: Path,
    settings: CaptionSettings | None = None,
    captioner: Captioner | None = None,
    checkpoint_rows: int = 2048,
    preview_rows: int = 5,
    retry_errors: bool = True,
    manifest_dir: Path | None = None,
    log: ProgressLog | None = None,
    hashes_parquet: Path | None = None,
) -> CaptionResult:
    """Caption the posters not yet captioned in ``out_parquet`` and add them to it.

    Ids with a caption (no error) in the file are skipped; earlier error rows are
    retried and replaced (``retry_errors=False`` skips them too). The file is rewritten
    atomically (temp file + ``os.replace``) every ``checkpoint_rows`` new rows and at
    the end, so an interrupted run keeps its progress. The model is loaded only when
    there is something to caption.

    ``manifest_dir``: the download folder whose manifest learns each poster's decode
    outcome (``record_decode_results``), saved with every checkpoint. ``log`` gets
    progress lines. ``hashes_parquet``: where each decoded poster's perceptual hashes
    (id, phash, dhash; ``curate.near_duplicates``) are merged, saved with every checkpoint.
    """
    out_parquet = Path(out_parquet)
    existing = read_captions(out_parquet)
    todo, skipped = _still_to_caption(items, existing, retry_errors)
    new_rows: list[dict] = []
    outcomes: dict[str, str | None] = {}  # file name -> decode error (None: decoded), not yet recorded
    decode_failures = 0
    hashes: list[tuple[int, int, int]] = []  # (id, phash, dhash) not yet saved
    paths = dict(todo)
    seconds = load_seconds = 0.0
    if todo:
        if captioner is None:
            captioner = Captioner(settings)
        load_seconds = captioner.load_seconds
        started = time.perf_counter()
        unsaved = 0
        with Progress(f"captions {out_parquet.stem}", len(todo), log, unit="posters") as progress:
            for row in captioner.caption_images(todo):
                new_rows.append(row.to_record())
                progress.update(status="error" if row.error else "ok")
                if row.decoded is not None:
                    outcomes[paths[row.id].name] = None if row.decoded else row.error
                    decode_failures += not row.decoded
                if row.hashes is not None:
                    hashes.append((row.id, *row.hashes))
                unsaved += 1
                if unsaved >= checkpoint_rows:
                    _write_captions(out_parquet, existing, new_rows)
                    _record_decodes(manifest_dir, outcomes)
                    _save_hashes(hashes_parquet, hashes)
                    unsaved = 0
        seconds = time.perf_counter() - started
    total = _write_captions(out_parquet, existing, new_rows) if new_rows or not out_parquet.exists() else len(existing)
    _record_decodes(manifest_dir, outcomes)
    _save_hashes(hashes_parquet, hashes)

    errors = sum(1 for row in new_rows if row["error"] is not None)
    preview = [
        {"id": row["id"], "caption": row["caption"], "confidence": round(row["confidence"], 3)}
        for row in new_rows
        if row["error"] is None
    ][:preview_rows]
    return CaptionResult(
        out_path=out_parquet,
        count=len(new_rows) - errors,
        skipped=skipped,
        errors=errors,
        decode_failures=decode_failures,
        total_rows=total,
        seconds=seconds,
        load_seconds=load_seconds,
        preview=preview,
    )


def _still_to_caption(items, existing: pd.DataFrame, retry_errors: bool) -> tuple[list[tuple[int, Path]], int]:
    """The (id, path) items without a finished caption in ``existing``, each id once, and
    how many were skipped as finished."""
    finished = existing["error"].isna() & existing["caption"].notna()
    if not retry_errors:
        finished |= existing["error"].notna()
    done = set(existing.loc[finished, "id"].astype(int))
    todo: list[tuple[int, Path]] = []
    seen: set[int] = set()
    skipped = 0
    for item in items:
        movie_id, path = _as_item(item)
        if movie_id in seen:
            continue
        seen.add(movie_id)
        if movie_id in done:
            skipped += 1
        else:
            todo.append((movie_id, path))
    return todo, skipped


def _record_decodes(manifest_dir: Path | None, outcomes: dict[str, str | None]) -> None:
    if manifest_dir is not None and outcomes:
        record_decode_results(manifest_dir, outcomes, CAPTIONING)
    outcomes.clear()


def _save_hashes(path: Path | None, hashes: list[tuple[int, int, int]]) -> None:
    if path is not None and hashes:
        merge_hashes(path, pd.DataFrame(hashes, columns=HASH_COLUMNS))
    hashes.clear()


def _write_captions(path: Path, existing: pd.DataFrame, new_rows: list[dict]) -> int:
    new = pd.DataFrame(new_rows, columns=CAPTION_COLUMNS)
    kept = existing[~existing["id"].isin(new["id"])]  # a retried id replaces its error row
    frames = [frame for frame in (kept, new) if not frame.empty]
    merged = pd.concat(frames, ignore_index=True) if frames else new
    merged = merged.sort_values("id", kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(merged, schema=CAPTION_SCHEMA, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return len(merged)
