"""Deterministic generated titles and persons: the ground truth behind the sample pages.

Everything derives from (kind, id, seed), so a test can ask what the page of an id says
without fetching it. Special cases follow a fixed cycle of ids, so every small range
holds each of them. The cycle: docs/development.md.
"""

from __future__ import annotations

import hashlib
import random
import re

PERSON_ID_RANGE = (1, 200)  # cast members link to persons in this range
TITLE_CYCLE = 25
PERSON_CYCLE = 10

_ADJECTIVES = [
    "Silent",
    "Crimson",
    "Last",
    "Hidden",
    "Broken",
    "Golden",
    "Distant",
    "Midnight",
    "Burning",
    "Frozen",
    "Secret",
    "Wild",
    "Lonely",
    "Electric",
    "Forgotten",
    "Savage",
    "Quiet",
    "Iron",
]
_NOUNS = [
    "River",
    "Empire",
    "Garden",
    "Signal",
    "Harbor",
    "Kingdom",
    "Machine",
    "Promise",
    "Frontier",
    "Witness",
    "Storm",
    "Orchard",
    "Mirror",
    "Voyage",
    "Circus",
    "Lighthouse",
    "Desert",
    "Echo",
]
_HEROES = [
    "a retired detective",
    "a young pilot",
    "two estranged sisters",
    "a small-town teacher",
    "an ambitious chef",
    "a washed-up boxer",
    "a lonely astronaut",
    "a stubborn farmer",
]
_GOALS = [
    "uncovers a conspiracy that reaches the highest levels of government",
    "must rescue her family before the storm reaches the coast",
    "tries to win back the trust of an old friend",
    "discovers that the town hides a dangerous secret",
    "sets out on a long journey across the country to find a missing brother",
    "is forced to confront the mistakes of the past",
]
_GENRES = [
    "Drama",
    "Comedy",
    "Action",
    "Thriller",
    "Romance",
    "Horror",
    "Sci-Fi",
    "Adventure",
    "Crime",
    "Mystery",
    "Fantasy",
    "Animation",
    "Family",
    "Documentary",
    "Western",
    "Musical",
]
_CERTIFICATES = [None, "G", "PG", "PG-13", "R", "R", "PG-13", "NC-17", "18", "X", "Not Rated", "TV-14"]
_TITLE_TYPES = ["movie"] * 6 + ["tvMovie", "video", "tvSeries", "short"]
_FIRST = [
    "Anna",
    "James",
    "Maria",
    "Robert",
    "Elena",
    "David",
    "Sofia",
    "Michael",
    "Clara",
    "Thomas",
    "Laura",
    "Peter",
    "Nora",
    "Daniel",
    "Julia",
    "Victor",
    "Irene",
    "Samuel",
    "Alice",
    "Marco",
]
_LAST = [
    "Walker",
    "Bennett",
    "Moreau",
    "Rossi",
    "Keller",
    "Lindqvist",
    "Okafor",
    "Novak",
    "Hayes",
    "Delgado",
    "Fischer",
    "Tanaka",
    "Brennan",
    "Costa",
    "Ivanova",
    "Laurent",
    "Quinn",
    "Sato",
]

# Titles and plots that a language detector recognises with confidence.
FOREIGN = {
    "fr": (
        ["Le Silence de la mer", "Les Enfants du port", "La Nuit des étoiles", "Un été à Marseille"],
        [
            "Un jeune homme quitte son village pour chercher la vérité sur la disparition de son père, "
            "et découvre que sa famille lui a caché beaucoup de choses.",
            "Dans une petite ville du nord de la France, une institutrice tente de sauver son école "
            "menacée de fermeture avec l'aide des habitants.",
        ],
    ),
    "es": (
        ["El secreto de la montaña", "La casa de los recuerdos", "Noche de verano", "Los hijos del mar"],
        [
            "Un joven pescador decide abandonar su pueblo para buscar a su hermano desaparecido en la "
            "gran ciudad, donde nada es lo que parece.",
            "Una mujer regresa a la casa de su infancia y descubre que sus padres guardaban un secreto "
            "que cambiará su vida para siempre.",
        ],
    ),
    "de": (
        ["Das Haus am See", "Die letzte Reise", "Der stille Winter", "Zwischen den Welten"],
        [
            "Ein alter Mann macht sich auf die Reise, um seine Tochter zu finden, die er seit vielen "
            "Jahren nicht mehr gesehen hat.",
            "Nach dem Tod ihres Vaters kehrt eine junge Ärztin in ihr Dorf zurück und muss sich "
            "zwischen ihrer Karriere und ihrer Familie entscheiden.",
        ],
    ),
    "it": (
        ["La strada del ritorno", "Il giardino segreto", "Una notte a Roma", "Le stelle del sud"],
        [
            "Un giovane musicista lascia la sua città per inseguire il sogno di suonare a Roma, ma "
            "scopre che la vita nella capitale è molto difficile.",
            "Dopo la morte della nonna, tre fratelli tornano nella vecchia casa di famiglia e trovano "
            "una lettera che racconta una storia dimenticata.",
        ],
    ),
}
_FOREIGN_ORDER = ["fr", "es", "de", "it"]


