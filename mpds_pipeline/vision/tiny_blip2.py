"""A tiny, randomly initialised BLIP-2 (model and processor) built in code.

No weights can be downloaded here, so tests, the demo and the CPU benchmark save this
model to a folder and load it through the same ``from_pretrained(path)`` call the real
``Salesforce/blip2-opt-2.7b`` goes through. Shapes and the tokenizer:
docs/development.md, "The tiny models".
"""

from __future__ import annotations

from pathlib import Path

TINY_IMAGE_SIZE = 64
TINY_QUERY_TOKENS = 4
TINY_HIDDEN = 32

# Whole-word tokens so the noise captions decode to words rather than stray bytes.
CAPTION_WORDS = (
    "a an the of with and in on at for by man woman men women boy girl child children "
    "people couple group face faces portrait close up poster movie film cover title text "
    "red blue green black white yellow orange dark light bright colorful old young "
    "standing sitting holding running looking smiling gun car house city night sky sea "
    "fire tree forest mountain road street building window door horse dog cat crowd "
    "soldier soldiers police cowboy hat dress suit shirt sword blood war love story "
    "comedy drama horror action adventure western mystery thriller musical romance "
    "background front behind under over two three large small big"
).split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (byte-level BPE alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def tiny_tokenizer():
    """An OPT-style byte-level tokenizer (``</s>`` as BOS/EOS) with an in-memory vocabulary."""
    from transformers import GPT2Tokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # OPT's ids 0..3
    vocab: dict[str, int] = {token: i for i, token in enumerate(specials)}
    for char in _bytes_to_unicode().values():
        vocab.setdefault(char, len(vocab))
    space = _bytes_to_unicode()[ord(" ")]  # "Ġ"
    for word in CAPTION_WORDS:
        vocab.setdefault(space + word, len(vocab))
    return GPT2Tokenizer(
        vocab=vocab,
        merges=[],
        unk_token="<unk>",
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        add_bos_token=True,
    )


def tiny_blip2_config(vocab_size: int, image_token_index: int):
    """A ``Blip2Config`` with OPT text model, every tower of hidden size 32 and one layer."""
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    vision = Blip2VisionConfig(
        hidden_size=TINY_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=TINY_IMAGE_SIZE,
        patch_size=16,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=TINY_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        encoder_hidden_size=TINY_HIDDEN,
        vocab_size=vocab_size,
    )
    text = OPTConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        ffn_dim=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        word_embed_proj_dim=TINY_HIDDEN,
        max_position_embeddings=128,
        bos_token_id=2,
        eos_token_id=2,
        pad_token_id=1,
        tie_word_embeddings=False,
    )
    return Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=TINY_QUERY_TOKENS,
        image_token_index=image_token_index,
    )


def tiny_blip2_processor():
    from transformers import Blip2Processor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    image_processor = BlipImageProcessorPil(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    return Blip2Processor(
        image_processor=image_processor, tokenizer=tiny_tokenizer(), num_query_tokens=TINY_QUERY_TOKENS
    )


def build_tiny_blip2(seed: int = 0):
    """(model, processor): a random tiny BLIP-2 in fp32, deterministic for ``seed``."""
    import torch
    from transformers import Blip2ForConditionalGeneration

    processor = tiny_blip2_processor()
    tokenizer = processor.tokenizer
    image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    config = tiny_blip2_config(vocab_size=len(tokenizer), image_token_index=image_token_index)
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(config).eval()
    _make_noise_readable(model, tokenizer)
    return model, processor


def _make_noise_readable(model, tokenizer) -> None:
    """Widen the random weights so captions depend on the image, and silence the
    output rows of byte tokens so the noise is made of whole words (and EOS)."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "norm" not in name:
                param.normal_(0.0, 0.3)
        head = model.get_output_embeddings().weight
        word_ids = [tokenizer.convert_tokens_to_ids("\u0120" + word) for word in CAPTION_WORDS]
        keep = torch.zeros(head.shape[0], dtype=torch.bool)
        keep[word_ids] = True
        keep[tokenizer.eos_token_id] = True
        head[~keep] = 0.0


def save_tiny_blip2(out_dir: Path, seed: int = 0) -> Path:
    """Build the tiny model and save model + processor to ``out_dir``; returns the path,
    which ``CaptionSettings(model=str(path))`` loads like a hub id."""
    out_dir = Path(out_dir)
    model, processor = build_tiny_blip2(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def ensure_tiny_blip2(out_dir: Path, seed: int = 0) -> Path:
    """``save_tiny_blip2`` once: a folder that already holds a saved model (its
    transformers ``config.json``) is reused."""
    out_dir = Path(out_dir)
    if not (out_dir / "config.json").exists():
        save_tiny_blip2(out_dir, seed)
    return out_dir
