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
* :func:`draft_gone_astray` tells, while a draft streams, when it can no longer
  become a cited answer, so generation stops instead of running to its limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from advisor.chunking import split_sentences
from advisor.embedders import Embedder
from advisor.lang import detect_language, words
from advisor.safety import looks_like_instructions, strip_remote_content
from advisor.types import Passage, Sentence

__all__ = [
    "MARKER_RE",
    "Verified",
    "add_gloss",
    "clean_gloss",
    "draft_gone_astray",
    "excerpts",
    "extractive_answer",
    "passage_sentences",
    "quoted_parts",
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
    quotes: list[Sentence] = field(default_factory=list)  # best supporting sentence per citation


# target-like tokens: with a digit, in capitals, or a domain ("PWNED-3", "HIRED", "evil.example")
_TARGET_RE = re.compile(r"\b[\w-]*(?:\d|[A-Z]{3,})[\w-]*|\b\w+(?:\.\w+)+")


UNCITED_SENTENCES = 3  # complete sentences without any marker after which a draft is stopped

# A full stop that need not end a sentence: after a list number ("1."), a title or a common
# abbreviation ("Dr.", "vs.", "etc."), or initials ("e.g.", "i.e.", "z.B.").
_NOT_AN_END = re.compile(
    r"(?:^\s*(?:[-*+]\s*)?\d{1,3}|(?:^|[\s(])(?:[A-Z][a-z]{0,3}|[^\W\d_]|vs|etc|ca|cf|approx|incl|bzw|usw|vgl|ej"
    r"|[^\W\d_](?:\.[^\W\d_])+))\.$"
)
# a sentence ends in a full stop, "!", "?" or "…", perhaps with closing quotes or markers after it
_ENDS_A_SENTENCE = re.compile(r"[.!?…][\"'”»’)\]]*(?:\s*\[\d+\])*$")


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


def _draft_sentences(text: str) -> list[str]:
    """The complete sentences of a draft, pieces split at an abbreviation or list number joined."""
    # the last piece is still being written; a piece left over is continued by it
    return _joined([s.text for s in split_sentences(text)][:-1])[0]


def draft_gone_astray(text: str) -> bool:
    """Whether a draft, so far, has gone where no cited answer can come of it.

    Three complete sentences and no citation marker yet: the prompt asks for one
    after every sentence, and a sentence without one is dropped by :func:`verify`
    (a draft without any is discarded whole); two are allowed for a chatty opening
    ("Great question! Based on the sources, here is what to do."). Or a complete sentence that repeats
    an earlier one: a small model caught in a loop adds nothing from there on.
    The sentence still being written is not judged.
    """
    complete = _draft_sentences(text)
    # a heading or a list's lead-in ("Here are the steps:") is not a sentence that owes a marker
    sentences = [s for s in complete if _ENDS_A_SENTENCE.search(s)]
    if len(sentences) >= UNCITED_SENTENCES and not any(MARKER_RE.search(s) for s in complete):
        return True
    seen: set[str] = set()
    for sentence in complete:
        key = " ".join(words(sentence.lower()))
        if key and key in seen:
            return True
        seen.add(key)
    return False


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
    return [*joined, rest] if rest else joined


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
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
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


_FIRST_PERSON = re.compile(r"\b(my|mi|mis|mein|meine|meinem|meinen|meiner)\b", re.IGNORECASE)
NARRATIVE_PENALTY = 0.05


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
        # "my network ...", "mi red ...": someone telling their own story, not advice
        narrative = NARRATIVE_PENALTY if _FIRST_PERSON.search(s.text) else 0.0
        scored.append((float(sim) + rank_bonus - narrative, i, s))
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
    scored: list[tuple[float, int, Sentence]],
    asking: frozenset[int] = frozenset(),
    sources: Sequence[str] = (),
) -> list[tuple[str, int, Sentence]]:
    """Assign the best sentences to the parts of an advice-shaped answer.

    ``asking``: passages that are a Q&A thread's question part (they describe a
    situation); they supply the key point only when no advising sentence scores
    nearly as well, and never the when / how / caveat parts.
    """
    if not scored:
        return []
    advice = next((t for t in scored if t[0] >= scored[0][0] - _SLACK and t[1] not in asking), None)
    if advice is not None and advice is not scored[0]:
        scored = [advice, *(t for t in scored if t is not advice)]
    best_score, best_i, best_s = scored[0]
    parts = [("recommendation", best_i, best_s)]
    used = {(best_i, best_s.start)}  # sentences by (passage, offset): offsets repeat across documents
    window = [t for t in scored[1:_WINDOW] if t[0] >= best_score - _SLACK]

    def take(role: str, pattern: re.Pattern[str], same_source: bool = False, own_slack: float = 0.0) -> None:
        # a passage not quoted yet first: the parts then draw on several passages, which
        # both shows where they agree or disagree and hedges a wrong top passage;
        # ``own_slack``: how far below the key point a sentence of its own passage may
        # score when nothing else fits
        quoted = {i for _, i, _ in parts}
        fits = [
            t for t in window if t[1] not in asking and (t[1], t[2].start) not in used and pattern.search(t[2].text)
        ]
        if same_source and sources:
            fits = [t for t in fits if sources[t[1]] == sources[best_i]]
        # a passage not quoted yet first; else another sentence of a quoted one (the
        # timing is often in the key point's own answer: no new source, no wrong one)
        pool = [t for t in fits if t[1] not in quoted] or fits
        if not pool and own_slack and best_i not in asking:
            pool = [
                t
                for t in scored[1:]
                if t[1] == best_i
                and t[0] >= best_score - own_slack
                and (t[1], t[2].start) not in used
                and pattern.search(t[2].text)
            ]
        if pool:
            _score, i, sent = pool[0]
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
    def _filler_rank(t: tuple[float, int, Sentence]) -> int:
        same = bool(sources) and sources[t[1]] == sources[best_i] and t[1] not in asking
        return 0 if same else 1

    for _score, i, sent in sorted(scored[1:], key=_filler_rank):
        if len(parts) >= 3:
            break
        if sources and sources[i] != sources[best_i] and _score < best_score - _FILLER_SLACK:
            continue  # another article's sentence, far below the key point: more likely off-topic than a hedge
        if (i, sent.start) not in used and all(i != j for _, j, _ in parts):
            parts.append(("more", i, sent))
            used.add((i, sent.start))
    return parts


