"""Does a model-written sentence say what its evidence sentence says?

Cross-lingual embedding similarity sees the topic, not a flipped negation, a
changed number or a swapped speaker, so every model-written sentence passes
two more checks before it is shown:

* :func:`lexical_conflicts`: cues that must agree across languages: negation
  (not / never / no / nunca / nicht / kein …), numbers and time spans
  (digits and number words), and order in time (before / after, antes /
  después, vor / nach). Cheap and exact, but blind to who does what.
* :func:`judge` scores the pair with the model itself (a generator's
  ``forced_logprobs``): how likely the model finds the claim as a rendering
  of the evidence. A reversal, a role swap or a changed number puts at
  least one token the model finds very unlikely into the claim.

:func:`check_claim` combines both; its thresholds are measured on
``tests/data/claims.yaml`` (``scripts/faithfulness.py`` prints how many wrong
claims each check stops and how many right ones it keeps).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from advisor.generation import Generator
from advisor.prompts import Message, check_messages, claim_messages

__all__ = [
    "CLAIM_JUDGE",
    "JUDGE_THRESHOLD",
    "TRANSLATION_THRESHOLD",
    "Verdict",
    "check_claim",
    "claim_probability",
    "lexical_conflicts",
    "members",
    "model_check",
    "negations",
    "numbers",
    "time_order",
    "yes_probability",
]

_NEGATION = {
    "en": r"not|no|never|nothing|none|nobody|neither|nor|without|cannot|n't|unnecessary",
    "es": r"no|nunca|jamás|nada|ningún|ninguna|ninguno|nadie|ni|sin|tampoco|innecesario|innecesaria",
    "de": r"nein|nicht|kein|keine|keinen|keinem|keiner|keines|nie|niemals|nichts|niemand|weder|noch nie|ohne|unnötig",
}
_NEG_RE = {lang: re.compile(rf"(?<!\w)(?:{alts})(?!\w)|n't\b", re.IGNORECASE) for lang, alts in _NEGATION.items()}
# "not only", "no solo", "nicht nur": no negation of what follows
_NOT_ONLY = re.compile(r"(?<!\w)(?:not only|not just|no solo|no sólo|no solamente|nicht nur)(?!\w)", re.IGNORECASE)

_NUMBER_WORDS = {  # number words by language ("un"/"ein" are articles far more often than numbers)
    "en": {
        2: "two",
        3: "three",
        4: "four",
        5: "five",
        6: "six",
        7: "seven",
        8: "eight",
        9: "nine",
        10: "ten",
        12: "twelve",
        15: "fifteen",
        20: "twenty",
        30: "thirty",
    },
    "es": {
        2: "dos",
        3: "tres",
        4: "cuatro",
        5: "cinco",
        6: "seis",
        7: "siete",
        8: "ocho",
        9: "nueve",
        10: "diez",
        12: "doce",
        15: "quince",
        20: "veinte",
        30: "treinta",
    },
    "de": {
        2: "zwei",
        3: "drei",
        4: "vier",
        5: "fünf",
        6: "sechs",
        7: "sieben",
        8: "acht",
        9: "neun",
        10: "zehn",
        12: "zwölf",
        15: "fünfzehn",
        20: "zwanzig",
        30: "dreißig",
    },
}
_NUM_RE = {
    lang: [(n, re.compile(rf"(?<!\w){word}(?:mal)?(?!\w)", re.IGNORECASE)) for n, word in table.items()]
    for lang, table in _NUMBER_WORDS.items()
}
_DIGITS = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?")

_BEFORE = re.compile(r"(?<!\w)(?:before|prior to|antes|previo|previa|vor|vorher|bevor|zuvor)(?!\w)", re.IGNORECASE)
_AFTER = re.compile(
    r"(?<!\w)(?:after|afterwards|later|después|luego|tras|nach|nachdem|danach|später)(?!\w)", re.IGNORECASE
)


# Closed classes whose members must match across languages: a changed member changes the claim.
_CLASSES: dict[str, dict[str, str]] = {
    "time unit": {
        "day": r"days?|d[ií]as?|tag(?:e|en)?|täglich",
        "week": r"weeks?|weekly|semanas?|semanal\w*|wochen?|wöchentlich",
        "month": r"months?|monthly|mes|meses|mensual\w*|monat(?:e|en)?|monatlich",
        "year": r"years?|yearly|annual\w*|años?|anual\w*|jahr(?:e|en)?|jährlich",
        "hour": r"hours?|horas?|stunden?",
    },
    "comparison": {
        "more": r"more|most|riskier|better|más|mejor|mehr|meisten|besser",
        "less": r"less|least|fewer|worse|menos|peor|weniger|wenigsten|schlechter",
    },
    "order": {
        "first": r"first|primer[oa]?|erste[nrms]?",
        "second": r"second|segund[oa]|zweite[nrms]?",
        "third": r"third|tercer[oa]?|dritte[nrms]?",
        "last": r"last|final|último|última|letzte[nrms]?",
    },
    "frequency": {
        "always": r"always|siempre|immer",
        "often": r"often|frequently|usually|a menudo|con frecuencia|suele|oft|häufig|meistens",
        "sometimes": r"sometimes|a veces|manchmal",
        "rarely": r"rarely|seldom|rara vez|selten",
    },
}
_CLASS_RE = {
    name: {member: re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE) for member, alts in members.items()}
    for name, members in _CLASSES.items()
}


def members(text: str, name: str) -> frozenset[str]:
    """Which members of closed class ``name`` (time unit, comparison, order, frequency) ``text`` uses."""
    return frozenset(m for m, pattern in _CLASS_RE[name].items() if pattern.search(text))


def negations(text: str, lang: str) -> int:
    """How many negation cues ``text`` holds (its language's list; English's when unknown)."""
    return len(_NEG_RE.get(lang, _NEG_RE["en"]).findall(_NOT_ONLY.sub(" ", text)))


def numbers(text: str, lang: str) -> frozenset[float]:
    """The numbers ``text`` names, as digits or as number words of its language."""
    found = {float(m.group(0).replace(",", ".")) for m in _DIGITS.finditer(text)}
    found.update(float(n) for n, pattern in _NUM_RE.get(lang, _NUM_RE["en"]) if pattern.search(text))
    return frozenset(found)


def time_order(text: str) -> frozenset[str]:
    """Which of "before" and "after" ``text`` speaks of."""
    out = set()
    if _BEFORE.search(text):
        out.add("before")
    if _AFTER.search(text):
        out.add("after")
    return frozenset(out)


def lexical_conflicts(evidence: str, evidence_lang: str, claim: str, claim_lang: str) -> list[str]:
    """Why ``claim`` cannot be a faithful rendering of ``evidence`` (empty: no conflict found)."""
    problems = []
    if (negations(evidence, evidence_lang) % 2) != (negations(claim, claim_lang) % 2):
        problems.append("negation differs")
    ev_numbers, claim_numbers = numbers(evidence, evidence_lang), numbers(claim, claim_lang)
    if claim_numbers ^ ev_numbers:
        problems.append("numbers differ")
    ev_order, claim_order = time_order(evidence), time_order(claim)
    if claim_order and ev_order and not claim_order & ev_order:
        problems.append("before/after swapped")
    for name in _CLASSES:
        said, claimed = members(evidence, name), members(claim, name)
        if claimed and said and not claimed & said:
            problems.append(f"{name} changed")
    return problems


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one claim against its evidence."""

    ok: bool
    score: float  # the model's score (higher: more faithful); nan when the model was not asked
    reasons: tuple[str, ...] = ()


