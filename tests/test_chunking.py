"""Chunking: exact offsets, order, token budget and word boundaries, for any text."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from advisor.chunking import chunk_document, is_answers_marker, is_heading, spans_of_paragraphs, split_sentences


def ws_count(text: str) -> int:
    return len(text.split())


def chunk(text: str, max_tokens: int, title: str = "", doc_id: str = "doc") -> list:
    sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return chunk_document(doc_id, sha, title, text, ws_count, max_tokens)


# ---------------------------------------------------------------- strategies
ALPHABET = "abcdefghijklmnopqrstuvwxyzäöüßñéáóíúçøåłžşğ日本данныеελλ😀"
word = st.text(alphabet=ALPHABET, min_size=1, max_size=8)
long_word = st.text(alphabet=ALPHABET + "0123456789-_/", min_size=12, max_size=40)
sentence_end = st.sampled_from([".", "!", "?", "…", ".\u201d", "?)", ".'", ""])


@st.composite
def sentence(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.one_of(word, word, word, long_word), min_size=1, max_size=25))
    if draw(st.booleans()):
        words[0] = words[0].capitalize()
    return " ".join(words) + draw(sentence_end)


@st.composite
def paragraph(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["prose", "prose", "prose", "heading", "numbered", "hash", "blank-ish"]))
    if kind == "heading":
        return " ".join(draw(st.lists(word, min_size=1, max_size=6))).capitalize()
    if kind == "numbered":
        return f"{draw(st.integers(1, 20))}. " + " ".join(draw(st.lists(word, min_size=1, max_size=20)))
    if kind == "hash":
        return "## " + " ".join(draw(st.lists(word, min_size=1, max_size=20)))
    if kind == "blank-ish":
        return draw(st.sampled_from(["", "   ", "\t", "\u00a0"]))
    sep = draw(st.sampled_from([" ", "  ", " \u00a0", "\t"]))
    return sep.join(draw(st.lists(sentence(), min_size=1, max_size=6)))


@st.composite
def document(draw: st.DrawFn) -> str:
    paras = draw(st.lists(paragraph(), min_size=1, max_size=8))
    newline = st.sampled_from(["\n", "\n\n", "  \n", "\r\n", "\n \n"])
    seps = draw(st.lists(newline, min_size=len(paras), max_size=len(paras)))
    lead = draw(st.sampled_from(["", "\n", "  "]))
    return lead + "".join(p + s for p, s in zip(paras, seps, strict=True))


any_text = st.one_of(document(), st.text(max_size=400))
budgets = st.integers(min_value=8, max_value=120)


def assert_chunk_invariants(text: str, chunks: list, budget: int) -> None:
    prev_end = 0
    for i, ch in enumerate(chunks):
        # exact offsets
        assert text[ch.start : ch.end] == ch.text
        assert ch.index == i
        # in order and non-overlapping
        assert ch.start >= prev_end, (prev_end, ch)
        assert ch.end > ch.start
        prev_end = ch.end
        # starts and ends on a word boundary, never on whitespace
        assert not ch.text[0].isspace() and not ch.text[-1].isspace(), ch
        around_start, around_end = text[ch.start - 3 : ch.start + 3], text[ch.end - 3 : ch.end + 3]
        assert ch.start == 0 or text[ch.start - 1].isspace(), f"chunk {i} starts mid-word: {around_start!r}"
        assert ch.end == len(text) or text[ch.end].isspace(), f"chunk {i} ends mid-word: {around_end!r}"


def non_space(s: str) -> int:
    return sum(1 for c in s if not c.isspace())


# ---------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_text, budget=budgets)
@example(text="Word " * 500, budget=8)
@example(text="x" * 5000, budget=8)
@example(text="First para.\n\nSecond para.\n", budget=8)
def test_chunks_are_exact_ordered_word_aligned_and_lose_nothing(text: str, budget: int) -> None:
    chunks = chunk(text, budget)
    assert_chunk_invariants(text, chunks, budget)
    # nothing is dropped: every non-whitespace character is inside some chunk
    assert sum(non_space(c.text) for c in chunks) == non_space(text)


def first_line_title(text: str) -> str:
    """The title read_document() derives when there is no manifest: the first non-blank line."""
    return next((ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()), "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_text, budget=budgets, title_from_text=st.booleans())
@example(text="1. " + " ".join(["word"] * 30) + "\nBody.", budget=8, title_from_text=False)
@example(text=" ".join(["Title"] * 30) + "\nBody.", budget=8, title_from_text=True)
def test_no_chunk_exceeds_the_budget_unless_it_is_one_word(text: str, budget: int, title_from_text: bool) -> None:
    title = first_line_title(text) if title_from_text else "Some title"
    for ch in chunk(text, budget, title=title):
        assert ws_count(ch.text) <= budget or ws_count(ch.text) == 1, (budget, ch.text)


# Regression: long numbered / # headings used to become over-budget chunks.
def test_a_long_numbered_heading_is_not_an_over_budget_chunk() -> None:
    heading = "1. " + " ".join(f"w{i}" for i in range(20))  # 21 tokens, 80 chars: is_heading() says yes
    assert is_heading(heading)
    text = f"{heading}\nShort body sentence here.\n"
    for ch in chunk(text, 8):
        assert ws_count(ch.text) <= 8 or ws_count(ch.text) == 1, ch.text


@settings(max_examples=100, deadline=None)
@given(text=any_text, budget=budgets)
def test_chunk_ids_are_deterministic_and_unique(text: str, budget: int) -> None:
    a = chunk(text, budget)
    b = chunk(text, budget)
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)
    # another document (or another version of it) never shares an id
    other = chunk_document("other-doc", "0" * 64, "", text, ws_count, budget)
    assert not ({c.chunk_id for c in a} & {c.chunk_id for c in other})


@settings(max_examples=150, deadline=None)
@given(text=any_text, offset=st.integers(0, 10_000))
def test_split_sentences_offsets_are_exact(text: str, offset: int) -> None:
    padded = "#" * offset + text
    sentences = split_sentences(text, offset=offset)
    prev = offset
    for s in sentences:
        assert padded[s.start : s.end] == s.text
        assert s.text.strip() == s.text and s.text
        assert s.start >= prev
        prev = s.end
    assert sum(non_space(s.text) for s in sentences) == non_space(text)


def test_split_sentences_splits_at_terminal_punctuation_and_keeps_closing_quotes() -> None:
    text = "He said “wait.” Then he left! Did he? Yes… Done"
    got = [s.text for s in split_sentences(text)]
    assert got == ["He said “wait.”", "Then he left!", "Did he?", "Yes…", "Done"]
    assert all(text[s.start : s.end] == s.text for s in split_sentences(text))


def test_paragraph_spans_are_trimmed_lines() -> None:
    text = "  first line \n\n\tsecond\r\n   \nthird"
    spans = spans_of_paragraphs(text)
    assert [text[a:b] for a, b in spans] == ["first line", "second", "third"]


# ---------------------------------------------------------------- structure
def test_headings_open_new_chunks_and_name_their_section() -> None:
    title = "Interview Guide"
    text = (
        f"{title}\n"
        "Some opening words about interviews.\n"
        "Before The Interview\n"
        "Research the company and prepare questions.\n"
        "After The Interview\n"
        "Send a thank-you note within a day.\n"
    )
    chunks = chunk(text, 200, title=title)
    for heading in ("Before The Interview", "After The Interview"):
        at = text.index(heading)
        owner = [c for c in chunks if c.start <= at < c.end]
        assert len(owner) == 1 and owner[0].start == at, f"{heading!r} does not open a chunk"
        assert owner[0].context == f"{title} › {heading}"
    # the first chunk starts with the title and is contextualised by it
    assert chunks[0].start == 0 and chunks[0].context == title
    # without headings, the same sentences pack into one chunk
    flat = text.replace("Before The Interview\n", "").replace("After The Interview\n", "")
    assert len(chunk(flat, 200, title=title)) == 1


def test_markdown_and_numbered_headings_are_headings_but_sentences_are_not() -> None:
    assert is_heading("## Negotiating salary")
    assert is_heading("3. Follow up")
    assert is_heading("Antes de la entrevista")
    assert not is_heading("This is an ordinary sentence that ends with a period.")
    assert not is_heading("lowercase start here")
    assert not is_heading("")


def test_a_qa_thread_is_split_at_its_answers_marker() -> None:
    title = "When should I ask for a referral"
    text = (
        f"{title}\n\n"
        "I have an interview in two weeks. A contact knows the manager. When should I ask?\n\n"
        "@Ann: a comment that adds a point about the manager.\n\n"
        "Respuestas (2)\n\n"
        "Ask after the first interview, once you know the role.\n\n"
        "Ask before, the earlier the better.\n"
    )
    chunks = chunk(text, 200, title=title)
    at = text.index("Respuestas (2)")
    assert [c.part for c in chunks] == ["question", "answer"]
    assert chunks[0].end < at and chunks[1].start == at  # no chunk mixes the question with its answers
    assert chunks[1].context == f"{title} › Respuestas (2)"
    # without the marker the same text is one chunk with no part
    plain = chunk(text.replace("Respuestas (2)\n\n", ""), 200, title=title)
    assert len(plain) == 1 and plain[0].part == ""


def test_answers_markers() -> None:
    for line in ("Respuestas (2)", "Answers (10)", "3 Answers", "Antworten: 4", "## Answers", "ANSWERS", "Respuestas"):
        assert is_answers_marker(line) and is_heading(line), line
    for line in ("Answers to common questions are below.", "Two answers (so far) disagree.", "Antworten Sie kurz"):
        assert not is_answers_marker(line), line


def test_a_long_paragraph_is_split_at_sentences_without_truncation() -> None:
    sentences = [f"Sentence number {i} talks about interviews and offers." for i in range(30)]
    text = " ".join(sentences)
    chunks = chunk(text, 20)
    assert len(chunks) > 1
    for ch in chunks:
        assert ws_count(ch.text) <= 20
        # split at sentence ends: every chunk is a run of whole sentences
        assert ch.text.endswith("offers."), ch.text
    assert " ".join(c.text for c in chunks) == text


# Regression: a word longer than the budget (a 5 MB line without spaces) used to be one
# chunk, which the default embedder (no truncation) ran out of memory on.
def test_a_word_longer_than_the_budget_is_cut_into_chunks_that_fit() -> None:
    def subword_count(text: str) -> int:  # like a SentencePiece model: about 3 characters a token, + BOS/EOS
        return 2 + sum(-(-len(w) // 3) for w in text.split())

    blob = "x" * 200_000
    text = f"Notes\n\nA short paragraph first.\n\n{blob}\n\nA last paragraph.\n"
    chunks = chunk_document("doc", "sha", "Notes", text, subword_count, 64)
    assert all(subword_count(c.text) <= 64 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert sum(non_space(c.text) for c in chunks) == non_space(text)  # nothing lost
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    assert len(chunks) > 200_000 // (3 * 64)
