"""Vectorised fake names in Latin and Cyrillic, like the real catalog's mix."""
from __future__ import annotations

import numpy as np

LATIN = np.array(
    "love night dream fire heart summer city road blue star light dance shadow rain wild gold "
    "river ghost echo storm neon paper moon silver sun time home lost young black white electric "
    "wave forever heaven midnight sugar angel thunder velvet honey crystal desert ocean".split()
)
CYRILLIC = np.array(
    "любовь ночь юность лето город дорога небо звезда свет танец тень дождь море огонь сердце "
    "весна зима ветер мечта река солнце время дом луна песня путь счастье гроза осень берег".split()
)
GENRE_NAMES = {
    0: "all", 1: "eastern", 2: "rusrock", 3: "rusrap", 4: "postrock", 11: "pop", 13: "alternative",
    14: "rock", 16: "dance", 20: "ruspop", 44: "foreignrap", 68: "electronics", 75: "rap",
    102: "allrock", 5: "metal", 6: "indie", 7: "jazz", 8: "classical", 9: "soundtrack", 10: "folk",
    12: "rnb", 15: "house", 17: "techno", 18: "trance", 19: "ambient", 21: "blues", 22: "country",
    23: "reggae", 24: "punk", 25: "hardrock", 26: "estrada", 27: "shanson", 28: "bard",
    29: "children", 30: "videogame", 31: "lounge", 32: "dnb", 33: "triphop", 34: "numetal",
    35: "soul", 36: "funk", 37: "disco", 38: "kpop", 39: "relax", 40: "newage",
}


def phrases(rng: np.random.Generator, count: int, cyrillic_share: float = 0.35) -> np.ndarray:
    """``count`` names of one to three words, a share of them Cyrillic."""
    cyrillic = rng.random(count) < cyrillic_share
    words = np.where(
        cyrillic[:, None],
        CYRILLIC[rng.integers(0, len(CYRILLIC), (count, 3))],
        LATIN[rng.integers(0, len(LATIN), (count, 3))],
    ).astype(object)
    length = rng.integers(1, 4, count)
    name = words[:, 0].copy()
    name = np.where(length >= 2, name + " " + words[:, 1], name)
    name = np.where(length >= 3, name + " " + words[:, 2], name)
    return np.char.capitalize(name.astype(str)).astype(object)


def genre_name(genre_id: int) -> str:
    return GENRE_NAMES.get(int(genre_id), f"genre{int(genre_id)}")
