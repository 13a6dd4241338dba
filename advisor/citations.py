"""Citations: parse and check the model's markers.

* :func:`resolve_markers` keeps ``[n]`` markers that name a passage the model
  was shown, drops the others, and renumbers the kept ones 1..m in order of
  first use, so ``[i]`` in the final text is ``citations[i-1]``.
* :func:`verify` scores each cited sentence against the sentences of the
  passage it names (cross-lingual embedding similarity) and removes citations
  that do not support it; sentences left without a supporting citation (and
  instruction-like sentences) are dropped, so every sentence shown is cited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from advisor.chunking import split_sentences
from advisor.embedders import Embedder
from advisor.lang import words
from advisor.safety import looks_like_instructions, strip_remote_content
from advisor.types import Passage, Sentence

__all__ = [
    "MARKER_RE",
    "Verified",
    "evidence_sentences",
    "marker_numbers",
    "passage_sentences",
    "resolve_markers",
    "unsafe_model_text",
    "verify",
]

MARKER_RE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
SUPPORT_THRESHOLD = 0.35


def marker_numbers(text: str) -> list[int]:
    """The numbers of the single citation markers in ``text`` ("[2]"), in order."""
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


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
    quotes: list[Sentence] = field(default_factory=list)  # best supporting sentence per citation


# target-like tokens: with a digit, in capitals, or a domain ("PWNED-3", "HIRED", "evil.example")
_TARGET_RE = re.compile(r"\b[\w-]*(?:\d|[A-Z]{3,})[\w-]*|\b\w+(?:\.\w+)+")


def unsafe_model_text(text: str, evidence: Sequence[str]) -> str:
    """Why model-written ``text`` may not be shown beside ``evidence``, or "".

    A link or image (fetched when rendered), words addressed to a model, or a
    target-like token (a code, a word in capitals, a domain) that the evidence
    does not contain: what an injected instruction would make a model write.
    """
    if strip_remote_content(text) != text or "](" in text or "<" in text:
        return "a link, image or markup"
    if looks_like_instructions(text):
        return "words addressed to a model"
    source = " ".join(evidence)
    foreign = [t for t in _TARGET_RE.findall(text) if t not in source]
    if foreign:
        return f"{foreign[0]!r}, which the quoted evidence does not contain"
    return ""


# A full stop that need not end a sentence: after a list number ("1."), a title or a common
# abbreviation ("Dr.", "vs.", "etc."), or initials ("e.g.", "i.e.", "z.B.").
_NOT_AN_END = re.compile(
    r"(?:^\s*(?:[-*+]\s*)?\d{1,3}|(?:^|[\s(])(?:[A-Z][a-z]{0,3}|[^\W\d_]|vs|etc|ca|cf|approx|incl|bzw|usw|vgl|ej"
    r"|[^\W\d_](?:\.[^\W\d_])+))\.$"
)


def _joined(pieces: Sequence[str]) -> tuple[list[str], str]:
    """``pieces`` with each one split at an abbreviation or list number joined to the next.

    Returns the joined sentences and what is left over at the end (a piece that
    ends in such a full stop, waiting for its continuation), or "".
    """
    out: list[str] = []
    carry = ""
    for piece in pieces:
        carry = f"{carry} {piece}" if carry else piece
        if not _NOT_AN_END.search(carry):
            out.append(carry)
            carry = ""
    return out, carry


def _injected_tokens(passages: Sequence[Passage]) -> set[str]:
    """Target-like tokens the passages use only inside text addressed to a model."""
    bad: set[str] = set()
    fine: set[str] = set()
    for p in passages:
        for s in passage_sentences(p):
            found = set(_TARGET_RE.findall(s.text))
            (bad if looks_like_instructions(s.text) else fine).update(found)
    return bad - fine


_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d+\][,;]?)+")


def _claims(text: str) -> list[str]:
    """The sentences of ``text``, each with its markers: "Ask later. [1]" keeps its [1]."""
    pieces: list[str] = []
    for sentence in split_sentences(text):
        piece = sentence.text
        lead = _LEADING_MARKERS.match(piece)
        if lead and pieces:  # markers after the full stop belong to the sentence before
            pieces[-1] = f"{pieces[-1]} {lead.group(0).strip()}"
            piece = piece[lead.end() :].strip()
        if piece:
            pieces.append(piece)
    # "Dr. Smith recommends e.g. Python [1]." is one claim, not "Dr.", "Smith recommends e.g." and "Python [1]."
    joined, rest = _joined(pieces)
    return _whole_quotes([*joined, rest] if rest else joined)


def _whole_quotes(pieces: Sequence[str]) -> list[str]:
    """``pieces`` with a quotation that spans several sentences (“A. B.” [1]) joined into one claim."""
    out: list[str] = []
    for piece in pieces:
        if out and out[-1].count("“") > out[-1].count("”"):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def verify(
    text: str, citations: Sequence[Passage], embedder: Embedder, threshold: float = SUPPORT_THRESHOLD
) -> Verified:
    """Check every cited sentence against its passages; drop what is unsupported."""
    injected = _injected_tokens(citations)
    text = strip_remote_content(text)
    pieces = _claims(text)
    if not pieces:
        return Verified("", [], 0.0, 0)
    sent_vecs = embedder.embed_documents(pieces)
    passage_vecs: dict[int, np.ndarray] = {}
    passage_sents: dict[int, list[Sentence]] = {}
    best: dict[int, tuple[float, Sentence]] = {}  # citation -> its best supporting sentence
    for i, p in enumerate(citations, start=1):
        sents = evidence_sentences(p)
        if not sents:
            continue  # nothing in this passage can support a claim
        passage_sents[i] = sents
        passage_vecs[i] = embedder.embed_documents([x.text for x in sents])
    kept_sentences: list[str] = []
    supported = 0
    dropped = 0
    used: list[int] = []
    for sentence, vec in zip(pieces, sent_vecs, strict=True):
        numbers = marker_numbers(sentence)
        good = [n for n in numbers if n in passage_vecs and float(np.max(passage_vecs[n] @ vec)) >= threshold]
        bare = MARKER_RE.sub("", sentence).strip()
        if not words(bare):
            continue
        repeats = injected & set(_TARGET_RE.findall(bare))
        if not good or looks_like_instructions(bare) or repeats:
            # uncited, unsupported, or addressed to a model: never shown as advice
            dropped += 1
            continue
        supported += 1
        used.extend(n for n in good if n not in used)
        for n in good:
            sims = passage_vecs[n] @ vec
            j = int(np.argmax(sims))
            if n not in best or sims[j] > best[n][0]:
                best[n] = (float(sims[j]), passage_sents[n][j])
        kept_sentences.append(bare + "".join(f"[{n}]" for n in good))
    if not used:
        return Verified("", [], 0.0, dropped)
    # renumber to the citations actually kept (first use = [1])
    final_text, final_cites = resolve_markers(" ".join(kept_sentences), list(citations))
    by_chunk = {citations[n - 1].chunk_id: sent for n, (_sim, sent) in best.items()}
    quotes = [by_chunk[p.chunk_id] for p in final_cites]
    return Verified(final_text, final_cites, supported / (supported + dropped), dropped, quotes)
