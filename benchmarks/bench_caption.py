"""Captioning throughput of the BLIP-2 captioner (posters/s), no dagster.

On CUDA (default there): the full-size blip2-opt-2.7b architecture (``Blip2Config`` with
the real sizes, random weights, bf16) at batch sizes 16, 64 and 128. Goal: at least
150 posters/s on one H100. Random weights seldom emit EOS, so every caption runs the
full ``--max-new-tokens``: a worst case for generation.

Without a GPU it runs the tiny random BLIP-2 on CPU with a small batch, so the script
stays working; those numbers say nothing about real speed.

The posters are synthetic JPEGs of IMDb's usual poster size written to a temp folder,
so decoding (overlapped with generation by the captioner's thread pool) is measured.

    .venv/bin/python benchmarks/bench_caption.py            # auto: full on CUDA, tiny on CPU
    .venv/bin/python benchmarks/bench_caption.py --tiny --batch-sizes 8 --posters 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from mpds_pipeline.vision.captioner import Captioner, CaptionSettings
from mpds_pipeline.vision.device import choose_device, choose_dtype, is_cuda
from mpds_pipeline.vision.tiny_blip2 import build_tiny_blip2, tiny_tokenizer


def full_size_blip2(device: str, dtype: torch.dtype):
    """blip2-opt-2.7b's architecture with random weights, built straight on ``device``."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    processor = Blip2Processor(
        image_processor=BlipImageProcessorPil(size={"height": 224, "width": 224}),
        tokenizer=tiny_tokenizer(),  # ids stay far below OPT's 50272; only shapes matter
        num_query_tokens=32,
    )
    config = Blip2Config(
        vision_config=dict(
            hidden_size=1408,
            intermediate_size=6144,
            num_hidden_layers=39,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
            qkv_bias=True,
            layer_norm_eps=1e-6,
        ),
        qformer_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            cross_attention_frequency=2,
            encoder_hidden_size=1408,
            vocab_size=30522,
        ),
        text_config=dict(
            model_type="opt",
            vocab_size=50272,
            hidden_size=2560,
            ffn_dim=10240,
            num_hidden_layers=32,
            num_attention_heads=32,
            word_embed_proj_dim=2560,
            max_position_embeddings=2048,
            bos_token_id=2,
            eos_token_id=2,
            pad_token_id=1,
            do_layer_norm_before=True,
        ),
        num_query_tokens=32,
        image_token_index=processor.tokenizer.convert_tokens_to_ids("<image>"),
    )
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in bf16 directly: half the memory, no copy
    try:
        with torch.device(device):
            model = Blip2ForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    return model, processor


def write_posters(folder: Path, count: int, size=(667, 1000)) -> list[Path]:
    """Distinct poster-like JPEGs (gradients, shapes, a title bar)."""
    paths = []
    rng = np.random.default_rng(0)
    for index in range(count):
        base = rng.integers(0, 255, 3)
        gradient = np.linspace(0, 1, size[1])[:, None, None] * rng.integers(0, 255, 3)
        pixels = np.clip(base * 0.5 + gradient + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255)
        image = Image.fromarray(pixels.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
            draw.ellipse(
                [x, y, x + rng.integers(40, 300), y + rng.integers(40, 300)], fill=tuple(rng.integers(0, 255, 3))
            )
        draw.rectangle([40, size[1] - 180, size[0] - 40, size[1] - 100], fill=(240, 240, 240))
        path = folder / f"{index + 1}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def run(args) -> list[dict]:
    device = choose_device("cpu" if args.cpu else "auto")
    tiny = args.tiny or not is_cuda(device)
    batch_sizes = args.batch_sizes or ([16, 64, 128] if not tiny else [8])
    dtype = choose_dtype("auto", device)
    started = time.perf_counter()
    model, processor = build_tiny_blip2() if tiny else full_size_blip2(device, dtype)
    build_s = time.perf_counter() - started
    print(
        f"model: {'tiny random BLIP-2' if tiny else 'blip2-opt-2.7b architecture, random weights'} "
        f"on {device} ({torch.cuda.get_device_name() if is_cuda(device) else 'CPU'}), "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, built in {build_s:.1f} s",
        flush=True,
    )

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = write_posters(Path(tmp), args.unique_posters)
        for batch_size in batch_sizes:
            settings = CaptionSettings(
                model="random:blip2-opt-2.7b" if not tiny else "random:tiny-blip2",
                device=device,
                batch_size=batch_size,
                max_new_tokens=args.max_new_tokens,
                decode_workers=args.workers,
            )
            captioner = Captioner(settings, model=model, processor=processor)
            posters = args.posters or max(4 * batch_size, 256 if not tiny else 32)
            items = [(i + 1, files[i % len(files)]) for i in range(posters)]
            list(captioner.caption_images(items[:batch_size]))  # warm-up: kernels, allocator
            if is_cuda(device):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            begin = time.perf_counter()
            rows = list(captioner.caption_images(items))
            if is_cuda(device):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - begin
            errors = sum(row.error is not None for row in rows)
            result = {
                "device": device,
                "model": settings.model,
                "batch_size": batch_size,
                "posters": len(rows),
                "errors": errors,
                "seconds": round(seconds, 2),
                "posters_per_s": round(len(rows) / seconds, 1),
                "max_new_tokens": args.max_new_tokens,
                "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if is_cuda(device) else None,
            }
            print(json.dumps(result), flush=True)
            results.append(result)
    if not tiny:
        best = max(r["posters_per_s"] for r in results)
        print(f"best {best} posters/s; goal 150 posters/s on one H100: {'met' if best >= 150 else 'NOT met'}")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny random model even on CUDA")
    parser.add_argument("--cpu", action="store_true", help="run on CPU even when CUDA is present")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default 16 64 128 (full), 8 (tiny)")
    parser.add_argument("--posters", type=int, help="posters per batch size (default max(4 x batch, 256); 32 tiny)")
    parser.add_argument("--unique-posters", type=int, default=64, help="distinct JPEG files written")
    parser.add_argument("--max-new-tokens", type=int, default=30)
    parser.add_argument("--workers", type=int, default=8, help="decode threads")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(args)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
