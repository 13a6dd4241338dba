"""Language identification and the BM25 index."""

from __future__ import annotations

import pytest

from advisor.lang import detect_language, words
from advisor.lexical import BM25Index, analyse


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("My contact knows the hiring manager, when should I ask for a referral?", "en"),
        ("Should I connect with my interviewer on LinkedIn after the interview?", "en"),
        ("¿Cuándo debo pedirle a mi contacto que hable con el gerente de contratación?", "es"),
        ("Mi reclutador me dijo que no seguía en el proceso después de la entrevista.", "es"),
        ("Sollte ich mich nach dem Vorstellungsgespräch mit dem Interviewer auf LinkedIn verbinden?", "de"),
        ("Wann ist der richtige Zeitpunkt, um meinen Kontakt um eine Empfehlung zu bitten?", "de"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_detect_language_without_evidence_returns_the_default() -> None:
    assert detect_language("", default="es") == "es"
    assert detect_language("12345 !!!", default="de") == "de"
    assert detect_language("xyzzy plugh") == "en"


def test_words_are_lowercased_letters_only() -> None:
    assert words("Hello, WORLD 42 über-Straße") == ["hello", "world", "über", "straße"]


DOCS = [
    ("salary", "Negotiate the salary offer after the recruiter calls with a number.", "en"),
    ("linkedin", "Connect with the interviewer on LinkedIn only after a decision was made.", "en"),
    ("thanks", "Send a short thank-you note to every interviewer the same day.", "en"),
    ("es-entrevista", "Las entrevistas informativas ayudan a conocer la empresa.", "es"),
    ("de-gespraech", "Nach den Vorstellungsgesprächen sollten Sie geduldig warten.", "de"),
]


@pytest.fixture
def index() -> BM25Index:
    return BM25Index(DOCS)


def test_the_matching_document_ranks_first(index: BM25Index) -> None:
    hits = index.search("how do I negotiate my salary offer", "en", 5)
    assert hits[0][0] == "salary"
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)
    assert index.search("LinkedIn connection with my interviewer", "en", 1)[0][0] == "linkedin"


def test_n_limits_the_results(index: BM25Index) -> None:
    assert len(index.search("interviewer", "en", 1)) == 1
    assert len(index.search("interviewer", "en", 10)) == 2  # only two documents contain it


@pytest.mark.parametrize(
    ("query", "lang", "expected"),
    [
        ("negotiating salaries", "en", "salary"),  # negotiate/negotiating, salary/salaries
        ("entrevista informativa", "es", "es-entrevista"),  # singular query, plural document
        ("Vorstellungsgespräch", "de", "de-gespraech"),  # singular query, plural dative document
    ],
)
def test_stemming_matches_across_inflections(index: BM25Index, query: str, lang: str, expected: str) -> None:
    # the exact surface forms differ, so only stemming can make them meet
    assert not set(words(query)) & set(words(dict((d, t) for d, t, _ in DOCS)[expected]))
    hits = index.search(query, lang, 3)
    assert hits and hits[0][0] == expected


def test_analyse_drops_stop_words_and_stems() -> None:
    assert analyse("the interviews and the interviewers", "en") == analyse("interview interviewer", "en")
    assert "el" not in analyse("el gerente de contratación", "es")
    assert analyse("Gespräche", "de") == analyse("Gespräch", "de")


def test_empty_index_and_unmatched_queries_return_nothing() -> None:
    empty = BM25Index([])
    assert len(empty) == 0
    assert empty.search("anything at all", "en", 5) == []
    index = BM25Index(DOCS)
    assert index.search("zebra quantum", "en", 5) == []
    assert index.search("the and of", "en", 5) == []  # only stop words
