"""Structure-aware chunking with exact character offsets.

A document is split into paragraphs (lines or blank-line separated blocks),
headings open sections, and consecutive paragraphs of one section are packed
into chunks of at most ``max_tokens`` tokens *of the embedding model*. A
paragraph that is too long is split at sentence boundaries, and a sentence that
is still too long at whitespace, so no chunk ends mid-word (unless one word
alone exceeds the budget: it is cut) and nothing is silently truncated. Every
chunk satisfies ``text[start:end] == chunk.text``.

Q&A threads (a question post, comments, then a line such as ``Respuestas (2)``)
are split at that line: no chunk mixes the question with its answers, and each
chunk records which ``part`` it belongs to.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from advisor.types import Chunk, Sentence

__all__ = [
    "CHUNKER_VERSION",
    "chunk_document",
    "is_answers_marker",
    "is_heading",
    "spans_of_paragraphs",
    "split_sentences",
]

TokenCounter = Callable[[str], int]

# Bumped whenever the rules change, so `advisor ingest` re-chunks stored documents.
CHUNKER_VERSION = 2

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”»’)\]]*\s+")
_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s+\S")
# The line that opens the answers of a Q&A thread: "Respuestas (2)", "3 Answers", "Antworten: 4".
_ANSWERS = re.compile(
    r"^\s*(?:(?:answers|respuestas|antworten|réponses|risposte|respostas)\s*[:(\[]?\s*\d*\s*[)\]]?"
    r"|\d+\s+(?:answers?|respuestas?|antworten))\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


def spans_of_paragraphs(text: str) -> list[tuple[int, int]]:
    """Non-empty lines of ``text`` as ``(start, end)`` offsets, whitespace-trimmed."""
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"[^\n]+", text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def is_answers_marker(line: str) -> bool:
    """The line that separates a Q&A thread's question (and comments) from its answers."""
    return bool(_ANSWERS.match(line.strip().lstrip("#").strip()))


