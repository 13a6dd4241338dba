"""A tiny language identifier for the advisor's languages (en, es, de).

It scores stop-word hits and a few orthographic cues. It is enough to pick the
answer language and the stemmer; texts in other languages come out as the
closest of the three, or ``"en"`` when there is no evidence at all.
"""

from __future__ import annotations

import re

__all__ = ["LANGUAGES", "STOP_WORDS", "detect_language", "words"]

LANGUAGES = ("en", "es", "de")

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the a an and or of to in on for with is are was were be been it this that "
        "my i you your he she they we what when why how should do does did can could "
        "would after before about have has had not at from as if will me him her "
        "them our their who which there".split()
    ),
    "es": frozenset(
        "el la los las un una y o de del al en con por para es son fue ser que qué "
        "cuando cuándo por qué cómo debo mi mis tu su sus se le lo me no sí pero "
        "después antes sobre como si ya muy más este esta esto eso hay yo usted".split()
    ),
    "de": frozenset(
        "der die das ein eine einen und oder zu im in mit für ist sind war sein "
        "ich du sie er wir mein meine dein ihr wann warum wie soll sollte nach vor "
        "über nicht auch auf dem den des von bei wenn ob es mich mir sich einem "
        "einer kann".split()
    ),
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words of ``text``."""
    return [w.lower() for w in _WORD.findall(text)]


def detect_language(text: str, default: str = "en") -> str:
    """Best guess among ``en``, ``es`` and ``de``."""
    tokens = words(text)
    if not tokens:
        return default
    scores = {lang: sum(1.0 for t in tokens if t in stop) for lang, stop in STOP_WORDS.items()}
    lowered = text.lower()
    scores["es"] += 1.5 * sum(lowered.count(c) for c in "ñ¿¡áéíóú")
    scores["de"] += 1.5 * sum(lowered.count(c) for c in "äöüß")
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else default
