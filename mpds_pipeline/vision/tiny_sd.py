"""Tiny randomly initialised models shaped like SD 1.5, ControlNet and CLIP, built in code.

Tests and the CPU demo cannot download weights, so they use these, loaded through the
same ``from_pretrained`` paths as the real models. ``ensure_tiny_models(root,
extra_words)`` builds them once; the tokenizer knows the given words whole. Details:
docs/development.md, "The tiny models".
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import string
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TINY_IMAGE_SIZE = 32  # pixels; the two-block VAE makes 16x16 latents
TINY_HIDDEN = 32
# Bump when the tiny models change (2: the word-level tokenizer): ensure_tiny_models then
# replaces models an older version built, e.g. in a demo data directory.
TINY_MODELS_VERSION = 2
# SD1.5's own scheduler settings (its scheduler_config.json), so tiny and SD1.5-sized
# random pipelines sample with the noise schedule of the real model
SD15_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)
_MARKER = "complete"


@dataclass(frozen=True)
class TinyModelPaths:
    """Where ``ensure_tiny_models`` put each tiny model (all loadable with from_pretrained)."""

    root: Path
    sd: Path  # StableDiffusionPipeline directory
    controlnet: Path  # ControlNetModel directory
    clip: Path  # CLIPModel + processor files (CLIP score and PickScore stand-in)


# Common English words, beside the tiny BLIP-2's and the caller's: whole tokens,
# so a prompt has about as many tokens as it has words, as with the real CLIP vocabulary.
COMMON_WORDS = """
a about above across after again against all almost alone along also always am among an and another any are
around as at away back be because become been before behind being below best better between big black blue
both boy boys but by can city close color colorful come comes could cover cropped crowd dark day days did do
does down during each early end even ever every eyes face faces fall far father few film films find first
five for four from front full get girl girls give go good great green grey group had hand hands has have he
head her here him his home house how i if in inside into is it its just keep kind know land large last late
lead leads left life light like little live lives long look looking lost love low made make man many may me
men more most mother much must my name names near never new next night no not nothing now of off old on once
one only open or other our out outside over own part people person photo picture place play portrait poster
posters red right road room run said same sea see seen she show side small so some something soon star
starring stars still stone story street sun take takes text than that the their them then there these they
thing this those three through time title to together too top town tree two under until up upon us very war
was water way we well were what when where which while white who whom why will wind with within woman women
world year years yellow yet you young your genre genres
""".split()


def tiny_words(extra_words: Iterable[str] = ()) -> list[str]:
    """The whole words of the tiny tokenizer: common English, the tiny BLIP-2's caption
    words and ``extra_words`` (the demo passes its sample pages' words), lower-cased
    (CLIP lower-cases), letters only, once each."""
    from .tiny_blip2 import CAPTION_WORDS

    words = {w for w in (*COMMON_WORDS, *extra_words, *CAPTION_WORDS)}
    return sorted(w for w in words if w.isalpha() and w.isascii() and w.islower())


def learn_word_merges(words: list[str]) -> list[tuple[str, str]]:
    """BPE merges, learnt as BPE learns them (the most frequent adjacent pair first, ties
    in sorted order), until every word is one token. Applying merges by rank replays the
    learning, so the tokenizer then reads each of these words as one token."""
    from collections import Counter

    pieces = {w: [*w[:-1], w[-1] + "</w>"] for w in words if len(w) > 1}
    merges: list[tuple[str, str]] = []
    while pieces:
        counts = Counter(pair for sequence in pieces.values() for pair in zip(sequence, sequence[1:]))
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for word, sequence in list(pieces.items()):
            merged, i = [], 0
            while i < len(sequence):
                if i + 1 < len(sequence) and (sequence[i], sequence[i + 1]) == best:
                    merged.append(sequence[i] + sequence[i + 1])
                    i += 2
                else:
                    merged.append(sequence[i])
                    i += 1
            if len(merged) == 1:
                del pieces[word]
            else:
                pieces[word] = merged
    return merges


@functools.lru_cache(maxsize=2)
def _tiny_vocab(words: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-style BPE vocabulary: printable ASCII symbols, each also as word end, and the
    merges that build every one of ``words`` (every merge result in the vocabulary)."""
    symbols = [c for c in string.ascii_lowercase + string.digits + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    tokens += symbols + [s + "</w>" for s in symbols]
    merges = learn_word_merges(list(words))
    vocab = {token: index for index, token in enumerate(tokens)}
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return vocab, merges


def build_tiny_tokenizer(directory: Path, words: list[str] | None = None):
    """Write vocab.json/merges.txt to ``directory`` and load a CLIPTokenizer from them;
    ``words`` (default ``tiny_words()``) are its whole-word tokens."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab, merges = _tiny_vocab(tuple(sorted(set(words if words is not None else tiny_words()))))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    # from_pretrained on the folder, not the constructor: in transformers 5 the
    # constructor's file arguments are ignored and the vocabulary ends up empty.
    return CLIPTokenizer.from_pretrained(str(directory), model_max_length=77)


def _text_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TINY_HIDDEN,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def build_tiny_sd_pipeline(work_dir: Path, seed: int = 0, extra_words: Iterable[str] = ()):
    """A working StableDiffusionPipeline with tiny random weights (32x32 images); its
    tokenizer knows ``tiny_words(extra_words)`` whole."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(work_dir / "tokenizer_src", tiny_words(extra_words))
    unet = UNet2DConditionModel(
        sample_size=TINY_IMAGE_SIZE // 2,
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TINY_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=TINY_IMAGE_SIZE,
    )
    text_encoder = CLIPTextModel(_text_config(len(tokenizer)))
    scheduler = DDIMScheduler(**SD15_SCHEDULER)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_controlnet(unet):
    """A ControlNet copied from ``unet``; its conditioning encoder downsamples x2 like the tiny VAE."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))


def build_tiny_clip(directory: Path, seed: int = 0, extra_words: Iterable[str] = ()):
    """Save a tiny CLIPModel with a tokenizer (``tiny_words(extra_words)``) and a Pillow
    image processor to ``directory``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPVisionConfig

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(directory / "tokenizer_src", tiny_words(extra_words))
    vision = CLIPVisionConfig(
        hidden_size=TINY_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=TINY_IMAGE_SIZE,
        patch_size=8,
        projection_dim=TINY_HIDDEN,
    )
    config = CLIPConfig(
        text_config=_text_config(len(tokenizer)).to_dict(),
        vision_config=vision.to_dict(),
        projection_dim=TINY_HIDDEN,
    )
    model = CLIPModel(config)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    image_processor.save_pretrained(directory)
    shutil.rmtree(directory / "tokenizer_src", ignore_errors=True)
    return model


def tiny_models_marker(extra_words: Iterable[str] = ()) -> str:
    """What the ``complete`` marker says: the version, and a digest of the vocabulary."""
    digest = hashlib.sha256(" ".join(tiny_words(extra_words)).encode()).hexdigest()[:16]
    return f"version {TINY_MODELS_VERSION} words {digest}\n"


def ensure_tiny_models(root: Path | None = None, extra_words: Iterable[str] = ()) -> TinyModelPaths:
    """Build the tiny models under ``root`` (default: a temp dir per version and vocabulary)
    unless this version built them there with these words already; models of an older
    version or another vocabulary are replaced. ``extra_words``: words the tokenizer
    must know whole besides its own (``tiny_words``)."""
    extra_words = tuple(extra_words)
    marker = tiny_models_marker(extra_words)
    if root is None:
        name = f"mpds-tiny-models-v{TINY_MODELS_VERSION}-{marker.split()[-1]}"
        root = Path(tempfile.gettempdir()) / name
    root = Path(root)
    paths = TinyModelPaths(root=root, sd=root / "sd", controlnet=root / "controlnet", clip=root / "clip")
    if (root / _MARKER).is_file() and (root / _MARKER).read_text() == marker:
        return paths
    staging = Path(tempfile.mkdtemp(prefix="tiny-build-", dir=root.parent if root.parent.exists() else None))
    pipe = build_tiny_sd_pipeline(staging, extra_words=extra_words)
    pipe.save_pretrained(staging / "sd")
    build_tiny_controlnet(pipe.unet).save_pretrained(staging / "controlnet")
    build_tiny_clip(staging / "clip", extra_words=extra_words)
    shutil.rmtree(staging / "tokenizer_src", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).unlink(missing_ok=True)  # half-replaced models are never taken for complete ones
    for name in ("sd", "controlnet", "clip"):
        shutil.rmtree(root / name, ignore_errors=True)
        shutil.move(str(staging / name), str(root / name))
    shutil.rmtree(staging, ignore_errors=True)
    (root / _MARKER).write_text(marker)
    return paths