def is_heading(line: str) -> bool:
    """A short line that introduces a section: a title, ``Antes de ...``, ``1. Tip``."""
    stripped = line.strip().lstrip("#").strip()
    if not stripped or len(stripped) > 90:
        return False
    if is_answers_marker(stripped):
        return True
    if _NUMBERED.match(stripped):
        return True
    if line.lstrip().startswith("#"):
        return True
    words = stripped.split()
    return len(words) <= 8 and stripped[-1] not in ".!?…,;\"'”»:)" and stripped[0].isupper()


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentences of ``text`` with offsets shifted by ``offset`` (document offsets)."""
    out: list[Sentence] = []
    for line_start, line_end in spans_of_paragraphs(text):
        pos = line_start
        line = text[line_start:line_end]
        for match in _SENTENCE_END.finditer(line):
            end = line_start + match.start()
            # keep closing quotes with their sentence
            end += len(match.group(0)) - len(match.group(0).lstrip("\"'”»’)]"))
            if end > pos:
                out.append(Sentence(text[pos:end], offset + pos, offset + end))
            pos = line_start + match.end()
        if line_end > pos:
            out.append(Sentence(text[pos:line_end], offset + pos, offset + line_end))
    return [s for s in out if s.text.strip()]


def _split_words(text: str, start: int, end: int, budget: int, count: TokenCounter) -> Iterator[_Span]:
    """Split ``text[start:end]`` at whitespace into pieces of at most ``budget`` tokens.

    Each word is counted once; a run's size is the sum of its words' counts
    (never less than the run's own count for subword tokenizers), so the work is
    linear in the text instead of ``budget`` times it.
    """
    overhead = count("")  # special tokens a counter adds to every call
    cur_start: int | None = None
    cur_end = start
    used = 0
    for m in re.finditer(r"\S+", text[start:end]):
        ws, we = m.start() + start, m.end() + start
        n = max(1, count(text[ws:we]) - overhead)
        if n > budget - overhead and we - ws > 1:
            # one "word" longer than a chunk (a base64 blob, a minified line): cut it
            if cur_start is not None:
                yield _Span(cur_start, cur_end)
                cur_start = None
            yield from _split_chars(text, ws, we, n, budget, count)
            continue
        if cur_start is not None and used + n > budget - overhead:
            yield _Span(cur_start, cur_end)
            cur_start = None
        if cur_start is None:
            cur_start, used = ws, 0
        cur_end = we
        used += n
    if cur_start is not None:
        yield _Span(cur_start, cur_end)


def _split_chars(text: str, start: int, end: int, tokens: int, budget: int, count: TokenCounter) -> Iterator[_Span]:
    """Cut the single word ``text[start:end]`` (``tokens`` long) into pieces of at most ``budget`` tokens.

    The only place a chunk may end mid-word: an embedder would otherwise get
    (and truncate, or run out of memory on) a megabyte-long input.
    """
    step = max(1, (end - start) * budget // (2 * tokens))  # characters per piece, with room to spare
    pos = start
    while pos < end:
        stop = min(end, pos + step)
        while stop - pos > 1 and count(text[pos:stop]) > budget:
            stop = pos + (stop - pos) // 2
        yield _Span(pos, stop)
        pos = stop


def _units(text: str, start: int, end: int, budget: int, count: TokenCounter) -> Iterator[_Span]:
    """A paragraph as one unit, or its sentences (or word runs) when it is too long."""
    if count(text[start:end]) <= budget:
        yield _Span(start, end)
        return
    for sentence in split_sentences(text[start:end], offset=start):
        if count(sentence.text) <= budget:
            yield _Span(sentence.start, sentence.end)
        else:
            yield from _split_words(text, sentence.start, sentence.end, budget, count)


def chunk_document(
    doc_id: str,
    doc_sha: str,
    title: str,
    text: str,
    count_tokens: TokenCounter,
    max_tokens: int,
) -> list[Chunk]:
    """Chunks of ``text``; see the module docstring for the rules.

    Each paragraph (or sentence) is tokenised once; a chunk's size is the sum of
    its units' counts, which for subword tokenisers matches the count of the
    joined text (units are joined at whitespace).
    """
    budget = max(8, max_tokens)
    count = functools.lru_cache(maxsize=8192)(count_tokens)
    chunks: list[Chunk] = []
    paragraphs = spans_of_paragraphs(text)
    # In a Q&A thread the question post and its comments come before the answers marker.
    answers_at = next((a for a, b in paragraphs if is_answers_marker(text[a:b])), None)
    heading = ""
    cur: list[_Span] = []
    cur_tokens = 0
    cur_heading = ""

    def flush() -> None:
        nonlocal cur_tokens
        if not cur:
            return
        start, end = cur[0].start, cur[-1].end
        context = title if not cur_heading or cur_heading == title else " › ".join(x for x in (title, cur_heading) if x)
        digest = hashlib.sha256(f"{doc_id}\0{doc_sha}\0{start}:{end}".encode()).hexdigest()[:32]
        part = "" if answers_at is None else ("question" if start < answers_at else "answer")
        chunks.append(Chunk(digest, doc_id, len(chunks), start, end, text[start:end], context, part))
        cur.clear()
        cur_tokens = 0

    def add(unit: _Span, tokens: int) -> None:
        nonlocal cur_tokens
        cur.append(unit)
        cur_tokens += tokens

    for i, (p_start, p_end) in enumerate(paragraphs):
        line = text[p_start:p_end]
        line_tokens = count(line)
        fits = line_tokens <= budget
        if i == 0 and fits and line.strip() == title.strip():
            # the title line opens the first chunk
            cur_heading = heading = title
            add(_Span(p_start, p_end), line_tokens)
            continue
        if fits and is_heading(line):
            flush()
            heading = line.strip().lstrip("#").strip()
            cur_heading = heading
            add(_Span(p_start, p_end), line_tokens)
            continue
        for unit in _units(text, p_start, p_end, budget, count):
            unit_tokens = count(text[unit.start : unit.end])
            if cur and cur_tokens + unit_tokens > budget:
                flush()
            if not cur:
                cur_heading = heading
            add(unit, unit_tokens)
        # a full paragraph closes the chunk unless it is short: short ones are packed
        if cur and cur_tokens >= budget // 2:
            flush()
    flush()
    return chunks
