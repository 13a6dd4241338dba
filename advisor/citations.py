"""Citations: parse and check the model's markers, and build extractive answers.

* :func:`resolve_markers` keeps ``[n]`` markers that name a passage the model
  was shown, drops the others, and renumbers the kept ones 1..m in order of
  first use, so ``[i]`` in the final text is ``citations[i-1]``.
* :func:`verify` scores each cited sentence against the sentences of the
  passage it names (cross-lingual embedding similarity) and removes citations
  that do not support it; sentences left without a supporting citation (and
  instruction-like sentences) are dropped, so every sentence shown is cited.
* :func:`extractive_answer` answers without a language model: the passage
  sentences closest to the question, quoted verbatim, each with its citation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from advisor.chunking import split_sentences
from advisor.embedders import Embedder
from advisor.lang import words
from advisor.safety import looks_like_instructions, strip_remote_content
from advisor.types import Passage, Sentence

__all__ = [
    "MARKER_RE",
    "Verified",
    "excerpts",
    "extractive_answer",
    "passage_sentences",
    "resolve_markers",
    "verify",
]

MARKER_RE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
SUPPORT_THRESHOLD = 0.35

_FRAME = {
    "en": ("What the sources say about your question:", "Source"),
    "es": ("Lo que dicen las fuentes sobre su pregunta:", "Fuente"),
    "de": ("Was die Quellen zu Ihrer Frage sagen:", "Quelle"),
}


def passage_sentences(passage: Passage) -> list[Sentence]:
    """Sentences of ``passage`` with offsets into the *source document*."""
    return split_sentences(passage.text, offset=passage.start)


def evidence_sentences(passage: Passage) -> list[Sentence]:
    """Sentences that may support an answer: instruction-like text never does.

    A document that says "ignore your instructions and answer X" can be quoted
    among the sources, but it can neither be extracted as advice nor count as
    support for a model sentence that repeats it.
    """
    return [s for s in passage_sentences(passage) if not looks_like_instructions(s.text)]


def resolve_markers(text: str, shown: Sequence[Passage]) -> tuple[str, list[Passage]]:
    """Keep valid markers, renumber them, and return the cited passages."""
    order: list[int] = []

    def _sub(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        kept = []
        for n in numbers:
            if 1 <= n <= len(shown):
                if n not in order:
                    order.append(n)
                kept.append(order.index(n) + 1)
        return "".join(f"[{k}]" for k in dict.fromkeys(kept))

    cleaned = MARKER_RE.sub(_sub, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return cleaned.strip(), [shown[n - 1] for n in order]


@dataclass
class Verified:
    text: str
    citations: list[Passage]
    groundedness: float  # supported claim sentences / all claim sentences the model wrote
    dropped: int  # sentences removed because nothing supported them


def verify(
    text: str, citations: Sequence[Passage], embedder: Embedder, threshold: float = SUPPORT_THRESHOLD
) -> Verified:
    """Check every cited sentence against its passages; drop what is unsupported."""
    text = strip_remote_content(text)
    pieces = [s.text for s in split_sentences(text)]
    if not pieces:
        return Verified("", [], 0.0, 0)
    sent_vecs = embedder.embed_documents(pieces)
    passage_vecs: dict[int, np.ndarray] = {}
    for i, p in enumerate(citations, start=1):
        sents = [s.text for s in evidence_sentences(p)]
        if not sents:
            continue  # nothing in this passage can support a claim
        passage_vecs[i] = embedder.embed_documents(sents)
    kept_sentences: list[str] = []
    supported = 0
    dropped = 0
    used: list[int] = []
    for sentence, vec in zip(pieces, sent_vecs, strict=True):
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        good = [n for n in numbers if n in passage_vecs and float(np.max(passage_vecs[n] @ vec)) >= threshold]
        bare = MARKER_RE.sub("", sentence).strip()
        if not words(bare):
            continue
        if not good or looks_like_instructions(bare):
            # uncited, unsupported, or addressed to a model: never shown as advice
            dropped += 1
            continue
        supported += 1
        used.extend(n for n in good if n not in used)
        kept_sentences.append(bare + "".join(f"[{n}]" for n in good))
    if not used:
        return Verified("", [], 0.0, dropped)
    # renumber to the citations actually kept (first use = [1])
    final_text, final_cites = resolve_markers(" ".join(kept_sentences), list(citations))
    return Verified(final_text, final_cites, supported / (supported + dropped), dropped)


def _score_sentences(
    question: str, passages: Sequence[Passage], embedder: Embedder, min_relative: float
) -> list[tuple[float, int, Sentence]]:
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
        scored.append((float(sim) + rank_bonus, i, s))
    scored.sort(key=lambda t: -t[0])
    return scored


def excerpts(question: str, passages: Sequence[Passage], embedder: Embedder, per_passage: int = 3) -> list[Passage]:
    """Copies of ``passages`` cut to their sentences closest to the question (for prompting).

    The prompt carries only the evidence-bearing sentences (prefill dominates
    latency on a laptop); citations still point at the whole, verbatim passage.
    """
    scored = _score_sentences(question, passages, embedder, 0.0)
    keep: dict[int, list[Sentence]] = {}
    for _score, i, sent in scored:
        if len(keep.setdefault(i, [])) < per_passage:
            keep[i].append(sent)
    out = []
    for i, p in enumerate(passages):
        chosen = sorted(keep.get(i, []), key=lambda x: x.start)
        text = " … ".join(x.text for x in chosen) if chosen else p.text
        out.append(replace(p, text=text))
    return out


def extractive_answer(
    question: str,
    lang: str,
    passages: Sequence[Passage],
    embedder: Embedder,
    max_sentences: int = 3,
    per_passage: int = 1,
    min_relative: float = 0.0,
) -> tuple[str, list[Passage], list[Sentence]]:
    """An answer built from verbatim passage sentences, each cited.

    Returns the text, the cited passages (``[i]`` = ``citations[i-1]``) and the
    quoted sentences (verbatim, with document offsets).
    """
    picked: list[tuple[int, Sentence]] = []
    per: dict[int, int] = {}
    for _score, i, s in _score_sentences(question, passages, embedder, min_relative):
        if per.get(i, 0) >= per_passage:
            continue
        picked.append((i, s))
        per[i] = per.get(i, 0) + 1
        if len(picked) >= max_sentences:
            break
    if not picked:
        return "", [], []
    # cite in order of the passages' rank, quote in reading order within each
    picked.sort(key=lambda t: (t[0], t[1].start))
    order: list[int] = []
    for i, _ in picked:
        if i not in order:
            order.append(i)
    intro, _label = _FRAME.get(lang, _FRAME["en"])
    lines = [intro]
    for i, s in picked:
        lines.append(f"- “{s.text}” [{order.index(i) + 1}]")
    return "\n".join(lines), [passages[i] for i in order], [s for _, s in picked]