GLOSS_SUPPORT = 0.6  # cosine a gloss must reach with the sentence it translates
_GLOSS_LABEL = {"en": "machine translation", "es": "traducción automática", "de": "maschinelle Übersetzung"}
_PART_LINE = re.compile(r"^- [^:\n]+: “(?P<quote>.+)” \[(?P<n>\d+)\]$")


def quoted_parts(text: str) -> list[tuple[int, str, int]]:
    """``(line index, quote, marker)`` of each quoted part of an extractive answer."""
    out = []
    for i, line in enumerate(text.split("\n")):
        m = _PART_LINE.match(line)
        if m:
            out.append((i, m.group("quote"), int(m.group("n"))))
    return out


def clean_gloss(gloss: str, quote: str, lang: str, embedder: Embedder) -> str | None:
    """The model's translation of ``quote`` if it can be shown, else None.

    Shown only when it is one plain sentence in the question's language, carries no
    marker, link or instruction, and says what the quote says (embedding cosine).
    """
    lines = [ln.strip() for ln in gloss.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return None
    text = lines[0].strip(" \"'“”«»")
    n_words, limit = len(words(text)), 2 * len(words(quote)) + 10
    if not 3 <= n_words <= limit or strip_remote_content(text) != text or MARKER_RE.search(text):
        return None
    if looks_like_instructions(text) or detect_language(text, default="") != lang:
        return None
    vectors = embedder.embed_documents([text, quote])
    return text if float(vectors[0] @ vectors[1]) >= GLOSS_SUPPORT else None


def add_gloss(text: str, line: int, gloss: str, marker: int, lang: str) -> str:
    """``text`` with a marked translation under quoted part ``line``, citing the same source."""
    lines = text.split("\n")
    label = _GLOSS_LABEL.get(lang, _GLOSS_LABEL["en"])
    lines.insert(line + 1, f"  ({label}: “{gloss}” [{marker}])")
    return "\n".join(lines)


def extractive_answer(
    question: str,
    lang: str,
    passages: Sequence[Passage],
    embedder: Embedder,
    min_relative: float = 0.0,
) -> tuple[str, list[Passage], list[Sentence]]:
    """An advice-shaped answer built from verbatim passage sentences, each cited.

    Parts: the recommendation (the sentence closest to the question), when (if
    the question asks about timing), how (what to say or write), and a caveat
    (preferably from another source, where the articles disagree). Returns the
    text, the cited passages (``[i]`` = ``citations[i-1]``) and, for each
    citation, the sentence quoted from it (verbatim, with document offsets).
    """
    scored = _score_sentences(question, passages, embedder, min_relative)
    # a quoted "[9]" would read as a citation marker naming no citation
    scored = [t for t in scored if not MARKER_RE.search(t[2].text)]
    asking = frozenset(i for i, p in enumerate(passages) if p.part == "question")
    parts = _pick_parts(question, scored, asking, [p.source for p in passages])
    if not parts:
        return "", [], []
    labels = _LABELS.get(lang, _LABELS["en"])
    intro = _FRAME.get(lang, _FRAME["en"])[0]
    order: list[int] = []
    lines = [intro]
    for role, i, sent in parts:
        if i not in order:
            order.append(i)
        lines.append(f"- {labels[role]}: “{sent.text}” [{order.index(i) + 1}]")
    first: dict[int, Sentence] = {}
    for _role, i, sent in parts:
        first.setdefault(i, sent)
    return "\n".join(lines), [passages[i] for i in order], [first[i] for i in order]
