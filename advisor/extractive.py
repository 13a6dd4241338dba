"""Extractive answers: the passage sentences closest to the question, quoted verbatim.

:func:`select_evidence` picks them (a key point; when, if the question asks;
how; a caveat from the key point's own document; more sentences up to three),
:func:`extractive_answer` frames them as an answer in the question's language
with a citation each. The model-written answer (:mod:`advisor.answering`) starts from the
same selection, so both modes rest on the same evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from advisor.citations import MARKER_RE, evidence_sentences, passage_sentences
from advisor.embedders import Embedder
from advisor.lang import words
from advisor.safety import looks_like_instructions
from advisor.types import Passage, Sentence

__all__ = ["FRAME", "Pick", "extractive_answer", "points_back", "select_evidence", "self_contained"]

FRAME = {
    "en": ("What the sources say about your question:", "Source"),
    "es": ("Lo que dicen las fuentes sobre su pregunta:", "Fuente"),
    "de": ("Was die Quellen zu Ihrer Frage sagen:", "Quelle"),
}


@dataclass(frozen=True)
class Scored:
    """A candidate sentence: its score against the question and the passage it is in."""

    score: float
    index: int  # the passage's position in the retrieved list
    sentence: Sentence


@dataclass(frozen=True)
class Pick:
    """A sentence chosen for an answer, with the part it plays."""

    role: str  # recommendation | timing | how | caveat | more
    index: int  # the passage's position in the retrieved list
    sentence: Sentence


_FIRST_PERSON = re.compile(r"\b(my|mi|mis|mein|meine|meinem|meinen|meiner)\b", re.IGNORECASE)
NARRATIVE_PENALTY = 0.05


def _score_sentences(
    question: str, passages: Sequence[Passage], embedder: Embedder, min_relative: float
) -> list[Scored]:
    candidates: list[tuple[int, Sentence]] = []
    top = max((p.score for p in passages), default=0.0)
    for i, p in enumerate(passages):
        if p.score < min_relative * top:
            continue  # far weaker than the best passage: likely off-topic
        for s in evidence_sentences(p):
            n_words = len(words(s.text))
            if n_words < 6 or s.text.rstrip().endswith("?") or s.text.strip() == p.title.strip():
                continue
            candidates.append((i, s))
    if not candidates:
        return []
    q = embedder.embed_query(question)
    vecs = embedder.embed_documents([s.text for _, s in candidates])
    sims = vecs @ q
    scored = []
    for (i, s), sim in zip(candidates, sims, strict=True):
        rank_bonus = 0.04 * (len(passages) - i) / max(1, len(passages))
        # "my network ...", "mi red ...": someone telling their own story, not advice
        narrative = NARRATIVE_PENALTY if _FIRST_PERSON.search(s.text) else 0.0
        scored.append(Scored(float(sim) + rank_bonus - narrative, i, s))
    scored.sort(key=lambda t: -t.score)
    return scored


_LABELS = {
    "en": {"recommendation": "Key point", "timing": "When", "how": "How", "caveat": "Caveat", "more": "Also"},
    "es": {"recommendation": "Punto clave", "timing": "Cuándo", "how": "Cómo", "caveat": "Matiz", "more": "Además"},
    "de": {"recommendation": "Kernaussage", "timing": "Wann", "how": "Wie", "caveat": "Vorbehalt", "more": "Außerdem"},
}
_TIMING_Q = re.compile(
    r"\b(when|timing|before|after|how long|cu[aá]ndo|cu[aá]nto tarda|antes|despu[eé]s|momento"
    r"|wann|vorher|nachher|zeitpunkt|wie lange|dauert)\b",
    re.IGNORECASE,
)
_TIMING_S = re.compile(
    r"\b(before|after|until|wait|weeks?|days?|antes|despu[eé]s|hasta|semanas?|d[ií]as|momento"
    r"|vor|nach|bis|warten|wochen?|tagen?)\b",
    re.IGNORECASE,
)
_HOW_S = re.compile(
    r"\b(say|write|message|e-?mail|thank|decir|diga|escrib\w*|mensaje|correo|carta|agradec\w*"
    r"|sagen|schreib\w*|nachricht|dankesch[oö]n)\b",
    re.IGNORECASE,
)
_CAVEAT_S = re.compile(
    r"\b(but|however|careful|risk|backfire|unless|pero|sin embargo|cuidado|contraproducente|salir mal"
    r"|aber|jedoch|vorsicht)\b",
    re.IGNORECASE,
)
_WINDOW = 8  # candidates considered for the timing / how / caveat parts
_SLACK = 0.12  # how far below the best sentence a part may score
_TIMING_SLACK = 0.2  # ... and a timing sentence in the key point's own passage, when the question asks "when?"
# how far below the key point an "Also" sentence from another article may score
# (0.15: the highest citation precision on tests/scenarios/shipped.yaml with no loss of recall)
_FILLER_SLACK = 0.15


def _pick_parts(
    question: str,
    scored: list[Scored],
    asking: frozenset[int] = frozenset(),
    sources: Sequence[str] = (),
) -> list[tuple[str, int, Sentence]]:  # (role, passage index, sentence)
    """Assign the best sentences to the parts of an advice-shaped answer.

    ``asking``: passages that are a Q&A thread's question part (they describe a
    situation); they supply the key point only when no advising sentence scores
    nearly as well, and never the when / how / caveat parts.
    """
    if not scored:
        return []
    advice = next((t for t in scored if t.score >= scored[0].score - _SLACK and t.index not in asking), None)
    if advice is not None and advice is not scored[0]:
        scored = [advice, *(t for t in scored if t is not advice)]
    best_score, best_i, best_s = scored[0].score, scored[0].index, scored[0].sentence
    parts = [("recommendation", best_i, best_s)]
    used = {(best_i, best_s.start)}  # sentences by (passage, offset): offsets repeat across documents
    window = [t for t in scored[1:_WINDOW] if t.score >= best_score - _SLACK]

    def take(role: str, pattern: re.Pattern[str], same_source: bool = False, own_slack: float = 0.0) -> None:
        # a passage not quoted yet first: the parts then draw on several passages, which
        # both shows where they agree or disagree and hedges a wrong top passage;
        # ``own_slack``: how far below the key point a sentence of its own passage may
        # score when nothing else fits
        quoted = {i for _, i, _ in parts}
        fits = [
            t
            for t in window
            if t.index not in asking and (t.index, t.sentence.start) not in used and pattern.search(t.sentence.text)
        ]
        if same_source and sources:
            fits = [t for t in fits if sources[t.index] == sources[best_i]]
        # a passage not quoted yet first; else another sentence of a quoted one (the
        # timing is often in the key point's own answer: no new source, no wrong one)
        pool = [t for t in fits if t.index not in quoted] or fits
        if not pool and own_slack and best_i not in asking:
            pool = [
                t
                for t in scored[1:]
                if t.index == best_i
                and t.score >= best_score - own_slack
                and (t.index, t.sentence.start) not in used
                and pattern.search(t.sentence.text)
            ]
        if pool:
            i, sent = pool[0].index, pool[0].sentence
            parts.append((role, i, sent))
            used.add((i, sent.start))

    if _TIMING_Q.search(question):
        # asked "when?": the key point's own passage may answer it a little further down
        take("timing", _TIMING_S, own_slack=_TIMING_SLACK)
    take("how", _HOW_S)
    # a caveat qualifies the key point: it comes from the same document (where these
    # articles' answers disagree); from another article it was off-topic 8 times in 9
    take("caveat", _CAVEAT_S, same_source=True)

    # at least three sentences in all, from passages not quoted yet (a wider net):
    # advice from the key point's own document first
    def _filler_rank(t: Scored) -> int:
        same = bool(sources) and sources[t.index] == sources[best_i] and t.index not in asking
        return 0 if same else 1

    for item in sorted(scored[1:], key=_filler_rank):
        i, sent = item.index, item.sentence
        if len(parts) >= 3:
            break
        if sources and sources[i] != sources[best_i] and item.score < best_score - _FILLER_SLACK:
            continue  # another article's sentence, far below the key point: more likely off-topic than a hedge
        if (i, sent.start) not in used and all(i != j for _, j, _ in parts):
            parts.append(("more", i, sent))
            used.add((i, sent.start))
    return parts


def select_evidence(
    question: str, passages: Sequence[Passage], embedder: Embedder, min_relative: float = 0.0
) -> list[Pick]:
    """The sentences an answer rests on, best first, each with the part it plays.

    Parts: the key point (the sentence closest to the question), when (if the
    question asks about timing), how (what to say or write), a caveat from the
    key point's own document, and more sentences up to three in all. A sentence
    that opens by pointing back ("Es ist immer noch die beste Möglichkeit …") is
    quoted together with the sentence before it (:func:`self_contained`).
    """
    scored = _score_sentences(question, passages, embedder, min_relative)
    # a quoted "[9]" would read as a citation marker naming no citation
    scored = [t for t in scored if not MARKER_RE.search(t.sentence.text)]
    asking = frozenset(i for i, p in enumerate(passages) if p.part == "question")
    parts = _pick_parts(question, scored, asking, [p.source for p in passages])
    taken = {(passages[i].source, sent.start) for _, i, sent in parts}
    return [Pick(role, i, self_contained(passages[i], sent, taken)) for role, i, sent in parts]


# A sentence whose subject points back to the one before it: read alone, "It is still the best way to
# follow up" (the thank-you note, in its article) answers a question about a LinkedIn request. English
# and Spanish pronouns in any case; German ones capitalised, as a sentence starts, and followed by a
# lower-case word: a pronoun ("Das ist …"), not an article ("Das Herstellen …").
_POINTS_BACK = re.compile(
    r"(?i:it|this|that|these|those|they|he|she|his|her|their)\s+[a-z]"
    r"|(?i:esto|eso|ello|esta|este|estas|estos|él|ella|ellos|ellas|su|sus)\s+[a-záéíóúñ]"
    r"|(?:Es|Das|Dies|Dieser|Diese|Dieses|Er|Sein|Seine)\s+[a-zäöü]"
)


def points_back(text: str) -> bool:
    """Whether ``text`` opens with a pronoun or demonstrative that needs the sentence before it."""
    return bool(_POINTS_BACK.match(text.lstrip(" \"'“”„«»(")))


def self_contained(passage: Passage, sentence: Sentence, taken: set[tuple[str, int]] | None = None) -> Sentence:
    """``sentence``, or it and the sentence before it as one verbatim quote when it points back.

    The sentence before must be in the same paragraph of ``passage``, be one that may support an
    answer (not addressed to a model, as :func:`advisor.citations.evidence_sentences` has it: an
    instruction planted in a document never joins a quote), and not be quoted already (``taken``:
    (source, start) pairs).
    """
    if not points_back(sentence.text):
        return sentence
    before = [s for s in passage_sentences(passage) if s.end <= sentence.start]
    if not before:
        return sentence
    prev = before[-1]
    gap = passage.text[prev.end - passage.start : sentence.start - passage.start]
    if "\n" in gap or looks_like_instructions(prev.text) or (passage.source, prev.start) in (taken or set()):
        return sentence
    text = passage.text[prev.start - passage.start : sentence.end - passage.start]
    return Sentence(text=text, start=prev.start, end=sentence.end)


def extractive_answer(
    lang: str, passages: Sequence[Passage], picks: Sequence[Pick]
) -> tuple[str, list[Passage], list[Sentence]]:
    """An advice-shaped answer built from the picked sentences, verbatim, each cited.

    Returns the text (a frame line in ``lang``, then one labelled quote per
    line), the cited passages (``[i]`` = ``citations[i-1]``) and the sentence
    quoted from each (verbatim, with document offsets): one citation per quote.
    """
    if not picks:
        return "", [], []
    labels = _LABELS.get(lang, _LABELS["en"])
    lines = [FRAME.get(lang, FRAME["en"])[0]]
    for n, pick in enumerate(picks, start=1):
        lines.append(f"- {labels[pick.role]}: “{pick.sentence.text}” [{n}]")
    return "\n".join(lines), [passages[p.index] for p in picks], [p.sentence for p in picks]