# The model's probability of "yes" below which a claim is refused. Measured with scripts/faithfulness.py
# on tests/data/claims.yaml (78 pairs, with the lexical check): 0.5 stops 29/39 wrong claims and keeps
# 33/39 right ones; 0.4 stops 25/39 and keeps 37/39. A composed answer sentence gets the stricter one
# (a wrong one misleads; refusing it leaves the quotes); a translation the one that keeps 9 in 10 right.
JUDGE_THRESHOLD = 0.5
TRANSLATION_THRESHOLD = 0.4


def yes_probability(generator: Generator, messages: Sequence[Message]) -> float:
    """The model's probability of answering "yes" rather than "no" to ``messages``.

    Read from the model's scores of the two replies (one forward pass; the
    prompt is shared). A generator that cannot score (an OpenAI-compatible
    server) answers once under a yes/no grammar instead: 1.0 or 0.0.
    """
    import math

    scores: dict[str, float] = {}
    for reply in ("yes", "Yes", "no", "No"):
        logprobs = generator.score(messages, reply)
        if logprobs is None:
            said = generator.chat(messages, 2, grammar='root ::= "yes" | "no"').text.strip().lower()
            return 1.0 if said == "yes" else 0.0
        scores[reply] = math.exp(sum(logprobs))
    yes = scores["yes"] + scores["Yes"]
    no = scores["no"] + scores["No"]
    return yes / (yes + no) if yes + no > 0 else 0.0


def model_check(
    generator: Generator, source: str, source_lang: str, claim: str, claim_lang: str, threshold: float = JUDGE_THRESHOLD
) -> Verdict:
    """Whether the model, asked strictly, finds that ``claim`` says what ``source`` says (see check_claim)."""
    p = yes_probability(generator, check_messages(source, source_lang, claim, claim_lang))
    if p < threshold:
        return Verdict(False, p, (f"the model's check found a difference (p={p:.2f})",))
    return Verdict(True, p)


def check_claim(
    generator: Generator | None,
    source: str,
    source_lang: str,
    claim: str,
    claim_lang: str,
    threshold: float = JUDGE_THRESHOLD,
) -> Verdict:
    """Both checks: the lexical conflicts first (free), then the model (when there is one)."""
    conflicts = lexical_conflicts(source, source_lang, claim, claim_lang)
    if conflicts:
        return Verdict(False, float("nan"), tuple(conflicts))
    if generator is None:
        return Verdict(True, float("nan"))
    return model_check(generator, source, source_lang, claim, claim_lang, threshold)


# The model's probability of "yes" at which a statement of an answer counts as making an expected
# claim (``advisor eval``'s claim_recall with a model). Measured with scripts/faithfulness.py
# --claim-match on tests/data/claim_match.yaml (52 hand-labelled pairs): 0.6 agrees with 38/52 labels,
# finds 16/28 real matches and wrongly matches 2/24; 0.5 agrees 34/52 but wrongly matches 9/24 (a
# lenient judge would flatter the metric). The cosine rule agreed 22/52 (chance).
CLAIM_JUDGE = 0.6


def claim_probability(generator: Generator, statement: str, claim: str) -> float:
    """The model's probability that ``statement`` (from an answer) makes the expected point ``claim``."""
    return yes_probability(generator, claim_messages(statement, claim))
