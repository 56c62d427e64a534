"""Language decisions for titles, with lingua (its models ship in the wheel).

The decision is made on the *original* title: on English-language IMDb the display
title and the synopsis are English even for a French film, so only the original title
says what language the film is in. Short titles are ambiguous ("Jaws" scores as
Polish), so a title drops only when lingua is confident it is not English and it has
enough words to judge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

# The languages most IMDb original titles are in. A restricted set is both faster to
# load and more accurate on short texts than all 75 of lingua's languages.
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "ENGLISH",
    "FRENCH",
    "SPANISH",
    "GERMAN",
    "ITALIAN",
    "PORTUGUESE",
    "DUTCH",
    "SWEDISH",
    "DANISH",
    "BOKMAL",
    "FINNISH",
    "POLISH",
    "CZECH",
    "HUNGARIAN",
    "ROMANIAN",
    "TURKISH",
    "RUSSIAN",
    "GREEK",
    "JAPANESE",
    "CHINESE",
    "KOREAN",
    "HINDI",
    "ARABIC",
    "PERSIAN",
    "TAGALOG",
    "INDONESIAN",
)


# Why a title's language decision went the way it did (only "non_english" drops it).
LanguageReason = Literal["english", "non_english", "low_confidence", "too_short", "no_text"]


@dataclass(frozen=True)
class LanguageDecision:
    language: str | None  # lingua's top language name, e.g. "FRENCH"; None when undecidable
    confidence: float  # lingua's confidence in that language, 0..1
    keep: bool
    reason: LanguageReason


@functools.lru_cache(maxsize=4)
def language_detector(languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> LanguageDetector:
    """One detector per language set, built once per process (building costs seconds)."""
    chosen = [getattr(Language, name.upper()) for name in languages]
    if Language.ENGLISH not in chosen:
        chosen.append(Language.ENGLISH)
    return LanguageDetectorBuilder.from_languages(*chosen).build()


def decide_language(
    text: str | None,
    *,
    threshold: float = 0.5,
    min_words: int = 2,
    languages: tuple[str, ...] = DEFAULT_LANGUAGES,
) -> LanguageDecision:
    """Keep unless lingua is at least ``threshold`` sure ``text`` is not English."""
    text = (text or "").strip()
    if not any(ch.isalpha() for ch in text):
        return LanguageDecision(None, 0.0, True, "no_text")
    values = language_detector(tuple(languages)).compute_language_confidence_values(text)
    if not values:
        return LanguageDecision(None, 0.0, True, "no_text")
    top = values[0]
    name, confidence = top.language.name, float(top.value)
    if top.language == Language.ENGLISH:
        return LanguageDecision(name, confidence, True, "english")
    if confidence < threshold:
        return LanguageDecision(name, confidence, True, "low_confidence")
    if len(text.split()) < min_words and _is_latin(text):
        # One Latin-script word is too little to call; a non-Latin script is not.
        return LanguageDecision(name, confidence, True, "too_short")
    return LanguageDecision(name, confidence, False, "non_english")


def _is_latin(text: str) -> bool:
    return all(ord(ch) < 0x250 for ch in text if ch.isalpha())