def english_words() -> list[str]:
    """Every word the English sample pages are made of (titles, plots, genres, names,
    professions, photo captions), lower-cased, once each: the tiny CLIP tokenizer
    (``vision/tiny_sd.py``) knows them as whole words."""
    texts = [
        *_ADJECTIVES,
        *_NOUNS,
        *_HEROES,
        *_GOALS,
        *_GENRES,
        *_FIRST,
        *_LAST,
        *_TITLE_TYPES,
        "Private",
        "actor actress director writer producer soundtrack",
        "Still of in and at an event for",
    ]
    return sorted({word for text in texts for word in re.findall(r"[a-z]+", text.lower())})


def _rng(kind: str, item_id: int, seed: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{item_id}")  # str seeds hash stably across processes


def image_token(kind: str, item_id: int, seed: int, small: bool) -> str:
    """An IMDb-like image token that the server can decode back to what to draw."""
    digest = hashlib.sha1(f"{seed}:{kind}:{item_id}".encode()).hexdigest()[:16]
    return f"MV5B{kind[0]}{item_id}s{seed}{'t' if small else 'n'}{digest}XkEyXkFqcGc@"


def person_name(person_id: int, seed: int = 0) -> str:
    """A name unique among any 360 consecutive person ids (cast maps name -> URL)."""
    combos = len(_FIRST) * len(_LAST)
    index = (person_id * 37 + seed) % combos  # 37 is coprime with 360: a bijection
    return f"{_FIRST[index % len(_FIRST)]} {_LAST[index // len(_FIRST)]}"


def sample_person(person_id: int, seed: int = 0) -> dict:
    """What the page /name/nm<id> says; ``status`` is 'ok' or 'missing'."""
    slot = (person_id + seed) % PERSON_CYCLE
    rng = _rng("person", person_id, seed)
    if slot == 9:
        return {"id": person_id, "status": "missing"}
    gender = rng.choice(["actor", "actress"])
    if slot == 3:
        professions = ["director", "writer", "producer"]
    elif slot == 6:
        professions = ["writer", "producer"]
    else:
        professions = [gender] + rng.sample(["producer", "soundtrack", "director", "writer"], rng.randint(0, 2))
    has_image = slot != 8
    small = slot == 5
    name = person_name(person_id, seed)
    is_actor = professions[0] in ("actor", "actress") or "actor" in professions or "actress" in professions
    layout = "next" if person_id % 7 else ("mobile" if person_id % 2 else "classic")
    photos = gallery = []
    if is_actor and has_image and not small:
        photos, gallery = _photo_plan(person_id, seed, name, layout)
    return {
        "id": person_id,
        "status": "ok",
        "name": name,
        "professions": professions,
        "is_actor": is_actor,
        "image_token": image_token("person", person_id, seed, small) if has_image else None,
        "small_image": small,
        "layout": layout,
        "identity": person_id % 2,  # which real face (photos.py) the actor's pictures show
        "photos": photos,  # the person page's strip
        "gallery": gallery,  # /name/nm…/mediaindex (empty: no gallery beyond the strip)
    }


PHOTO_PLANS = 3


def photo_token(person_id: int, index: int, seed: int) -> str:
    """The image token of photo ``index`` (strip first, then gallery) of a person."""
    digest = hashlib.sha1(f"{seed}:photo:{person_id}:{index}".encode()).hexdigest()[:16]
    return f"MV5Bf{person_id}x{index}s{seed}n{digest}XkEyXkFqcGc@"


def _photo_plan(person_id: int, seed: int, name: str, layout: str) -> tuple[list[dict], list[dict]]:
    """(strip, gallery) photos: kind (photos.PHOTO_KINDS), caption, tagged person ids
    (None: the page gives no tags; only Next.js pages tag) and image token."""
    rng = _rng("photos", person_id, seed)
    co_star_id = (person_id + 36) % PERSON_ID_RANGE[1] + 1
    co_star, third = person_name(co_star_id, seed), person_name(co_star_id + 1, seed)

    def film() -> str:
        return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} ({rng.randint(1960, 2023)})"

    def photo(kind: str, caption: str | None, tagged: list[int] | None = None) -> dict:
        return {"kind": kind, "caption": caption, "tagged": tagged if layout == "next" else None}

    me, both = [person_id], [person_id, co_star_id]
    plan = person_id % PHOTO_PLANS
    gallery: list[dict] = []
    if plan == 0:
        strip = [
            photo("self", f"{name} in {film()}", me),
            photo("pair", f"{name} and {co_star} in {film()}", both),
            photo("self", f"Still of {name} in {film()}"),
            photo("self", name),
        ]
    elif plan == 1:
        strip = [
            photo("self", f"{name} in {film()}", me),
            photo("self", None),
            photo("pair", None),
            photo("scene", f"{name} at an event for {film()}"),
            photo("self", f"Still of {name} in {film()}"),
            photo("pair", f"{co_star}, {name} and {third} in {film()}"),
        ]
    else:
        strip = [photo("pair", f"{name} and {co_star} in {film()}", both), photo("self", f"{name} in {film()}")]
        # The gallery page is a Next.js page whatever the person page's era: tags there.
        gallery = [
            {"kind": "self", "caption": f"{name} in {film()}", "tagged": me},
            {"kind": "other", "caption": f"{name} in {film()}", "tagged": None},
            {"kind": "self", "caption": f"Still of {name} in {film()}", "tagged": None},
            {"kind": "pair", "caption": f"{co_star} and {name} in {film()}", "tagged": [co_star_id, person_id]},
        ]
    for index, item in enumerate(strip + gallery):
        item["token"] = photo_token(person_id, index, seed)
    return strip, gallery


def person_photo(person_id: int, index: int, seed: int = 0) -> dict | None:
    """Photo ``index`` (strip, then gallery) of a person, with its ``identity``; None if absent."""
    person = sample_person(person_id, seed)
    photos = person.get("photos", []) + person.get("gallery", [])
    if person["status"] != "ok" or not 0 <= index < len(photos):
        return None
    return {**photos[index], "identity": person["identity"]}


def actor_person_ids(seed: int = 0) -> list[int]:
    lo, hi = PERSON_ID_RANGE
    return [
        pid
        for pid in range(lo, hi + 1)
        if sample_person(pid, seed).get("is_actor") and sample_person(pid, seed)["status"] == "ok"
    ]


_ACTOR_CACHE: dict[int, list[int]] = {}


def sample_title(title_id: int, seed: int = 0) -> dict:
    """What the page /title/tt<id> says; ``status`` is 'ok', 'missing' or 'redirect'."""
    slot = (title_id + seed) % TITLE_CYCLE
    rng = _rng("title", title_id, seed)
    if slot in (7, 19):
        return {"id": title_id, "status": "missing", "soft_404": slot == 19}
    if slot == 11 and title_id > 1:
        return {"id": title_id, "status": "redirect", "redirect_to": title_id - 1}
    language = "en"
    if slot in (5, 17):
        language = _FOREIGN_ORDER[(title_id // TITLE_CYCLE + (slot == 17)) % len(_FOREIGN_ORDER)]
    adult = slot == 3
    if language == "en":
        title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        plot = f"{rng.choice(_HEROES).capitalize()} {rng.choice(_GOALS)}."
    else:
        titles, plots = FOREIGN[language]
        title, plot = rng.choice(titles), rng.choice(plots)
    genres = rng.sample(_GENRES, rng.randint(1, 4))
    certificate = rng.choice(_CERTIFICATES)
    if adult:
        genres = ["Adult"] + genres[:1]
        certificate = rng.choice(["X", "NC-17", "18"])
        plot = None
        title = f"Private {rng.choice(_NOUNS)} {rng.randint(1, 9)}"
    if slot == 15:
        plot = None
    if slot == 21:
        genres = []
    if seed not in _ACTOR_CACHE:
        _ACTOR_CACHE[seed] = actor_person_ids(seed)
    actors = _ACTOR_CACHE[seed]
    cast_ids = [] if slot == 23 else rng.sample(actors, min(len(actors), rng.randint(1, 12)))
    has_poster = slot != 13
    return {
        "id": title_id,
        "status": "ok",
        "title": title,
        "original_title": title,
        "title_type": rng.choice(_TITLE_TYPES),
        "year": rng.randint(1920, 2023),
        "genres": genres,
        "cast": [(pid, person_name(pid, seed)) for pid in cast_ids],
        "plot": plot,
        "certificate": certificate,
        "is_adult": adult,
        "language": language,
        "poster_token": image_token("title", title_id, seed, slot == 9) if has_poster else None,
        "small_poster": slot == 9,
        "layout": "classic" if title_id % 5 == 4 else "next",
    }
